#!/usr/bin/python3
"""Cross-check the fixture .onnx files against reference.json without torch.

A small numpy interpreter (float64) runs each graph on the reference inputs
for the handful of ops these fixtures use, and compares with the logits that
torch computed:

  * every file, BatchNormalization in inference mode (running statistics from
    the initializers)            -> models[f].eval_logits
  * TRAINING exports, BatchNormalization as the file says (training_mode=1:
    batch statistics, biased variance) -> models[f].train_logits

This checks the files themselves (graph + initializers), not torch. Run:

    /usr/bin/python3 testdata/models/check_fixtures.py

make_fixtures.py runs it at the end too. Needs python3-onnx and numpy only.
"""

import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-5  # max abs difference allowed against torch's float32 logits


def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    group = a.get("group", 1)
    if group != 1:
        raise NotImplementedError("Conv group %d" % group)
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise NotImplementedError("Conv dilations")
    kh, kw = w.shape[2], w.shape[3]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, ::sh, ::sw]  # [N, C, Ho, Wo, kh, kw]
    y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def maxpool(x, a):
    if a.get("ceil_mode", 0) or any(p != 0 for p in a.get("pads", [0, 0, 0, 0])):
        raise NotImplementedError("MaxPool ceil_mode/pads")
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return win[:, :, ::sh, ::sw].max(axis=(4, 5))


def batchnorm(x, scale, bias, mean, var, a, batch_stats):
    eps = a.get("epsilon", 1e-5)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if batch_stats:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)  # biased, as ONNX specifies
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * scale.reshape(
        shape
    ) + bias.reshape(shape)


def gemm(a_, b_, c_, a):
    if a.get("transA", 0):
        a_ = a_.T
    if a.get("transB", 0):
        b_ = b_.T
    y = a.get("alpha", 1.0) * (a_ @ b_)
    if c_ is not None:
        y = y + a.get("beta", 1.0) * c_
    return y


def run_graph(model, x, bn_batch_stats):
    g = model.graph
    env = {t.name: onnx.numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    env[g.input[0].name] = x.astype(np.float64)
    for n in g.node:
        a = attrs_of(n)
        ins = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Conv":
            y = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "BatchNormalization":
            use_batch = bn_batch_stats and a.get("training_mode", 0) == 1
            y = batchnorm(*ins[:5], a, use_batch)
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "MaxPool":
            if len(n.output) > 1:
                raise NotImplementedError("MaxPool indices")
            y = maxpool(ins[0], a)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Gemm":
            y = gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        else:
            raise NotImplementedError(op)
        # Extra outputs (training BN's running statistics) are not graph
        # outputs here; only the first is needed downstream.
        env[n.output[0]] = y
    return env[g.output[0].name]


def main():
    with open(os.path.join(HERE, "reference.json")) as f:
        ref = json.load(f)
    x = np.array(ref["inputs"]["data"], dtype=np.float32).reshape(ref["inputs"]["shape"])
    worst = 0.0
    failed = False
    for fname, entry in ref["models"].items():
        model = onnx.load(os.path.join(HERE, fname))
        checks = [("eval", False, entry["eval_logits"])]
        if "train_logits" in entry:
            checks.append(("train", True, entry["train_logits"]))
        for label, batch, want in checks:
            got = run_graph(model, x, batch)
            d = float(np.max(np.abs(got - np.array(want, dtype=np.float64))))
            worst = max(worst, d)
            ok = d <= TOL
            failed |= not ok
            print("%-32s %-5s max|numpy-torch| = %.3g %s" % (fname, label, d, "ok" if ok else "FAIL"))
    print("worst %.3g (tolerance %g)" % (worst, TOL))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
