#!/usr/bin/python3
"""Writes the torch.save fixtures of bridge/torchfile/testdata with Debian's python3-torch.

Rerun: /usr/bin/python3 scripts/make-torchfile-fixtures.py bridge/torchfile/testdata
"""
import collections
import os
import sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

# A state dict (OrderedDict with _metadata), as nn.Module.state_dict() returns it.
lin = torch.nn.Linear(3, 2)
with torch.no_grad():
    lin.weight.copy_(torch.arange(6, dtype=torch.float32).reshape(2, 3))
    lin.bias.copy_(torch.tensor([0.5, -0.5]))
torch.save(lin.state_dict(), os.path.join(out, "state_dict.pt"))

# A checkpoint: nested dicts, lists, numbers, strings, None, a view sharing a storage, dtypes.
base = torch.arange(10, dtype=torch.int64)
ckpt = {
    "model": collections.OrderedDict([("w", torch.ones(2, 2, dtype=torch.float64))]),
    "views": [base[2:5], base.reshape(2, 5).t()],
    "step": 12,
    "lr": 0.25,
    "flag": True,
    "name": "run-1",
    "nothing": None,
    "mask": torch.tensor([True, False]),
    "half": torch.tensor([1.5, -2.0], dtype=torch.float16),
    "param": torch.nn.Parameter(torch.tensor([3.0])),
}
torch.save(ckpt, os.path.join(out, "checkpoint.pt"))

# The legacy (non-zip) format, which the reader refuses with a clear message.
torch.save(torch.ones(2), os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
