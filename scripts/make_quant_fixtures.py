#!/usr/bin/env python3
"""Makes tests/data/quant/: inputs and their Q8_0/Q4_0/Q4_1 encodings by ggml's reference
quantizers, as implemented in the `gguf` Python package (gguf.quants, written to be
bit-exact with ggml-quants.c). Run once; the outputs are committed, the tests need no
Python:

    python3 -m venv /tmp/qenv && /tmp/qenv/bin/pip install gguf==0.19.0 numpy
    /tmp/qenv/bin/python scripts/make_quant_fixtures.py

Files (all little-endian, raw):
  input_f32.bin           the rows, float32
  {fmt}.bin               the quantized blocks, ggml's byte layout
  {fmt}_dequant_f32.bin   gguf's dequantization of those blocks, float32
"""
import os
import numpy as np
from gguf import quants, GGMLQuantizationType as T

rng = np.random.default_rng(20261126)
blocks = [
    rng.standard_normal(32 * 64),                       # ordinary weights
    rng.uniform(-1e-3, 1e-3, 32 * 4),                   # tiny values
    rng.uniform(-6e4, 6e4, 32 * 2),                     # near f16 range
    np.full(32, 0.75), np.full(32, -2.0),              # constant blocks (d = 0 for Q4_1)
    np.zeros(32),                                       # all zero (d = 0)
    np.r_[np.zeros(31), [-3.0]],                        # one negative extreme
    np.r_[[5.0], -5.0 * np.ones(31)],                   # |max| ties: first one wins
    np.linspace(-1, 1, 32),                             # exact halves after scaling
    (np.arange(32) - 15.5) / 15.5 * 127 / 127,
    np.r_[rng.standard_normal(31), [100.0]],            # an outlier
]
x = np.concatenate(blocks).astype(np.float32)
out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "quant")
os.makedirs(out, exist_ok=True)
x.tofile(os.path.join(out, "input_f32.bin"))
for name, t in [("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1)]:
    q = quants.quantize(x.reshape(1, -1), t)
    q.tofile(os.path.join(out, f"{name}.bin"))
    d = quants.dequantize(q, t).astype(np.float32)
    d.tofile(os.path.join(out, f"{name}_dequant_f32.bin"))
    print(name, q.nbytes, "bytes,", d.size, "values")
