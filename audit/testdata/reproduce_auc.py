#!/usr/bin/python3
"""Recompute a bnaudit report's AUCs from its per-sample files, independently.

Reads REPORT_DIR/report.json, scores.csv and signals.npz (written by
bnaudit compare, audit or demo) and recomputes, with scikit-learn's
roc_auc_score, the AUC of every attack of the run the per-sample table
belongs to (the first variant; when its row aggregates several training
seeds, the first seed, whose AUCs report.json lists under per_seed): on
members vs non-members (rows with canary = 0) and on inserted vs held-out
canaries (rows with canary = 1).
It also recomputes the LOSS attack from the raw loss in signals.npz. Exits 1
when any AUC differs from the report's by 0.0005 or more (three decimals).

usage: /usr/bin/python3 audit/testdata/reproduce_auc.py REPORT_DIR
"""
import csv
import json
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

d = sys.argv[1]
rep = json.load(open(os.path.join(d, "report.json")))
variant = rep["variants"][0]
rows = list(csv.DictReader(open(os.path.join(d, "scores.csv"))))
sig = np.load(os.path.join(d, "signals.npz"))
member = np.array([r["member"] == "1" for r in rows])
canary = np.array([r["canary"] == "1" for r in rows])
bad = 0


def check(name, want, scores, labels):
    global bad
    got = roc_auc_score(labels, scores)
    ok = abs(got - want) < 5e-4
    bad += not ok
    print("%-4s %-34s report %.4f  recomputed %.4f" % ("ok" if ok else "DIFF", name, want, got))


attacks, canary_attacks = variant["attacks"], variant.get("canary_attacks") or []
if variant.get("per_seed"):
    first = variant["per_seed"][0]
    attacks, canary_attacks = first["auc"], first.get("canary_auc") or []
    print("the row aggregates %d seeds; checking seed 0, the per-sample table's run" % len(variant["per_seed"]))
for block, sel, attacks in (("members", ~canary, attacks), ("canaries", canary, canary_attacks)):
    for a in attacks:
        col = "score_" + a["attack"]
        scores = np.array([float(r[col]) for r in rows])[sel]
        check("%s/%s (scores.csv)" % (block, a["attack"]), a["auc"]["estimate"], scores, member[sel])
        if a["attack"] == "loss":
            check("%s/loss (signals.npz raw loss)" % block, a["auc"]["estimate"], -sig["loss"][sel], sig["member"][sel])
sys.exit(1 if bad else 0)
