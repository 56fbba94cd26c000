#!/usr/bin/python3
"""Convert a wdmoe model folder (Hugging Face MixtralForCausalLM: config.json and safetensors,
classic block_sparse_moe or packed mlp.experts layout, f32/bf16/f16) to a GGUF file that
llama.cpp loads as a Mixtral, so that the two engines can run the same weights side by side.

  /usr/bin/python3 tools/export_gguf.py models/kjv-moe-32 /work/scratch/kjv-moe-32.gguf
  /usr/bin/python3 tools/export_gguf.py models/kjv-moe-32 kjv-f32.gguf --outtype f32

What llama.cpp's own converter (convert_hf_to_gguf.py, LlamaModel) writes for a Mixtral:
architecture "llama" with llama.expert_count / llama.expert_used_count; per layer the stacked
experts ffn_gate_exps (w1), ffn_up_exps (w3) and ffn_down_exps (w2), each [experts][rows][cols];
the router ffn_gate_inp and every norm in float32 (exact: bf16 and f16 widen to f32 without
rounding); q_proj and k_proj rows permuted per head from Hugging Face's rotate-half RoPE
(pairs i and i + head_dim/2) to llama.cpp's "normal" RoPE on the llama architecture (pairs 2i
and 2i + 1). The other matrices keep the checkpoint's type (--outtype stored, the default), or
are widened to f32 (--outtype f32, for an NLL comparison in float32 arithmetic).

Vocabulary: the SentencePiece pieces of the folder's tokenizer.model when it has one (what
tools/make_random_checkpoint.py writes for vocabularies other than 256), else the byte-level
vocabulary of the embedded models as 256 byte pieces <0x00>..<0xFF>. Token ids are the model's
own, so a tool that feeds ids (tools/llama-nll.cc, llama-bench) sees the same model.

Only Debian's numpy: no gguf-py, no torch. Tensors are written a matrix at a time, so the tool
needs about one expert matrix of memory whatever the checkpoint's size.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

GGUF_VERSION = 3
ALIGNMENT = 32

# GGUF metadata value types
U32, I32, F32_VALUE, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9
# ggml tensor types
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
GGML_TYPES = {"f32": GGML_F32, "f16": GGML_F16, "bf16": GGML_BF16}
ITEM_BYTES = {"f32": 4, "f16": 2, "bf16": 2}
# llama_ftype: what most of the file's matrices are
FILE_TYPES = {"f32": 0, "f16": 1, "bf16": 32}
SAFETENSORS_TYPES = {"F32": "f32", "F16": "f16", "BF16": "bf16"}
SPM_BYTE = 6  # SentencePiece's piece type BYTE, which GGUF's token_type shares


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", help="folder with config.json and model.safetensors")
    ap.add_argument("out", help="GGUF file to write (replaced atomically)")
    ap.add_argument("--outtype", choices=["stored", "f32", "bf16", "f16"], default="stored",
                    help="type of the matrices other than the router (default: the file's)")
    return ap.parse_args()


# --- reading the checkpoint ------------------------------------------------------------------
class Checkpoint:
    """The tensors of a safetensors checkpoint (one file or an index of shards), memory-mapped."""

    def __init__(self, model_dir):
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        else:
            files = ["model.safetensors"]
        self.tensors = {}
        for name in files:
            path = os.path.join(model_dir, name)
            with open(path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(length))
            raw = np.memmap(path, dtype=np.uint8, mode="r")
            for tname, info in header.items():
                if tname == "__metadata__":
                    continue
                if info["dtype"] not in SAFETENSORS_TYPES:
                    sys.exit(f"{path}: tensor {tname} has dtype {info['dtype']}; "
                             "only F32, BF16 and F16 are converted")
                begin, end = info["data_offsets"]
                self.tensors[tname] = (SAFETENSORS_TYPES[info["dtype"]], info["shape"],
                                       raw[8 + length + begin:8 + length + end])

    def has(self, name):
        return name in self.tensors

    def dtype(self, name):
        return self.tensors[name][0]

    def shape(self, name):
        return self.tensors[name][1]

    def f32(self, name, first=None, count=None):
        """The tensor (or `count` rows of its leading dimension from `first`) as float32;
        exact for every stored type."""
        dtype, shape, raw = self.tensors[name]
        rows = shape[0]
        first = 0 if first is None else first
        count = rows if count is None else count
        row_bytes = len(raw) // rows
        part = raw[first * row_bytes:(first + count) * row_bytes]
        out_shape = [count] + list(shape[1:])
        if dtype == "f32":
            return np.frombuffer(part, dtype="<f4").reshape(out_shape)
        if dtype == "f16":
            return np.frombuffer(part, dtype="<f2").astype(np.float32).reshape(out_shape)
        wide = np.frombuffer(part, dtype="<u2").astype(np.uint32) << 16
        return wide.view(np.float32).reshape(out_shape)


def narrow(x, dtype):
    """float32 values -> bytes of dtype, rounding to nearest even (exact when the values came
    from that type)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "f32":
        return x.astype("<f4").tobytes()
    if dtype == "f16":
        return x.astype("<f2").tobytes()
    u = x.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()


def permute_rope_rows(w, heads):
    """Hugging Face rotate-half rows of one projection [heads * head_dim][cols] -> llama.cpp's
    interleaved pairs (convert_hf_to_gguf.py's LlamaModel.permute)."""
    rows = w.shape[0]
    return (w.reshape(heads, 2, rows // heads // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


# --- what goes into the GGUF file ------------------------------------------------------------
class Tensor:
    """One GGUF tensor: its name, its dimensions as Hugging Face orders them (outermost first),
    its type, and a function producing its data one float32 block at a time."""

    def __init__(self, name, shape, dtype, blocks):
        self.name, self.shape, self.dtype, self.blocks = name, list(shape), dtype, blocks

    def nbytes(self):
        return int(np.prod(self.shape)) * ITEM_BYTES[self.dtype]


def layer_tensors(ckpt, config, layer, matrix_type):
    """The GGUF tensors of one layer, read lazily from the checkpoint."""
    p = f"model.layers.{layer}."
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    experts = config["num_local_experts"]
    d, ff = config["hidden_size"], config["intermediate_size"]
    g = f"blk.{layer}."

    def whole(name, transform=lambda w: w):
        return lambda: [transform(ckpt.f32(name))]

    out = [
        Tensor(g + "attn_norm.weight", [d], "f32", whole(p + "input_layernorm.weight")),
        Tensor(g + "attn_q.weight", ckpt.shape(p + "self_attn.q_proj.weight"), matrix_type,
               whole(p + "self_attn.q_proj.weight", lambda w: permute_rope_rows(w, heads))),
        Tensor(g + "attn_k.weight", ckpt.shape(p + "self_attn.k_proj.weight"), matrix_type,
               whole(p + "self_attn.k_proj.weight", lambda w: permute_rope_rows(w, kv_heads))),
        Tensor(g + "attn_v.weight", ckpt.shape(p + "self_attn.v_proj.weight"), matrix_type,
               whole(p + "self_attn.v_proj.weight")),
        Tensor(g + "attn_output.weight", ckpt.shape(p + "self_attn.o_proj.weight"), matrix_type,
               whole(p + "self_attn.o_proj.weight")),
        Tensor(g + "ffn_norm.weight", [d], "f32", whole(p + "post_attention_layernorm.weight")),
    ]
    if ckpt.has(p + "block_sparse_moe.gate.weight"):  # classic: one tensor per expert matrix
        def stacked(w):
            return lambda: (ckpt.f32(f"{p}block_sparse_moe.experts.{e}.{w}.weight")
                            for e in range(experts))
        router = p + "block_sparse_moe.gate.weight"
        gate, up, down = stacked("w1"), stacked("w3"), stacked("w2")
    else:  # packed: gate_up_proj[e] is the w1 rows, then the w3 rows
        router = p + "mlp.gate.weight"
        gate_up, down_name = p + "mlp.experts.gate_up_proj", p + "mlp.experts.down_proj"

        def half(which):
            return lambda: (ckpt.f32(gate_up, e, 1)[0][which * ff:(which + 1) * ff]
                            for e in range(experts))
        gate, up = half(0), half(1)
        down = lambda: (ckpt.f32(down_name, e, 1)[0] for e in range(experts))  # noqa: E731
    out += [
        Tensor(g + "ffn_gate_inp.weight", [experts, d], "f32", whole(router)),
        Tensor(g + "ffn_gate_exps.weight", [experts, ff, d], matrix_type, gate),
        Tensor(g + "ffn_up_exps.weight", [experts, ff, d], matrix_type, up),
        Tensor(g + "ffn_down_exps.weight", [experts, d, ff], matrix_type, down),
    ]
    return out


def all_tensors(ckpt, config, matrix_type):
    vocab, d = config["vocab_size"], config["hidden_size"]
    out = [Tensor("token_embd.weight", [vocab, d], matrix_type,
                  lambda: [ckpt.f32("model.embed_tokens.weight")])]
    for layer in range(config["num_hidden_layers"]):
        out += layer_tensors(ckpt, config, layer, matrix_type)
    out.append(Tensor("output_norm.weight", [d], "f32", lambda: [ckpt.f32("model.norm.weight")]))
    if not config.get("tie_word_embeddings", False):
        out.append(Tensor("output.weight", [vocab, d], matrix_type,
                          lambda: [ckpt.f32("lm_head.weight")]))
    return out


# --- SentencePiece's ModelProto, read field by field (sentencepiece_model.proto) -------------
def read_varint(buf, pos):
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def proto_fields(buf):
    """(field number, wire type, value) of one message: bytes for length-delimited fields,
    the raw 4 bytes for fixed32, an int for varints."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def sentencepiece_vocab(path):
    """(pieces, scores, types) of a SentencePiece model file."""
    with open(path, "rb") as f:
        model = f.read()
    pieces, scores, types = [], [], []
    for number, _, value in proto_fields(model):
        if number != 1:  # ModelProto.pieces
            continue
        piece, score, kind = b"", 0.0, 1  # NORMAL unless the field says otherwise
        for n, _, v in proto_fields(value):
            if n == 1:
                piece = bytes(v)
            elif n == 2:
                (score,) = struct.unpack("<f", v)
            elif n == 3:
                kind = v
        pieces.append(piece.decode("utf-8"))
        scores.append(score)
        types.append(kind)
    return pieces, scores, types


def vocabulary(model_dir, vocab_size):
    path = os.path.join(model_dir, "tokenizer.model")
    if os.path.exists(path):
        pieces, scores, types = sentencepiece_vocab(path)
    elif vocab_size == 256:
        pieces = [f"<0x{b:02X}>" for b in range(256)]
        scores, types = [0.0] * 256, [SPM_BYTE] * 256
    else:
        sys.exit(f"{model_dir}: no tokenizer.model and a vocabulary of {vocab_size}, not the "
                 "byte-level 256: cannot write the token list")
    if len(pieces) != vocab_size:
        sys.exit(f"{path}: {len(pieces)} pieces, config.json says vocab_size {vocab_size}")
    return pieces, scores, types


# --- GGUF writing ----------------------------------------------------------------------------
def gguf_string(s):
    raw = s.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def gguf_value(kind, value):
    if kind == U32:
        return struct.pack("<I", value)
    if kind == I32:
        return struct.pack("<i", value)
    if kind == F32_VALUE:
        return struct.pack("<f", value)
    if kind == BOOL:
        return struct.pack("<?", value)
    if kind == STRING:
        return gguf_string(value)
    element, items = value
    return (struct.pack("<IQ", element, len(items)) +
            b"".join(gguf_value(element, v) for v in items))


def metadata(config, model_dir, file_type):
    c = config
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    pieces, scores, types = vocabulary(model_dir, c["vocab_size"])
    kv = [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, os.path.basename(os.path.normpath(model_dir))),
        ("general.file_type", U32, FILE_TYPES[file_type]),
        ("llama.vocab_size", U32, c["vocab_size"]),
        ("llama.context_length", U32, c["max_position_embeddings"]),
        ("llama.embedding_length", U32, c["hidden_size"]),
        ("llama.block_count", U32, c["num_hidden_layers"]),
        ("llama.feed_forward_length", U32, c["intermediate_size"]),
        ("llama.attention.head_count", U32, c["num_attention_heads"]),
        ("llama.attention.head_count_kv", U32, c["num_key_value_heads"]),
        ("llama.attention.key_length", U32, head_dim),
        ("llama.attention.value_length", U32, head_dim),
        ("llama.rope.dimension_count", U32, head_dim),
        ("llama.rope.freq_base", F32_VALUE, float(c.get("rope_theta", 10000.0))),
        ("llama.attention.layer_norm_rms_epsilon", F32_VALUE, float(c["rms_norm_eps"])),
        ("llama.expert_count", U32, c["num_local_experts"]),
        ("llama.expert_used_count", U32, c["num_experts_per_tok"]),
        ("tokenizer.ggml.model", STRING, "llama"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, pieces)),
        ("tokenizer.ggml.scores", ARRAY, (F32_VALUE, scores)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, types)),
        ("tokenizer.ggml.add_bos_token", BOOL, False),
        ("tokenizer.ggml.add_eos_token", BOOL, False),
    ]
    return kv


def header_bytes(kv, tensors):
    out = b"GGUF" + struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kv))
    for key, kind, value in kv:
        out += gguf_string(key) + struct.pack("<I", kind) + gguf_value(kind, value)
    offset = 0
    for t in tensors:
        # GGUF lists dimensions fastest first (ggml's ne0 = the row length).
        dims = list(reversed(t.shape))
        out += gguf_string(t.name) + struct.pack("<I", len(dims))
        out += struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", GGML_TYPES[t.dtype], offset)
        offset += t.nbytes() + (-t.nbytes() % ALIGNMENT)
    return out + b"\0" * (-len(out) % ALIGNMENT)


def write_gguf(path, kv, tensors):
    with open(path + ".tmp", "wb") as f:
        f.write(header_bytes(kv, tensors))
        for i, t in enumerate(tensors):
            written = 0
            for block in t.blocks():
                data = narrow(block, t.dtype)
                f.write(data)
                written += len(data)
            if written != t.nbytes():
                sys.exit(f"{t.name}: wrote {written} bytes, expected {t.nbytes()}")
            f.write(b"\0" * (-written % ALIGNMENT))
            if sys.stderr.isatty():
                print(f"\r{i + 1}/{len(tensors)} tensors", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)
    os.replace(path + ".tmp", path)


def main():
    a = parse_args()
    with open(os.path.join(a.model_dir, "config.json")) as f:
        config = json.load(f)
    if config.get("model_type", "mixtral") != "mixtral":
        sys.exit(f"{a.model_dir}: model_type {config['model_type']}, not mixtral")
    ckpt = Checkpoint(a.model_dir)
    stored = ckpt.dtype("model.embed_tokens.weight")
    matrix_type = stored if a.outtype == "stored" else a.outtype
    tensors = all_tensors(ckpt, config, matrix_type)
    write_gguf(a.out, metadata(config, a.model_dir, matrix_type), tensors)
    total = sum(t.nbytes() for t in tensors)
    print(f"wrote {a.out}: {len(tensors)} tensors, {total / 1e9:.3f} GB, matrices in "
          f"{matrix_type} (checkpoint: {stored})")


if __name__ == "__main__":
    main()
