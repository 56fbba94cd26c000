#!/usr/bin/python3
"""PyTorch reference for the C++ engine: load a model folder written by train_moe.py, write the
golden file the C++ tests compare against, and decode with a KV cache for the engine benchmark.

  /usr/bin/python3 tools/moe_reference.py golden MODEL_DIR      # writes MODEL_DIR/golden.json
  /usr/bin/python3 tools/moe_reference.py decode MODEL_DIR --prompt TEXT --tokens N --runs R

The golden file holds, for a fixed prompt: the logits of every position and the gate
probabilities of every layer (the model's own top-2), the logits when every layer is forced
to run only its most probable expert with weight 1 (the routing seam's test), and a greedy
continuation.
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_moe  # noqa: E402  (the model definition the weights were trained with)

GOLDEN_PROMPT = "In the beginning God created the heaven and the earth.\nAnd the earth was"


def read_safetensors(path):
    """name -> float32 tensor, for F32 and BF16 files."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        buf = bytearray(raw[base + begin:base + end])
        if info["dtype"] == "F32":
            t = torch.frombuffer(buf, dtype=torch.float32)
        elif info["dtype"] == "BF16":
            t = torch.frombuffer(buf, dtype=torch.bfloat16).float()
        else:
            raise SystemExit(f"{path}: {name}: dtype {info['dtype']} not handled here")
        out[name] = t.reshape(info["shape"]).clone()
    return out


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    model = train_moe.Mixtral(cfg)
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    state = {k[len("model."):] if k.startswith("model.") else k: v for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, cfg


class ForcedTop1:
    """Context manager: every MoE layer runs only its most probable expert, weight 1."""

    def __init__(self, model):
        self.moes = [layer.block_sparse_moe for layer in model.layers]

    def __enter__(self):
        self.saved = [m.k for m in self.moes]
        for m in self.moes:
            m.k = 1  # top-1 renormalised is weight 1
        return self

    def __exit__(self, *exc):
        for m, k in zip(self.moes, self.saved):
            m.k = k


@torch.no_grad()
def write_golden(model_dir, greedy_tokens=48):
    model, _ = load_model(model_dir)
    ids = torch.tensor([list(GOLDEN_PROMPT.encode())])
    logits, router_logits = model(ids)
    gate_probs = [F.softmax(rl, dim=-1, dtype=torch.float).tolist() for rl in router_logits]
    with ForcedTop1(model):
        logits_top1, _ = model(ids)
    seq = ids
    for _ in range(greedy_tokens):
        nxt = model(seq)[0][:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=1)
    golden = {
        "prompt": GOLDEN_PROMPT,
        "input_ids": ids[0].tolist(),
        "logits": logits[0].tolist(),
        "gate_probs": gate_probs,
        "logits_forced_top1": logits_top1[0].tolist(),
        "greedy_tokens": seq[0, ids.shape[1]:].tolist(),
        "greedy_text": bytes(seq[0, ids.shape[1]:].tolist()).decode("utf-8", "replace"),
        "producer": "tools/moe_reference.py with torch " + torch.__version__,
    }
    path = os.path.join(model_dir, "golden.json")
    with open(path + ".tmp", "w") as f:
        json.dump(golden, f)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return golden


@torch.no_grad()
def decode_step(model, cfg, token, position, cache):
    """One token through the model with a KV cache (cache: per layer [keys, values])."""
    hd = cfg["head_dim"]
    x = model.embed_tokens(torch.tensor([[token]]))
    cos, sin = train_moe.rope_cos_sin(torch.tensor([position]), hd, cfg["rope_theta"])
    for layer, kv in zip(model.layers, cache):
        att = layer.self_attn
        h = layer.input_layernorm(x)
        q = att.q_proj(h).view(1, 1, att.h, hd).transpose(1, 2)
        k = att.k_proj(h).view(1, 1, att.kv, hd).transpose(1, 2)
        v = att.v_proj(h).view(1, 1, att.kv, hd).transpose(1, 2)
        q = q * cos + train_moe.rotate_half(q) * sin
        k = k * cos + train_moe.rotate_half(k) * sin
        kv[0] = k if kv[0] is None else torch.cat([kv[0], k], dim=2)
        kv[1] = v if kv[1] is None else torch.cat([kv[1], v], dim=2)
        rep = att.h // att.kv
        keys = kv[0].repeat_interleave(rep, dim=1)
        values = kv[1].repeat_interleave(rep, dim=1)
        probs = F.softmax(q @ keys.transpose(2, 3) / hd ** 0.5, dim=-1)
        out = (probs @ values).transpose(1, 2).reshape(1, 1, att.h * hd)
        x = x + att.o_proj(out)
        moe_out, _ = layer.block_sparse_moe(layer.post_attention_layernorm(x))
        x = x + moe_out
    return model.lm_head(model.norm(x))[0, -1]


@torch.no_grad()
def benchmark_decode(model_dir, prompt, tokens, runs, threads):
    torch.set_num_threads(threads)
    model, cfg = load_model(model_dir)
    ids = list(prompt.encode())
    rates, generated = [], []
    for run in range(runs + 1):  # the first run warms up and is not counted
        cache = [[None, None] for _ in model.layers]
        logits = None
        for pos, t in enumerate(ids):  # prefill, one token at a time
            logits = decode_step(model, cfg, t, pos, cache)
        out = []
        start = time.perf_counter()
        for i in range(tokens):  # exactly `tokens` decode steps, as the C++ side times
            nxt = int(logits.argmax())
            out.append(nxt)
            logits = decode_step(model, cfg, nxt, len(ids) + i, cache)
        elapsed = time.perf_counter() - start
        if run > 0:
            rates.append(tokens / elapsed)
        generated = out
    return {"tokens_per_second": statistics.median(rates), "runs": runs,
            "threads": threads, "tokens": generated, "torch_version": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("model_dir")
    d = sub.add_parser("decode")
    d.add_argument("model_dir")
    d.add_argument("--prompt", required=True)
    d.add_argument("--tokens", type=int, default=64)
    d.add_argument("--runs", type=int, default=5)
    d.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.cmd == "golden":
        golden = write_golden(args.model_dir)
        print(f"wrote {args.model_dir}/golden.json; greedy: {golden['greedy_text']!r}")
    else:
        print(json.dumps(benchmark_decode(args.model_dir, args.prompt, args.tokens, args.runs,
                                          args.threads)))


if __name__ == "__main__":
    main()
