#!/usr/bin/env python3
"""Reads a model.safetensors written by swift-dsi with the Python `safetensors` package
and checks it against the expectations the Swift test passes in.

    check_safetensors.py FILE EXPECT.json

EXPECT.json: {"tensors": {name: {"shape": [...], "sum": float, "first": [floats]}},
"metadata": {key: value}}. Exits non-zero with a message on any difference.
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open

path, expect_path = sys.argv[1], sys.argv[2]
expect = json.load(open(expect_path))
tensors = load_file(path)
# Alignment padding (each tensor of a swift-dsi model file starts on a 4,096-byte page):
# zero bytes under names of their own, so the file has no holes; not model tensors.
pads = {n: t for n, t in tensors.items() if n.startswith("__pad__.")}
tensors = {n: t for n, t in tensors.items() if n not in pads}
with safe_open(path, framework="numpy") as f:
    meta = f.metadata() or {}
problems = []
for name, t in pads.items():
    if t.dtype != np.uint8 or t.ndim != 1 or t.any():
        problems.append(f"{name}: padding must be zero bytes (uint8), got {t.dtype} {t.shape}")
if set(tensors) != set(expect["tensors"]):
    problems.append(f"names differ: {sorted(set(tensors) ^ set(expect['tensors']))[:5]}")
for name, e in expect["tensors"].items():
    t = tensors.get(name)
    if t is None:
        continue
    if t.dtype != np.float32:
        problems.append(f"{name}: dtype {t.dtype}")
    if list(t.shape) != e["shape"]:
        problems.append(f"{name}: shape {list(t.shape)} != {e['shape']}")
    flat = t.reshape(-1)
    if not np.allclose(flat[: len(e["first"])], np.array(e["first"], dtype=np.float32), rtol=0, atol=0):
        problems.append(f"{name}: first values differ")
    s = float(flat.astype(np.float64).sum())
    if abs(s - e["sum"]) > 1e-4 * (1 + abs(e["sum"])):
        problems.append(f"{name}: sum {s} != {e['sum']}")
for k, v in expect.get("metadata", {}).items():
    if meta.get(k) != v:
        problems.append(f"metadata {k}: {meta.get(k)!r} != {v!r}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"ok: {len(tensors)} tensors")
