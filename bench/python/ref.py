#!/usr/bin/python3
"""ref.py: the PyTorch reference for bench/cmd/benchrun, the twin of bench/cpp/ref.cpp.

It runs the same workloads as the Go side (bench/workload) the way a PyTorch user writes them,
so that the difference measures the bridge against Python. It speaks ref.cpp's protocol.

Usage:
  ref.py [-threads N] MODE ITERS   build MODE's state, warm up, time ITERS runs, print one JSON line
  ref.py [-threads N] serve        read commands from stdin, one per line, answer one JSON line each:
                                     run MODE ITERS     -> {"mode":..,"iters":..,"seconds":..}
                                     check MODE [STEPS] -> {"mode":..,"check":<value>[,"losses":[..]]}
                                     load MODE PATH     -> {"mode":..,"loaded":PATH}
                                     write MODE DIR     -> {"mode":..,"script":PATH,"batch":PATH}
                                     info               -> {"torch":..,"python":..,"threads":..,"blas":[..]}
                                     instr MODE ITERS LABEL -> as run, with the ITERS runs as one
                                                        callgrind window named LABEL (under
                                                        valgrind, with HOTCB_INSTR_MARK naming
                                                        bench/python/marks.c built as a shared
                                                        library: see Marks)
                                     quit
  ref.py [-threads N] ddp-rank     one rank of the data-parallel job (RANK, WORLD_SIZE, MASTER_ADDR,
                                   MASTER_PORT, as torchrun sets them; benchrun starts them): rank 0
                                   serves the same protocol for modes ddp (every rank, through
                                   DistributedDataParallel) and local (rank 0 alone, no DDP), see
                                   DDPRank
Modes: add, relu, matmul, sum (tiny ops), mlp (784-256-10, batch 64), mlp-tiny (32-64-10,
batch 16) built from torch.manual_seed(1234) exactly as the Go side builds them, cnn
(SmallCNN of models/models.go as torch.nn modules) and gpt (examples/gpt's character-level GPT
as torch.nn modules, AdamW, clip_grad_norm_), whose batch and initial state dict the Go side
saves with bridge.SaveNamed ("load cnn PATH", "load gpt PATH" before anything else), and jit
(a ResNet-8 for 3x32x32 images, torch.jit.script'ed: "write jit DIR" saves it with
torch.jit.save, and its batch, for the Go side's bridge/jit; both sides then train what they
load from that file, Python with torch.jit.load and torch.optim.SGD with momentum).
"check MODE STEPS" adds the losses of the first STEPS training steps of a fresh model.

Threads: torch.set_num_threads(N); OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS
come from the environment (benchrun sets them before starting this process).
If torch cannot be imported, "info" and every other command answer {"error": ...}, so the
harness can report Python as skipped.
"""

import json
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    IMPORT_ERROR = None
except Exception as e:  # ImportError, or a broken install
    torch = None
    IMPORT_ERROR = "torch not importable: %s: %s" % (type(e).__name__, e)

    class nn:  # so that the module classes below can be defined; no command builds one
        Module = object

SEED = 1234
INIT_SCALE = 0.05

# Keeps the last result alive, as ref.cpp's sink and the Go side's do.
sink = None


class Op:
    def __init__(self, mode):
        torch.manual_seed(SEED)
        if mode == "add":
            a, b = torch.randn(4), torch.randn(4)
            self.f = lambda: torch.add(a, b)
        elif mode == "relu":
            a = torch.randn(64)
            self.f = lambda: torch.relu(a)
        elif mode == "matmul":
            a, b = torch.randn(8, 8), torch.randn(8, 8)
            self.f = lambda: torch.matmul(a, b)
        elif mode == "sum":
            a = torch.randn(16)
            self.f = lambda: torch.sum(a)
        else:
            raise KeyError(mode)

    def run(self, iters):
        global sink
        f = self.f
        for _ in range(iters):
            sink = f()

    def check(self):
        return self.f().sum().item()


class MLP:
    """Linear -> ReLU -> Linear, cross-entropy, plain SGD: bench/workload.MLP."""

    def __init__(self, n_in, hidden, out, batch, lr=0.1):
        self.size = (n_in, hidden, out, batch)
        self.lr = lr
        torch.manual_seed(SEED)
        self.x = torch.randn(batch, n_in)
        self.y = torch.randint(0, out, (batch,))
        self.w1 = (torch.randn(hidden, n_in) * INIT_SCALE).requires_grad_()
        self.b1 = torch.zeros(hidden, requires_grad=True)
        self.w2 = (torch.randn(out, hidden) * INIT_SCALE).requires_grad_()
        self.b2 = torch.zeros(out, requires_grad=True)
        self.params = [self.w1, self.b1, self.w2, self.b2]

    def loss(self):
        h = F.relu(F.linear(self.x, self.w1, self.b1))
        return F.cross_entropy(F.linear(h, self.w2, self.b2), self.y)

    def step(self):
        loss = self.loss()
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p.add_(p.grad, alpha=-self.lr)
                p.grad = None
        return loss

    def run(self, iters):
        global sink
        for _ in range(iters):
            sink = self.step()

    def fresh(self):
        return MLP(*self.size, lr=self.lr)

    def check(self):
        return self.fresh().loss().item()

    def losses(self, steps):
        m = self.fresh()
        return [m.step().item() for _ in range(steps)]


def small_cnn(channels, classes):
    """SmallCNN as given in models/models.go's comment, with the same parameter names."""

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    return SmallCNN()


class CNN:
    """SmallCNN trained on one fixed batch with plain SGD: bench/workload.CNN."""

    LR = 0.05  # workload.CNNSmall.LR

    def __init__(self, path):
        self.path = path
        saved = torch.load(path)
        self.x = saved.pop("x")
        self.y = saved.pop("y")
        self.state = saved
        self.channels = saved["features.0.weight"].shape[1]
        self.classes = saved["classifier.1.weight"].shape[0]
        self.model = self.build()

    def build(self):
        model = small_cnn(self.channels, self.classes)
        # Strict: every parameter and buffer of the Go model, with PyTorch's names.
        model.load_state_dict(self.state, strict=True)
        return model.train()

    def loss(self, model):
        return F.cross_entropy(model(self.x), self.y)

    def step(self, model, params):
        loss = self.loss(model)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-self.LR)
                p.grad = None
        return loss

    def run(self, iters):
        global sink
        model, params = self.model, list(self.model.parameters())
        for _ in range(iters):
            sink = self.step(model, params)

    def check(self):
        return self.loss(self.build()).item()

    def losses(self, steps):
        model = self.build()
        params = list(model.parameters())
        return [self.step(model, params).item() for _ in range(steps)]


class CausalSelfAttention(nn.Module):
    """examples/gpt's attention, op for op: c_attn, chunk, heads split, bmm, scale, causal
    mask (tril of ones, logical_not, masked_fill with -inf), softmax, bmm, c_proj."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        H = self.n_head
        hd = C // H
        q, k, v = self.c_attn(x).chunk(3, dim=2)

        def split(z):
            return z.view(B, T, H, hd).transpose(1, 2).reshape(B * H, T, hd)

        q, k, v = split(q), split(k), split(v)
        att = torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(T, T, dtype=torch.bool).tril().logical_not()
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        att = att.view(B, H, T, T).view(B * H, T, T)  # the Go model's probe sees [B, H, T, T]
        att = F.dropout(att, 0.0, self.training)
        y = torch.bmm(att, v).view(B, H, T, hd).transpose(1, 2).reshape(B, T, C)
        return F.dropout(self.c_proj(y), 0.0, self.training)


class MLPBlock(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return F.dropout(self.c_proj(F.gelu(self.c_fc(x))), 0.0, self.training)


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLPBlock(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPTModel(nn.Module):
    """examples/gpt/gpt's GPT with its parameter names (nanoGPT's): [B, T] -> logits [B, T, V]."""

    def __init__(self, vocab, block, n_embd, n_head, n_layer):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(vocab, n_embd)
        self.transformer.wpe = nn.Embedding(block, n_embd)
        self.transformer.h = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.transformer.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab)

    def forward(self, idx):
        t = self.transformer
        pos = torch.arange(idx.shape[1], dtype=torch.long)
        x = F.dropout(t.wte(idx) + t.wpe(pos), 0.0, self.training)
        for b in t.h:
            x = b(x)
        return self.lm_head(t.ln_f(x))


class GPT:
    """The GPT trained on one fixed batch as examples/gpt trains it: bench/workload.GPT."""

    LR, WEIGHT_DECAY, CLIP = 3e-3, 0.1, 1.0  # workload.GPTSmall

    def __init__(self, path):
        saved = torch.load(path)
        self.x = saved.pop("x")
        self.y = saved.pop("y")
        self.n_head = int(saved.pop("n_head").item())
        self.state = saved
        self.model, self.opt, self.params = self.build()

    def build(self):
        s = self.state
        vocab, n_embd = s["transformer.wte.weight"].shape
        block = s["transformer.wpe.weight"].shape[0]
        n_layer = len({k.split(".")[2] for k in s if k.startswith("transformer.h.")})
        model = GPTModel(vocab, block, n_embd, self.n_head, n_layer)
        model.load_state_dict(s, strict=True)
        params = list(model.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": self.WEIGHT_DECAY},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=self.LR, foreach=False)
        return model.train(), opt, params

    def loss(self, model):
        logits = model(self.x)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), self.y.view(-1))

    def step(self, model, opt, params):
        loss = self.loss(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, self.CLIP)
        opt.step()
        return loss

    def run(self, iters):
        global sink
        model, opt, params = self.model, self.opt, self.params
        for _ in range(iters):
            sink = self.step(model, opt, params)

    def check(self):
        return self.loss(self.build()[0]).item()

    def losses(self, steps):
        model, opt, params = self.build()
        return [self.step(model, opt, params).item() for _ in range(steps)]


class BasicBlock(nn.Module):
    """ResNet's basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the input (through a 1x1 conv and
    BN when the shape changes), ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet8(nn.Module):
    """A CIFAR-style ResNet-8: conv3x3(3->16)-BN-ReLU, one basic block per stage of 16, 32, 64
    channels (strides 1, 2, 2), global average pool, linear to 10 classes; 78,042 parameters."""

    def __init__(self, widths=(16, 32, 64), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class JIT:
    """A TorchScript module trained on one fixed batch: bench/workload.JIT. write() scripts
    ResNet8 and saves it with torch.jit.save, with the batch (torch.save {"x", "y"}); the Go side
    loads the same two files with bridge/jit and bridge.LoadMap. Both time the module that
    torch.jit.load / jit.Load read from the file: forward in training mode, mean cross-entropy,
    backward, SGD with momentum and weight decay (torch.optim.SGD, foreach=False as 1.13 runs it
    by default; gradients set to none)."""

    LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4  # workload.JITSmall
    BATCH, SIZE, CLASSES = 32, 32, 10

    @staticmethod
    def write(d):
        """Writes d/jit-model.pt and d/jit-batch.pt from torch.manual_seed(SEED); returns their paths."""
        torch.manual_seed(SEED)
        model = torch.jit.script(ResNet8(classes=JIT.CLASSES).train())
        x = torch.randn(JIT.BATCH, 3, JIT.SIZE, JIT.SIZE)
        y = torch.randint(0, JIT.CLASSES, (JIT.BATCH,))
        script, batch = os.path.join(d, "jit-model.pt"), os.path.join(d, "jit-batch.pt")
        torch.jit.save(model, script)
        torch.save({"x": x, "y": y}, batch)
        return script, batch

    def __init__(self, script, batch):
        self.script = script
        saved = torch.load(batch)
        self.x, self.y = saved["x"], saved["y"]
        self.model, self.opt = self.build()

    def build(self):
        model = torch.jit.load(self.script, map_location="cpu").train()
        opt = torch.optim.SGD(model.parameters(), lr=self.LR, momentum=self.MOMENTUM,
                              weight_decay=self.WEIGHT_DECAY, foreach=False)
        return model, opt

    def loss(self, model):
        return F.cross_entropy(model(self.x), self.y)

    def step(self, model, opt):
        loss = self.loss(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def run(self, iters):
        global sink
        model, opt = self.model, self.opt
        for _ in range(iters):
            sink = self.step(model, opt)

    def check(self):
        return self.loss(self.build()[0]).item()

    def losses(self, steps):
        model, opt = self.build()
        return [self.step(model, opt).item() for _ in range(steps)]


class DDPBench:
    """One rank's part of the data-parallel benchmark: bench/workload.DDPRank. The file the Go
    side saved (workload.SaveDDPInputs: "x", "y" for every rank, then SmallCNN's state dict)
    gives this rank its share, the indices torch.utils.data.DistributedSampler gives it for
    epoch 0 (shuffled, seed SEED), and the initial weights. With ddp, the model trains through
    torch.nn.parallel.DistributedDataParallel (its defaults: Gloo, buckets of 25 MiB with a first
    of 1 MiB, buffers broadcast); without, it trains its share alone (the scaling baseline). The
    step: forward in training mode, mean cross-entropy, zero_grad(set_to_none=True), backward,
    torch.optim.SGD with momentum (foreach=False), the order trainer.StepWith runs them in."""

    LR, MOMENTUM = 0.05, 0.9  # workload.DDPSmall

    def __init__(self, path, ddp, rank, world):
        from torch.utils.data import DistributedSampler

        saved = torch.load(path)
        x, y = saved.pop("x"), saved.pop("y")
        self.state = saved
        self.ddp = ddp
        self.channels = saved["features.0.weight"].shape[1]
        self.classes = saved["classifier.1.weight"].shape[0]
        sampler = DistributedSampler(range(len(y)), num_replicas=world, rank=rank, shuffle=True, seed=SEED)
        idx = torch.tensor(list(sampler), dtype=torch.long)
        self.x, self.y = x[idx], y[idx]
        self.model, self.forward, self.opt = self.build()

    def build(self):
        model = small_cnn(self.channels, self.classes)
        model.load_state_dict(self.state, strict=True)
        model.train()
        forward = model
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel

            forward = DistributedDataParallel(model)
        opt = torch.optim.SGD(model.parameters(), lr=self.LR, momentum=self.MOMENTUM, foreach=False)
        return model, forward, opt

    def step(self, forward, opt):
        loss = F.cross_entropy(forward(self.x), self.y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def run(self, iters):
        global sink
        forward, opt = self.forward, self.opt
        for _ in range(iters):
            sink = self.step(forward, opt)

    def check(self):
        model = small_cnn(self.channels, self.classes)
        model.load_state_dict(self.state, strict=True)
        return F.cross_entropy(model.train()(self.x), self.y).item()

    def losses(self, steps):
        _, forward, opt = self.build()
        return [self.step(forward, opt).item() for _ in range(steps)]


class DDPRank:
    """A rank of the Python side's data-parallel job (ref.py ddp-rank), the twin of benchrun
    -ddp-rank: rank 0 answers the protocol on stdin/stdout and broadcasts the commands every rank
    runs (load, check and run of mode ddp, and quit) to the others first, as an int64 tensor
    (length, then bytes) over the job's Gloo group; mode local runs on rank 0 alone."""

    CMD_LEN = 1024

    def __init__(self):
        import datetime
        import torch.distributed as dist

        self.dist = dist
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=10))  # env://
        self.state = {}

    def exchange(self, line=""):
        t = torch.zeros(self.CMD_LEN, dtype=torch.int64)
        b = line.encode()
        t[0] = len(b)
        if b:
            t[1:1 + len(b)] = torch.tensor(list(b), dtype=torch.int64)
        self.dist.broadcast(t, 0)
        n = int(t[0])
        return bytes(t[1:1 + n].tolist()).decode()

    def parse(self, f):
        """Checks a command on rank 0; returns whether every rank runs it."""
        if f[0] == "quit":
            return True
        if f[0] == "info":
            return False
        if f[0] not in ("load", "check", "run"):
            raise ValueError("unknown command %s" % json.dumps(f[0]))
        if len(f) < 2 or f[1] not in ("ddp", "local"):
            raise ValueError("%s needs a mode, ddp or local" % f[0])
        if f[0] == "load" and len(f) != 3:
            raise ValueError("usage: load ddp|local PATH")
        if (f[0] == "run" and len(f) != 3) or (f[0] == "check" and len(f) > 3):
            raise ValueError("usage: %s ddp|local N" % f[0])
        if f[0] != "load" and f[1] not in self.state:
            raise ValueError("mode %s needs its inputs first: load %s PATH" % (f[1], f[1]))
        if len(f) == 3 and f[0] != "load" and int(f[2]) < 1:
            raise ValueError("%s %s: %s is not a positive count" % (f[0], f[1], f[2]))
        return f[1] == "ddp"

    def do(self, f):
        if f[0] == "info":
            torch.randn(64, 64).matmul(torch.randn(64, 64))
            return {"torch": torch.__version__, "python": sys.version.split()[0],
                    "threads": torch.get_num_threads(), "ranks": self.world, "blas": mapped_blas()}
        mode = f[1]
        if f[0] == "load":
            self.state.pop(mode, None)
            self.state[mode] = DDPBench(f[2], mode == "ddp", self.rank, self.world)
            return {"mode": mode, "loaded": f[2]}
        w = self.state[mode]
        if f[0] == "check":
            out = {"mode": mode, "check": w.check()}
            if len(f) == 3:
                out["losses"] = w.losses(int(f[2]))
            return out
        iters = int(f[2])
        t0 = time.perf_counter()
        w.run(iters)
        s = time.perf_counter() - t0
        return {"mode": mode, "iters": iters, "seconds": s}

    def serve(self):
        while True:
            line = sys.stdin.readline()
            f = line.split() if line else ["quit"]
            if not f:
                continue
            try:
                if self.parse(f):
                    self.exchange(" ".join(f))
                if f[0] == "quit":
                    return 0
                out = self.do(f)
            except Exception as e:  # answer, do not die: the harness reports it
                out = {"error": "%s: %s" % (type(e).__name__, e)}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()

    def follow(self):
        while True:
            f = self.exchange().split()
            if not f or f[0] == "quit":
                return 0
            self.do(f)  # an exception ends this rank: rank 0's next collective fails

    def main(self):
        rc = self.serve() if self.rank == 0 else self.follow()
        # The DistributedDataParallel modules (their Reducers) go before the group: destroyed
        # after destroy_process_group, a Reducer could hang rank 0 at exit.
        self.state.clear()
        self.dist.barrier()  # leave together: rank 0 serves the store
        self.dist.destroy_process_group()
        return rc


LOADED = {"cnn": CNN, "gpt": GPT}  # modes whose state the Go side saves
WRITTEN = {"jit": JIT}  # modes whose files this side writes for the Go side

SIZES = {"mlp": (784, 256, 10, 64), "mlp-tiny": (32, 64, 10, 16)}


def mapped_blas():
    """Shared libraries with "blas" or "mkl" in their file name mapped into this process."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                i = line.find("/")
                if i < 0:
                    continue
                path = line[i:].strip()
                base = path.rsplit("/", 1)[-1]
                if ("blas" in base or "mkl" in base) and path not in out:
                    out.append(path)
    except OSError:
        pass
    return out


class Marks:
    """bench/python/marks.c's callgrind client requests, from the shared library HOTCB_INSTR_MARK
    names (benchrun builds it), through ctypes: begin zeroes callgrind's counters and switches
    instrumentation on, end dumps the counts under a label and switches it off."""

    def __init__(self):
        import ctypes

        path = os.environ.get("HOTCB_INSTR_MARK", "")
        if not path:
            raise ValueError("instr: HOTCB_INSTR_MARK does not name the marks library")
        lib = ctypes.CDLL(path)
        if not lib.hotcb_marks_available():
            raise ValueError("instr: %s was built without valgrind's headers" % path)
        if not lib.hotcb_marks_running():
            raise ValueError("instr: not running under valgrind")
        lib.hotcb_marks_end.argtypes = [ctypes.c_char_p]
        self.begin, self.end = lib.hotcb_marks_begin, lib.hotcb_marks_end


class Runner:
    def __init__(self):
        self.state = {}
        self.marks = None

    def get(self, mode):
        w = self.state.get(mode)
        if w is not None:
            return w
        if mode in SIZES:
            w = MLP(*SIZES[mode])
        elif mode in LOADED:
            raise ValueError("mode %s needs its inputs first: load %s PATH" % (mode, mode))
        elif mode in WRITTEN:
            raise ValueError("mode %s needs its files first: write %s DIR" % (mode, mode))
        else:
            try:
                w = Op(mode)
            except KeyError:
                raise ValueError("unknown mode %s" % json.dumps(mode))
        self.state[mode] = w
        return w

    def handle(self, line):
        """Returns the answer to one command as a dict, or None to stop."""
        f = line.split()
        if not f or f[0] == "quit":
            return None
        if IMPORT_ERROR is not None:
            return {"error": IMPORT_ERROR}
        cmd, args = f[0], f[1:]
        if cmd == "info":
            # A matmul first, so that a lazily loaded BLAS shows up in the maps.
            torch.randn(64, 64).matmul(torch.randn(64, 64))
            return {"torch": torch.__version__, "python": sys.version.split()[0],
                    "threads": torch.get_num_threads(), "blas": mapped_blas()}
        if not args:
            return {"error": "%s needs a mode" % cmd}
        mode = args[0]
        if cmd == "load":
            if len(args) != 2 or mode not in LOADED:
                return {"error": "usage: load cnn|gpt PATH"}
            self.state[mode] = LOADED[mode](args[1])
            return {"mode": mode, "loaded": args[1]}
        if cmd == "write":
            if len(args) != 2 or mode not in WRITTEN:
                return {"error": "usage: write jit DIR"}
            script, batch = WRITTEN[mode].write(args[1])
            self.state[mode] = WRITTEN[mode](script, batch)
            return {"mode": mode, "script": script, "batch": batch}
        w = self.get(mode)
        if cmd == "check":
            out = {"mode": mode, "check": w.check()}
            if len(args) > 1:
                steps = int(args[1])
                if not hasattr(w, "losses"):
                    return {"error": "mode %s does not train" % json.dumps(mode)}
                out["losses"] = w.losses(steps)
            return out
        if cmd == "run":
            iters = int(args[1]) if len(args) > 1 else 0
            if iters <= 0:
                return {"error": "run needs a positive iteration count"}
            t0 = time.perf_counter()
            w.run(iters)
            s = time.perf_counter() - t0
            return {"mode": mode, "iters": iters, "seconds": s}
        if cmd == "instr":
            if len(args) != 3 or int(args[1]) <= 0:
                return {"error": "usage: instr MODE ITERS LABEL"}
            if self.marks is None:
                self.marks = Marks()
            iters, label = int(args[1]), args[2].encode()
            begin, end = self.marks.begin, self.marks.end
            t0 = time.perf_counter()
            begin()
            w.run(iters)
            end(label)
            s = time.perf_counter() - t0
            return {"mode": mode, "iters": iters, "seconds": s}
        return {"error": "unknown command %s" % json.dumps(cmd)}


def main(argv):
    threads = 1
    if len(argv) >= 2 and argv[0] == "-threads":
        threads = int(argv[1])
        argv = argv[2:]
    if torch is not None and threads > 0:
        torch.set_num_threads(threads)
    if argv == ["ddp-rank"]:
        if IMPORT_ERROR is not None:
            sys.stderr.write("ref.py ddp-rank: %s\n" % IMPORT_ERROR)
            return 1
        return DDPRank().main()
    r = Runner()
    if argv == ["serve"]:
        for line in sys.stdin:
            try:
                out = r.handle(line)
            except Exception as e:  # answer, do not die: the harness reports it
                out = {"error": "%s: %s" % (type(e).__name__, e)}
            if out is None:
                break
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
        return 0
    if len(argv) == 2 or (len(argv) == 3 and argv[0] in ("cnn", "gpt", "jit")):
        # Standalone: ref.py MODE ITERS (ref.py cnn|gpt PATH ITERS, ref.py jit DIR ITERS), after a
        # short warm-up.
        mode, iters = argv[0], int(argv[-1])
        if len(argv) == 3:
            cmd = "write" if mode in WRITTEN else "load"
            print(json.dumps(r.handle("%s %s %s" % (cmd, mode, argv[1]))))
        r.handle("run %s %d" % (mode, max(1, iters // 10)))
        print(json.dumps(r.handle("run %s %d" % (mode, iters))))
        return 0
    sys.stderr.write("usage: ref.py [-threads N] MODE ITERS | ref.py [-threads N] cnn|gpt PATH ITERS | "
                     "ref.py [-threads N] jit DIR ITERS | ref.py [-threads N] serve\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
