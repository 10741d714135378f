# The Python twin of BenchmarkStepMLP: torch.optim steps over a 784-256-10 MLP's parameters.
# Usage: /usr/bin/python3 step_ref.py [threads] [steps per round]
import statistics, sys, time
import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
torch.set_num_threads(threads)

def mlp_params():
    torch.manual_seed(0)
    ps = []
    for s in [(256, 784), (256,), (10, 256), (10,)]:
        p = (torch.randn(s) * 0.01).requires_grad_()
        p.grad = torch.randn(s)
        ps.append(p)
    return ps

def time_us(f, rounds=7):
    for _ in range(n // 4):
        f()
    us = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        us.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(us)

for name, make in [
    ("adam-torch.optim ", lambda ps: torch.optim.Adam(ps, lr=1e-3)),
    ("adamw-torch.optim", lambda ps: torch.optim.AdamW(ps, lr=1e-3)),
    ("sgd-torch.optim  ", lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9)),
]:
    opt = make(mlp_params())
    print("%s threads=%d  %8.1f us/step" % (name, threads, time_us(opt.step)))
