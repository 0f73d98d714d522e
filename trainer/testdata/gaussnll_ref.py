#!/usr/bin/python3
"""Reference values of the Gaussian NLL loss (trainer/ops_loss.go), from scipy.

The case of TestGaussianNLLMatchesScipy: a prediction [4, 6] holds K = 3
pairs (mu, r) per sample, sigma = exp(r); each sample's label picks its
pair; the per-sample loss is -log N(target; mu, sigma^2), computed here
with scipy.stats.norm.logpdf, independently of bnaudit.

usage: /usr/bin/python3 trainer/testdata/gaussnll_ref.py
"""
import numpy as np
from scipy.stats import norm

pred = np.array([
    [0.5, -0.3, 1.2, 0.4, -0.7, 0.1],
    [-1.0, 0.2, 0.3, -0.5, 2.0, 0.8],
    [0.0, 0.0, 1.5, -1.2, 0.6, 0.3],
    [2.2, 0.9, -0.4, 0.05, 0.7, -0.6],
], dtype=np.float64)
labels = [2, 0, 1, 2]
targets = [0.3, -2.5, 4.0, 0.0]
per = []
for row, y, t in zip(pred, labels, targets):
    mu, r = row[2 * y], row[2 * y + 1]
    per.append(-norm.logpdf(t, loc=mu, scale=np.exp(r)))
print("per-sample:", ", ".join("%.10g" % v for v in per))
print("mean:", "%.10g" % np.mean(per))
