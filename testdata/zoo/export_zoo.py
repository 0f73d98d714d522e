#!/usr/bin/python3
"""Export torchvision classifiers in ONNX TRAINING mode, with float64 gradient references.

Usage:

    /usr/bin/python3 testdata/zoo/export_zoo.py [OUT_DIR] [--opset 14|17]
                                                [--models resnet18,vgg11_bn,...]

OUT_DIR defaults to /tmp/bnaudit-zoo. Nothing is written into the repository:
the outputs are large (about 2.8 GB for all 15 models) and are not meant to be
committed. Needs Debian bookworm's python3-torch (1.13), python3-torchvision
(0.14), python3-onnx and python3-numpy. See README.md next to this script.

For each model (num_classes=10, random initialisation from a fixed seed) it
writes into OUT_DIR:

  <name>.onnx       model.train(), torch.onnx.TrainingMode.TRAINING, input
                    "input" [2,3,S,S] (S = 64, or 224 for vgg11_bn and
                    alexnet), output "logits" [2,10], fixed batch
  <name>.ref.json   index and float64 scalars (format of testdata/steps)
  <name>.ref.bin    little-endian float32 tensors: input, logits,
                    grad/<param>, running/<buffer>

and finally summary.json with one row per model, and a table on stdout.

Every Dropout's p (and torchvision.ops.StochasticDepth's p, and any
`drop_rate`) is set to 0 before export, so the training graph is
deterministic. The export runs one training forward, which moves the BN
running statistics once; the reference is computed from a fresh model whose
parameters and buffers are loaded back from the written .onnx file.
"""

import argparse
import collections
import copy
import json
import os
import platform
import random
import re
import sys
import time
import traceback
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.ops

DEFAULT_OUT = "/tmp/bnaudit-zoo"
SEED = 0
INPUT_SEED = 1234
BATCH = 2
LABELS = [3, 7]
NUM_CLASSES = 10
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

# name -> (constructor keyword arguments, input side)
ZOO = collections.OrderedDict(
    [
        ("resnet18", ({}, 64)),
        ("vgg11_bn", ({}, 224)),  # adaptive pooling to 7x7 needs 224 to export
        ("mobilenet_v2", ({}, 64)),
        ("mobilenet_v3_small", ({}, 64)),
        ("efficientnet_b0", ({}, 64)),
        ("densenet121", ({}, 64)),
        ("shufflenet_v2_x0_5", ({}, 64)),
        ("squeezenet1_0", ({}, 64)),
        ("mnasnet0_5", ({}, 64)),
        ("regnet_x_400mf", ({}, 64)),
        ("alexnet", ({}, 224)),  # as vgg11_bn
        ("googlenet", ({"aux_logits": False, "init_weights": True}, 64)),
        ("convnext_tiny", ({}, 64)),
        ("resnext50_32x4d", ({}, 64)),
        ("wide_resnet50_2", ({}, 64)),
    ]
)


# ---------------------------------------------------------------------------
# Model construction.


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def construct(name):
    kwargs, _ = ZOO[name]
    seed_everything(SEED)
    return getattr(torchvision.models, name)(weights=None, num_classes=NUM_CLASSES, **kwargs)


def zero_randomness(model):
    """Set every dropout-like probability to 0; return what was changed."""
    changed = []
    for mname, m in model.named_modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            changed.append(("%s (%s)" % (mname, type(m).__name__), m.p))
            m.p = 0.0
        elif isinstance(m, torchvision.ops.StochasticDepth):
            changed.append(("%s (StochasticDepth %s)" % (mname, m.mode), m.p))
            m.p = 0.0
        if hasattr(m, "drop_rate") and not isinstance(m, nn.modules.dropout._DropoutNd):
            if float(m.drop_rate) != 0.0:
                changed.append(("%s.drop_rate" % mname, float(m.drop_rate)))
            m.drop_rate = 0.0
    return changed


def build(name):
    model = construct(name)
    changed = zero_randomness(model)
    model.train()
    return model, changed


def make_input(name):
    side = ZOO[name][1]
    gen = torch.Generator().manual_seed(INPUT_SEED)
    x = torch.randn(BATCH, 3, side, side, generator=gen, dtype=torch.float32)
    y = torch.tensor(LABELS, dtype=torch.int64)
    return x, y


def bn_modules(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def state_names(model):
    return [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]


# ---------------------------------------------------------------------------
# Export and read back.


def export(model, x, path, opset):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(
            model,
            (x,),
            path,
            export_params=True,
            opset_version=opset,
            training=torch.onnx.TrainingMode.TRAINING,
            do_constant_folding=False,  # torch 1.13 recommends it off in training mode
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
        )
    # One line per kind of warning, with a count (names in quotes elided).
    counts = collections.OrderedDict()
    for w in caught:
        first = re.sub(r"'[^']*'", "'…'", str(w.message).splitlines()[0])[:160]
        counts[first] = counts.get(first, 0) + 1
    return ["%dx %s" % (c, m) for m, c in counts.items()]


def read_onnx(path):
    m = onnx.load(path)
    onnx.checker.check_model(m)
    g = m.graph
    opset = [i.version for i in m.opset_import if i.domain in ("", "ai.onnx")][0]
    ops = collections.Counter(n.op_type for n in g.node)
    inits = collections.OrderedDict((t.name, onnx.numpy_helper.to_array(t)) for t in g.initializer)
    bn_attrs = {}
    dropout = []
    for n in g.node:
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        if n.op_type == "BatchNormalization":
            bn_attrs[n.input[3]] = (n.name, a, len(n.output))
        elif n.op_type == "Dropout":
            dropout.append(n)
    # Dropout ratio and training_mode are inputs (opset >= 12): read constant values.
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            for x in n.attribute:
                if x.name == "value":
                    consts[n.output[0]] = onnx.numpy_helper.to_array(x.t)
    for k, v in inits.items():
        consts.setdefault(k, v)
    drop_info = []
    for n in dropout:
        ratio = consts.get(n.input[1]) if len(n.input) > 1 and n.input[1] else None
        tm = consts.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        drop_info.append(
            (n.name, None if ratio is None else float(ratio), None if tm is None else bool(tm))
        )
    return {
        "model": m,
        "opset": opset,
        "ir_version": m.ir_version,
        "ops": ops,
        "inits": inits,
        "bn": bn_attrs,
        "dropout": drop_info,
        "inputs": [(i.name, [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]) for i in g.input],
        "outputs": [(o.name, [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]) for o in g.output],
    }


def load_from_initializers(name, inits):
    """A fresh model whose parameters and buffers are the file's initializers."""
    model, _ = build(name)
    sd = model.state_dict()
    names = state_names(model)
    missing = [k for k in names if k not in inits]
    extra = [k for k in inits if k not in sd]
    if missing:
        raise RuntimeError("initializers missing for %d torch names, e.g. %s" % (len(missing), missing[:5]))
    for k in sd:
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1, dtype=torch.int64)  # the export forward; unused with fixed momentum
        else:
            a = inits[k]
            if tuple(a.shape) != tuple(sd[k].shape) or a.dtype != np.float32:
                raise RuntimeError("%s: initializer %s %s, torch %s" % (k, a.dtype, a.shape, tuple(sd[k].shape)))
            sd[k] = torch.from_numpy(a.copy())
    model.load_state_dict(sd, strict=True)
    return model, extra


def max_state_diff(model, inits):
    sd = model.state_dict()
    worst = 0.0
    for k in state_names(model):
        if sd[k].numel():
            worst = max(worst, float(np.max(np.abs(sd[k].detach().numpy() - inits[k]))))
    return worst


def use_file_bn_attributes(model, bn_attrs):
    """Set each BN's eps and momentum to the file's float32 values (matched by running_mean name)."""
    out = []
    for mname, bn in bn_modules(model):
        key = mname + ".running_mean"
        if key not in bn_attrs:
            raise RuntimeError("no BatchNormalization node reads %s" % key)
        node, a, nout = bn_attrs[key]
        eps = float(np.float32(a.get("epsilon", 1e-5)))
        onnx_mom = float(np.float32(a.get("momentum", 0.9)))
        tm = 0.1 if bn.momentum is None else bn.momentum
        if np.float32(1.0 - tm) != np.float32(onnx_mom) or np.float32(bn.eps) != np.float32(eps):
            raise RuntimeError("%s: file eps/momentum %g/%g, torch %g/%g" % (mname, eps, onnx_mom, bn.eps, tm))
        out.append(
            collections.OrderedDict(
                [
                    ("module", mname),
                    ("node", node),
                    ("channels", bn.num_features),
                    ("torch_eps", bn.eps),
                    ("torch_momentum", tm),
                    ("onnx_epsilon", eps),
                    ("onnx_momentum", onnx_mom),
                    ("training_mode", int(a.get("training_mode", 0))),
                    ("outputs", nout),
                ]
            )
        )
        bn.eps = eps
        bn.momentum = 1.0 - onnx_mom
    return out


# ---------------------------------------------------------------------------
# Output (same format as testdata/steps).


class BinWriter:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.index = collections.OrderedDict()
        self.offset = 0

    def add(self, key, t):
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        if not np.all(np.isfinite(a)):
            raise RuntimeError("non-finite values in %s" % key)
        f = np.ascontiguousarray(a.astype("<f4")).reshape(-1)
        self.index[key] = collections.OrderedDict(
            [("shape", list(a.shape)), ("offset", self.offset), ("count", int(f.size))]
        )
        self.f.write(f.tobytes())
        self.offset += int(f.size)

    def close(self):
        self.f.close()


_FLAT_LIST = re.compile(r"\[\s*([^\[\]{}]*?)\s*\]", re.S)


def dumps(obj):
    text = json.dumps(obj, indent=1)
    return _FLAT_LIST.sub(
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]" if m.group(1) else "[]", text
    )


def fd_spot_check(model, x, y, grads, count=4, step=1e-6):
    """Finite differences on a few coordinates (float64, train mode). Reported, not asserted.

    A coordinate within `step` of a ReLU kink (common in deep BN networks at
    random initialisation, batch of 2) spoils the central difference and one
    of the one-sided ones; the reported error is the best of the three.
    """
    rng = np.random.default_rng(SEED)
    names = [n for n, p in model.named_parameters()]
    pick = sorted(rng.choice(len(names), size=min(count, len(names)), replace=False))
    m = copy.deepcopy(model).train()
    params = dict(m.named_parameters())
    with torch.no_grad():
        l0 = F.cross_entropy(m(x), y).item()
    floor = 8 * 2.0**-52 * abs(l0) / step
    worst = 0.0
    rows = []
    for i in pick:
        n = names[int(i)]
        flat = params[n].data.view(-1)
        j = int(rng.integers(flat.numel()))
        orig = flat[j].item()
        with torch.no_grad():
            flat[j] = orig + step
            lp = F.cross_entropy(m(x), y).item()
            flat[j] = orig - step
            lm = F.cross_entropy(m(x), y).item()
            flat[j] = orig
        g = grads[n].view(-1)[j].item()
        est = collections.OrderedDict(
            [("central", (lp - lm) / (2 * step)), ("forward", (lp - l0) / step), ("backward", (l0 - lm) / step)]
        )
        rels = {k: abs(v - g) / max(abs(g), abs(v), floor * 1e6) for k, v in est.items()}
        best = min(rels, key=rels.get)
        rel = rels[best]
        worst = max(worst, rel)
        rows.append(collections.OrderedDict(
            [("param", n), ("index", j), ("autograd", g)] + list(est.items())
            + [("best", best), ("rel", rel), ("central_rel", rels["central"])]))
    return worst, rows


def process(name, out_dir, opset, do_fd, row):
    t0 = time.time()
    model, changed = build(name)
    x, y = make_input(name)
    fresh = copy.deepcopy(model)  # the state before the export's training forward
    onnx_path = os.path.join(out_dir, name + ".onnx")
    warns = export(model, x, onnx_path, opset)
    row["export_ok"] = True
    info = read_onnx(onnx_path)
    inits = info["inits"]

    # The file holds the post-export state: parameters unchanged, BN statistics one update on.
    d_after = max_state_diff(model, inits)
    d_fresh = max_state_diff(fresh, inits)
    if d_after != 0.0:
        raise RuntimeError("file state differs from the post-export model by %g" % d_after)

    ref, extra = load_from_initializers(name, inits)
    bns = use_file_bn_attributes(ref, info["bn"])
    ref = ref.double().train()
    xd = x.double()
    params = [(n, p) for n, p in ref.named_parameters()]

    # Determinism of the training forward (dropout p = 0): two copies, same logits.
    with torch.no_grad():
        a = copy.deepcopy(ref)(xd)
        b = copy.deepcopy(ref)(xd)
    if not torch.equal(a, b):
        raise RuntimeError("training forward is not deterministic (max diff %g)" % float((a - b).abs().max()))

    work = copy.deepcopy(ref)
    logits = work(xd)
    per_sample = F.cross_entropy(logits, y, reduction="none")
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, [p for _, p in work.named_parameters()])
    grads = collections.OrderedDict(zip([n for n, _ in params], grads))
    running = [(n, b) for n, b in work.named_buffers() if not n.endswith("num_batches_tracked")]

    fd = None
    if do_fd:
        fd = fd_spot_check(ref, xd, y, grads)

    bin_name = name + ".ref.bin"
    w = BinWriter(os.path.join(out_dir, bin_name))
    w.add("input", x)
    w.add("logits", logits)
    for n, g in grads.items():
        w.add("grad/" + n, g)
    for n, b in running:
        w.add("running/" + n, b)
    w.close()

    nparams = sum(p.numel() for _, p in params)
    index = collections.OrderedDict()
    index["model"] = name + ".onnx"
    index["opset"] = info["opset"]
    index["ir_version"] = info["ir_version"]
    index["inputs"] = collections.OrderedDict(
        [
            ("shape", list(x.shape)),
            ("data_file", bin_name),
            ("key", "input"),
            ("source", "torch.randn float32, torch.Generator seed %d" % INPUT_SEED),
        ]
    )
    index["labels"] = [int(v) for v in y]
    index["loss"] = float(loss)
    index["per_sample_loss"] = [float(v) for v in per_sample]
    index["graph_inputs"] = [collections.OrderedDict([("name", n), ("shape", s)]) for n, s in info["inputs"]]
    index["graph_outputs"] = [collections.OrderedDict([("name", n), ("shape", s)]) for n, s in info["outputs"]]
    index["ops"] = collections.OrderedDict(sorted(info["ops"].items()))
    index["num_parameters"] = int(nparams)
    index["parameters"] = [collections.OrderedDict([("name", n), ("shape", list(p.shape))]) for n, p in params]
    index["buffers"] = [collections.OrderedDict([("name", n), ("shape", list(b.shape))]) for n, b in running]
    index["initializers_not_torch_state"] = extra
    index["batchnorms"] = bns
    index["randomness_zeroed"] = [collections.OrderedDict([("module", m), ("p_was", p)]) for m, p in changed]
    index["dropout_nodes"] = [
        collections.OrderedDict([("node", n), ("ratio", r), ("training_mode", t)]) for n, r, t in info["dropout"]
    ]
    index["settings"] = collections.OrderedDict(
        [
            ("constructor", "torchvision.models.%s(weights=None, num_classes=%d%s)"
             % (name, NUM_CLASSES, "".join(", %s=%r" % kv for kv in ZOO[name][0].items()))),
            ("seed", SEED),
            ("export", "model.train(), TrainingMode.TRAINING, do_constant_folding=False, opset %d" % opset),
            ("dtype", "computed in float64 from the float32 file values and inputs; .bin holds float32"),
            ("mode", "model.train(); BN uses batch statistics; dropout p = 0"),
            ("loss", "cross_entropy, mean over the batch"),
            ("bn_hyperparameters", "eps and momentum taken from the file's float32 attributes"),
            ("num_batches_tracked", 1),
            ("max_abs_file_minus_post_export_state", d_after),
            ("max_abs_file_minus_pre_export_state", d_fresh),
            ("export_warnings", warns),
            (
                "versions",
                collections.OrderedDict(
                    [
                        ("torch", torch.__version__),
                        ("torchvision", torchvision.__version__),
                        ("onnx", onnx.__version__),
                        ("numpy", np.__version__),
                        ("python", platform.python_version()),
                    ]
                ),
            ),
        ]
    )
    if fd is not None:
        index["settings"]["finite_difference_spot_check"] = collections.OrderedDict(
            [("worst_relative", fd[0]), ("points", fd[1])]
        )
    index["tensors"] = w.index
    with open(os.path.join(out_dir, name + ".ref.json"), "w") as f:
        f.write(dumps(index) + "\n")

    row["ref_ok"] = True
    row["ops"] = len(info["ops"])
    row["op_types"] = sorted(info["ops"])
    row["nodes"] = int(sum(info["ops"].values()))
    row["bn"] = len(bns)
    row["dropout_nodes"] = len(info["dropout"])
    row["params"] = int(nparams)
    row["input"] = list(x.shape)
    row["loss"] = float(loss)
    row["onnx_bytes"] = os.path.getsize(onnx_path)
    row["ref_bytes"] = os.path.getsize(os.path.join(out_dir, bin_name))
    row["fd_worst_rel"] = None if fd is None else fd[0]
    row["seconds"] = round(time.time() - t0, 1)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?", default=DEFAULT_OUT)
    ap.add_argument("--opset", type=int, default=14, choices=range(7, 18), metavar="N",
                    help="ONNX opset (torch 1.13 exports up to 17; default 14)")
    ap.add_argument("--models", default=",".join(ZOO), help="comma-separated subset")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-fd", action="store_true", help="skip the finite-difference spot check")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        if n not in ZOO:
            ap.error("unknown model %r (known: %s)" % (n, ", ".join(ZOO)))
    os.makedirs(args.out_dir, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    rows = []
    for name in names:
        print("-- %s ..." % name, file=sys.stderr, flush=True)
        row = collections.OrderedDict(
            [("model", name), ("opset", args.opset), ("export_ok", False), ("ref_ok", False)]
        )
        try:
            process(name, args.out_dir, args.opset, not args.no_fd, row)
        except Exception as e:  # keep going; the table says what failed
            traceback.print_exc()
            row["error"] = "%s: %s" % (type(e).__name__, e)
        rows.append(row)
        print("   %s" % json.dumps({k: v for k, v in row.items() if k != "op_types"}), file=sys.stderr, flush=True)

    all_ops = sorted(set(op for r in rows for op in r.get("op_types", [])))
    summary = collections.OrderedDict(
        [("opset", args.opset), ("models", rows), ("all_op_types", all_ops),
         ("versions", {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__})]
    )
    with open(os.path.join(args.out_dir, "summary.json"), "w") as f:
        f.write(dumps(summary) + "\n")

    print("%-20s %5s %4s %6s %4s %4s %12s %10s %9s %s" % (
        "model", "opset", "ops", "nodes", "BN", "drop", "params", "loss", "fd_rel", "export"))
    for r in rows:
        if r["ref_ok"]:
            print("%-20s %5d %4d %6d %4d %4d %12d %10.6f %9s ok" % (
                r["model"], r["opset"], r["ops"], r["nodes"], r["bn"], r["dropout_nodes"], r["params"], r["loss"],
                "-" if r["fd_worst_rel"] is None else "%.1e" % r["fd_worst_rel"]))
        else:
            print("%-20s %5d export %s, reference FAILED: %s" % (
                r["model"], r["opset"], "ok" if r["export_ok"] else "FAILED", r.get("error", "?")))
    for r in rows:
        if "op_types" in r:
            print("%-20s %s" % (r["model"], " ".join(r["op_types"])))
    print("all op types (%d): %s" % (len(all_ops), " ".join(all_ops)))
    print("outputs in %s" % os.path.abspath(args.out_dir))
    return 0 if all(r["ref_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
