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


print("| model | PyTorch default malloc (steps/s) | PyTorch tuned malloc (steps/s) | bnaudit on ORT (steps/s) | bnaudit / PyTorch tuned | ORT forward-only (batches/s) | peak RSS PyTorch tuned / bnaudit (MiB) |")
print("|---|---|---|---|---|---|---|")
for model in ("small_cnn", "small_resnet"):
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
