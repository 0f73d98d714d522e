#!/usr/bin/python3
"""How far PyTorch's own float32 gradients are from its float64 ones.

For each zoo model written by export_zoo.py into DIR, this recomputes the
gradients of the reference step in float32 (same file state, input and
labels, train mode) and writes DIR/<name>.spread.json with, per parameter,
the norm-wise relative difference ||g32 - g64|| / ||g64|| (g64 read from the
model's .ref.bin). docs/FACTS.md: deep BN + ReLU nets at random init sit on ReLU
kinks within float32 rounding, so two correct float32 implementations can
differ by ~1e-2; bnaudit's zoo check (trainer/zoo_test.go) takes twice this
spread as its tolerance where it exceeds the fixed 2e-2.

usage: /usr/bin/python3 testdata/zoo/float32_spread.py DIR [name ...]
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_zoo as z  # noqa: E402


def main(argv):
    out_dir = argv[1]
    names = argv[2:] or sorted(f[: -len(".ref.json")] for f in os.listdir(out_dir) if f.endswith(".ref.json"))
    torch.set_num_threads(2)
    for name in names:
        ref = json.load(open(os.path.join(out_dir, name + ".ref.json")))
        raw = np.fromfile(os.path.join(out_dir, name + ".ref.bin"), dtype="<f4")

        def get(key):
            t = ref["tensors"][key]
            return raw[t["offset"]: t["offset"] + t["count"]].reshape(t["shape"])

        info = z.read_onnx(os.path.join(out_dir, ref["model"]))
        model, _ = z.load_from_initializers(name, info["inits"])
        z.use_file_bn_attributes(model, info["bn"])
        model.train()
        x = torch.from_numpy(get("input").copy())
        y = torch.tensor(ref["labels"], dtype=torch.int64)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        # Norm-wise relative difference per tensor, with the same floor as
        # trainer/zoo_test.go: at least 1e-3 of the largest tensor norm (a
        # tensor whose gradient is zero in exact arithmetic has no scale).
        norms = {pname: np.linalg.norm(get("grad/" + pname).astype(np.float64)) for pname, _ in model.named_parameters()}
        floor = 1e-3 * max(norms.values())
        spread = {}
        for pname, p in model.named_parameters():
            g64 = get("grad/" + pname).astype(np.float64)
            g32 = p.grad.detach().numpy().astype(np.float64)
            spread[pname] = float(np.linalg.norm(g32 - g64) / max(norms[pname], floor))
        worst = max(spread, key=spread.get)
        print("%-20s float32 loss %.9g (float64 %.9g); worst gradient spread %.3g (%s)" % (name, loss.item(), ref["loss"], spread[worst], worst))
        with open(os.path.join(out_dir, name + ".spread.json"), "w") as f:
            json.dump({"model": name, "loss32": loss.item(), "grad_spread": spread}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv)
