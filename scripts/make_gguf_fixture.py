#!/usr/bin/env python3
"""Makes tests/data/gguf/: a GGUF file written by the reference writer (gguf.GGUFWriter,
the Python half of llama.cpp's gguf library) with one small tensor per supported type,
and each tensor's dequantized values as raw little-endian float32 (`<name>.f32`).
Run once; the outputs are committed, the tests need no Python:

    python3 -m venv /tmp/qenv && /tmp/qenv/bin/pip install gguf==0.19.0 numpy
    /tmp/qenv/bin/python scripts/make_gguf_fixture.py
"""
import os
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "gguf")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
path = os.path.join(out, "reference.gguf")
w = gguf.GGUFWriter(path, arch="llama")
w.add_name("wgpu-lab fixture")
w.add_uint32("fixture.answer", 42)
w.add_float32("fixture.pi", 3.25)
w.add_bool("fixture.flag", True)
w.add_array("fixture.list", [1, 2, 3])
tensors = {}
for name, t, shape in [
    ("t_f32", T.F32, (3, 5)),          # float rows need not be whole blocks
    ("t_f16", T.F16, (2, 7)),
    ("t_bf16", T.BF16, (4, 32)),
    ("t_q8_0", T.Q8_0, (3, 64)),
    ("t_q4_0", T.Q4_0, (5, 32)),
    ("t_q4_1", T.Q4_1, (2, 96)),
    ("t_vec", T.F32, (11,)),
    ("t_3d", T.Q8_0, (2, 3, 32)),
]:
    x = rng.standard_normal(shape).astype(np.float32)
    q = x if t == T.F32 else gguf.quants.quantize(x, t)
    w.add_tensor(name, q, raw_dtype=t)
    d = x if t == T.F32 else gguf.quants.dequantize(q, t)
    tensors[name] = d.astype(np.float32)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
for name, d in tensors.items():
    d.tofile(os.path.join(out, name + ".f32"))
print("wrote", path, os.path.getsize(path), "bytes")
