#!/usr/bin/python3
"""PyTorch reference for the C++ engine: load a model folder written by train_moe.py, write the
golden file the C++ tests compare against, and decode with a KV cache for the engine benchmark.

  /usr/bin/python3 tools/moe_reference.py golden MODEL_DIR      # writes MODEL_DIR/golden.json
  /usr/bin/python3 tools/moe_reference.py decode MODEL_DIR --ids 1,2,3 --tokens N --runs R \
      [--threads T] [--dtype float32|stored]    # prefill + decode tokens/s, as JSON

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

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_moe  # noqa: E402  (the model definition the weights were trained with)

GOLDEN_PROMPT = "In the beginning God created the heaven and the earth.\nAnd the earth was"


SAFETENSORS_DTYPES = {"F32": np.float32, "BF16": np.uint16, "F16": np.float16}


def read_safetensors(path, keep_dtype=False):
    """name -> tensor, read through a memory map so a checkpoint of several GB is never held
    twice. float32 by default; keep_dtype keeps BF16 and F16 tensors in their own type."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in SAFETENSORS_DTYPES:
            raise SystemExit(f"{path}: {name}: dtype {info['dtype']} not handled here")
        begin, end = info["data_offsets"]
        raw = data[begin:end].view(SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":
            # bfloat16 is the top half of a float32: widen exactly, or reinterpret as is.
            t = torch.from_numpy(np.array(raw).view(np.int16))
            t = t.view(torch.bfloat16) if keep_dtype else t.view(torch.bfloat16).float()
        elif info["dtype"] == "F16":
            t = torch.from_numpy(np.array(raw))
            t = t if keep_dtype else t.float()
        else:
            t = torch.from_numpy(np.array(raw))
        out[name] = t
    return out


def load_model(model_dir, keep_dtype=False):
    """The model with the folder's weights. Parameters are built uninitialised and then
    replaced by the file's tensors, so a large checkpoint costs its own size once, not a
    random initialisation plus a copy."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    saved = torch.nn.Linear.reset_parameters, torch.nn.Embedding.reset_parameters
    torch.nn.Linear.reset_parameters = lambda self: None
    torch.nn.Embedding.reset_parameters = lambda self: None
    try:
        model = train_moe.Mixtral(cfg)  # torch.empty parameters: untouched, so not resident
    finally:
        torch.nn.Linear.reset_parameters, torch.nn.Embedding.reset_parameters = saved
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"), keep_dtype)
    state = {k[len("model."):] if k.startswith("model.") else k: v for k, v in weights.items()}
    expected = set(model.state_dict().keys())
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise SystemExit(f"{model_dir}: tensors missing {missing[:5]}, unexpected {extra[:5]}")
    for name, tensor in state.items():
        owner, _, leaf = name.rpartition(".")
        module = model.get_submodule(owner)
        if tuple(getattr(module, leaf).shape) != tuple(tensor.shape):
            raise SystemExit(f"{model_dir}: {name} has shape {tuple(tensor.shape)}, the config "
                             f"gives {tuple(getattr(module, leaf).shape)}")
        setattr(module, leaf, torch.nn.Parameter(tensor, requires_grad=False))
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
def forward_step(model, cfg, tokens, position0, cache):
    """tokens (a list) at positions position0.. through the model with a KV cache (cache: per
    layer [keys, values]), causal within the step; returns the last position's logits."""
    hd, n = cfg["head_dim"], len(tokens)
    x = model.embed_tokens(torch.tensor([tokens]))
    cos, sin = train_moe.rope_cos_sin(torch.arange(position0, position0 + n), hd, cfg["rope_theta"])
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    # query i sees every cached position and the step's positions up to its own
    mask = torch.full((n, position0 + n), float("-inf")).triu(position0 + 1).to(x.dtype)
    for layer, kv in zip(model.layers, cache):
        att = layer.self_attn
        h = layer.input_layernorm(x)
        q = att.q_proj(h).view(1, n, att.h, hd).transpose(1, 2)
        k = att.k_proj(h).view(1, n, att.kv, hd).transpose(1, 2)
        v = att.v_proj(h).view(1, n, att.kv, hd).transpose(1, 2)
        q = q * cos + train_moe.rotate_half(q) * sin
        k = k * cos + train_moe.rotate_half(k) * sin
        kv[0] = k if kv[0] is None else torch.cat([kv[0], k], dim=2)
        kv[1] = v if kv[1] is None else torch.cat([kv[1], v], dim=2)
        rep = att.h // att.kv
        keys = kv[0].repeat_interleave(rep, dim=1)
        values = kv[1].repeat_interleave(rep, dim=1)
        scores = q @ keys.transpose(2, 3) / hd ** 0.5 + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(x.dtype)
        out = (probs @ values).transpose(1, 2).reshape(1, n, att.h * hd)
        x = x + att.o_proj(out)
        moe_out, _ = layer.block_sparse_moe(layer.post_attention_layernorm(x))
        x = x + moe_out
    return model.lm_head(model.norm(x[:, -1:]))[0, -1]


@torch.no_grad()
def benchmark(model_dir, ids, tokens, runs, threads, keep_dtype):
    """Prefill of ids in one step, then `tokens` greedy decode steps, timed apart, as the C++
    side times them; the median of runs after one warm-up run."""
    torch.set_num_threads(threads)
    model, cfg = load_model(model_dir, keep_dtype)
    prefill_rates, decode_rates, generated = [], [], []
    for run in range(runs + 1):  # the first run warms up and is not counted
        cache = [[None, None] for _ in model.layers]
        start = time.perf_counter()
        logits = forward_step(model, cfg, ids, 0, cache)
        prefill_s = time.perf_counter() - start
        out = []
        start = time.perf_counter()
        for i in range(tokens):  # exactly `tokens` decode steps
            nxt = int(logits.argmax())
            out.append(nxt)
            logits = forward_step(model, cfg, [nxt], len(ids) + i, cache)
        decode_s = time.perf_counter() - start
        if run > 0:
            prefill_rates.append(len(ids) / prefill_s)
            decode_rates.append(tokens / decode_s)
        generated = out
    return {"tokens_per_second": statistics.median(decode_rates),
            "prefill_tokens_per_second": statistics.median(prefill_rates),
            "runs": runs, "threads": threads, "tokens": generated,
            "weights_dtype": str(model.lm_head.weight.dtype).replace("torch.", ""),
            "torch_version": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("model_dir")
    d = sub.add_parser("decode")
    d.add_argument("model_dir")
    d.add_argument("--ids", required=True, help="prompt token ids, comma-separated")
    d.add_argument("--tokens", type=int, default=64)
    d.add_argument("--runs", type=int, default=5)
    d.add_argument("--threads", type=int, default=1)
    d.add_argument("--dtype", choices=["float32", "stored"], default="float32",
                   help="float32: widen every weight (exact for bf16/f16); stored: keep the "
                   "file's type, activations in it too")
    args = ap.parse_args()
    if args.cmd == "golden":
        golden = write_golden(args.model_dir)
        print(f"wrote {args.model_dir}/golden.json; greedy: {golden['greedy_text']!r}")
    else:
        ids = [int(t) for t in args.ids.split(",")]
        print(json.dumps(benchmark(args.model_dir, ids, args.tokens, args.runs, args.threads,
                                   args.dtype == "stored")))


if __name__ == "__main__":
    main()
