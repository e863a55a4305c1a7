#!/usr/bin/env python3
"""Tokenizer fixture for the llama GGUF tokenizer (model::llama::tokenize).

The independent tokenizer is llama.cpp's own `llama-tokenize`, built from the C++ sources
that the `llama-cpp-python` source package on PyPI carries (built here, never committed):

  pip download --no-deps --no-binary llama-cpp-python llama-cpp-python   # the sdist
  tar xzf llama_cpp_python-*.tar.gz; cd llama_cpp_python-*/vendor/llama.cpp
  pip install cmake
  cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
        -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
  cmake --build build --target llama-tokenize -j2

It encodes varied texts from the GGUF's own vocabulary with the file's pre-tokenizer
("smollm" for SmolLM2), special tokens parsed, no BOS (the file says add_bos_token =
false); the ids go to tests/data/llama/tokens.json as [{"text", "ids"}]. Usage:

  python3 scripts/make_llama_tokens.py build/bin/llama-tokenize MODEL.gguf

(transformers' GGUF tokenizer is not used: it needs torch, and it gives SmolLM2 GPT-2's
pre-tokenizer, which splits " 123" differently from llama.cpp's "smollm" one.)
"""
import json
import pathlib
import subprocess
import sys
import tempfile

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and   runs of spaces\tand a tab",
    "Café naïve façade: déjà vu, Ærø, Straße, Łódź",
    "日本語のテキストと中文文本，还有한국어",
    "Numbers: 3.14159, 1234567890, 2+2=4, -0.5e-10",
    "def f(x):\n    if x > 0:\n        return x * 2\n    return None\n",
    "Emoji: 🙂👍🏽🚀 and ✓ ∑ ∞",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "What is 2+2?",
    "It's a dog's life, isn't it? They'll say we'd've known.",
    "\n\n\nline\r\nbreaks\n",
]


def main(binary, model):
    rows = []
    for text in TEXTS:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
            f.write(text)
        out = subprocess.run(
            [binary, "-m", model, "-f", f.name, "--ids", "--log-disable"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        rows.append({"text": text, "ids": json.loads(out)})
    out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "llama"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokens.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    for r in rows:
        print(len(r["ids"]), r["ids"][:12], repr(r["text"][:30]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
