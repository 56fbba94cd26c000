#!/usr/bin/python3
"""tools/export_gguf.py without llama.cpp: exports the 4-layer models/kjv-moe (f32) and the
32-layer models/kjv-moe-32 (bf16), reads the files back with a GGUF reader of its own (written
from the format's description, sharing no code with the exporter) and checks the header, the
metadata llama.cpp's llama architecture reads, the tensor table (names, dimensions fastest
first, types, aligned offsets) and every tensor's values against the safetensors file: Q and K
rows moved to llama.cpp's interleaved RoPE order by the index rule, experts stacked in order,
router and norms in float32, the other matrices in the requested type (bf16 rounded to nearest
even from f32). That llama.cpp runs the file as the same model (same NLL) is measured by hand
with tools/llama-nll.cc (module chapter, "llama.cpp side by side").

Usage: gguf-export-test.py REPO_ROOT
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

FAILS = []


def check(what, ok):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        FAILS.append(what)


# --- an independent GGUF v3 reader -----------------------------------------------------------
class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def string(self):
        n = self.take("Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, kind):
        scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q",
                  11: "q", 12: "d"}
        if kind in scalar:
            return self.take(scalar[kind])
        if kind == 8:
            return self.string()
        if kind == 9:
            element, count = self.take("I"), self.take("Q")
            return [self.value(element) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {kind}")


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    magic = data[:4]
    r.pos = 4
    version, n_tensors, n_kv = r.take("I"), r.take("Q"), r.take("Q")
    kv = {}
    for _ in range(n_kv):
        key = r.string()
        kv[key] = r.value(r.take("I"))
    tensors = {}
    order = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("Q") for _ in range(r.take("I"))]
        ggml_type, offset = r.take("I"), r.take("Q")
        tensors[name] = (dims, ggml_type, offset)
        order.append(name)
    alignment = kv.get("general.alignment", 32)
    data_start = (r.pos + alignment - 1) // alignment * alignment
    return magic, version, kv, tensors, order, data, data_start, alignment


def tensor_values(gguf, name):
    """A GGUF tensor as float32, shaped outermost dimension first."""
    _, _, _, tensors, _, data, start, _ = gguf
    dims, ggml_type, offset = tensors[name]
    count = int(np.prod(dims))
    begin = start + offset
    if ggml_type == 0:
        v = np.frombuffer(data, "<f4", count, begin)
    elif ggml_type == 1:
        v = np.frombuffer(data, "<f2", count, begin).astype(np.float32)
    elif ggml_type == 30:
        v = (np.frombuffer(data, "<u2", count, begin).astype(np.uint32) << 16).view(np.float32)
    else:
        raise ValueError(f"{name}: unexpected ggml type {ggml_type}")
    return v.reshape(list(reversed(dims)))


# --- the source checkpoint -------------------------------------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        data = open(path, "rb").read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a:base + b]
        if info["dtype"] == "F32":
            v = np.frombuffer(raw, "<f4")
        elif info["dtype"] == "BF16":
            v = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            v = np.frombuffer(raw, "<f2").astype(np.float32)
        out[name] = (info["dtype"], v.reshape(info["shape"]))
    return out


def to_bf16(x):
    """Round float32 to bfloat16 (nearest even) and back, element by element in Python ints."""
    u = x.astype(np.float32).view(np.uint32).astype(np.int64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return (rounded.astype(np.uint32) << 16).view(np.float32)


def interleaved_rows(w, heads):
    """Row j of head h in llama.cpp's order is Hugging Face's row h*hd + (j % 2) * hd/2 + j//2:
    llama.cpp rotates pairs (2i, 2i+1), Hugging Face pairs (i, i + hd/2)."""
    hd = w.shape[0] // heads
    out = np.empty_like(w)
    for h in range(heads):
        for j in range(hd):
            out[h * hd + j] = w[h * hd + (j % 2) * (hd // 2) + j // 2]
    return out


# --- the checks ------------------------------------------------------------------------------
def check_metadata(label, kv, config):
    expected = {
        "general.architecture": "llama",
        "llama.block_count": config["num_hidden_layers"],
        "llama.embedding_length": config["hidden_size"],
        "llama.feed_forward_length": config["intermediate_size"],
        "llama.attention.head_count": config["num_attention_heads"],
        "llama.attention.head_count_kv": config["num_key_value_heads"],
        "llama.rope.dimension_count": config["head_dim"],
        "llama.expert_count": config["num_local_experts"],
        "llama.expert_used_count": config["num_experts_per_tok"],
        "llama.context_length": config["max_position_embeddings"],
        "tokenizer.ggml.model": "llama",
    }
    wrong = [f"{k}={kv.get(k)!r} (want {v!r})" for k, v in expected.items() if kv.get(k) != v]
    check(f"{label}: metadata ({'; '.join(wrong) or 'all'})", not wrong)
    eps = kv.get("llama.attention.layer_norm_rms_epsilon", 0.0)
    check(f"{label}: rms epsilon {eps}", abs(eps - config["rms_norm_eps"]) < 1e-12)
    tokens = kv.get("tokenizer.ggml.tokens", [])
    check(f"{label}: 256 byte tokens <0x00>..<0xFF> of type BYTE",
          tokens == [f"<0x{b:02X}>" for b in range(256)] and
          kv.get("tokenizer.ggml.token_type") == [6] * 256)


def expected_tensors(src, config, matrix_type):
    """name -> (values outermost first, ggml type) as llama.cpp's converter lays them out."""
    m = {"F32": 0, "BF16": 30, "F16": 1}[matrix_type]
    out = {"token_embd.weight": (src["model.embed_tokens.weight"][1], m),
           "output_norm.weight": (src["model.norm.weight"][1], 0),
           "output.weight": (src["lm_head.weight"][1], m)}
    for l in range(config["num_hidden_layers"]):
        p, g = f"model.layers.{l}.", f"blk.{l}."
        experts = range(config["num_local_experts"])
        moe = p + "block_sparse_moe."
        out.update({
            g + "attn_norm.weight": (src[p + "input_layernorm.weight"][1], 0),
            g + "ffn_norm.weight": (src[p + "post_attention_layernorm.weight"][1], 0),
            g + "attn_q.weight": (interleaved_rows(src[p + "self_attn.q_proj.weight"][1],
                                                   config["num_attention_heads"]), m),
            g + "attn_k.weight": (interleaved_rows(src[p + "self_attn.k_proj.weight"][1],
                                                   config["num_key_value_heads"]), m),
            g + "attn_v.weight": (src[p + "self_attn.v_proj.weight"][1], m),
            g + "attn_output.weight": (src[p + "self_attn.o_proj.weight"][1], m),
            g + "ffn_gate_inp.weight": (src[moe + "gate.weight"][1], 0),
            g + "ffn_gate_exps.weight": (np.stack([src[f"{moe}experts.{e}.w1.weight"][1]
                                                   for e in experts]), m),
            g + "ffn_up_exps.weight": (np.stack([src[f"{moe}experts.{e}.w3.weight"][1]
                                                 for e in experts]), m),
            g + "ffn_down_exps.weight": (np.stack([src[f"{moe}experts.{e}.w2.weight"][1]
                                                   for e in experts]), m),
        })
    return out


def check_tensors(label, gguf, expected):
    _, _, _, tensors, order, _, start, alignment = gguf
    check(f"{label}: tensor names ({len(tensors)})", set(tensors) == set(expected))
    offsets = [tensors[n][2] for n in order]
    check(f"{label}: offsets aligned to {alignment} and increasing",
          all(o % alignment == 0 for o in offsets) and offsets == sorted(offsets) and
          start % alignment == 0)
    wrong = []
    for name, (values, ggml_type) in expected.items():
        if name not in tensors:
            continue
        dims, t, _ = tensors[name]
        want = values if ggml_type != 30 else to_bf16(values)
        if t != ggml_type or dims != list(reversed(values.shape)):
            wrong.append(f"{name}: type {t} dims {dims}")
        elif not np.array_equal(tensor_values(gguf, name), want):
            wrong.append(f"{name}: values")
    check(f"{label}: every tensor's type, dimensions and values ({'; '.join(wrong[:4]) or 'all'})",
          not wrong)


def export_and_check(root, tmp, model, outtype, matrix_type):
    model_dir = os.path.join(root, "models", model)
    out = os.path.join(tmp, f"{model}-{outtype}.gguf")
    done = subprocess.run(["/usr/bin/python3", os.path.join(root, "tools", "export_gguf.py"),
                           model_dir, out, "--outtype", outtype],
                          capture_output=True, text=True)
    label = f"{model} --outtype {outtype}"
    check(f"{label}: export_gguf.py exits 0 ({done.stderr.strip()[-200:]})",
          done.returncode == 0)
    if done.returncode != 0:
        return
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    gguf = read_gguf(out)
    magic, version = gguf[0], gguf[1]
    check(f"{label}: magic {magic!r}, version {version}", magic == b"GGUF" and version == 3)
    check_metadata(label, gguf[2], config)
    src = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    check_tensors(label, gguf, expected_tensors(src, config, matrix_type))


def main():
    root = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        export_and_check(root, tmp, "kjv-moe", "stored", "F32")
        export_and_check(root, tmp, "kjv-moe", "bf16", "BF16")
        export_and_check(root, tmp, "kjv-moe-32", "stored", "BF16")
        # A model folder that is not a Mixtral is refused with a message naming it.
        bad = os.path.join(tmp, "not-mixtral")
        os.makedirs(bad)
        with open(os.path.join(bad, "config.json"), "w") as f:
            json.dump({"model_type": "llama"}, f)
        done = subprocess.run(["/usr/bin/python3", os.path.join(root, "tools", "export_gguf.py"),
                               bad, os.path.join(tmp, "x.gguf")], capture_output=True, text=True)
        check("a non-Mixtral folder: exit 1 naming model_type",
              done.returncode == 1 and "model_type llama, not mixtral" in done.stderr)
    if FAILS:
        sys.exit(f"{len(FAILS)} check(s) failed")


if __name__ == "__main__":
    main()
