#!/usr/bin/python3
"""Export a small BatchNorm CNN with torch.onnx at the old opsets 9 and 11.

Run from anywhere:

    /usr/bin/python3 testdata/models/make_old_opsets.py

Needs Debian bookworm's python3-torch (1.13), python3-onnx and python3-numpy.
Reads the 64-image MNIST subset in ../mnist and writes, next to this script:

  old_cnn.op9.training.onnx    model.train(), TrainingMode.TRAINING, opset 9
  old_cnn.op9.preserve.onnx    model.eval(),  TrainingMode.PRESERVE, opset 9
  old_cnn.op11.training.onnx   model.train(), TrainingMode.TRAINING, opset 11
  old_cnn.op11.preserve.onnx   model.eval(),  TrainingMode.PRESERVE, opset 11
  old_opsets.json              torch's logits for the first 8 images

These are the inputs of onnxio.Upgrade's tests: at opset 9 torch writes Pad,
Clip and Dropout with attributes and BatchNormalization with its five
training outputs; at opset 11 Pad and Clip take inputs and Dropout still an
attribute. Everything runs on one CPU thread from fixed seeds.
"""

import collections
import copy
import gzip
import json
import os
import struct
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
SEED = 7
OPSETS = (9, 11)

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DYNAMIC_AXES = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}


class OldCNN(nn.Module):
    """ZeroPad2d(1) → conv1 3×3 (1→8) → bn1 → ReLU → MaxPool 2 → conv2 3×3
    (8→8, padding 1) → bn2 (eps 1e-3, momentum 0.2) → ReLU6 → Flatten →
    Dropout(0.25) → fc Linear(1568, 10).

    ZeroPad2d becomes Pad and ReLU6 becomes Clip, two ops whose attributes
    became inputs in opset 11."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d(1)
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8, eps=1e-3, momentum=0.2)
        self.relu6 = nn.ReLU6()
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(self.pad(x)))))
        x = self.relu6(self.bn2(self.conv2(x)))
        return self.fc(self.drop(torch.flatten(x, 1)))


def build():
    """The model from its seed, with random BN state (as make_fixtures.py
    gives its models) so that the statistics matter."""
    torch.manual_seed(SEED)
    model = OldCNN()
    gen = torch.Generator().manual_seed(1000 + SEED)
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            c = bn.num_features
            bn.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
            bn.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
            bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
            bn.bias.copy_(0.4 * torch.rand(c, generator=gen) - 0.2)
    return model


def load_reference_inputs():
    """The first 8 MNIST images, normalized in float32 as make_fixtures.py does."""
    with gzip.open(os.path.join(MNIST_DIR, IMAGES_FILE), "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">4I", raw[:16])
    assert magic == 0x803 and rows == 28 and cols == 28 and n >= NUM_REF, (magic, n, rows, cols)
    pixels = np.frombuffer(raw, dtype=np.uint8, count=NUM_REF * rows * cols, offset=16)
    x = pixels.astype(np.float32).reshape(NUM_REF, 1, rows, cols)
    x = (x / np.float32(255.0) - np.float32(NORM_MEAN)) / np.float32(NORM_STD)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def f32_list(t):
    """Floats as the shortest decimal that reads back to the same float32."""
    a = np.asarray(t.detach().numpy(), dtype=np.float32)
    if a.ndim == 1:
        return [float(str(v)) for v in a]
    return [f32_list(torch.from_numpy(v)) for v in a]


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
    else:
        model.train()
        kwargs["training"] = torch.onnx.TrainingMode.TRAINING
        kwargs["do_constant_folding"] = False  # torch 1.13 recommends it off in training mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), path, **kwargs)


def from_file(template, path):
    """A copy of template whose parameters and buffers are the file's
    initializers (a TRAINING export ran one training forward, which moved
    the running statistics before they were written)."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    m = copy.deepcopy(template)
    sd = m.state_dict()
    for k in sd:
        if not k.endswith("num_batches_tracked"):
            sd[k] = torch.from_numpy(np.array(inits[k], dtype=np.float32))
    m.load_state_dict(sd)
    return m


def run():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x = load_reference_inputs()
    models = collections.OrderedDict()
    for opset in OPSETS:
        for mode in ("training", "preserve"):
            fname = "old_cnn.op%d.%s.onnx" % (opset, mode)
            path = os.path.join(HERE, fname)
            fresh = build()
            export(copy.deepcopy(fresh), x, path, mode, opset)
            m = onnx.load(path)
            onnx.checker.check_model(m)
            ref = from_file(fresh, path)
            entry = collections.OrderedDict()
            ref.eval()
            with torch.no_grad():
                entry["eval_logits"] = f32_list(ref(x))
            if mode == "training":
                # BN on the batch's statistics, Dropout off: what ONNX Runtime
                # computes for the file (old Dropout leaves the mode to the
                # runtime, which runs inference).
                ref.train()
                ref.drop.eval()
                with torch.no_grad():
                    entry["train_logits"] = f32_list(ref(x))
            entry["opset"] = opset
            entry["ops"] = dict(collections.Counter(n.op_type for n in m.graph.node))
            models[fname] = entry
            print("%-30s opset %d IR %d %6d bytes  %s" % (fname, opset, m.ir_version, os.path.getsize(path), entry["ops"]))
    out = collections.OrderedDict()
    out["inputs"] = "the first %d images of ../mnist/%s, (pixel / 255 - %.4f) / %.4f in float32: reference.json's inputs" % (
        NUM_REF, IMAGES_FILE, NORM_MEAN, NORM_STD)
    out["versions"] = {"torch": torch.__version__, "onnx": onnx.__version__, "numpy": np.__version__}
    out["models"] = models
    with open(os.path.join(HERE, "old_opsets.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    run()
