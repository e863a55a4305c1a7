#!/usr/bin/env python3
"""Makes tests/data/kquant/: inputs, their Q4_K / Q6_K / Q5_0 encodings by ggml's own
quantizer (ggml_quantize_chunk without an importance matrix, what llama-quantize writes),
and gguf-py's dequantization of those bytes. Run once; the outputs are committed, the tests
need neither Python nor C.

gguf-py has no K-quant quantizer, so the bytes come from scripts/ggml_quantize.c, compiled
against libggml-base built from the llama-cpp-python source package (GGML_NATIVE=OFF, so
no FMA contraction: the arithmetic is C's as written):

    pip download --no-deps --no-binary :all: llama-cpp-python   # unpack the sdist to SRC
    cmake -S SRC/vendor/llama.cpp -B /tmp/lcpp-build -DGGML_NATIVE=OFF -DCMAKE_BUILD_TYPE=Release
    cmake --build /tmp/lcpp-build --target ggml-base
    cc -O2 -I SRC/vendor/llama.cpp/ggml/include scripts/ggml_quantize.c \
       -L /tmp/lcpp-build/bin -lggml-base -Wl,-rpath,/tmp/lcpp-build/bin -o /tmp/ggml_quantize
    python3 scripts/make_kquant_fixtures.py /tmp/ggml_quantize     # needs numpy, gguf

Files (little-endian, raw):
  input_f32.bin            rows of 256 float32 values
  {fmt}.bin                ggml's blocks for those rows
  {fmt}_dequant_f32.bin    gguf-py's dequantization of {fmt}.bin, float32
"""
import os
import subprocess
import sys

import numpy as np
from gguf import quants, GGMLQuantizationType as T

QK_K = 256
rng = np.random.default_rng(20261129)
rows = [
    rng.standard_normal(QK_K),                              # ordinary weights
    rng.standard_normal(QK_K) * 0.02,                        # a trained layer's scale
    rng.standard_normal(QK_K) * np.repeat(rng.uniform(0.01, 3, 16), 16),  # uneven sub-blocks
    rng.uniform(-1e-3, 1e-3, QK_K),                         # tiny values
    rng.uniform(-3e4, 3e4, QK_K),                           # near the f16 range
    rng.uniform(0.5, 2.0, QK_K),                            # all positive (min clamps to 0)
    -rng.uniform(0.5, 2.0, QK_K),                           # all negative
    np.full(QK_K, 0.75),                                    # constant
    np.zeros(QK_K),                                         # all zero
    np.r_[np.zeros(32), rng.standard_normal(QK_K - 32)],    # one zero sub-block
    np.r_[rng.standard_normal(QK_K - 1), [100.0]],          # an outlier
    np.linspace(-1, 1, QK_K),                               # ties after scaling
    np.r_[[5.0], -5.0 * np.ones(QK_K - 1)],                 # |max| ties
]
rows += [rng.standard_normal(QK_K) * s for s in rng.uniform(0.001, 2, 19)]
x = np.concatenate(rows).astype(np.float32)
assert x.size % QK_K == 0

prog = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ggml_quantize"
out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "kquant")
os.makedirs(out, exist_ok=True)
x.tofile(os.path.join(out, "input_f32.bin"))
for name, ggml_name, t in [("q4_k", "q4_K", T.Q4_K), ("q6_k", "q6_K", T.Q6_K),
                           ("q5_0", "q5_0", T.Q5_0)]:
    q = subprocess.run([prog, ggml_name, str(QK_K)], input=x.tobytes(),
                       capture_output=True, check=True).stdout
    blocks = np.frombuffer(q, dtype=np.uint8).reshape(x.size // QK_K, -1)
    if t == T.Q5_0:
        # gguf-py does implement Q5_0's quantizer: both must agree.
        assert (quants.quantize(x.reshape(x.size // QK_K, -1), t) == blocks).all()
    open(os.path.join(out, f"{name}.bin"), "wb").write(q)
    d = quants.dequantize(blocks, t).astype(np.float32).reshape(-1)
    assert d.size == x.size
    d.tofile(os.path.join(out, f"{name}_dequant_f32.bin"))
    err = np.sqrt(np.mean((d - x) ** 2) / np.mean(x ** 2))
    print(f"{name}: {len(q)} bytes, relative rms error {err:.4f}")
