#!/usr/bin/python3
"""Writes roc_refs.json: ROC curves, AUCs and TPR at low FPR computed by
scikit-learn, the independent reference for audit/roc.go.

Run from this folder with Debian's python3 (scikit-learn 1.2, numpy):

    /usr/bin/python3 make_roc_refs.py

Labels: 1 = member (the positive class); a higher score = more member-like.
Curves use drop_intermediate=False so that every distinct score is a point.
In scikit-learn 1.2 the first threshold is max(score) + 1 (1.3+ writes inf);
the Go test checks thresholds from the second point on.
TPR at a target FPR is "max tpr where fpr <= target" on that curve.
"""
import json
import os

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score, roc_curve

TARGETS = [0.001, 0.01, 0.1]


def case(name, scores, labels):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    return {
        "name": name,
        "scores": [float(s) for s in scores],
        "labels": [int(v) for v in labels],
        "auc": float(roc_auc_score(labels, scores)),
        "fpr": [float(v) for v in fpr],
        "tpr": [float(v) for v in tpr],
        "thresholds": [float(v) for v in thr],
        "tpr_at": {str(t): float(tpr[fpr <= t].max()) for t in TARGETS},
        "n_members": int(labels.sum()),
        "n_nonmembers": int((1 - labels).sum()),
    }


def main():
    rng = np.random.default_rng(20261128)
    cases = []

    y = rng.integers(0, 2, 200)
    cases.append(case("random_continuous", rng.normal(0, 1, 200) + 0.7 * y, y))

    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(0, 1, 300) + 0.5 * y, 1)
    cases.append(case("heavy_ties", s, y))

    y = rng.integers(0, 2, 120)
    s = rng.integers(0, 3, 120).astype(np.float64)  # three distinct values only
    cases.append(case("three_values", s, y))

    y = np.array([1, 0] * 25)
    cases.append(case("all_tied", np.full(50, 0.25), y))

    y = np.array([1] * 30 + [0] * 40)
    s = np.concatenate([rng.uniform(2, 3, 30), rng.uniform(0, 1, 40)])
    cases.append(case("perfectly_separated", s, y))
    cases.append(case("inverted", -s, y))

    cases.append(case("small_n", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]))
    cases.append(case("two_samples", [0.5, 0.5], [1, 0]))

    y = np.array([1] * 1000 + [0] * 1000)
    s = rng.normal(0, 1, 2000) + 0.3 * y
    cases.append(case("n1000_nonmembers", s, y))

    # 1000 non-members, scores in steps of 0.05: ties straddle the 0.1%
    # and 1% FPR boundaries.
    y = np.array([1] * 500 + [0] * 1000)
    s = np.round(rng.normal(0, 1, 1500) + 0.8 * y, 1)
    cases.append(case("n1000_nonmembers_ties", s, y))

    # Members with losses that underflowed to exactly 0 (LOSS score -0.0 and
    # 0.0): the float32 pitfall of docs/METHODS.md, a big tie at the top.
    y = np.array([1] * 200 + [0] * 300)
    loss = np.concatenate([rng.exponential(0.2, 200), rng.exponential(0.6, 300)])
    loss[:30] = 0.0
    loss[200:205] = 0.0
    cases.append(case("loss_zero_ties", -loss, y))

    y = rng.integers(0, 2, 400)
    s = rng.normal(0, 1, 400) * 1e6 + y * 1e5
    s[::7] = -np.abs(s[::7])
    cases.append(case("wide_range_negative", s, y))

    out = {
        "generator": "make_roc_refs.py",
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "targets": TARGETS,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roc_refs.json")
    # One case per line keeps the file small and diffs readable.
    head = {k: v for k, v in out.items() if k != "cases"}
    with open(path, "w") as f:
        f.write(json.dumps(head)[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]}\n")


if __name__ == "__main__":
    main()
