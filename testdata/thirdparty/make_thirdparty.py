#!/usr/bin/python3
"""Train and export a small CNN with PyTorch alone, as a third party would,
and write the membership numbers bnaudit must reproduce from the ONNX files.

    /usr/bin/python3 testdata/thirdparty/make_thirdparty.py [FASHION_MNIST_DIR]

Needs Debian bookworm's python3-torch (1.13), python3-onnx, python3-numpy and
python3-sklearn, and Debian's dataset-fashion-mnist (default source:
/usr/share/datasets/fashion-mnist). Nothing of bnaudit runs here.

What it does, everything from SEED on one CPU thread:

  members      the first 2000 Fashion-MNIST training images (the same as the
               first 2000 of ../fashion-mnist, bnaudit's committed subset;
               checked here)
  non-members  the first 2000 Fashion-MNIST test images, written next to this
               script as nonmembers/t10k-{images-idx3,labels-idx1}-ubyte.gz
               (gzip mtime 0: the bytes depend only on the input); none equals
               a member pixel for pixel (checked: bnaudit would drop such a
               non-member)
  model        ThirdPartyCNN below: three 3x3 convolutions, each followed by
               BatchNorm (conv2 without bias, conv2 with stride 2), ReLU,
               MaxPool, Dropout(0.25), Linear; trained on the members with SGD
  exports      fmnist_cnn.eval_default.onnx  model.eval(), torch.onnx.export's
                                             defaults: BN folded into the convs
               fmnist_cnn.preserve.onnx      model.eval(),
                                             training=TrainingMode.PRESERVE: BN kept
  expected     expected.json: the member LOSS AUC (score = -cross-entropy,
               members positive) by scikit-learn's roc_auc_score on PyTorch's
               own logits of the members and non-members, the normalization,
               the recipe, and a cross-check of each .onnx file by the float64
               numpy interpreter of ../models/check_fixtures.py

The loss is computed in float64 from PyTorch's float32 logits (log-softmax),
as bnaudit does from ONNX Runtime's float32 logits: in float32 the loss of a
confidently fitted sample rounds to 0 and ties that float64 separates.
"""

import gzip
import hashlib
import json
import os
import struct
import sys
import warnings

import numpy as np
import onnx
import sklearn
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)
SOURCE = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"

SEED = 20240516
MEMBERS = 2000
NON_MEMBERS = 2000
# Fashion-MNIST's usual normalization (x = (pixel/255 - MEAN) / STD), the
# one bnaudit's docs and tests use; the audit must be given the same.
MEAN = 0.2860
STD = 0.3530
EPOCHS = 40
BATCH = 64
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 0.0
OPSET = 14
INPUT_NAME = "images"
OUTPUT_NAME = "scores"


class ThirdPartyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        # No bias (BN's shift takes its place), stride 2: 28x28 -> 14x14.
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)  # 14x14 -> 7x7
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.drop(torch.flatten(self.pool(x), 1))
        return self.fc(x)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">%dI" % ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array):
    head = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(">%dI" % array.ndim, *array.shape)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(head + array.astype(np.uint8).tobytes())


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def normalize(images):
    # As bnaudit's loader: float64 arithmetic on the float32 mean and std,
    # rounded to float32 once.
    m, s = float(np.float32(MEAN)), float(np.float32(STD))
    x = (images.astype(np.float64) / 255.0 - m) / s
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1)


def logits_of(model, x):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + 500]) for i in range(0, len(x), 500)]).numpy()


def loss64(logits, labels):
    z = logits.astype(np.float64)
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    return lse - z[np.arange(len(labels)), labels]


def member_loss_auc(logits_in, y_in, logits_out, y_out):
    scores = -np.concatenate([loss64(logits_in, y_in), loss64(logits_out, y_out)])
    member = np.concatenate([np.ones(len(y_in)), np.zeros(len(y_out))])
    return float(roc_auc_score(member, scores))


def export(model, path, preserve):
    model.eval()
    kwargs = dict(
        export_params=True,
        opset_version=OPSET,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
    )
    if preserve:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), path, **kwargs)
    m = onnx.load(path)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return m, ops


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)

    train_x = read_idx(os.path.join(SOURCE, "train-images-idx3-ubyte.gz"))[:MEMBERS]
    train_y = read_idx(os.path.join(SOURCE, "train-labels-idx1-ubyte.gz"))[:MEMBERS].astype(np.int64)
    test_x = read_idx(os.path.join(SOURCE, "t10k-images-idx3-ubyte.gz"))[:NON_MEMBERS]
    test_y = read_idx(os.path.join(SOURCE, "t10k-labels-idx1-ubyte.gz"))[:NON_MEMBERS].astype(np.int64)

    # The members are the head of bnaudit's committed subset.
    committed = read_idx(os.path.join(TESTDATA, "fashion-mnist", "train-images-idx3-ubyte.gz"))[:MEMBERS]
    committed_y = read_idx(os.path.join(TESTDATA, "fashion-mnist", "train-labels-idx1-ubyte.gz"))[:MEMBERS]
    assert np.array_equal(committed, train_x) and np.array_equal(committed_y, train_y), "../fashion-mnist is not the head of the source's training set"
    # No non-member equals a member (bnaudit would drop it and the AUCs would
    # no longer be over the same samples).
    seen = {img.tobytes() for img in train_x}
    shared = [i for i, img in enumerate(test_x) if img.tobytes() in seen]
    assert not shared, "non-members %s equal members" % shared

    write_idx(os.path.join(HERE, "nonmembers", "t10k-images-idx3-ubyte.gz"), test_x)
    write_idx(os.path.join(HERE, "nonmembers", "t10k-labels-idx1-ubyte.gz"), test_y)

    xin, xout = normalize(train_x), normalize(test_x)
    yin = torch.from_numpy(train_y)
    model = ThirdPartyCNN()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    order = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(MEMBERS, generator=order)
        total = 0.0
        for i in range(0, MEMBERS, BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = F.cross_entropy(model(xin[idx]), yin[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        print("epoch %2d  train loss %.4f" % (epoch + 1, total / MEMBERS))

    lin, lout = logits_of(model, xin), logits_of(model, xout)
    auc = member_loss_auc(lin, train_y, lout, test_y)
    auc32 = float(
        roc_auc_score(
            np.concatenate([np.ones(MEMBERS), np.zeros(NON_MEMBERS)]),
            -np.concatenate(
                [
                    F.cross_entropy(torch.from_numpy(lin), yin, reduction="none").numpy(),
                    F.cross_entropy(torch.from_numpy(lout), torch.from_numpy(test_y), reduction="none").numpy(),
                ]
            ),
        )
    )
    acc_in = float((lin.argmax(1) == train_y).mean())
    acc_out = float((lout.argmax(1) == test_y).mean())
    print("member accuracy %.4f, non-member accuracy %.4f, member LOSS AUC %.6f (float32 loss: %.6f)" % (acc_in, acc_out, auc, auc32))

    # Cross-check: each exported file, run by a float64 numpy interpreter,
    # gives PyTorch's logits and the same AUC.
    sys.path.insert(0, os.path.join(TESTDATA, "models"))
    from check_fixtures import run_graph

    exports = {}
    for name, preserve in (("eval_default", False), ("preserve", True)):
        fname = "fmnist_cnn.%s.onnx" % name
        path = os.path.join(HERE, fname)
        m, ops = export(model, path, preserve)
        nin = run_graph(m, xin.numpy(), False)
        nout = run_graph(m, xout.numpy(), False)
        diff = float(max(np.abs(nin - lin).max(), np.abs(nout - lout).max()))
        exports[name] = {
            "file": fname,
            "sha256": sha256(path),
            "export": "model.eval(), torch.onnx.export defaults (BN folded)" if not preserve else "model.eval(), training=torch.onnx.TrainingMode.PRESERVE",
            "ops": ops,
            "batchnorm_nodes": ops.get("BatchNormalization", 0),
            # The expected value: PyTorch's logits (the same module for both exports).
            "member_loss_auc": auc,
            "numpy_float64_member_loss_auc": member_loss_auc(nin, train_y, nout, test_y),
            "numpy_float64_max_abs_logit_diff": diff,
        }
        print("%-30s ops %s, max |numpy - torch| %.3g, numpy AUC %.6f" % (fname, ops, diff, exports[name]["numpy_float64_member_loss_auc"]))

    out = {
        "what": "member LOSS AUC of a small CNN trained by PyTorch on 2000 Fashion-MNIST training images, against 2000 test images",
        "made_by": "testdata/thirdparty/make_thirdparty.py",
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__},
        "seed": SEED,
        "normalization": {"mean": [MEAN], "std": [STD], "norm_flag": "%.4f/%.4f" % (MEAN, STD)},
        "members": {"path": "testdata/fashion-mnist", "split": "train", "first": MEMBERS},
        "nonmembers": {"path": "testdata/thirdparty/nonmembers", "split": "test", "first": NON_MEMBERS},
        "recipe": {
            "epochs": EPOCHS,
            "batch": BATCH,
            "optimizer": "SGD momentum %g weight decay %g" % (MOMENTUM, WEIGHT_DECAY),
            "lr": LR,
            "schedule": "cosine per epoch",
        },
        "attack": "LOSS: score = -cross-entropy (float64 from float32 logits), members positive; sklearn.metrics.roc_auc_score",
        "member_accuracy": acc_in,
        "nonmember_accuracy": acc_out,
        "member_loss_auc": auc,
        "member_loss_auc_float32_loss": auc32,
        "exports": exports,
        "nonmember_files": {
            n: sha256(os.path.join(HERE, "nonmembers", n)) for n in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
        },
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
