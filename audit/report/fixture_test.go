package report

import (
	"math"

	"github.com/bnaudit/bnaudit/audit"
)

// The fixture: a hand-built comparison of a BN model ("original") and its
// BN-removed twin ("remove"), with numbers shaped like the Fashion-MNIST
// reference runs of docs/METHODS.md. Tests state the strings and values they
// expect from these numbers by hand.

func iv(est, lo, hi float64) audit.Interval { return audit.Interval{Estimate: est, Lo: lo, Hi: hi} }

func tpr(target float64, t audit.Interval, allowed int) audit.TPRAtInterval {
	return audit.TPRAtInterval{TargetFPR: target, TPR: t, AllowedFP: allowed}
}

// roc is a short ROC curve with the low-FPR end kept.
func roc(pts ...float64) []audit.ROCPoint {
	out := make([]audit.ROCPoint, 0, len(pts)/2)
	for i := 0; i+1 < len(pts); i += 2 {
		out = append(out, audit.ROCPoint{FPR: pts[i], TPR: pts[i+1]})
	}
	return out
}

// slice is the strongest attack (lira_online) on a subset, with its TPR
// at 1% FPR resting on allowed non-members.
func slice(name string, members, nonMembers int, auc, adv, tpr1 audit.Interval, allowed int) audit.SliceReport {
	return audit.SliceReport{Slice: name, Attack: audit.AttackReport{
		Attack: "lira_online", Members: members, NonMembers: nonMembers,
		AUC: auc, Advantage: adv,
		BalancedAcc:         (1 + adv.Estimate) / 2,
		BalancedAccInterval: iv((1+adv.Estimate)/2, (1+adv.Lo)/2, (1+adv.Hi)/2),
		TPRAt:               []audit.TPRAtInterval{tpr(0.01, tpr1, allowed)},
	}}
}

// fzEdges are ten bins of Feldman–Zhang score from 0 to 1.
func fzEdges() []float64 { return []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1} }

// logEdges returns n+1 log-spaced histogram edges from lo to hi.
func logEdges(lo, hi float64, n int) []float64 {
	e := make([]float64, n+1)
	for i := range e {
		e[i] = lo * math.Pow(hi/lo, float64(i)/float64(n))
	}
	return e
}

func dist(n int, median, p90, maxv float64, edges []float64, counts []int) audit.Distribution {
	return audit.Distribution{N: n, Mean: median * 1.1, Median: median, P90: p90, Max: maxv, Edges: edges, Counts: counts}
}

func gradPoints(ratios map[int][2]audit.Interval) []audit.GradNormPoint {
	var out []audit.GradNormPoint
	for _, epoch := range []int{10, 20, 30} {
		r := ratios[epoch]
		for m, mode := range []string{"eval", "inbatch"} {
			out = append(out, audit.GradNormPoint{
				Epoch: epoch,
				Mode:  mode,
				Outlier: dist(50, r[m].Estimate*0.02, r[m].Estimate*0.05, r[m].Estimate*0.2,
					logEdges(1e-3, 10, 8), []int{0, 1, 2, 5, 9, 14, 12, 7}),
				Typical: dist(5000, 0.02, 0.09, 1.5,
					logEdges(1e-4, 10, 10), []int{30, 250, 900, 1500, 1200, 700, 300, 90, 25, 5}),
				Ratio: r[m],
			})
		}
	}
	return out
}

// fixtureReport returns the fixture; each call builds a fresh one.
func fixtureReport() *audit.Report {
	original := audit.VariantReport{
		Name:          "original",
		Model:         "models/small_cnn.onnx",
		ModelHash:     "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f",
		BatchNorms:    3,
		TrainAccuracy: iv(0.998, 0.997, 0.999),
		TestAccuracy:  iv(0.912, 0.905, 0.918),
		TrainLoss:     iv(0.0123, 0.0101, 0.0144),
		TestLoss:      iv(0.3121, 0.2977, 0.3290),
		Seeds:         3,
		Attacks: []audit.AttackReport{
			{
				Attack: "loss", Members: 5000, NonMembers: 5000,
				AUC: iv(0.5443, 0.5361, 0.5508), Advantage: iv(0.071, 0.0604, 0.0822), BalancedAcc: 0.5355,
				TPRAt: []audit.TPRAtInterval{
					tpr(0.001, iv(0.0042, 0.0018, 0.0071), 5),
					tpr(0.01, iv(0.0214, 0.0161, 0.0270), 50),
				},
				ROC: roc(0, 0, 0.0002, 0.001, 0.001, 0.0042, 0.01, 0.0214, 0.1, 0.13, 0.5, 0.55, 1, 1),
			},
			{
				Attack: "lira_online", Members: 5000, NonMembers: 5000,
				AUC: iv(0.6012, 0.5931, 0.6090), Advantage: iv(0.152, 0.141, 0.163), BalancedAcc: 0.576,
				BalancedAccInterval: iv(0.576, 0.5704, 0.5816),
				TPRAt: []audit.TPRAtInterval{
					tpr(0.001, iv(0.0193, 0.0150, 0.0240), 5),
					tpr(0.01, iv(0.0561, 0.0490, 0.0630), 50),
				},
				ROC: roc(0, 0.004, 0.0002, 0.008, 0.001, 0.0193, 0.01, 0.0561, 0.1, 0.24, 0.5, 0.68, 1, 1),
			},
			{
				// A NaN and an infinite bound: report.json writes both as null.
				Attack: "confidence", Members: 5000, NonMembers: 5000,
				AUC: iv(0.5401, 0.5322, math.Inf(1)), Advantage: iv(0.066, 0.055, 0.077), BalancedAcc: math.NaN(),
				TPRAt: []audit.TPRAtInterval{
					tpr(0.001, iv(0, 0, 0.0012), 5),
					tpr(0.01, iv(0.0101, 0.0064, 0.0142), 50),
				},
				ROC: roc(0, 0, 0.001, 0, 0.002, 0.001, 0.01, 0.0101, 0.3, 0.34, 1, 1),
			},
		},
		CanaryAttacks: []audit.AttackReport{
			{
				Attack: "loss", Members: 50, NonMembers: 50,
				AUC: iv(0.97, 0.94, 0.99), Advantage: iv(0.8, 0.7, 0.9), BalancedAcc: 0.9,
				BalancedAccInterval: iv(0.9, 0.85, 0.95),
				TPRAt: []audit.TPRAtInterval{
					tpr(0.001, iv(0.62, 0.40, 0.80), 0),
					tpr(0.01, iv(0.62, 0.40, 0.80), 0),
				},
				ROC: roc(0, 0.62, 0.02, 0.7, 0.1, 0.9, 0.3, 1, 1, 1),
			},
		},
		Memorization: &audit.CanaryGap{
			NInserted: 50, NHeldOut: 50,
			InsertedAccuracy: iv(0.94, 0.88, 0.98), HeldOutAccuracy: iv(0.10, 0.04, 0.18), AccuracyGap: iv(0.84, 0.74, 0.92),
			InsertedLoss: iv(0.21, 0.12, 0.33), HeldOutLoss: iv(5.12, 4.61, 5.70), LossGap: iv(-4.91, -5.50, -4.37),
		},
		// Most samples near 0, an empty bin and a skew of 4590/8: a
		// logarithmic count axis.
		FeldmanZhang: &audit.Distribution{N: 5100, Mean: 0.031, Median: 0.002, P90: 0.08, Max: 0.97,
			Edges:  fzEdges(),
			Counts: []int{4590, 240, 120, 60, 40, 20, 12, 8, 0, 10}},
		GradNorms: gradPoints(map[int][2]audit.Interval{
			10: {iv(12.5, 10.1, 15.2), iv(14.1, 11.0, 17.9)},
			20: {iv(25.3, 21.7, 29.9), iv(27.0, 22.2, 31.8)},
			30: {iv(39.2, 35.4, 44.01), iv(41.7, 36.3, 47.5)},
		}),
		// Slices of the strongest attack, as the audit computes them (no
		// ROC curve).
		Slices: []audit.SliceReport{
			slice("class=3", 500, 500, iv(0.561, 0.532, 0.589), iv(0.09, 0.05, 0.13), iv(0.03, 0.01, 0.05), 5),
			slice("canaries", 50, 50, iv(0.97, 0.94, 0.99), iv(0.8, 0.7, 0.9), iv(0.62, 0.40, 0.80), 0),
			slice("correct", 4990, 4560, iv(0.598, 0.590, 0.606), iv(0.149, 0.138, 0.160), iv(0.054, 0.047, 0.061), 45),
			slice("incorrect", 10, 440, iv(0.912, 0.85, 0.96), iv(0.75, 0.6, 0.88), iv(0.4, 0.1, 0.7), 4),
		},
		// The most exposed members by the strongest attack: NaN
		// memorization (no reference model trained without it), NaN loss,
		// a NaN FPR and a zero one, a tiny loss.
		VulnerableBy: "lira_online",
		Vulnerable: []audit.SampleRisk{
			{Index: 212, Label: 5, Member: true, Canary: true, Score: 7.25, FPR: 0, Loss: 1.2e-7, Memorization: 0.97},
			{Index: 114, Label: 2, Member: true, Score: 2.5, FPR: 0.01, Loss: 0.0031, Memorization: math.NaN()},
			{Index: 58, Label: 9, Member: true, Score: 2.125, FPR: 0.0006, Loss: 0.02, Memorization: 0.5},
			{Index: 7, Label: 0, Member: true, Score: 1.75, FPR: 1.0 / 3, Loss: math.NaN(), Memorization: 0.002},
			{Index: 3001, Label: 1, Member: true, Score: 1.5, FPR: math.NaN(), Loss: 0.5, Memorization: 0.25},
			{Index: 42, Label: 4, Member: true, Score: 1.25, FPR: 0.4, Loss: 0.75, Memorization: 0},
			{Index: 43, Label: 4, Member: true, Score: 1.125, FPR: 0.45, Loss: 0.8, Memorization: 0.125},
		},
	}
	remove := audit.VariantReport{
		Name:          "remove",
		Model:         "models/small_cnn.remove.onnx",
		ModelHash:     "1a3c5e7b9d1f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f1a",
		BatchNorms:    0,
		TrainAccuracy: iv(0.996, 0.995, 0.998),
		TestAccuracy:  iv(0.905, 0.897, 0.912),
		TrainLoss:     iv(0.0188, 0.0160, 0.0215),
		TestLoss:      iv(0.3333, 0.3170, 0.3502),
		Seeds:         3,
		Attacks: []audit.AttackReport{
			{
				Attack: "loss", Members: 5000, NonMembers: 5000,
				AUC: iv(0.5411, 0.5370, 0.5452), Advantage: iv(0.066, 0.057, 0.076), BalancedAcc: 0.533,
				TPRAt: []audit.TPRAtInterval{
					tpr(0.001, iv(0.0031, 0.0012, 0.0058), 5),
					tpr(0.01, iv(0.0189, 0.0142, 0.0240), 50),
				},
				ROC: roc(0, 0, 0.0002, 0.0006, 0.001, 0.0031, 0.01, 0.0189, 0.1, 0.125, 0.5, 0.545, 1, 1),
			},
			{
				Attack: "lira_online", Members: 5000, NonMembers: 5000,
				AUC: iv(0.5935, 0.5850, 0.6021), Advantage: iv(0.141, 0.130, 0.152), BalancedAcc: 0.570,
				TPRAt: []audit.TPRAtInterval{
					tpr(0.001, iv(0.0170, 0.0128, 0.0215), 5),
					tpr(0.01, iv(0.0522, 0.0455, 0.0590), 50),
				},
				ROC: roc(0, 0.003, 0.0002, 0.007, 0.001, 0.017, 0.01, 0.0522, 0.1, 0.23, 0.5, 0.67, 1, 1),
			},
		},
		CanaryAttacks: []audit.AttackReport{
			{
				Attack: "loss", Members: 50, NonMembers: 50,
				AUC: iv(0.96, 0.92, 0.99), Advantage: iv(0.78, 0.66, 0.88), BalancedAcc: 0.89,
				TPRAt: []audit.TPRAtInterval{
					tpr(0.001, iv(0.58, 0.36, 0.78), 0),
					tpr(0.01, iv(0.58, 0.36, 0.78), 0),
				},
				ROC: roc(0, 0.58, 0.02, 0.66, 0.1, 0.88, 0.4, 1, 1, 1),
			},
		},
		Memorization: &audit.CanaryGap{
			NInserted: 50, NHeldOut: 50,
			InsertedAccuracy: iv(0.92, 0.84, 0.98), HeldOutAccuracy: iv(0.09, 0.02, 0.16), AccuracyGap: iv(0.83, 0.72, 0.92),
			InsertedLoss: iv(0.26, 0.15, 0.40), HeldOutLoss: iv(5.01, 4.50, 5.55), LossGap: iv(-4.75, -5.31, -4.20),
		},
		GradNorms: gradPoints(map[int][2]audit.Interval{
			10: {iv(15.1, 12.2, 18.3), iv(15.1, 12.2, 18.3)},
			20: {iv(33.9, 29.5, 38.8), iv(33.9, 29.5, 38.8)},
			30: {iv(54.1, 48.0, 60.3), iv(54.1, 48.0, 60.3)},
		}),
		VulnerableBy: "lira_online",
		Vulnerable: []audit.SampleRisk{
			{Index: 212, Label: 5, Member: true, Canary: true, Score: 6.5, FPR: 0, Loss: 3e-7, Memorization: 0.97},
			{Index: 90, Label: 3, Member: true, Score: 2.75, FPR: 0.002, Loss: 0.004, Memorization: 0.31},
		},
	}
	return &audit.Report{
		Schema:  audit.ReportSchema,
		Tool:    "bnaudit 0.1.0-dev",
		Created: "2026-11-28T10:00:00Z",
		Command: "bnaudit compare --ablate remove models/small_cnn.onnx",
		Seed:    7,
		Kind:    "compare",
		Variants: []audit.VariantReport{
			original, remove,
		},
		Comparisons: []audit.Comparison{
			{Metric: "loss_auc", With: "original", Without: "remove", Diff: iv(0.0032, -0.0021, 0.0085)},
			{Metric: "canary_gap_accuracy", With: "original", Without: "remove", Diff: iv(0.01, -0.08, 0.1)},
			{Metric: "grad_norm_ratio", With: "original", Without: "remove", Diff: iv(-14.9, -22.3, -7.2), Distinguishable: true},
		},
		Verdict:     "Not distinguishable: with and without BatchNorm the model memorizes its canaries and is exposed to membership inference alike",
		VerdictCode: "not_distinguishable",
		Notes: []string{
			"TPR at 0.1% FPR rests on 5 non-members (of 5000)",
			"canary TPR at 1% FPR: the target is below 1/50 non-members; no false positive is allowed",
		},
		Definitions: map[string]string{
			"auc":  "area under the ROC curve (trapezoid rule), members positive",
			"loss": "LOSS attack (Yeom et al. 2018): score = −ℓ",
		},
		Samples: fixtureSamples(),
	}
}

const (
	nSamples   = 20
	nRefModels = 4
)

// fixtureSamples is a table of 20 samples with NaNs in the optional
// columns, extreme values, and reference models.
func fixtureSamples() *audit.SampleTable {
	s := &audit.SampleTable{
		Variant: "original",
		Scores:  map[string][]float64{},
	}
	loss := make([]float64, nSamples)
	for i := range nSamples {
		s.Index = append(s.Index, 100+7*i)
		s.Label = append(s.Label, int64(i%10))
		s.Member = append(s.Member, i%2 == 0)
		s.Canary = append(s.Canary, i >= 16)
		s.Correct = append(s.Correct, i%6 != 5)
		loss[i] = math.Exp(-float64(i)) / 3
		s.Phi = append(s.Phi, math.Log(1/loss[i]))
		mem := float64(i%5) / 4
		if i%3 == 1 {
			mem = math.NaN()
		}
		s.Memorization = append(s.Memorization, mem)
		ge := 0.01 * float64(i+1)
		if i%4 == 3 {
			ge = math.NaN()
		}
		s.GradNormEval = append(s.GradNormEval, ge)
		gi := math.NaN()
		if i >= 16 {
			gi = 1.5 * float64(i)
		}
		s.GradNormInBatch = append(s.GradNormInBatch, gi)
	}
	// Extremes that 'g' formatting and the float64 data must carry exactly.
	loss[1] = 0
	loss[2] = 5e-324
	loss[3] = 1e300
	s.Loss = loss
	s.Phi[1] = math.Inf(1)
	neg := make([]float64, nSamples)
	lira := make([]float64, nSamples)
	conf := make([]float64, nSamples)
	for i := range nSamples {
		neg[i] = -loss[i]
		lira[i] = float64(i) - 9.5
		conf[i] = 1 / float64(i+1)
	}
	lira[5] = math.NaN()
	s.Scores["loss"] = neg
	s.Scores["lira_online"] = lira
	s.Scores["confidence"] = conf
	for m := range nRefModels {
		phi := make([]float64, nSamples)
		in := make([]bool, nSamples)
		for i := range nSamples {
			phi[i] = float64(m) + float64(i)/8
			in[i] = (i+m)%2 == 0
		}
		s.PhiRef = append(s.PhiRef, phi)
		s.InRef = append(s.InRef, in)
	}
	return s
}
