#!/usr/bin/python3
"""Write the small .npy/.npz fixtures the dataset tests read.

Run from anywhere with /usr/bin/python3 (needs numpy):

    /usr/bin/python3 trainer/dataset/testdata/make_npy.py

The files are written next to this script. Arrays written with np.savez /
np.savez_compressed carry the time of writing in their zip headers, so the
bytes change from run to run; the values below do not. The Go tests state
these values themselves.
"""

import io
import os
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def npy_bytes(arr, version=None):
    """One .npy file as bytes, with numpy's own writer."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def zip_of(name, entries, compress=zipfile.ZIP_STORED):
    """A .npz built by hand: entries maps a member name to its bytes."""
    with zipfile.ZipFile(path(name), "w", compression=compress) as z:
        for member, data in entries.items():
            info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compress
            z.writestr(info, data)


# u8.npz: uint8 x of 2-D samples (5, 2, 3) and int64 y, by np.savez.
#   x[i, r, c] = 10*i + 3*r + c, so x[0] = [[0,1,2],[3,4,5]], x[4] = [[40,41,42],[43,44,45]]
#   y = [0, 1, 2, 1, 0]
x = np.array([[[10 * i + 3 * r + c for c in range(3)] for r in range(2)] for i in range(5)], dtype=np.uint8)
np.savez(path("u8.npz"), x=x, y=np.array([0, 1, 2, 1, 0], dtype=np.int64))

# f32.npz: float32 x (4, 3, 2, 2) and int32 y, by np.savez.
#   x[i, c, h, w] = i + 0.25*c - 0.5*h + 0.125*w, e.g. x[3, 2, 1, 1] = 3.125
#   y = [3, 0, 1, 2]
i, c, h, w = np.meshgrid(np.arange(4), np.arange(3), np.arange(2), np.arange(2), indexing="ij")
x = (i + 0.25 * c - 0.5 * h + 0.125 * w).astype(np.float32)
np.savez(path("f32.npz"), x=x, y=np.array([3, 0, 1, 2], dtype=np.int32))

# f64_yu8.npz: float64 x of 1-D samples (3, 4), converted to float32 on
# reading, and uint8 y.
#   x = [[1.5, -2, 0, 4], [0.1, 0.2, 0.3, 0.4], [-1e3, 1e3, 7, 8]]
#   y = [1, 0, 1]
np.savez(path("f64_yu8.npz"),
         x=np.array([[1.5, -2, 0, 4], [0.1, 0.2, 0.3, 0.4], [-1e3, 1e3, 7, 8]], dtype=np.float64),
         y=np.array([1, 0, 1], dtype=np.uint8))

# compressed.npz: np.savez_compressed (deflate), uint8 x (100, 8, 8) and
# int64 y.
#   x[i, r, c] = (i + r*c) % 7 * 30  (x[99, 7, 7] = (99 + 49) % 7 * 30 = 30)
#   y = i % 10
i, r, c = np.meshgrid(np.arange(100), np.arange(8), np.arange(8), indexing="ij")
x = ((i + r * c) % 7 * 30).astype(np.uint8)
np.savez_compressed(path("compressed.npz"), x=x, y=(np.arange(100) % 10).astype(np.int64))

# v2v3.npz: x with a version 2.0 header and y with a version 3.0 header,
# deflated, zipped by hand.
#   x = uint8 [[[1, 2], [3, 4]], [[5, 6], [7, 8]]], y = int16 [1, 0]
zip_of("v2v3.npz", {
    "x.npy": npy_bytes(np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], dtype=np.uint8), version=(2, 0)),
    "y.npy": npy_bytes(np.array([1, 0], dtype=np.int16), version=(3, 0)),
}, compress=zipfile.ZIP_DEFLATED)

# fortran.npz: x stored in Fortran order (must be refused).
zip_of("fortran.npz", {
    "x.npy": npy_bytes(np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 2, 2))),
    "y.npy": npy_bytes(np.array([0, 1, 2], dtype=np.int64)),
})

# bigendian.npz: x as big-endian float32 (must be refused).
zip_of("bigendian.npz", {
    "x.npy": npy_bytes(np.arange(6, dtype=">f4").reshape(3, 2)),
    "y.npy": npy_bytes(np.array([0, 1, 2], dtype=np.int64)),
})

# truncated_entry.npz: x.npy cut 10 bytes short inside a valid zip.
zip_of("truncated_entry.npz", {
    "x.npy": npy_bytes(np.arange(24, dtype=np.float32).reshape(3, 8))[:-10],
    "y.npy": npy_bytes(np.array([0, 1, 2], dtype=np.int64)),
})

# truncated.npz: u8.npz's bytes cut in half (no zip central directory).
with open(path("u8.npz"), "rb") as f:
    whole = f.read()
with open(path("truncated.npz"), "wb") as f:
    f.write(whole[: len(whole) // 2])

# nan.npz: float32 x (4, 2) with NaN in sample 2, and inf.npz with -Inf in
# sample 1.
x = np.zeros((4, 2), dtype=np.float32)
x[2, 1] = np.nan
np.savez(path("nan.npz"), x=x, y=np.array([0, 1, 0, 1]))
x = np.zeros((4, 2), dtype=np.float32)
x[1, 0] = -np.inf
np.savez(path("inf.npz"), x=x, y=np.array([0, 1, 0, 1]))

# mismatch.npz: 4 samples, 3 labels.
np.savez(path("mismatch.npz"), x=np.zeros((4, 2, 2), dtype=np.uint8), y=np.array([0, 1, 2]))

# neglabel.npz: int8 y with -1 for sample 1.
np.savez(path("neglabel.npz"), x=np.zeros((3, 2), dtype=np.uint8), y=np.array([0, -1, 2], dtype=np.int8))

# int64x.npz: x of int64 (not a sample type).
np.savez(path("int64x.npz"), x=np.zeros((2, 2), dtype=np.int64), y=np.array([0, 1]))

# noy.npz: x only.
np.savez(path("noy.npz"), x=np.zeros((2, 2), dtype=np.uint8))

# index.npy: int64 indices [3, 1, 4, 0]; index_v2.npy the same with a
# version 2.0 header and int32; index_dup.npy repeats 4; truncated.npy is
# index.npy cut 3 bytes short; float.npy holds float32 [1, 2] (not
# indices); x.npy is a lone sample array.
np.save(path("index.npy"), np.array([3, 1, 4, 0], dtype=np.int64))
with open(path("index_v2.npy"), "wb") as f:
    f.write(npy_bytes(np.array([3, 1, 4, 0], dtype=np.int32), version=(2, 0)))
np.save(path("index_dup.npy"), np.array([3, 4, 4], dtype=np.int64))
with open(path("index.npy"), "rb") as f:
    whole = f.read()
with open(path("truncated.npy"), "wb") as f:
    f.write(whole[:-3])
np.save(path("float.npy"), np.array([1, 2], dtype=np.float32))
np.save(path("x.npy"), np.zeros((2, 3), dtype=np.uint8))

print("wrote fixtures to", HERE)
