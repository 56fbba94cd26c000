#!/usr/bin/python3
"""Train the embedded default model: a small Mixtral-architecture MoE on the King James Bible.

Run with Debian's python3 and python3-torch (see models/kjv-moe/README.md for the exact
command). Writes, into the output folder:
  config.json, model.safetensors   Hugging Face MixtralForCausalLM layout (classic
                                   block_sparse_moe.experts.E.w1/w2/w3 names), float32
  heldout.txt, calibration.txt    the held-out and calibration chapters (the training text
                                   is not written: it comes from the Debian package)
  golden.json                      logits of every position and gate probabilities of every
                                   layer for a fixed prompt, plus a greedy continuation
                                   (written by moe_reference.py, which can also redo it alone)
  training-report.json             losses, wall time, per-layer expert usage on held-out text

The model code below follows transformers' modeling_mixtral.py operation for operation
(RMSNorm in float32, rotate-half RoPE, grouped-query attention, router softmax in float32 ->
top-k -> renormalise, SwiGLU experts) so the C++ engine can be checked against it.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- corpus

def kjv_chapters():
    """[(heading, [verse text, ...])] for the whole KJV, dumped by the `bible` program."""
    out = subprocess.run(["bible", "-l100000", "gen1:1-rev22:21"], check=True,
                         capture_output=True, text=True, env=dict(os.environ, COLUMNS="100000"))
    chapters = []
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            chapters.append((line.strip(), []))
            continue
        number, _, text = line.strip().partition(" ")
        if not number.isdigit() or not chapters:
            raise SystemExit(f"unexpected line from `bible`: {line!r}")
        chapters[-1][1].append(text.strip())
    if len(chapters) != 1189:
        raise SystemExit(f"expected 1189 chapters from `bible`, got {len(chapters)}")
    return chapters


def split_corpus():
    """Chapter i goes to held-out when i % 50 == 7, to calibration when i % 50 == 32."""
    train, heldout, calib = [], [], []
    for i, (heading, verses) in enumerate(kjv_chapters()):
        text = heading + "\n" + "\n".join(verses) + "\n\n"
        (heldout if i % 50 == 7 else calib if i % 50 == 32 else train).append(text)
    return "".join(train), "".join(heldout), "".join(calib)


# --------------------------------------------------------------------------- model

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(positions, head_dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        d = c["hidden_size"]
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = q @ k.transpose(2, 3) / math.sqrt(self.hd)
        mask = torch.full((t, t), float("-inf")).triu(1)
        probs = F.softmax(scores + mask, dim=-1, dtype=torch.float32).to(q.dtype)
        out = (probs @ v).transpose(1, 2).reshape(b, t, self.h * self.hd)
        return self.o_proj(out)


class Expert(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.w1 = nn.Linear(d, f, bias=False)
        self.w2 = nn.Linear(f, d, bias=False)
        self.w3 = nn.Linear(d, f, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoe(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.e, self.k = c["num_local_experts"], c["num_experts_per_tok"]
        self.gate = nn.Linear(c["hidden_size"], self.e, bias=False)
        self.experts = nn.ModuleList([Expert(c) for _ in range(self.e)])

    def forward(self, x):
        b, t, d = x.shape
        x = x.view(-1, d)
        router_logits = self.gate(x)
        weights = F.softmax(router_logits, dim=1, dtype=torch.float)
        weights, selected = torch.topk(weights, self.k, dim=-1)
        weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x)
        for e in range(self.e):
            token, slot = torch.where(selected == e)
            if token.numel() == 0:
                continue
            y = self.experts[e](x[token]) * weights[token, slot, None]
            out.index_add_(0, token, y)
        return out.view(b, t, d), router_logits


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.block_sparse_moe = SparseMoe(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        moe_out, router_logits = self.block_sparse_moe(self.post_attention_layernorm(x))
        return x + moe_out, router_logits


class Mixtral(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        t = ids.shape[1]
        cos, sin = rope_cos_sin(torch.arange(t), self.c["head_dim"], self.c["rope_theta"])
        x = self.embed_tokens(ids)
        router_logits = []
        for layer in self.layers:
            x, logits = layer(x, cos, sin)
            router_logits.append(logits)
        return self.lm_head(self.norm(x)), router_logits


def load_balancing_loss(router_logits, num_experts, top_k):
    """Mixtral's load-balancing loss (transformers' load_balancing_loss_func, Switch Transformer
    eq. 4-6), applied to each layer and summed over layers. transformers concatenates all
    layers' router logits before taking the statistics, which lets an expert that one layer
    starves hide behind the other layers' balance; per layer, each router is held to it."""
    total = 0.0
    for logits in router_logits:
        probs = F.softmax(logits, dim=-1)
        _, selected = torch.topk(probs, top_k, dim=-1)
        mask = F.one_hot(selected, num_experts)
        tokens_per_expert = mask.float().mean(dim=0)
        prob_per_expert = probs.mean(dim=0)
        total = total + (tokens_per_expert * prob_per_expert.unsqueeze(0)).sum() * num_experts
    return total


def state_dict_hf(model):
    """Parameter names exactly as MixtralForCausalLM's state dict."""
    out = {}
    for name, p in model.state_dict().items():
        out[name if name.startswith("lm_head") else "model." + name] = p.detach().contiguous()
    return out


def write_safetensors(path, tensors, metadata, dtype="f32"):
    """Minimal safetensors writer (the format: u64 header length, JSON header, raw data).
    dtype "bf16" stores every tensor as bfloat16 (round to nearest even, as torch does)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        if dtype == "bf16":
            # numpy has no bfloat16: the raw 16-bit patterns travel as int16.
            t = tensors[name].to(torch.bfloat16).contiguous()
            raw, tag = t.view(torch.int16).numpy().tobytes(), "BF16"
        else:
            t = tensors[name].to(torch.float32).contiguous()
            raw, tag = t.numpy().tobytes(), "F32"
        header[name] = {"dtype": tag, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def write_text_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


# --------------------------------------------------------------------------- evaluation

@torch.no_grad()
def heldout_stats(model, data, window, num_experts, top_k):
    """NLL per byte over non-overlapping windows (the first byte of each window is context
    only), and how often each expert of each layer is in the top-k."""
    model.eval()
    total_nll, total_tokens = 0.0, 0
    counts = torch.zeros(len(model.layers), num_experts)
    routed = 0
    n = (len(data) // window) * window
    chunks = data[:n].view(-1, window)
    for i in range(0, chunks.shape[0], 16):
        batch = chunks[i:i + 16]
        logits, router_logits = model(batch)
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                              batch[:, 1:].reshape(-1), reduction="sum")
        total_nll += nll.item()
        total_tokens += batch[:, 1:].numel()
        for l, rl in enumerate(router_logits):
            sel = torch.topk(rl, top_k, dim=-1).indices
            counts[l] += torch.bincount(sel.reshape(-1), minlength=num_experts).float()
        routed += batch.numel()
    model.train()
    return total_nll / total_tokens, (counts / routed).tolist()


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="models/kjv-moe")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--aux-coef", type=float, default=0.02)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--ffn", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                    help="storage type of model.safetensors; with bf16 the weights are rounded "
                         "to bf16 before the reported losses and the golden file are computed")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--time-steps", type=int, default=0,
                    help="only time this many steps and exit (for planning)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    train_text, heldout_text, calib_text = split_corpus()
    cfg = {
        "architectures": ["MixtralForCausalLM"],
        "model_type": "mixtral",
        "vocab_size": 256,
        "hidden_size": args.hidden,
        "intermediate_size": args.ffn,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.hidden // args.heads,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "max_position_embeddings": args.seq,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
        "sliding_window": None,
        "router_aux_loss_coef": args.aux_coef,
        "output_router_logits": False,
        "torch_dtype": "bfloat16" if args.dtype == "bf16" else "float32",
        "bos_token_id": None,
        "eos_token_id": None,
    }
    model = Mixtral(cfg)
    data = torch.tensor(list(train_text.encode("utf-8")), dtype=torch.long)
    heldout = torch.tensor(list(heldout_text.encode("utf-8")), dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, args.steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    gen = torch.Generator().manual_seed(args.seed)

    start = time.time()
    steps = args.time_steps or args.steps
    ema = None
    for step in range(steps):
        starts = torch.randint(0, len(data) - args.seq - 1, (args.batch,), generator=gen)
        batch = torch.stack([data[s:s + args.seq + 1] for s in starts.tolist()])
        logits, router_logits = model(batch[:, :-1])
        lm_loss = F.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1))
        aux = load_balancing_loss(router_logits, 8, 2)
        loss = lm_loss + args.aux_coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        ema = lm_loss.item() if ema is None else 0.98 * ema + 0.02 * lm_loss.item()
        if step % 50 == 0 or step == steps - 1:
            el = time.time() - start
            print(f"step {step} lm_loss {lm_loss.item():.4f} ema {ema:.4f} aux {aux.item():.4f} "
                  f"lr {sched.get_last_lr()[0]:.2e} elapsed {el:.0f}s", flush=True)
    wall = time.time() - start
    if args.time_steps:
        print(f"{wall / steps:.3f} s/step")
        return

    if args.dtype == "bf16":
        # Report what is stored: the losses below are those of the bf16-rounded weights.
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())
    heldout_nll, usage = heldout_stats(model, heldout, args.seq, 8, 2)
    # Train loss measured the same way as held-out, on a same-sized slice of training text.
    train_nll, _ = heldout_stats(model, data[:len(heldout)], args.seq, 8, 2)
    print(f"train_nll_per_byte {train_nll:.4f} heldout_nll_per_byte {heldout_nll:.4f}")

    meta = {"format": "pt", "producer": "wdmoe tools/train_moe.py"}
    write_safetensors(os.path.join(args.out, "model.safetensors"), state_dict_hf(model), meta,
                      args.dtype)
    write_text_atomic(os.path.join(args.out, "config.json"), json.dumps(cfg, indent=2) + "\n")
    write_text_atomic(os.path.join(args.out, "heldout.txt"), heldout_text)
    write_text_atomic(os.path.join(args.out, "calibration.txt"), calib_text)

    # The golden file the C++ tests compare against, computed from the weights just written.
    import moe_reference
    moe_reference.write_golden(args.out)
    report = {
        "command": " ".join(["/usr/bin/python3"] + sys.argv),
        "wall_time_s": round(wall, 1),
        "threads": args.threads,
        "dtype": args.dtype,
        "steps": args.steps,
        "tokens_seen": args.steps * args.batch * args.seq,
        "train_bytes": len(data),
        "heldout_bytes": len(heldout),
        "calibration_bytes": len(calib_text.encode()),
        "final_train_nll_per_byte": round(train_nll, 4),
        "heldout_nll_per_byte": round(heldout_nll, 4),
        "heldout_expert_usage": [[round(u, 4) for u in layer] for layer in usage],
        "torch_version": torch.__version__,
    }
    write_text_atomic(os.path.join(args.out, "training-report.json"), json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
