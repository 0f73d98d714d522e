package study

import (
	"math"
	"slices"

	"github.com/bnaudit/bnaudit/audit"
)

// Comparison metrics (audit.Comparison.Metric): with BN minus without.
const (
	MetricMemberLossAUC = "member_loss_auc"
	MetricCanaryLossAUC = "canary_loss_auc"
	MetricMemberLiRAAUC = "member_lira_auc"
	MetricCanaryLiRAAUC = "canary_lira_auc"
	MetricGradNormRatio = "grad_norm_ratio"
)

// compareVariants computes with-BN minus without-BN differences, paired
// over the same samples, with a two-stage bootstrap over seeds and samples
// (HierarchicalInterval) or, with one seed, over samples.
func compareVariants(cfg CompareConfig, orig, other []*runRecord, name string) []audit.Comparison {
	var out []audit.Comparison
	addAUC := func(metric string, scores func(*runRecord) ([]float64, []bool)) {
		if diff, ok := aucDiff(cfg.Bootstrap, orig, other, scores); ok {
			out = append(out, audit.Comparison{Metric: metric, With: VariantOriginal, Without: name, Diff: diff,
				Distinguishable: !math.IsNaN(diff.Lo) && (diff.Lo > 0 || diff.Hi < 0)})
		}
	}
	// LOSS-attack AUC on members vs non-members, and on inserted vs
	// held-out canaries: the same samples in both models, so the difference
	// is bootstrapped paired over samples (one seed) or over seeds.
	addAUC(MetricMemberLossAUC, func(rc *runRecord) ([]float64, []bool) {
		s := append(audit.Negated(rc.MemberLoss), audit.Negated(rc.NonLoss)...)
		m := make([]bool, len(s))
		for i := range rc.MemberLoss {
			m[i] = true
		}
		return s, m
	})
	addAUC(MetricCanaryLossAUC, func(rc *runRecord) ([]float64, []bool) {
		return audit.Negated(rc.CanaryLoss), rc.CanaryMember
	})
	// The strongest attack of the field, when reference models were trained.
	if hasScores(orig, audit.AttackLiRAOnline) && hasScores(other, audit.AttackLiRAOnline) {
		addAUC(MetricMemberLiRAAUC, liraScores(false))
		addAUC(MetricCanaryLiRAAUC, liraScores(true))
	}
	// The outlier/typical gradient-norm ratio; its interval is read as it
	// comes.
	if diff, ok := gradRatioDiff(cfg.Bootstrap, orig, other); ok {
		out = append(out, audit.Comparison{Metric: MetricGradNormRatio, With: VariantOriginal, Without: name, Diff: diff,
			Distinguishable: diff.Lo > 0 || diff.Hi < 0})
	}
	return out
}

// liraScores picks a run's online LiRA scores and membership on the
// canaries or on the other samples.
func liraScores(canaries bool) func(*runRecord) ([]float64, []bool) {
	return func(rc *runRecord) ([]float64, []bool) {
		t := rc.Samples
		var s []float64
		var m []bool
		for i, sc := range t.Scores[audit.AttackLiRAOnline] {
			if t.Canary[i] == canaries {
				s, m = append(s, sc), append(m, t.Member[i])
			}
		}
		return s, m
	}
}

// aucDiff is the AUC of the scores in the original minus in the variant,
// paired over the same samples: over the seeds' own bootstraps
// (HierarchicalInterval) with several seeds, over samples with one. ok is
// false when the runs do not hold the same samples.
func aucDiff(bs audit.BootstrapOptions, orig, other []*runRecord, scores func(*runRecord) ([]float64, []bool)) (diff audit.Interval, ok bool) {
	k := min(len(orig), len(other))
	if k <= 1 {
		sa, ma := scores(orig[0])
		sb, mb := scores(other[0])
		if len(sa) == 0 || len(sa) != len(sb) || !slices.Equal(ma, mb) {
			return diff, false
		}
		di, err := audit.BootstrapDifference(sa, sb, ma, bs)
		if err != nil {
			return diff, false
		}
		return di.Diff.AUC, true
	}
	// Two-stage bootstrap: seeds, then samples within each seed.
	est := make([]float64, k)
	reps := make([][]float64, k)
	for i := 0; i < k; i++ {
		sa, ma := scores(orig[i])
		sb, mb := scores(other[i])
		if len(sa) == 0 || len(sa) != len(sb) || !slices.Equal(ma, mb) {
			return diff, false
		}
		d, r, err := audit.PairedAUCReplicates(sa, sb, ma, bs, uint64(i))
		if err != nil {
			return diff, false
		}
		est[i], reps[i] = d, r
	}
	return audit.HierarchicalInterval(est, reps, bs), true
}

// gradRatioDiff is the outlier/typical gradient-norm ratio (eval mode) of
// the original minus the variant's, paired over the same canaries and the
// same sampled members in both models; ok is false when the runs lack the
// norms or do not hold the same samples.
func gradRatioDiff(bs audit.BootstrapOptions, orig, other []*runRecord) (diff audit.Interval, ok bool) {
	ratio := func(rc *runRecord, io, it []int) float64 {
		return audit.Median(audit.Pick(rc.GradOutlier, io)) / audit.Median(audit.Pick(rc.GradTypical, it))
	}
	paired := func(a, b *runRecord) bool {
		return len(a.GradOutlier) > 0 && len(a.GradOutlier) == len(b.GradOutlier) && len(a.GradTypical) == len(b.GradTypical) && len(a.GradTypical) > 0
	}
	k := min(len(orig), len(other))
	if k <= 1 {
		a, b := orig[0], other[0]
		if !paired(a, b) {
			return diff, false
		}
		ivs, err := audit.BootstrapGroups([]int{len(a.GradOutlier), len(a.GradTypical)}, func(idx [][]int) []float64 {
			return []float64{ratio(a, idx[0], idx[1]) - ratio(b, idx[0], idx[1])}
		}, bs)
		if err != nil {
			return diff, false
		}
		return ivs[0], true
	}
	est := make([]float64, k)
	reps := make([][]float64, k)
	opt, _ := bs.WithDefaults()
	for i := 0; i < k; i++ {
		a, b := orig[i], other[i]
		if !paired(a, b) {
			return diff, false
		}
		est[i] = ratio(a, seq(len(a.GradOutlier)), seq(len(a.GradTypical))) - ratio(b, seq(len(b.GradOutlier)), seq(len(b.GradTypical)))
		r := audit.StreamGradRatio.Indexed(opt.Seed, i)
		reps[i] = make([]float64, opt.Replicates)
		io, it := make([]int, len(a.GradOutlier)), make([]int, len(a.GradTypical))
		for rep := range reps[i] {
			for j := range io {
				io[j] = r.IntN(len(io))
			}
			for j := range it {
				it[j] = r.IntN(len(it))
			}
			reps[i][rep] = ratio(a, io, it) - ratio(b, io, it)
		}
	}
	return audit.HierarchicalInterval(est, reps, bs), true
}

// hasScores reports whether every run has the attack's per-sample scores.
func hasScores(recs []*runRecord, attack string) bool {
	for _, rc := range recs {
		if rc.Samples == nil || len(rc.Samples.Scores[attack]) != len(rc.Samples.Member) || len(rc.Samples.Canary) != len(rc.Samples.Member) {
			return false
		}
	}
	return len(recs) > 0
}

// seq is 0, 1, …, n−1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
