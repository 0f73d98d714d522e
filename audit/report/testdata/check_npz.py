#!/usr/bin/env python3
"""Check a signals.npz written by bnaudit against expected arrays, with NumPy.

Usage: check_npz.py SIGNALS.npz EXPECTED.json

EXPECTED.json maps each array name to {"dtype": NumPy dtype string,
"shape": [...], "values": [...]}; float64 values are given as the hex of
their IEEE-754 bits ("0x3ff0000000000000"), so that NaN, -0 and subnormals
compare exactly. The script checks that NumPy loads the archive without
pickles, that every member is an .npy of format version 1.0, that the
array names, dtypes, shapes and values match, and prints one line per array.
Exit status 0 when everything matches, 1 otherwise.
"""

import json
import sys
import zipfile

import numpy as np


def main(npz_path, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    failures = []

    # Every member is an .npy file of format version 1.0.
    with zipfile.ZipFile(npz_path) as zf:
        for info in zf.infolist():
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version != (1, 0):
                    failures.append(f"{info.filename}: format version {version}, want (1, 0)")

    with np.load(npz_path, allow_pickle=False) as npz:
        names = set(npz.files)
        if names != set(expected):
            failures.append(f"arrays {sorted(names)}, want {sorted(expected)}")
        for name, want in expected.items():
            if name not in names:
                continue
            a = npz[name]
            if a.dtype.str != want["dtype"]:
                failures.append(f"{name}: dtype {a.dtype.str}, want {want['dtype']}")
                continue
            if list(a.shape) != want["shape"]:
                failures.append(f"{name}: shape {a.shape}, want {tuple(want['shape'])}")
                continue
            if a.dtype == np.float64:
                got = [f"0x{v:016x}" for v in a.view("<u8").ravel().tolist()]
            else:
                got = a.ravel().tolist()
            if got != want["values"]:
                bad = [i for i, (g, w) in enumerate(zip(got, want["values"])) if g != w]
                failures.append(f"{name}: values differ at flat indices {bad[:10]}")
                continue
            print(f"{name}: {a.dtype.str} {a.shape} ok")

    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
