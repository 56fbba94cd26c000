#!/usr/bin/python3
"""Write a Mixtral-architecture checkpoint with random weights, for measuring speed at real
widths (the weights mean nothing: perplexity is that of noise).

  /usr/bin/python3 tools/make_random_checkpoint.py --out results/mixtral-width
  ./wdmoe bench engine --model results/mixtral-width --prefill 16 --tokens 4 --runs 1 --threads 2

The defaults are Mixtral 8x7B's widths with 2 layers (d_model 4096, d_ff 14336, 8 experts,
top-2, 32 heads over 8 KV heads of 128, vocabulary 32000) in bf16: 6.3 GB on disk, 1.84 GB of
weights read per decode token. The folder holds what MixtralModel::Load and Tokenizer::ForModel
read: config.json (Hugging Face MixtralForCausalLM fields), model.safetensors (classic
block_sparse_moe layout) and, for any vocabulary other than the byte-level 256, a SentencePiece
tokenizer.model written here (a unigram model with Llama's layout: <unk>, <s>, </s>, 256 byte
pieces, then the --text file's most frequent words and word pieces; ids past those are unused
pieces, never produced by encoding but still rows of the embedding and LM head).

Weights are drawn with numpy's PCG64 from --seed: matrices ~ N(0, 1/fan_in) (so activations
keep their scale through the layers), embeddings ~ N(0, 1), norms 1; rounded to nearest even
in bf16/f16. Tensors are generated and written a slice at a time, so the tool needs far less
memory than the checkpoint. Debian's numpy only: no download, no hub.
"""
import argparse
import collections
import json
import math
import os
import re
import struct
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = {"bf16": ("BF16", 2), "f16": ("F16", 2), "f32": ("F32", 4)}
SLICE = 1 << 24  # elements generated at a time (64 MiB of float32)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True, help="folder to write (created; files replaced)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=4096)
    ap.add_argument("--d-ff", type=int, default=14336)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--context", type=int, default=4096, help="max_position_embeddings")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--text", default=os.path.join(REPO, "models/kjv-moe/calibration.txt"),
                    help="text whose words become the tokenizer's pieces")
    a = ap.parse_args()
    for name in ("layers", "d_model", "d_ff", "experts", "top_k", "heads", "kv_heads", "vocab",
                 "context"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(a, name)}")
    if a.d_model % a.heads or (a.d_model // a.heads) % 2:
        ap.error(f"--d-model {a.d_model} must split into --heads {a.heads} of an even width")
    if a.heads % a.kv_heads:
        ap.error(f"--heads {a.heads} must be a multiple of --kv-heads {a.kv_heads}")
    if a.top_k > a.experts:
        ap.error(f"--top-k {a.top_k} exceeds --experts {a.experts}")
    if a.vocab != 256 and a.vocab < 259 + 1:
        ap.error(f"--vocab {a.vocab}: a SentencePiece vocabulary needs at least 260 pieces "
                 "(3 control + 256 bytes + 1), or exactly 256 for the byte-level tokenizer")
    return a


def config(a):
    return {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "vocab_size": a.vocab, "hidden_size": a.d_model, "intermediate_size": a.d_ff,
        "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads, "head_dim": a.d_model // a.heads,
        "num_local_experts": a.experts, "num_experts_per_tok": a.top_k,
        "max_position_embeddings": a.context, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
        "tie_word_embeddings": False, "hidden_act": "silu", "sliding_window": None,
        "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[a.dtype],
        "bos_token_id": 1 if a.vocab != 256 else None, "eos_token_id": 2 if a.vocab != 256 else None,
    }


def tensors(a):
    """(name, shape, std) in file order; std 0 means a norm weight of ones."""
    d, ff, hd = a.d_model, a.d_ff, a.d_model // a.heads
    out = [("model.embed_tokens.weight", (a.vocab, d), 1.0)]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", (d,), 0.0),
                (p + "post_attention_layernorm.weight", (d,), 0.0),
                (p + "self_attn.q_proj.weight", (a.heads * hd, d), d ** -0.5),
                (p + "self_attn.k_proj.weight", (a.kv_heads * hd, d), d ** -0.5),
                (p + "self_attn.v_proj.weight", (a.kv_heads * hd, d), d ** -0.5),
                (p + "self_attn.o_proj.weight", (d, a.heads * hd), (a.heads * hd) ** -0.5),
                (p + "block_sparse_moe.gate.weight", (a.experts, d), d ** -0.5)]
        for e in range(a.experts):
            q = f"{p}block_sparse_moe.experts.{e}."
            out += [(q + "w1.weight", (ff, d), d ** -0.5), (q + "w3.weight", (ff, d), d ** -0.5),
                    (q + "w2.weight", (d, ff), ff ** -0.5)]
    out += [("model.norm.weight", (d,), 0.0), ("lm_head.weight", (a.vocab, d), d ** -0.5)]
    return out


def narrow(x, dtype):
    """float32 -> the file's bytes, rounding to nearest even."""
    if dtype == "f32":
        return x.astype("<f4").tobytes()
    if dtype == "f16":
        return x.astype("<f2").tobytes()
    u = x.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()


def write_safetensors(path, a):
    name, size = DTYPES[a.dtype]
    header, offset = {}, 0
    specs = tensors(a)
    for tname, shape, _ in specs:
        n = math.prod(shape) * size
        header[tname] = {"dtype": name, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt", "producer": "tools/make_random_checkpoint.py",
                              "seed": str(a.seed)}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(a.seed)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for i, (tname, shape, std) in enumerate(specs):
            left = math.prod(shape)
            while left:
                n = min(left, SLICE)
                x = (np.ones(n, np.float32) if std == 0.0 else
                     rng.standard_normal(n, dtype=np.float32) * np.float32(std))
                f.write(narrow(x, a.dtype))
                left -= n
            print(f"\r{i + 1}/{len(specs)} tensors", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    os.replace(path + ".tmp", path)
    return 8 + len(raw) + offset


# --- SentencePiece's ModelProto (sentencepiece_model.proto), written field by field ----------
def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, value):
    """One protobuf field: bytes -> length-delimited, float -> fixed32, int/bool -> varint."""
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if isinstance(value, float):
        return varint(number << 3 | 5) + struct.pack("<f", value)
    return varint(number << 3) + varint(int(value))


NORMAL, UNKNOWN, CONTROL, UNUSED, BYTE = 1, 2, 3, 5, 6


def tokenizer_pieces(text, vocab):
    """(piece, score, type): Llama's first 259, then the text's words (with the word-start
    mark) and word pieces by frequency, then unused pieces up to the vocabulary size."""
    pieces = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    pieces += [(f"<0x{b:02X}>", 0.0, BYTE) for b in range(256)]
    counts = collections.Counter()
    for word in re.findall(r"\S+", text):
        marked = "\u2581" + word
        for length in range(1, min(len(marked), 12) + 1):
            for start in range(len(marked) - length + 1):
                counts[marked[start:start + length]] += 1
    total = sum(counts.values())
    for piece, count in counts.most_common(vocab - len(pieces)):
        pieces.append((piece, math.log(count / total), NORMAL))
    pieces += [(f"<unused{i}>", 0.0, UNUSED) for i in range(vocab - len(pieces))]
    return pieces


def write_tokenizer(path, text, vocab):
    model = b"".join(field(1, field(1, p.encode()) + field(2, s) + field(3, t))
                     for p, s, t in tokenizer_pieces(text, vocab))
    # trainer_spec: model_type UNIGRAM, vocab_size, byte_fallback, unk/bos/eos ids 0/1/2
    model += field(2, field(3, 1) + field(4, vocab) + field(35, True) + field(40, 0) +
                   field(41, 1) + field(42, 2))
    # normalizer_spec: identity (no charsmap), "▁" prefix, spaces kept and escaped (Llama's)
    model += field(3, field(1, b"identity") + field(3, True) + field(4, False) + field(5, True))
    with open(path, "wb") as f:
        f.write(model)


def main():
    a = parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.vocab != 256:
        with open(a.text, encoding="utf-8") as f:
            write_tokenizer(os.path.join(a.out, "tokenizer.model"), f.read(), a.vocab)
    elif os.path.exists(os.path.join(a.out, "tokenizer.model")):
        os.remove(os.path.join(a.out, "tokenizer.model"))  # byte-level: no SentencePiece
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config(a), f, indent=2)
        f.write("\n")
    size = write_safetensors(os.path.join(a.out, "model.safetensors"), a)
    print(f"wrote {a.out}: {size / 1e9:.2f} GB of weights ({a.dtype}), seed {a.seed}")


if __name__ == "__main__":
    main()
