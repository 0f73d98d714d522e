#!/usr/bin/python3
"""Write the committed Fashion-MNIST subset bnaudit's demo and tests use.

Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist,
MIT licence) as installed by Debian's package dataset-fashion-mnist under
/usr/share/datasets/fashion-mnist/. This script copies

    the first 4000 training images and labels -> train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz
    the first 1000 test images and labels     -> t10k-images-idx3-ubyte.gz,  t10k-labels-idx1-ubyte.gz

next to itself, in the same IDX layout (so the folder loads like the full
data set), gzipped with mtime 0 so the bytes depend only on the input.

usage: /usr/bin/python3 testdata/fashion-mnist/make_subset.py [SOURCE_DIR]
"""
import gzip
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
COUNTS = {"train": 4000, "t10k": 1000}


def read(path):
    with gzip.open(path, "rb") as f:
        return f.read()


def subset(data, count):
    ndim = data[3]
    dims = list(struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim]))
    per = 1
    for d in dims[1:]:
        per *= d
    assert count <= dims[0]
    head = data[:4] + struct.pack(">I", count) + data[8:4 + 4 * ndim]
    start = 4 + 4 * ndim
    return head + data[start:start + count * per]


def write(name, payload):
    path = os.path.join(HERE, name)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(payload)
    print("%s  %s" % (hashlib.sha256(open(path, "rb").read()).hexdigest(), name))


for split, count in COUNTS.items():
    for kind in ("images-idx3", "labels-idx1"):
        name = "%s-%s-ubyte.gz" % (split, kind)
        write(name, subset(read(os.path.join(SOURCE, name)), count))
