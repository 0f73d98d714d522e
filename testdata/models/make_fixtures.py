#!/usr/bin/python3
"""Export the bnaudit ONNX fixture models with torch.onnx and write reference.json.

Run from anywhere:

    /usr/bin/python3 testdata/models/make_fixtures.py

Needs Debian bookworm's python3-torch (1.13), python3-onnx and python3-numpy.
Reads the 64-image MNIST subset in ../mnist (see ../mnist/make_subset.py) and
writes every *.onnx file and reference.json next to this script.

What is exported (input "input" [N,1,28,28], output "logits" [N,10], dynamic N):

  <name>.preserve.onnx          model.eval(),  TrainingMode.PRESERVE, opset 14
  <name>.training.onnx          model.train(), TrainingMode.TRAINING, opset 14
  small_cnn.eval_default.onnx   model.eval(),  default export (BN folded), opset 14
  small_cnn.preserve.op17.onnx  model.eval(),  TrainingMode.PRESERVE, opset 17

for <name> in small_cnn, small_resnet, mlp, mlp_bn (no mlp.training.onnx: without BN
or Dropout it is byte-identical to mlp.preserve.onnx).

Everything runs on one CPU thread from fixed seeds, so two runs give the same
reference.json (and, with the same torch/onnx versions, the same .onnx bytes).
"""

import collections
import copy
import gzip
import hashlib
import json
import os
import struct
import sys
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_DIR = os.path.join(os.path.dirname(HERE), "mnist")
IMAGES_FILE = "t10k-64-images-idx3-ubyte.gz"

NUM_REF = 8
NORM_MEAN = 0.2860
NORM_STD = 0.3530
SEED = 0
OPSET = 14

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DYNAMIC_AXES = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}


# ---------------------------------------------------------------------------
# Models. Module attribute names become ONNX initializer and node names, so
# they are chosen to read well in test failures.


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        # Non-default hyper-parameters so readers must take them from the file.
        self.bn2 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.2)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32 * 14 * 14, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(self.flatten(self.pool(x)))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BN and a residual connection.

    With stride > 1 or a change of width the shortcut is a 1x1 convolution
    followed by BN ("downsample"), as in torchvision's ResNet.
    """

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                nn.BatchNorm2d(cout),
            )
        else:
            self.downsample = None

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(self.flatten(self.avgpool(x)))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(784, 128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class MLPBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(784, 128)
        self.bn1 = nn.BatchNorm1d(128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.bn1(self.fc1(self.flatten(x)))))


MODELS = collections.OrderedDict(
    [
        ("small_cnn", SmallCNN),
        ("small_resnet", SmallResNet),
        ("mlp", MLP),
        ("mlp_bn", MLPBN),
    ]
)


def batchnorm_modules(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def build(name, index):
    """Build model `name` from its own seed and give its BN layers random state."""
    torch.manual_seed(SEED + index)
    model = MODELS[name]()
    gen = torch.Generator().manual_seed(1000 + SEED + index)
    with torch.no_grad():
        for _, bn in batchnorm_modules(model):
            c = bn.num_features
            bn.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
            bn.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
            bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
            bn.bias.copy_(0.4 * torch.rand(c, generator=gen) - 0.2)
    return model


# ---------------------------------------------------------------------------
# Data.


def load_reference_inputs():
    with gzip.open(os.path.join(MNIST_DIR, IMAGES_FILE), "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">4I", raw[:16])
    assert magic == 0x803 and rows == 28 and cols == 28 and n >= NUM_REF, (magic, n, rows, cols)
    pixels = np.frombuffer(raw, dtype=np.uint8, count=NUM_REF * rows * cols, offset=16)
    x = pixels.astype(np.float32).reshape(NUM_REF, 1, rows, cols)
    # All in float32: (u8 / 255 - mean) / std.
    x = (x / np.float32(255.0) - np.float32(NORM_MEAN)) / np.float32(NORM_STD)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


# ---------------------------------------------------------------------------
# JSON helpers: floats as the shortest decimal that reads back to the same
# float32 (numpy's float32 repr), which is at most 9 significant digits.


def f32_list(t):
    a = np.asarray(t.detach().numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float32)
    if a.ndim == 1:
        # str() of a numpy float32 is its shortest round-trip decimal.
        return [float(str(v)) for v in a]
    return [f32_list(v) for v in a]


def check_f32_roundtrip(values, tensor):
    back = np.asarray(values, dtype=np.float64).astype(np.float32)
    want = tensor.detach().numpy().astype(np.float32)
    assert np.array_equal(back, want), "float32 JSON round trip failed"


# ---------------------------------------------------------------------------
# ONNX inspection.


def onnx_summary(path):
    m = onnx.load(path)
    onnx.checker.check_model(m)
    g = m.graph
    opset = None
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = imp.version
    ops = collections.Counter(n.op_type for n in g.node)
    bn_nodes = []
    for n in g.node:
        if n.op_type != "BatchNormalization":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        bn_nodes.append(
            {
                "name": n.name,
                "inputs": list(n.input),
                "outputs": list(n.output),
                "epsilon": float(str(np.float32(attrs.get("epsilon", 1e-5)))),
                "momentum": float(str(np.float32(attrs.get("momentum", 0.9)))),
                "training_mode": int(attrs.get("training_mode", 0)),
            }
        )
    inits = collections.OrderedDict((t.name, onnx.numpy_helper.to_array(t)) for t in g.initializer)
    return {
        "model": m,
        "opset": opset,
        "ir_version": m.ir_version,
        "producer": "%s %s" % (m.producer_name, m.producer_version),
        "ops": ops,
        "bn_nodes": bn_nodes,
        "initializers": inits,
        "graph_inputs": [i.name for i in g.input],
        "graph_outputs": [o.name for o in g.output],
    }


def torch_state_names(model):
    """Parameter and buffer names that ONNX should carry (num_batches_tracked never)."""
    return [k for k in model.state_dict().keys() if not k.endswith("num_batches_tracked")]


def compare_state(model, inits):
    """Max abs difference between model state and the same-named initializers."""
    sd = model.state_dict()
    worst = 0.0
    for k in torch_state_names(model):
        if k not in inits:
            return None
        worst = max(worst, float(np.max(np.abs(sd[k].numpy() - inits[k]))) if sd[k].numel() else 0.0)
    return worst


def model_from_initializers(template, inits):
    """A copy of `template` whose parameters and buffers are the file's initializers."""
    m = copy.deepcopy(template)
    sd = m.state_dict()
    for k in torch_state_names(m):
        sd[k] = torch.from_numpy(np.array(inits[k], dtype=np.float32))
    m.load_state_dict(sd)
    return m


def bn_descriptions(model):
    out = []
    for name, bn in batchnorm_modules(model):
        tm = 0.1 if bn.momentum is None else bn.momentum
        out.append(
            collections.OrderedDict(
                [
                    ("module", name),
                    ("channels", bn.num_features),
                    ("eps", float(str(np.float32(bn.eps)))),
                    ("torch_momentum", tm),
                    ("onnx_momentum", float(str(np.float32(1.0 - tm)))),
                    ("scale", name + ".weight"),
                    ("bias", name + ".bias"),
                    ("mean", name + ".running_mean"),
                    ("var", name + ".running_var"),
                ]
            )
        )
    return out


# ---------------------------------------------------------------------------
# Export.


def export(model, x, path, mode, opset):
    kwargs = dict(
        export_params=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes=DYNAMIC_AXES,
    )
    if mode == "preserve":
        model.eval()
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    elif mode == "training":
        model.train()
        kwargs["training"] = torch.onnx.TrainingMode.TRAINING
        # torch 1.13 warns when constant folding is on in training mode. For
        # these models the graph came out the same either way (checked), so
        # follow the recommendation and turn it off.
        kwargs["do_constant_folding"] = False
    elif mode == "eval_default":
        model.eval()
    else:
        raise ValueError(mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(model, (x,), path, **kwargs)
    return [str(w.message).splitlines()[0] for w in caught]


def nbt(model):
    return {k: int(v) for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}


def run():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x = load_reference_inputs()

    plan = []  # (file name, model name, mode, opset)
    for name in MODELS:
        plan.append(("%s.preserve.onnx" % name, name, "preserve", OPSET))
        if name != "mlp":  # without BN or Dropout its TRAINING export is byte-identical
            plan.append(("%s.training.onnx" % name, name, "training", OPSET))
    plan.append(("small_cnn.eval_default.onnx", "small_cnn", "eval_default", OPSET))
    plan.append(("small_cnn.preserve.op17.onnx", "small_cnn", "preserve", 17))

    ref_models = collections.OrderedDict()
    report = []
    for fname, name, mode, opset in plan:
        index = list(MODELS).index(name)
        fresh = build(name, index)
        exported = copy.deepcopy(fresh)  # this object goes through torch.onnx.export
        path = os.path.join(HERE, fname)
        warns = export(exported, x, path, mode, opset)
        s = onnx_summary(path)
        inits = s["initializers"]

        names = torch_state_names(fresh)
        names_equal = set(names) == set(inits.keys())
        missing = [k for k in names if k not in inits]
        extra = [k for k in inits if k not in names]

        # Which state did the file capture? Compare with the fresh model and the
        # post-export model.
        d_fresh = compare_state(fresh, inits)
        d_after = compare_state(exported, inits)

        entry = collections.OrderedDict()
        if not missing:
            ref = model_from_initializers(fresh, inits)
        else:
            # Folded export: weights no longer match torch names; the file is
            # equivalent to the fresh model in eval mode.
            ref = copy.deepcopy(fresh)
        ref.eval()
        with torch.no_grad():
            eval_logits = ref(x)
        entry["eval_logits"] = f32_list(eval_logits)
        check_f32_roundtrip(entry["eval_logits"], eval_logits)
        if mode == "training":
            tr = copy.deepcopy(ref)
            tr.train()
            with torch.no_grad():
                train_logits = tr(x)
            entry["train_logits"] = f32_list(train_logits)
            check_f32_roundtrip(entry["train_logits"], train_logits)
        entry["batchnorms"] = [] if mode == "eval_default" else bn_descriptions(fresh)
        entry["onnx_bn_nodes"] = [b["name"] for b in s["bn_nodes"]]
        entry["onnx_bn_attributes"] = [
            collections.OrderedDict(
                [
                    ("name", b["name"]),
                    ("epsilon", b["epsilon"]),
                    ("momentum", b["momentum"]),
                    ("training_mode", b["training_mode"]),
                    ("inputs", b["inputs"]),
                    ("outputs", b["outputs"]),
                ]
            )
            for b in s["bn_nodes"]
        ]
        entry["opset"] = s["opset"]
        ref_models[fname] = entry

        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        report.append(
            collections.OrderedDict(
                [
                    ("file", fname),
                    ("bytes", os.path.getsize(path)),
                    ("sha256", digest),
                    ("opset", s["opset"]),
                    ("ir_version", s["ir_version"]),
                    ("producer", s["producer"]),
                    ("ops", dict(sorted(s["ops"].items()))),
                    ("graph_inputs", s["graph_inputs"]),
                    ("graph_outputs", s["graph_outputs"]),
                    ("init_names_equal_torch", names_equal),
                    ("init_missing", missing),
                    ("init_extra", extra),
                    ("max_abs_init_minus_fresh", d_fresh),
                    ("max_abs_init_minus_after_export", d_after),
                    ("num_batches_tracked_after_export", nbt(exported)),
                    ("bn_nodes", s["bn_nodes"]),
                    ("export_warnings", warns),
                ]
            )
        )

    reference = collections.OrderedDict()
    reference["normalization"] = collections.OrderedDict(
        [
            ("source", "testdata/mnist/" + IMAGES_FILE),
            ("images", "first %d" % NUM_REF),
            ("formula", "float32: (pixel / 255 - mean) / std"),
            ("mean", NORM_MEAN),
            ("std", NORM_STD),
        ]
    )
    reference["inputs"] = collections.OrderedDict(
        [("shape", list(x.shape)), ("data", f32_list(x.reshape(-1)))]
    )
    check_f32_roundtrip(reference["inputs"]["data"], x.reshape(-1))
    reference["versions"] = collections.OrderedDict(
        [("torch", torch.__version__), ("onnx", onnx.__version__), ("numpy", np.__version__)]
    )
    reference["models"] = ref_models
    text = json.dumps(reference, indent=1) + "\n"
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        f.write(text)

    for r in report:
        print("== %s" % r["file"])
        for k, v in r.items():
            if k == "file":
                continue
            if k == "bn_nodes":
                for b in v:
                    print("   bn %s in=%s out=%s eps=%g momentum=%g training_mode=%d"
                          % (b["name"], b["inputs"], b["outputs"], b["epsilon"], b["momentum"], b["training_mode"]))
                continue
            print("   %s: %s" % (k, v))
    print("reference.json sha256:", hashlib.sha256(text.encode()).hexdigest())

    # Independent check of the written files with a numpy interpreter.
    sys.dont_write_bytecode = True  # keep __pycache__ out of testdata
    sys.path.insert(0, HERE)
    import check_fixtures

    return check_fixtures.main()


if __name__ == "__main__":
    sys.exit(run())
