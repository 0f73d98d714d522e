#!/usr/bin/python3
"""Reference numbers of the quantile-regression attack's tests (audit/qmia_test.go).

Known answer: a sample's group x is 0 or 1 with probability 1/2; a
non-member's hinge score is s ~ N(m(x), sd(x)^2) with m(x) = 3x and
sd(x) = 0.5 + 1.5x; a member's is shifted up by delta = 1. With the exact
Gaussian as the regression's prediction, the attack's score
z = (s - m(x))/sd(x) is N(0, 1) for non-members and N(delta/sd(x), 1) for
members, so its AUC is the mean over the member's group x of
Phi(delta/(sd(x)*sqrt(2))). The raw hinge score (what a threshold on s
alone achieves) has AUC = mean over both groups (x1 member, x2 non-member)
of Phi((m(x1) + delta - m(x2))/sqrt(sd(x1)^2 + sd(x2)^2)). Both come from
scipy's normal CDF here, independently of bnaudit; the thresholds of the
per-sample test are scipy's normal quantiles.

usage: /usr/bin/python3 audit/testdata/make_qmia_refs.py
"""
import itertools
import math

from scipy.stats import norm

delta = 1.0
m = {0: 0.0, 1: 3.0}
sd = {0: 0.5, 1: 2.0}
qmia = sum(norm.cdf(delta / (sd[x] * math.sqrt(2))) for x in (0, 1)) / 2
raw = sum(norm.cdf((m[a] + delta - m[b]) / math.sqrt(sd[a] ** 2 + sd[b] ** 2))
          for a, b in itertools.product((0, 1), repeat=2)) / 4
print("qmia AUC (exact Gaussian): %.10f" % qmia)
print("raw hinge AUC:             %.10f" % raw)
print("qmia AUC, members shifted down by delta: %.10f" % (1 - qmia))
for alpha in (0.001, 0.01, 0.1):
    print("threshold at alpha %g: %.10f" % (alpha, norm.ppf(1 - alpha)))

# MeanGaussianNLL on a hand case (TestMeanGaussianNLL).
x, mu, ls = [0.3, -2.5, 4.0], [1.2, -1.0, -0.4], [0.4, 0.2, 0.7]
print("mean Gaussian NLL: %.10f" % (-sum(norm.logpdf(a, loc=b, scale=math.exp(c)) for a, b, c in zip(x, mu, ls)) / 3))
