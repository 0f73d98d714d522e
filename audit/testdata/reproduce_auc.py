#!/usr/bin/python3
"""Recompute a bnaudit report's AUCs from its per-sample files, independently.

Reads REPORT_DIR/report.json, scores.csv and signals.npz (written by
bnaudit compare, audit or demo) and recomputes, with scikit-learn's
roc_auc_score, the AUC of every attack of the run the per-sample table
belongs to (the first variant; when its row aggregates several training
seeds, the first seed, whose AUCs report.json lists under per_seed): on
members vs non-members (rows with canary = 0) and on inserted vs held-out
canaries (rows with canary = 1). A comparison of several runs also has
each run's own files under samples/ (listed in report.json's
sample_files); every one of them is checked against its variant's AUCs
(per_seed[seed] when the variant has several seeds).
It also recomputes the LOSS attack from the raw loss in signals.npz. A row
whose score is empty (NaN) is one the attack did not score -- the
quantile-regression attack (qmia) leaves out the non-members its
regression was fitted on -- and is left out of that attack's AUC; the
members and non-members left must be as many as the report says the AUC
rests on. Exits 1 when any AUC differs from the report's by 0.0005 or more
(three decimals), or a count differs.

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
bad = 0
checked = 0


def check(name, want, scores, labels, counts=None):
    """counts: the (members, non-members) the report says the AUC rests on."""
    global bad, checked
    got = roc_auc_score(labels, scores)
    ok = abs(got - want) < 5e-4
    extra = ""
    if counts is not None:
        have = (int(np.sum(labels)), int(np.sum(~labels)))
        if have != tuple(counts):
            ok = False
            extra = "  rows %d+%d, report %d+%d" % (have + tuple(counts))
    bad += not ok
    checked += 1
    print("%-4s %-44s report %.4f  recomputed %.4f%s" % ("ok" if ok else "DIFF", name, want, got, extra))


def number(v):
    """A scores.csv cell: empty is NaN (a row the attack did not score)."""
    return float(v) if v != "" else float("nan")


def run_aucs(variant, seed):
    """The AUCs report.json gives for one run of a variant."""
    if variant.get("per_seed"):
        for s in variant["per_seed"]:
            if s["seed"] == seed:
                return s["auc"], s.get("canary_auc") or []
        raise SystemExit("report.json has no seed %d for variant %s" % (seed, variant["name"]))
    return variant["attacks"], variant.get("canary_attacks") or []


def check_run(label, variant, seed, scores_path, signals_path):
    rows = list(csv.DictReader(open(os.path.join(d, scores_path))))
    sig = np.load(os.path.join(d, signals_path))
    member = np.array([r["member"] == "1" for r in rows])
    canary = np.array([r["canary"] == "1" for r in rows])
    attacks, canary_attacks = run_aucs(variant, seed)
    for block, sel, attacks in (("members", ~canary, attacks), ("canaries", canary, canary_attacks)):
        for a in attacks:
            col = "score_" + a["attack"]
            scores = np.array([number(r[col]) for r in rows])[sel]
            scored = ~np.isnan(scores)
            check("%s %s/%s (csv)" % (label, block, a["attack"]), a["auc"]["estimate"], scores[scored], member[sel][scored],
                  (a["members"], a["non_members"]) if a.get("members") and a.get("non_members") else None)
            if a["attack"] == "loss":
                check("%s %s/loss (npz raw loss)" % (label, block), a["auc"]["estimate"], -sig["loss"][sel], sig["member"][sel])


variants = {v["name"]: v for v in rep["variants"]}
first = rep["variants"][0]
if first.get("per_seed"):
    print("the first row aggregates %d seeds; scores.csv is seed 0" % len(first["per_seed"]))
check_run(first["name"] + "/seed0", first, 0, "scores.csv", "signals.npz")
for f in rep.get("sample_files") or []:
    check_run("%s/seed%d" % (f["variant"], f["seed"]), variants[f["variant"]], f["seed"], f["scores"], f["signals"])
print("%d AUCs checked, %d differ" % (checked, bad))
sys.exit(1 if bad else 0)
