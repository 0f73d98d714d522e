package audit

import (
	"math"
	"sort"
)

func PointInterval(v float64) Interval { return Interval{Estimate: v, Lo: v, Hi: v} }

// MedianRatio is Median(a)/Median(b) with a bootstrap interval that
// resamples each group at its own size.
func MedianRatio(a, b []float64, opt BootstrapOptions) (Interval, error) {
	ivs, err := BootstrapGroups([]int{len(a), len(b)}, func(idx [][]int) []float64 {
		return []float64{Median(Pick(a, idx[0])) / Median(Pick(b, idx[1]))}
	}, opt)
	if err != nil {
		return Interval{}, err
	}
	return ivs[0], nil
}

func Pick(v []float64, idx []int) []float64 {
	out := make([]float64, len(idx))
	for i, k := range idx {
		out[i] = v[k]
	}
	return out
}

func Median(v []float64) float64 {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func Mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func BoolsToFloats(b []bool) []float64 {
	out := make([]float64, len(b))
	for i, x := range b {
		if x {
			out[i] = 1
		}
	}
	return out
}

// NewDistribution summarizes values with a 20-bin histogram.
func NewDistribution(v []float64) Distribution {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	n := len(s)
	d := Distribution{N: n, Mean: Mean(s), Median: Median(s), P90: s[min(n-1, int(math.Ceil(0.9*float64(n)))-1)], Max: s[n-1]}
	lo, hi := s[0], s[n-1]
	if hi <= lo {
		hi = lo + 1
	}
	const bins = 20
	d.Edges = make([]float64, bins+1)
	for i := range d.Edges {
		d.Edges[i] = lo + (hi-lo)*float64(i)/bins
	}
	d.Counts = make([]int, bins)
	for _, x := range s {
		k := int((x - lo) / (hi - lo) * bins)
		d.Counts[min(max(k, 0), bins-1)]++
	}
	return d
}

// ConcatSignals joins two signal sets.
func ConcatSignals(a, b Signals) Signals {
	return Signals{
		Loss:       append(append([]float64{}, a.Loss...), b.Loss...),
		Prob:       append(append([]float64{}, a.Prob...), b.Prob...),
		Phi:        append(append([]float64{}, a.Phi...), b.Phi...),
		Entropy:    append(append([]float64{}, a.Entropy...), b.Entropy...),
		ModEntropy: append(append([]float64{}, a.ModEntropy...), b.ModEntropy...),
		Correct:    append(append([]bool{}, a.Correct...), b.Correct...),
	}
}

// NewAttackReport computes an attack's metrics with bootstrap intervals and a
// thinned ROC curve.
func NewAttackReport(name string, scores []float64, member []bool, opt BootstrapOptions) (AttackReport, error) {
	targets := opt.TargetFPRs
	if len(targets) == 0 {
		targets = DefaultTargetFPRs()
	}
	m, err := Evaluate(scores, member, targets...)
	if err != nil {
		return AttackReport{}, err
	}
	bopt := opt
	bopt.TargetFPRs = targets
	iv, err := BootstrapMetrics(scores, member, bopt)
	if err != nil {
		return AttackReport{}, err
	}
	rep := AttackReport{Attack: name, Members: m.NMembers, NonMembers: m.NNonMembers, AUC: iv.AUC, Advantage: iv.Advantage, BalancedAcc: m.BalancedAccuracy,
		BalancedAccInterval: BalancedFromAdvantage(iv.Advantage)}
	for k, t := range m.TPRAt {
		rep.TPRAt = append(rep.TPRAt, TPRAtInterval{TargetFPR: t.TargetFPR, TPR: iv.TPRAt[k], AllowedFP: t.AllowedFP, Note: t.Note()})
	}
	roc, err := NewROC(scores, member)
	if err != nil {
		return AttackReport{}, err
	}
	rep.ROC = ThinROC(roc, 300)
	return rep, nil
}

// ThinROC keeps at most about n points, always keeping the low-FPR end
// (every point with FPR ≤ 1%) where log-scale plots look.
func ThinROC(r *ROC, n int) []ROCPoint {
	var out []ROCPoint
	step := max(1, len(r.FPR)/n)
	for i := range r.FPR {
		if r.FPR[i] <= 0.01 || i%step == 0 || i == len(r.FPR)-1 {
			out = append(out, ROCPoint{FPR: r.FPR[i], TPR: r.TPR[i]})
		}
	}
	return out
}

// BalancedFromAdvantage maps an advantage interval (max over thresholds of
// TPR − FPR) to the balanced-accuracy interval at the same threshold:
// (TPR + 1 − FPR)/2 = (1 + advantage)/2, monotone, so the bootstrap's
// percentiles map one to one.
func BalancedFromAdvantage(a Interval) Interval {
	f := func(x float64) float64 { return (1 + x) / 2 }
	return Interval{Estimate: f(a.Estimate), Lo: f(a.Lo), Hi: f(a.Hi)}
}
