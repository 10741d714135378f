# Checks the files save_value wrote from Go's TorchStateDict values (see save_value.sh): each
# DIR/<case>/value.pt, read by torch.load, is an optimizer state dict that torch.optim's
# load_state_dict takes — after which the optimizer continues exactly as Go's did.
# Usage: /usr/bin/python3 save_value_check.py DIR
import json, os, sys, torch

def fix(d):
    d = dict(d)
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return d

def main(root):
    failed = 0
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        meta = json.load(open(os.path.join(d, "case.json")))
        c, want = meta["case"], meta["want"]
        sd = torch.load(os.path.join(d, "value.pt"))
        assert isinstance(sd["param_groups"], list) and all(isinstance(k, int) for k in sd["state"]), sd.keys()
        ps = [torch.tensor(p, dtype=torch.float32).reshape(q["shape"]).requires_grad_()
              for p, q in zip(c["go_params"], c["params"])]
        if c["opt"] == "LBFGS":
            opt = torch.optim.LBFGS(ps, lr=0.5)
            M = torch.tensor(c["m"], dtype=torch.float32).reshape(4, 2)
            C = torch.tensor(c["c"], dtype=torch.float32).reshape(4, 3)
            def closure():
                opt.zero_grad()
                x, w = ps
                a, b = x[1:], x[:-1]
                loss = ((a - b ** 2) ** 2 * 100 + (1 - b) ** 2).sum() + ((M @ w - C) ** 2).mean()
                loss.backward()
                return loss
        else:
            groups = [dict(fix(g["hyper"]), params=[ps[i] for i in g["params"]]) for g in c["groups"]]
            opt = getattr(torch.optim, c["opt"])(groups, lr=0.5)
        opt.load_state_dict(sd)
        ok = True
        for k, w in enumerate(want):
            if c["opt"] == "LBFGS":
                opt.step(closure)
            else:
                for p, g in zip(ps, c["grads"][c["save_after"] + k]):
                    p.grad = None if g is None else torch.tensor(g, dtype=torch.float32).reshape(p.shape)
                opt.step()
            for p, wp in zip(ps, w):
                if not torch.equal(p.detach().reshape(-1), torch.tensor(wp, dtype=torch.float32)):
                    ok = False
        print("%-32s %s" % (meta["name"], "loads into torch.optim.%s and steps as Go does" % c["opt"] if ok else "DIFFERS"))
        failed += not ok
    return failed

if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1]) else 0)
