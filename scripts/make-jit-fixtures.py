#!/usr/bin/python3
"""Writes the TorchScript fixture of gpucheck/testdata with Debian's python3-torch: a scripted CNN
with batch norm whose submodule layer1.0.conv1 the GPU check hooks. (The GPU machine has no
Python: the check loads this file.)

Rerun: /usr/bin/python3 scripts/make-jit-fixtures.py gpucheck/testdata
"""
import os
import sys

import torch
import torch.nn as nn

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class Net(nn.Module):
    def __init__(self, classes=6):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = nn.Sequential(Block(16), Block(16))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        y = self.layer1(self.stem(x))
        return self.fc(y.mean((2, 3)))


torch.jit.save(torch.jit.script(Net()), os.path.join(out, "jit_cnn.pt"))
