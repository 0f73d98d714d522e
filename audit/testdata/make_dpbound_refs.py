#!/usr/bin/python3
"""Writes dpbound_refs.json: one-run lower bounds on epsilon (Steinke, Nasr,
Jagielski, "Privacy Auditing with One (1) Training Run", NeurIPS 2023),
computed with scipy, the independent reference for audit/dpbound.go.

Written from the paper's definitions, not from audit/dpbound.go: the
binomial tails are scipy.stats.binom's, the largest epsilon is found with
scipy.optimize.brentq (audit/dpbound.go bisects), and the guesses are made
with numpy from the scores' ranks.

    /usr/bin/python3 make_dpbound_refs.py            # writes dpbound_refs.json
    /usr/bin/python3 make_dpbound_refs.py REPORT_DIR # the bound of a report

With REPORT_DIR it reads a bnaudit comparison's per-sample files (the
canary rows of each variant's first run), recomputes every variant's
dp_lower_bound with the same options (delta, confidence, the attacks
report.json names) and exits 1 when an epsilon differs by 1e-6 or more
(or k+, k-, the correct guesses or the number of tests differ).

Bound: m canaries, each included with probability 1/2; r guesses, v right.
If training is (eps, delta)-DP,
  P[W >= v] <= P[Bin(r, q) >= v] + 2 m delta max_{1<=i<=v} P[v-i <= Bin(r, q) < v] / i,
q = e^eps / (1 + e^eps). The bound at level beta is the largest eps where the
right-hand side is at most beta. The sweep over attacks and (k+, k-) tests
each of its T choices at level beta / T (Bonferroni).
"""
import csv
import json
import math
import os
import sys

import numpy as np
from scipy import optimize, stats

FRACTIONS = [0, 0.05, 0.1, 0.25, 0.5]


def p_value(m, r, v, eps, delta):
    q = math.exp(eps) / (1 + math.exp(eps)) if eps < 700 else 1.0
    tail = stats.binom.sf(v - 1, r, q)
    ks = np.arange(v - 1, -1, -1)  # v-1, v-2, ..., 0
    below = np.cumsum(stats.binom.pmf(ks, r, q))  # P[v-i <= Bin < v], i = 1..v
    alpha = float(np.max(below / np.arange(1, v + 1))) if v > 0 else 0.0
    return min(1.0, tail + 2 * m * delta * alpha)


def eps_at(m, r, v, delta, beta):
    f = lambda e: p_value(m, r, v, e, delta) - beta
    if f(0.0) > 0:
        return 0.0
    hi = 1.0
    while f(hi) <= 0:
        hi *= 2
    return optimize.brentq(f, 0.0, hi, xtol=1e-13, rtol=1e-15, maxiter=500)


def guesses(s, member, kp, km):
    """IN for the kp highest, OUT for the km lowest; a tied group cut by a
    boundary is left out. Returns (plus, minus, correct)."""
    s = np.asarray(s, dtype=np.float64)
    n = len(s)
    desc = np.sort(s)[::-1]
    plus = kp
    while 0 < plus < n and desc[plus - 1] == desc[plus]:
        plus -= 1
    minus = km
    while 0 < minus < n and desc[n - minus] == desc[n - minus - 1]:
        minus -= 1
    correct = 0
    if plus > 0:
        cut = desc[plus - 1]  # every score >= cut is guessed IN
        correct += int(np.sum(member[s >= cut]))
    if minus > 0:
        cut = desc[n - minus]  # every score <= cut is guessed OUT
        correct += int(np.sum(~member[s <= cut]))
    return plus, minus, correct


def bound(scores, member, delta, conf):
    member = np.asarray(member, dtype=bool)
    n = len(member)
    ks = sorted(set(int(math.floor(f * n + 0.5)) for f in FRACTIONS))  # halves round up
    grid = [(a, b) for a in ks for b in ks if 1 <= a + b <= n]
    tests = len(grid) * len(scores)
    beta = (1 - conf) / tests
    best = None
    for name in sorted(scores):
        for kp, km in grid:
            plus, minus, correct = guesses(scores[name], member, kp, km)
            if plus + minus == 0:
                continue
            e = eps_at(n, plus + minus, correct, delta, beta)
            if best is None or e > best["epsilon"]:
                best = {"epsilon": e, "attack": name, "k_plus": plus, "k_minus": minus, "correct": correct}
    best.update({"tests": tests, "canaries": n, "delta": delta, "confidence": conf})
    return best


def fixed_cases():
    rng = np.random.default_rng(20261203)
    cases = []
    for name, m, shift, delta in [("weak", 100, 0.3, 1e-5), ("strong", 100, 3.0, 1e-5),
                                  ("null", 60, 0.0, 1e-5), ("perfect", 50, 50.0, 1e-5),
                                  ("strong-delta", 200, 2.0, 1e-3), ("ties", 40, 1.0, 1e-5)]:
        member = rng.random(m) < 0.5
        a = rng.normal(size=m) + shift * member
        b = rng.normal(size=m) + 0.5 * shift * member
        if name == "ties":
            a = np.round(a)  # many tied scores
            b = np.round(2 * b) / 2
        scores = {"loss": a.tolist(), "confidence": b.tolist()}
        cases.append({"name": name, "scores": scores, "member": member.tolist(), "delta": delta,
                      "confidence": 0.95, "want": bound(scores, member, delta, 0.95)})
    # p-values and single-test bounds at chosen (m, r, v).
    pvals, eps = [], []
    for m, r, v, e, d in [(100, 100, 100, 2.0, 1e-5), (100, 50, 40, 1.0, 1e-5), (1000, 200, 150, 0.5, 1e-3),
                          (20, 10, 0, 0.0, 1e-5), (500, 300, 290, 3.0, 1e-2)]:
        pvals.append({"m": m, "r": r, "v": v, "eps": e, "delta": d, "p": p_value(m, r, v, e, d)})
    for m, r, v, d, beta in [(100, 100, 100, 1e-5, 0.05), (100, 100, 100, 0, 0.05), (1000, 1000, 990, 1e-5, 0.05),
                             (100, 50, 30, 1e-5, 0.05), (50, 20, 20, 1e-5, 0.002)]:
        eps.append({"m": m, "r": r, "v": v, "delta": d, "beta": beta, "eps": eps_at(m, r, v, d, beta)})
    return {"cases": cases, "p_values": pvals, "epsilons": eps}


def check_one(name, want, csv_path):
    rows = list(csv.DictReader(open(csv_path)))
    can = [r for r in rows if r["canary"] == "1"]
    member = np.array([r["member"] == "1" for r in can])
    scores = {a: [float(r["score_" + a]) for r in can] for a in want["attacks"]}
    got = bound(scores, member, want["delta"], want["confidence"])
    ok = abs(got["epsilon"] - want["epsilon"]) < 1e-6 and got["k_plus"] == want["k_plus"] and \
        got["k_minus"] == want["k_minus"] and got["correct"] == want["correct"] and got["tests"] == want["tests"]
    print("%-4s %-10s eps report %.9f recomputed %.9f (k+ %d/%d, k- %d/%d, correct %d/%d, %d canaries, %d tests)" % (
        "ok" if ok else "DIFF", name, want["epsilon"], got["epsilon"], want["k_plus"], got["k_plus"],
        want["k_minus"], got["k_minus"], want["correct"], got["correct"], got["canaries"], got["tests"]))
    return ok


def check_report(d):
    """Every variant's dp_lower_bound, from its first run's scores: the
    run's own file under samples/ when the report lists one, else
    scores.csv (which holds the first variant's first run)."""
    rep = json.load(open(os.path.join(d, "report.json")))
    files = {(f["variant"], f["seed"]): f["scores"] for f in rep.get("sample_files") or []}
    checked, bad = 0, 0
    for i, v in enumerate(rep["variants"]):
        want = v.get("dp_lower_bound")
        if not want:
            continue
        path = files.get((v["name"], 0)) or ("scores.csv" if i == 0 else None)
        if path is None:
            print("DIFF %s: no per-sample file" % v["name"])
            bad += 1
            continue
        checked += 1
        bad += not check_one(v["name"], want, os.path.join(d, path))
    print("%d bounds checked, %d differ" % (checked, bad))
    return 0 if checked and not bad else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(check_report(sys.argv[1]))
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "dpbound_refs.json"), "w") as f:
        json.dump(fixed_cases(), f, indent=1)
        f.write("\n")
