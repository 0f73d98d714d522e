#!/usr/bin/python3
"""Print the Markdown table of one bench/run.sh result folder."""
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def go_metric(path, unit):
    vals = []
    for line in open(path):
        m = re.search(r"([0-9.e+-]+) %s" % re.escape(unit), line)
        if m and line.startswith("Benchmark"):
            vals.append(float(m.group(1)))
    return statistics.median(vals) if vals else float("nan")


steps = [m for m in ("small_cnn", "small_resnet") if os.path.exists(os.path.join(out, "bnaudit_%s_step.txt" % m))]
if steps:
    print("| model | PyTorch default malloc (steps/s) | PyTorch tuned malloc (steps/s) | bnaudit on ORT (steps/s) | bnaudit / PyTorch tuned | ORT forward-only (batches/s) | peak RSS PyTorch tuned / bnaudit (MiB) |")
    print("|---|---|---|---|---|---|---|")
for model in steps:
    d = json.load(open(os.path.join(out, "torch_%s_default.json" % model)))
    t = json.load(open(os.path.join(out, "torch_%s_tuned.json" % model)))
    step = os.path.join(out, "bnaudit_%s_step.txt" % model)
    fwd = os.path.join(out, "bnaudit_%s_forward.txt" % model)
    b = go_metric(step, "steps/s")
    rss = go_metric(step, "peak-MiB")
    f = go_metric(fwd, "batches/s")
    tt = t["train_steps_per_s_median"]
    print("| %s | %.1f | %.1f | %.1f | %.2f | %.0f | %.0f / %.0f |" % (
        model, d["train_steps_per_s_median"], tt, b, b / tt, f, t["peak_rss_mib"], rss))


ref = [m for m in ("small_cnn", "small_resnet") if os.path.exists(os.path.join(out, "bnaudit_%s_refmodels_jobs1.json" % m))]
if ref:
    print()
    print("| model | K | PyTorch default malloc (models/h) | PyTorch tuned malloc (models/h) | bnaudit jobs 1 (models/h) | bnaudit jobs 2 × 1 thread, the default (models/h) | best bnaudit / PyTorch tuned | peak RSS PyTorch tuned / bnaudit jobs 1 / jobs 2 (MiB) | pool accuracy PyTorch / bnaudit |")
    print("|---|---|---|---|---|---|---|---|---|")
for model in ref:
    d = json.load(open(os.path.join(out, "torch_%s_refmodels_default.json" % model)))
    t = json.load(open(os.path.join(out, "torch_%s_refmodels_tuned.json" % model)))
    b1 = json.load(open(os.path.join(out, "bnaudit_%s_refmodels_jobs1.json" % model)))
    b2 = json.load(open(os.path.join(out, "bnaudit_%s_refmodels_jobs2.json" % model)))
    best = max(b1["models_per_hour"], b2["models_per_hour"])
    print("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f / %.0f / %.0f | %.4f / %.4f |" % (
        model, b1["models"], d["models_per_hour"], t["models_per_hour"], b1["models_per_hour"], b2["models_per_hour"],
        best / t["models_per_hour"], t["peak_rss_mib"], b1["peak_rss_mib"], b2["peak_rss_mib"],
        t["mean_pool_accuracy"], b1["mean_pool_accuracy"]))
