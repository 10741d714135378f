"""PyTorch's side of aten/xcheck_test.go: python3 xcheck.py DIR.

DIR/cases.json lists the cases (name, Python code, input names, inputs to differentiate, a seed
for sampling cases, the outputs the gradient loss weights); DIR/inputs.pt holds every case's
inputs as "CASE.NAME" and the loss weights as "CASE.w.K". For each case this evaluates the code
with the inputs bound to their names (an expression, or statements that set `out`),
flattens the result into a list of tensors, and for cases with gradients computes
sum_K (out[K] * w[K]).sum() and its backward. It writes DIR/results.pt ("CASE.out.K",
"CASE.grad.NAME") and DIR/results.json (per case: the number of outputs, which are None, or the
error). All cases run in this one process, so the Go test starts Python once.
"""
import json
import math
import os
import sys
import traceback

import torch
import torch.nn.functional as F


def flatten(v, out):
    if v is None:
        out.append(None)
    elif isinstance(v, torch.Tensor):
        out.append(v)
    elif isinstance(v, (tuple, list)):
        for e in v:
            flatten(e, out)
    elif isinstance(v, bool):
        out.append(torch.tensor(v))
    elif isinstance(v, int):
        out.append(torch.tensor(v, dtype=torch.int64))
    elif isinstance(v, float):
        out.append(torch.tensor(v, dtype=torch.float64))
    else:
        raise TypeError("result of type %s" % type(v).__name__)
    return out


def use_weights(m, ws):
    """Installs ws as the parameters of RNN or RNN-cell module m, in the order of its flat
    weights, so that m computes with them and their gradients reach them."""
    names = getattr(m, "_flat_weights_names", None) or [n for n, _ in m.named_parameters()]
    if len(names) != len(ws):
        raise ValueError("%d weights for %d parameters" % (len(ws), len(names)))
    for n, w in zip(names, ws):
        if m._parameters[n].shape != w.shape:
            raise ValueError("%s: shape %s, given %s" % (n, tuple(m._parameters[n].shape), tuple(w.shape)))
        m._parameters[n] = w
    if hasattr(m, "_flat_weights"):
        m._flat_weights = [getattr(m, n) for n in names]


def run_case(c, inputs, results):
    name = c["name"]
    ns = {"torch": torch, "F": F, "math": math, "nn": torch.nn, "use_weights": use_weights}
    for k in c["inputs"]:
        v = inputs[name + "." + k].clone()
        if k in c["grad"]:
            v.requires_grad_(True)
        ns[k] = v
    if c.get("seed") is not None:
        torch.manual_seed(c["seed"])
    code = c["py"]
    try:
        expr = compile(code, name, "eval")
    except SyntaxError:
        exec(compile(code, name, "exec"), ns)
        v = ns["out"]
    else:
        v = eval(expr, ns)
    outs = flatten(v, [])
    if c["grad"]:
        loss = None
        for k in c["weights"]:
            if k >= len(outs) or outs[k] is None or not outs[k].requires_grad:
                raise ValueError("output %d has no gradient in PyTorch" % k)
            term = (outs[k] * inputs["%s.w.%d" % (name, k)]).sum().double()
            loss = term if loss is None else loss + term
        if loss is None:
            raise ValueError("no output has a gradient in PyTorch")
        loss.backward()
        for g in c["grad"]:
            if ns[g].grad is not None:
                results["%s.grad.%s" % (name, g)] = ns[g].grad.detach().contiguous().clone()
    nones = []
    for k, o in enumerate(outs):
        if o is None:
            nones.append(k)
            continue
        results["%s.out.%d" % (name, k)] = o.detach().contiguous().clone()
    return {"nout": len(outs), "none": nones}


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "cases.json")) as f:
        cases = json.load(f)
    inputs = torch.load(os.path.join(d, "inputs.pt"))
    results, info = {}, {}
    for c in cases:
        try:
            info[c["name"]] = run_case(c, inputs, results)
        except Exception as e:  # reported by the Go side, case by case
            info[c["name"]] = {"error": "%s: %s" % (type(e).__name__, e),
                               "trace": traceback.format_exc(limit=3)}
    torch.save(results, os.path.join(d, "results.pt"))
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": info}, f)


if __name__ == "__main__":
    main()
