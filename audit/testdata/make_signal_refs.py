#!/usr/bin/python3
"""Writes signal_refs.json, the independent references for audit/signals.go
and audit/attacks.go.

Run from this folder with Debian's python3 (numpy, scipy, mpmath):

    /usr/bin/python3 make_signal_refs.py

signals: loss, p_y, phi, entropy, modified entropy (Song & Mittal 2021,
eq. 8, logs clamped at 1e-30) and correctness, computed with mpmath at 60
digits from the logits (so extreme logits have exact references), rounded
to float64 at the end. Logits of the "float32" cases are float32 values.

lira: online/offline scores under the conventions that audit.LiRA documents
(means, per-sample std with n-1, pooled within-sample std for fixed
variance, the marginal Gaussian for samples without IN or OUT models, the
pooled std for samples with one), written here with numpy and scipy.

rmia: scores by brute force over every (x, z) pair, O(n*m), in numpy.
"""
import json
import os

import mpmath
import numpy as np
from scipy.stats import norm

mpmath.mp.dps = 60
CLAMP = mpmath.mpf(1e-30)


def signals_ref(z, y):
    z = [mpmath.mpf(float(v)) for v in z]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
    p = [mpmath.exp(v - lse) for v in z]
    loss = lse - z[y]
    others = mpmath.log(mpmath.fsum(mpmath.exp(v) for j, v in enumerate(z) if j != y))
    phi = z[y] - others
    ent = -mpmath.fsum(pj * mpmath.log(pj) for pj in p if pj > 0)
    q = mpmath.fsum(pj for j, pj in enumerate(p) if j != y)  # 1 - p_y
    mentr = -q * mpmath.log(max(p[y], CLAMP))
    for j, pj in enumerate(p):
        if j == y:
            continue
        one_minus = mpmath.fsum(pi for i, pi in enumerate(p) if i != j)
        mentr -= pj * mpmath.log(max(one_minus, CLAMP))
    best = max(range(len(z)), key=lambda j: (z[j], -j))  # first argmax
    return {
        "logits": [float(v) for v in z],
        "label": int(y),
        "loss": float(loss),
        "prob": float(p[y]),
        "phi": float(phi),
        "entropy": float(ent),
        "mod_entropy": float(mentr),
        "correct": best == y,
    }


def signal_cases(rng):
    cases = []
    ln3 = float(np.log(3.0))
    special = [
        ("two_class_ln3_y0", [0.0, ln3], 0),
        ("two_class_ln3_y1", [0.0, ln3], 1),
        ("extreme_1000_y0", [1000.0, 0.0], 0),
        ("extreme_1000_y1", [1000.0, 0.0], 1),
        ("extreme_40_y0", [40.0, 0.0], 0),
        ("extreme_40_y1", [40.0, 0.0], 1),
        ("extreme_neg_y2", [-1000.0, 0.0, 5.0], 2),
        ("extreme_neg_y0", [-1000.0, 0.0, 5.0], 0),
        ("tied_max_first", [2.0, 2.0, -1.0], 0),
        ("tied_max_second", [2.0, 2.0, -1.0], 1),
        ("uniform", [0.5] * 10, 3),
        ("confident_ten", [30.0] + [0.0] * 9, 0),
        ("very_confident_ten", [80.0, -3.0] + [1.0] * 8, 0),
        ("very_wrong_ten", [80.0, -3.0] + [1.0] * 8, 1),
        ("large_offset", [1e6 + 1.0, 1e6, 1e6 - 2.0], 1),
    ]
    for name, z, y in special:
        c = signals_ref(z, y)
        c["name"] = name
        cases.append(c)
    for i in range(30):
        z = rng.normal(0, 3, 10)
        y = int(rng.integers(0, 10))
        c = signals_ref(z, y)
        c["name"] = "random64_%d" % i
        cases.append(c)
    for i in range(20):
        z = (rng.normal(0, 6, 5)).astype(np.float32)
        y = int(rng.integers(0, 5))
        c = signals_ref(z, y)
        c["name"] = "float32_%d" % i
        c["float32"] = True
        cases.append(c)
    return cases


def lira_ref(rng):
    n_ref, n = 8, 24
    mu_out = rng.normal(0, 2, n)
    mu_in = mu_out + rng.uniform(0.5, 3, n)
    in_mask = np.zeros((n_ref, n), dtype=bool)
    for i in range(n):
        in_mask[rng.permutation(n_ref)[: n_ref // 2], i] = True
    in_mask[:, 0] = False  # no IN model
    in_mask[:, 1] = False
    in_mask[3, 1] = True  # one IN model
    in_mask[:, 2] = True  # no OUT model
    in_mask[:, 3] = True
    in_mask[5, 3] = False  # one OUT model
    ref = np.where(in_mask, rng.normal(mu_in, 1.0, (n_ref, n)), rng.normal(mu_out, 0.5, (n_ref, n)))
    target = np.where(rng.integers(0, 2, n) == 1, rng.normal(mu_in, 1.0), rng.normal(mu_out, 0.5))

    def side(mask):
        cnt = mask.sum(0)
        vals = [ref[mask[:, i], i] for i in range(n)]
        mu = np.array([v.mean() if len(v) else np.nan for v in vals])
        sd = np.array([v.std(ddof=1) if len(v) > 1 else np.nan for v in vals])
        allv = ref[mask]
        marg_mu, marg_sd = allv.mean(), allv.std(ddof=1)
        ss = sum(((v - v.mean()) ** 2).sum() for v in vals if len(v) > 1)
        df = sum(len(v) - 1 for v in vals if len(v) > 1)
        pooled = np.sqrt(ss / df)
        return cnt, mu, sd, marg_mu, marg_sd, pooled

    def params(stats, fixed):
        cnt, mu, sd, marg_mu, marg_sd, pooled = stats
        m = np.where(cnt == 0, marg_mu, mu)
        s = np.where(cnt == 0, marg_sd, np.where(fixed | (cnt == 1), pooled, sd))
        return m, s

    si, so = side(in_mask), side(~in_mask)
    out = {
        "target": target.tolist(),
        "ref": ref.tolist(),
        "in": in_mask.astype(int).tolist(),
        "pooled_sigma_in": float(si[5]),
        "pooled_sigma_out": float(so[5]),
        "marginal_mu_in": float(si[3]),
        "marginal_sigma_in": float(si[4]),
        "marginal_mu_out": float(so[3]),
        "marginal_sigma_out": float(so[4]),
    }
    for fixed in (False, True):
        mi, sdi = params(si, fixed)
        mo, sdo = params(so, fixed)
        key = "fixed" if fixed else "per_sample"
        out["online_" + key] = (norm.logpdf(target, mi, sdi) - norm.logpdf(target, mo, sdo)).tolist()
        out["offline_" + key] = ((target - mo) / sdo).tolist()
    return out


def rmia_ref(rng):
    n_ref, n, m = 6, 40, 60
    in_x = rng.integers(0, 2, (n_ref, n)).astype(bool)
    in_x[:, 0] = True  # sample 0 has no OUT model
    ref_x = rng.beta(2, 2, (n_ref, n))
    tgt_x = rng.beta(2, 2, n)
    ref_z = rng.beta(2, 2, (n_ref, m))
    tgt_z = rng.beta(2, 2, m)
    # x 5..9 are copies of z 0..4: LR(x, z) = 1 exactly for those pairs.
    ref_x[:, 5:10] = ref_z[:, 0:5]
    tgt_x[5:10] = tgt_z[0:5]
    in_x[:, 5:10] = False
    tgt_x[10] = 0.0  # p(x|θ) underflowed
    tgt_z[7] = 0.0

    def mean_rows(ref, mask):
        # Sum in reference-model order, as the Go code does, so that exact
        # ties (LR = 1) stay exact.
        k, cols = ref.shape
        out = np.empty(cols)
        allv = [ref[j, i] for i in range(cols) for j in range(k) if mask[j, i]]
        marg = sum(allv) / len(allv)
        for i in range(cols):
            s, c = 0.0, 0
            for j in range(k):
                if mask[j, i]:
                    s += ref[j, i]
                    c += 1
            out[i] = s / c if c else marg
        return out

    res = {
        "target_x": tgt_x.tolist(),
        "ref_x": ref_x.tolist(),
        "in_x": in_x.astype(int).tolist(),
        "target_z": tgt_z.tolist(),
        "ref_z": ref_z.tolist(),
        "cases": [],
    }
    for offline, a, gamma in [(False, 0.0, 1.0), (False, 0.0, 2.0), (True, 0.3, 1.0), (True, 1.0, 0.5)]:
        if offline:
            px = mean_rows(ref_x, ~in_x)
            pz = mean_rows(ref_z, np.ones_like(ref_z, dtype=bool))  # z: all OUT
            px = (1 + a) / 2 * px + (1 - a) / 2
            pz = (1 + a) / 2 * pz + (1 - a) / 2
        else:
            px = mean_rows(ref_x, np.ones_like(ref_x, dtype=bool))
            pz = mean_rows(ref_z, np.ones_like(ref_z, dtype=bool))
        rx, rz = tgt_x / px, tgt_z / pz
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = rx[:, None] / rz[None, :]
        score = (lr > gamma).mean(axis=1)
        res["cases"].append({"offline": offline, "a": a, "gamma": gamma, "scores": score.tolist()})
    return res


def main():
    rng = np.random.default_rng(5)
    out = {
        "generator": "make_signal_refs.py",
        "mpmath": mpmath.__version__,
        "numpy": np.__version__,
        "signals": signal_cases(rng),
        "lira": lira_ref(rng),
        "rmia": rmia_ref(rng),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "signal_refs.json")
    with open(path, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
