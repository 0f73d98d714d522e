#!/usr/bin/python3
"""Write float64 PyTorch references for one training step of the fixture models.

Run from anywhere:

    /usr/bin/python3 testdata/steps/make_step_refs.py

Needs Debian bookworm's python3-torch (1.13), python3-onnx and python3-numpy.
For each of

    ../models/small_cnn.training.onnx
    ../models/small_resnet.training.onnx
    ../models/mlp_bn.training.onnx

it builds the torch model from ../models/make_fixtures.py (imported, not
copied), loads every parameter and buffer from the file's initializers, turns
the model to float64 and computes on the first 8 images of the MNIST subset:

  * logits, per-sample and mean cross-entropy, the gradient of the mean loss
    for every parameter, the BN running statistics after the train forward;
  * one step of SGD (momentum, weight decay), SGD with Nesterov, and AdamW,
    each from a fresh copy of the loaded model, with the optimizer state;
  * per-sample gradient norms, eval-mode (batch of one, running statistics)
    and in-batch (sample i's loss term inside the train-mode batch of 8).

Results go to <model>.json (index, scalars in float64) and <model>.bin
(little-endian float32, concatenated). See README.md next to this script.
The script asserts its own sanity checks (finite differences, sum of
in-batch per-sample gradients, optimizer formulas) before writing.
"""

import collections
import copy
import gzip
import json
import os
import platform
import re
import struct
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)
MODELS_DIR = os.path.join(TESTDATA, "models")
MNIST_DIR = os.path.join(TESTDATA, "mnist")
LABELS_FILE = "t10k-64-labels-idx1-ubyte.gz"

sys.path.insert(0, MODELS_DIR)
import make_fixtures as fx  # noqa: E402  (model classes and the input loader)

FIXTURES = collections.OrderedDict(
    [
        ("small_cnn", "small_cnn.training.onnx"),
        ("small_resnet", "small_resnet.training.onnx"),
        ("mlp_bn", "mlp_bn.training.onnx"),
    ]
)

NUM = 8  # batch: the first 8 images
SGD = collections.OrderedDict(
    [("lr", 0.1), ("momentum", 0.9), ("dampening", 0.0), ("weight_decay", 5e-4)]
)
ADAMW = collections.OrderedDict(
    [("lr", 1e-3), ("betas", [0.9, 0.999]), ("eps", 1e-8), ("weight_decay", 0.01)]
)

# Size budget: optimizer results (sgd, sgd_nesterov, adamw and their states)
# are not stored for these tensors; their gradients are. mlp_bn's fc1.weight
# alone (100,352 floats) would cost 2.4 MB for the six optimizer keys, and the
# optimizers are elementwise: the same update is covered by every other tensor.
OPTIMIZER_OMIT = {"mlp_bn": ["fc1.weight"]}

# Finite-difference check: coordinates per parameter tensor, step, tolerance.
FD_PER_TENSOR = 3
FD_STEP = 1e-6
FD_RTOL = 1e-6
# Absolute floor for coordinates whose gradient is ~0 (e.g. a conv bias just
# before a train-mode BN has gradient exactly 0): the float64 rounding of the
# loss divided by the step, 8 * 2**-52 * |loss| / step (about 1e-9 here).
FD_ATOL_ULPS = 8
FD_SEED = 12345


# ---------------------------------------------------------------------------
# Data.


def load_labels(n):
    with gzip.open(os.path.join(MNIST_DIR, LABELS_FILE), "rb") as f:
        raw = f.read()
    magic, count = struct.unpack(">2I", raw[:8])
    assert magic == 0x801 and count >= n, (magic, count)
    return torch.tensor(list(raw[8 : 8 + n]), dtype=torch.int64)


# ---------------------------------------------------------------------------
# Model from the file.


def bn_modules(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def load_model(name, fname):
    """Torch model `name` whose parameters and buffers are the file's initializers."""
    path = os.path.join(MODELS_DIR, fname)
    om = onnx.load(path)
    inits = collections.OrderedDict((t.name, onnx.numpy_helper.to_array(t)) for t in om.graph.initializer)
    torch.manual_seed(0)  # the values are overwritten; the seed only fixes the unused init
    model = fx.MODELS[name]()
    sd = model.state_dict()
    matched = []
    for k in sd:
        if k.endswith("num_batches_tracked"):
            assert k not in inits, k
            sd[k] = torch.tensor(1, dtype=torch.int64)  # one export forward; unused with a fixed momentum
            continue
        assert k in inits, "%s: no initializer %s" % (fname, k)
        a = inits[k]
        assert a.dtype == np.float32 and tuple(a.shape) == tuple(sd[k].shape), (k, a.dtype, a.shape)
        sd[k] = torch.from_numpy(a.copy())
        matched.append(k)
    extra = [k for k in inits if k not in sd]
    assert not extra, "%s: initializers without a torch name: %s" % (fname, extra)
    model.load_state_dict(sd, strict=True)
    for k in matched:
        assert np.array_equal(model.state_dict()[k].numpy(), inits[k]), k

    # The BN attributes in the file must be the torch module's (ONNX momentum = 1 - torch's).
    bn_nodes = {}
    for node in om.graph.node:
        if node.op_type == "BatchNormalization":
            a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
            bn_nodes[node.input[1]] = a
    bns = []
    for mname, bn in bn_modules(model):
        a = bn_nodes[mname + ".weight"]
        tm = bn.momentum
        assert np.float32(a["momentum"]) == np.float32(1.0 - tm), (mname, a["momentum"], tm)
        assert np.float32(a["epsilon"]) == np.float32(bn.eps), (mname, a["epsilon"], bn.eps)
        assert a.get("training_mode", 0) == 1
        # Compute with the file's float32 hyper-parameters, so that the float64
        # references are those of the graph in the file: eps 1e-5 becomes
        # 9.99999974738e-06 and momentum 0.1 becomes 1 - 0.9f = 0.10000002384.
        # (The differences are below float32 resolution of the stored results,
        # but show in the float64 loss at ~1e-11 for eps=1e-3.)
        eps_used = float(np.float32(a["epsilon"]))
        mom_used = 1.0 - float(np.float32(a["momentum"]))
        bns.append(
            collections.OrderedDict(
                [
                    ("module", mname),
                    ("channels", bn.num_features),
                    ("torch_eps", bn.eps),
                    ("torch_momentum", tm),
                    ("onnx_epsilon", eps_used),
                    ("onnx_momentum", float(np.float32(a["momentum"]))),
                    ("eps_used", eps_used),
                    ("momentum_used", mom_used),
                ]
            )
        )
        bn.eps = eps_used
        bn.momentum = mom_used
    opset = [i.version for i in om.opset_import if i.domain in ("", "ai.onnx")][0]
    return model, matched, bns, opset


def params_of(model):
    return [(n, p) for n, p in model.named_parameters()]


def running_of(model):
    return [(n, b) for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]


# ---------------------------------------------------------------------------
# Computations (all float64).


def forward(model, x, y):
    logits = model(x)
    per_sample = F.cross_entropy(logits, y, reduction="none")
    loss = F.cross_entropy(logits, y)  # torch's convention: mean over the batch
    assert torch.allclose(loss, per_sample.mean(), rtol=1e-15, atol=0), (loss, per_sample.mean())
    return logits, per_sample, loss


def batch_step(base, x, y):
    m = copy.deepcopy(base).train()
    logits, per_sample, loss = forward(m, x, y)
    names = [n for n, _ in params_of(m)]
    grads = torch.autograd.grad(loss, [p for _, p in params_of(m)])
    return logits.detach(), per_sample.detach(), loss.detach(), collections.OrderedDict(zip(names, grads)), m


def optimizer_step(base, x, y, kind, grads_ref):
    m = copy.deepcopy(base).train()
    params = [p for _, p in params_of(m)]
    if kind == "sgd":
        opt = torch.optim.SGD(params, nesterov=False, **SGD)
    elif kind == "sgd_nesterov":
        opt = torch.optim.SGD(params, nesterov=True, **SGD)
    elif kind == "adamw":
        opt = torch.optim.AdamW(params, lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"],
                                weight_decay=ADAMW["weight_decay"], amsgrad=False)
    else:
        raise ValueError(kind)
    opt.zero_grad()
    _, _, loss = forward(m, x, y)
    loss.backward()
    for n, p in params_of(m):
        assert torch.equal(p.grad, grads_ref[n]), "%s: gradient differs between runs (%s)" % (kind, n)
    opt.step()
    out = collections.OrderedDict()
    state = collections.OrderedDict()
    for n, p in params_of(m):
        out[n] = p.detach().clone()
        st = opt.state[p]
        if kind.startswith("sgd"):
            state["momentum/" + n] = st["momentum_buffer"].detach().clone()
        else:
            assert int(st["step"]) == 1, st["step"]
            state["exp_avg/" + n] = st["exp_avg"].detach().clone()
            state["exp_avg_sq/" + n] = st["exp_avg_sq"].detach().clone()
    return out, state


def check_optimizer_formulas(p0, g, sgd, sgdn, sgd_state, adamw, adamw_state):
    """Independent numpy versions of torch's first step, float64."""
    lr, mu, wd = SGD["lr"], SGD["momentum"], SGD["weight_decay"]
    worst = 0.0
    for n in p0:
        w = p0[n].numpy()
        gg = g[n].numpy()
        d = gg + wd * w
        buf = d  # first step: the buffer is the (decayed) gradient itself
        want = {"sgd": w - lr * buf, "sgdn": w - lr * (d + mu * buf), "buf": buf}
        got = {"sgd": sgd[n].numpy(), "sgdn": sgdn[n].numpy(), "buf": sgd_state["momentum/" + n].numpy()}
        alr, (b1, b2), eps, awd = ADAMW["lr"], ADAMW["betas"], ADAMW["eps"], ADAMW["weight_decay"]
        m1 = (1 - b1) * gg
        v1 = (1 - b2) * gg * gg
        mhat = m1 / (1 - b1)
        vhat = v1 / (1 - b2)
        want["adamw"] = w * (1 - alr * awd) - alr * mhat / (np.sqrt(vhat) + eps)
        want["m"], want["v"] = m1, v1
        got["adamw"] = adamw[n].numpy()
        got["m"], got["v"] = adamw_state["exp_avg/" + n].numpy(), adamw_state["exp_avg_sq/" + n].numpy()
        for k in want:
            scale = max(1e-30, float(np.max(np.abs(want[k]))))
            err = float(np.max(np.abs(want[k] - got[k]))) / scale
            assert err < 1e-13, (n, k, err)
            worst = max(worst, err)
    return worst


def finite_difference_check(base, x, y, grads):
    """Central differences of the train-mode mean loss on random coordinates."""
    rng = np.random.default_rng(FD_SEED)
    m = copy.deepcopy(base).train()
    rows = []
    with torch.no_grad():
        l0 = forward(m, x, y)[2].item()
    atol = FD_ATOL_ULPS * 2.0**-52 * abs(l0) / FD_STEP
    for n, p in params_of(m):
        flat = p.data.view(-1)
        idx = rng.choice(flat.numel(), size=min(FD_PER_TENSOR, flat.numel()), replace=False)
        for j in sorted(int(i) for i in idx):
            orig = flat[j].item()
            with torch.no_grad():
                flat[j] = orig + FD_STEP
                lp = forward(m, x, y)[2].item()
                flat[j] = orig - FD_STEP
                lm = forward(m, x, y)[2].item()
                flat[j] = orig
            fd = (lp - lm) / (2 * FD_STEP)
            g = grads[n].view(-1)[j].item()
            err = abs(fd - g)
            ok = err <= FD_RTOL * max(abs(g), abs(fd)) + atol
            assert ok, "finite differences: %s[%d] autograd %.17g fd %.17g" % (n, j, g, fd)
            rows.append((n, j, g, fd, err / max(abs(g), abs(fd), atol / FD_RTOL)))
    return rows, atol


def per_sample_eval(base, x, y):
    """Eval mode (running statistics as in the file), batch of one per sample."""
    m = copy.deepcopy(base).eval()
    names = [n for n, _ in params_of(m)]
    total = np.zeros(NUM)
    per = collections.OrderedDict((n, np.zeros(NUM)) for n in names)
    before = [b.clone() for _, b in running_of(m)]
    for i in range(NUM):
        logits = m(x[i : i + 1])
        li = F.cross_entropy(logits, y[i : i + 1])
        gs = torch.autograd.grad(li, [p for _, p in params_of(m)])
        sq = 0.0
        for n, g in zip(names, gs):
            s = float((g * g).sum())
            per[n][i] = np.sqrt(s)
            sq += s
        total[i] = np.sqrt(sq)
    for b0, (_, b) in zip(before, running_of(m)):
        assert torch.equal(b0, b), "eval forward changed running statistics"
    return total, per


def per_sample_inbatch(base, x, y, batch_grads):
    """Train mode on the whole batch; gradient of sample i's loss term l_i alone."""
    m = copy.deepcopy(base).train()
    names = [n for n, _ in params_of(m)]
    params = [p for _, p in params_of(m)]
    logits = m(x)
    losses = F.cross_entropy(logits, y, reduction="none")
    total = np.zeros(NUM)
    per = collections.OrderedDict((n, np.zeros(NUM)) for n in names)
    acc = [torch.zeros_like(p) for p in params]
    for i in range(NUM):
        gs = torch.autograd.grad(losses[i], params, retain_graph=True)
        sq = 0.0
        for k, (n, g) in enumerate(zip(names, gs)):
            acc[k] += g
            s = float((g * g).sum())
            per[n][i] = np.sqrt(s)
            sq += s
        total[i] = np.sqrt(sq)
    # Relative to the tensor's largest gradient, floored at 1e-3 of the largest
    # gradient of the model: some tensors (a conv bias feeding a train-mode BN)
    # have gradient exactly 0 and carry only rounding noise.
    worst = 0.0
    gmax = max(float(g.abs().max()) for g in batch_grads.values())
    for n, a in zip(names, acc):
        mean = a / NUM
        scale = max(float(batch_grads[n].abs().max()), 1e-3 * gmax)
        err = float((mean - batch_grads[n]).abs().max()) / scale
        assert err < 1e-12, ("sum of in-batch per-sample gradients / 8 != batch gradient", n, err)
        worst = max(worst, err)
    return total, per, worst


# ---------------------------------------------------------------------------
# Output.


class Blob:
    def __init__(self):
        self.index = collections.OrderedDict()
        self.parts = []
        self.offset = 0

    def add(self, key, t):
        a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        a = np.asarray(a, dtype=np.float64)
        assert key not in self.index, key
        assert np.all(np.isfinite(a)), key
        f = np.ascontiguousarray(a.astype("<f4")).reshape(-1)
        self.index[key] = collections.OrderedDict(
            [("shape", list(a.shape)), ("offset", self.offset), ("count", int(f.size))]
        )
        self.parts.append(f.tobytes())
        self.offset += int(f.size)

    def bytes(self):
        return b"".join(self.parts)


_FLAT_LIST = re.compile(r"\[\s*([^\[\]{}]*?)\s*\]", re.S)


def dumps(obj):
    """json.dumps with indent 1, but lists of scalars kept on one line."""
    text = json.dumps(obj, indent=1)
    return _FLAT_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]"
                          if m.group(1) else "[]", text)


def f64(v):
    """A Python float; json writes the shortest decimal that reads back to it."""
    v = float(v)
    assert float(repr(v)) == v
    return v


def make(name, fname, x32, y):
    base, matched, bns, opset = load_model(name, fname)
    base = base.double().train()
    x = x32.double()
    params0 = collections.OrderedDict((n, p.detach().clone()) for n, p in params_of(base))
    running0 = collections.OrderedDict((n, b.detach().clone()) for n, b in running_of(base))

    logits, per_sample, loss, grads, after = batch_step(base, x, y)
    running_after = collections.OrderedDict((n, b.detach().clone()) for n, b in running_of(after))

    # Running statistics: torch's update with the UNBIASED batch variance.
    feats = {}
    hooks = []
    probe = copy.deepcopy(base).train()
    for mname, bn in bn_modules(probe):
        hooks.append(bn.register_forward_hook(lambda mod, inp, out, mname=mname: feats.__setitem__(mname, inp[0].detach())))
    with torch.no_grad():
        probe(x)
    for h in hooks:
        h.remove()
    for mname, bn in bn_modules(base):
        z = feats[mname]
        axes = [0] + list(range(2, z.dim()))
        cnt = z.numel() // z.shape[1]
        mean = z.mean(dim=axes)
        var_b = z.var(dim=axes, unbiased=False)
        mom = bn.momentum
        want_m = (1 - mom) * running0[mname + ".running_mean"] + mom * mean
        want_v = (1 - mom) * running0[mname + ".running_var"] + mom * var_b * cnt / (cnt - 1)
        assert torch.allclose(running_after[mname + ".running_mean"], want_m, rtol=1e-12, atol=1e-14)
        assert torch.allclose(running_after[mname + ".running_var"], want_v, rtol=1e-12, atol=1e-14)
        for d in bns:
            if d["module"] == mname:
                d["count_per_channel"] = cnt

    fd_rows, fd_atol = finite_difference_check(base, x, y, grads)

    sgd, sgd_state = optimizer_step(base, x, y, "sgd", grads)
    sgdn, sgdn_state = optimizer_step(base, x, y, "sgd_nesterov", grads)
    adamw, adamw_state = optimizer_step(base, x, y, "adamw", grads)
    for k in sgd_state:
        assert torch.equal(sgd_state[k], sgdn_state[k]), k  # same buffer after one step
    opt_err = check_optimizer_formulas(params0, grads, sgd, sgdn, sgd_state, adamw, adamw_state)

    ev_total, ev_per = per_sample_eval(base, x, y)
    ib_total, ib_per, sum_err = per_sample_inbatch(base, x, y, grads)

    omit = OPTIMIZER_OMIT.get(name, [])
    for n in omit:
        assert n in params0, n
    blob = Blob()
    blob.add("input", x32)
    blob.add("logits", logits)
    for n, g in grads.items():
        blob.add("grad/" + n, g)
    for n, b in running_after.items():
        blob.add("running/" + n, b)
    for n in params0:
        if n in omit:
            continue
        blob.add("sgd/" + n, sgd[n])
        blob.add("sgd/momentum/" + n, sgd_state["momentum/" + n])
        blob.add("sgd_nesterov/" + n, sgdn[n])
        blob.add("adamw/" + n, adamw[n])
        blob.add("adamw/exp_avg/" + n, adamw_state["exp_avg/" + n])
        blob.add("adamw/exp_avg_sq/" + n, adamw_state["exp_avg_sq/" + n])
    blob.add("psgn_eval/total", ev_total)
    for n, v in ev_per.items():
        blob.add("psgn_eval/" + n, v)
    blob.add("psgn_inbatch/total", ib_total)
    for n, v in ib_per.items():
        blob.add("psgn_inbatch/" + n, v)

    bin_name = name + ".bin"
    index = collections.OrderedDict()
    index["model"] = fname
    index["opset"] = opset
    index["inputs"] = collections.OrderedDict(
        [
            ("shape", list(x32.shape)),
            ("data_file", bin_name),
            ("key", "input"),
            ("source", "testdata/mnist/t10k-64-images-idx3-ubyte.gz, first %d images" % NUM),
            ("formula", "float32: (pixel / 255 - 0.2860) / 0.3530 (as make_fixtures.py)"),
        ]
    )
    index["labels"] = [int(v) for v in y]
    index["loss"] = f64(loss)
    index["per_sample_loss"] = [f64(v) for v in per_sample]
    index["per_sample_grad_norm"] = collections.OrderedDict(
        [("eval", [f64(v) for v in ev_total]), ("inbatch", [f64(v) for v in ib_total])]
    )
    index["parameters"] = [
        collections.OrderedDict([("name", n), ("shape", list(p.shape))]) for n, p in params0.items()
    ]
    index["buffers"] = [
        collections.OrderedDict([("name", n), ("shape", list(b.shape))]) for n, b in running0.items()
    ]
    index["batchnorms"] = bns
    # Parameters whose train-mode gradient is zero in exact arithmetic (a bias
    # just before a train-mode BN: the batch mean removes it). The stored values
    # are float64 rounding noise (~1e-15); a float32 implementation gets noise
    # ~1e-8 there, which AdamW's g / (sqrt(v) + eps) turns into steps up to ~lr.
    gmax = max(float(g.abs().max()) for g in grads.values())
    index["zero_gradient_parameters"] = [n for n, g in grads.items() if float(g.abs().max()) < 1e-12 * gmax]
    index["optimizer_omitted"] = omit
    index["settings"] = collections.OrderedDict(
        [
            ("dtype", "computed in float64 from the float32 file values and inputs; .bin holds float32"),
            ("mode", "model.train(); BN uses batch statistics"),
            ("loss", "cross_entropy, mean over the batch"),
            ("num_batches_tracked", 1),
            ("sgd", collections.OrderedDict(list(SGD.items()) + [("nesterov", False), ("step", 1)])),
            ("sgd_nesterov", collections.OrderedDict(list(SGD.items()) + [("nesterov", True), ("step", 1)])),
            ("adamw", collections.OrderedDict(list(ADAMW.items()) + [("amsgrad", False), ("step", 1)])),
            ("weight_decay_applies_to", "every parameter (conv/linear weights and biases, BN weight and bias)"),
            (
                "checks",
                collections.OrderedDict(
                    [
                        ("finite_differences", "%d coordinates, step %g, |fd-g| <= %g*max(|g|,|fd|) + %.2g; worst %.3g of that scale"
                         % (len(fd_rows), FD_STEP, FD_RTOL, fd_atol, max(r[4] for r in fd_rows) / FD_RTOL)),
                        ("inbatch_sum_over_8_vs_batch_grad_worst_relative", float("%.3g" % sum_err)),
                        ("optimizer_formulas_worst_relative", float("%.3g" % opt_err)),
                    ]
                ),
            ),
            (
                "versions",
                collections.OrderedDict(
                    [
                        ("torch", torch.__version__),
                        ("onnx", onnx.__version__),
                        ("numpy", np.__version__),
                        ("python", platform.python_version()),
                    ]
                ),
            ),
        ]
    )
    index["tensors"] = blob.index

    data = blob.bytes()
    with open(os.path.join(HERE, bin_name), "wb") as f:
        f.write(data)
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        text = dumps(index)
        assert json.loads(text) == json.loads(json.dumps(index))
        f.write(text + "\n")
    return index, len(data), fd_rows


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    x32 = fx.load_reference_inputs()[:NUM]
    assert x32.dtype == torch.float32 and tuple(x32.shape) == (NUM, 1, 28, 28)
    y = load_labels(NUM)
    for name, fname in FIXTURES.items():
        index, nbytes, fd_rows = make(name, fname, x32, y)
        print("== %s (%s): loss %.17g, %d tensors, %d bytes" % (name, fname, index["loss"], len(index["tensors"]), nbytes))
        print("   per-sample loss:", " ".join("%.6g" % v for v in index["per_sample_loss"]))
        print("   psgn eval:      ", " ".join("%.6g" % v for v in index["per_sample_grad_norm"]["eval"]))
        print("   psgn in-batch:  ", " ".join("%.6g" % v for v in index["per_sample_grad_norm"]["inbatch"]))
        for k, v in index["settings"]["checks"].items():
            print("   check %s: %s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
