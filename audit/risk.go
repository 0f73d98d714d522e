package audit

import (
	"fmt"
	"math"
	"slices"
)

// Risk at a prior (docs/METHODS.md, "Precision at a prior"): if a fraction
// π of the population an adversary tests are members, a threshold with
// true- and false-positive rates (TPR, FPR) flags members with precision
//
//	PPV = π·TPR / (π·TPR + (1 − π)·FPR).
//
// AUC and TPR at a fixed FPR do not depend on π; PPV does, and answers
// "how often is a claim 'this record was in the training set' right".

// DefaultPriors are the member fractions PPV is reported at.
func DefaultPriors() []float64 { return []float64{0.01, 0.1, 0.5} }

// PPVAtPrior is an attack's precision at one prior, with its bootstrap
// interval.
type PPVAtPrior struct {
	Prior float64  `json:"prior,required"`
	PPV   Interval `json:"ppv,required"`
}

// RiskAtFPR is what an attack's threshold at a target FPR means in the
// user's terms: the counts it rests on, the members it exposes, and its
// precision at each prior.
type RiskAtFPR struct {
	TargetFPR float64 `json:"target_fpr,required"`
	// TPR and FPR are those of the ROC point TPR@FPR reports (the largest
	// TPR with FPR ≤ TargetFPR).
	TPR float64 `json:"tpr"`
	FPR float64 `json:"fpr"`
	// Exposed is the number of members flagged at that threshold (true
	// positives), FalsePositives the non-members flagged, of Members and
	// NonMembers.
	Exposed        int `json:"members_exposed"`
	FalsePositives int `json:"false_positives"`
	Members        int `json:"members"`
	NonMembers     int `json:"non_members"`
	// PPV has one entry per prior; none when the threshold flags no
	// sample (no membership claim is made, so there is no precision).
	PPV []PPVAtPrior `json:"ppv"`
}

// PPV is the precision of a threshold with rates tpr and fpr when a
// fraction prior of the tested population are members; NaN when the
// threshold flags nothing (tpr = fpr = 0).
func PPV(prior, tpr, fpr float64) float64 {
	num := prior * tpr
	den := num + (1-prior)*fpr
	if den == 0 {
		return math.NaN()
	}
	return num / den
}

func checkPriors(priors []float64) error {
	if len(priors) == 0 {
		return fmt.Errorf("audit: no prior to compute PPV at: %w", ErrInvalidInput)
	}
	for _, p := range priors {
		if !(p > 0 && p < 1) {
			return fmt.Errorf("audit: a prior must lie in (0, 1), not %v: %w", p, ErrInvalidInput)
		}
	}
	return nil
}

// RiskAtPriors computes, for each target FPR, the threshold's counts and
// its PPV at each prior, with percentile bootstrap intervals: each
// replicate resamples members and non-members separately at their own
// counts (BootstrapGroups' scheme, with opt's seed and replicates) and
// finds the target's threshold again. Replicates that flag nothing are
// left out of the interval.
func RiskAtPriors(scores []float64, member []bool, targets, priors []float64, opt BootstrapOptions) ([]RiskAtFPR, error) {
	if err := checkPriors(priors); err != nil {
		return nil, err
	}
	roc, err := NewROC(scores, member)
	if err != nil {
		return nil, err
	}
	opt.TargetFPRs = targets
	opt, err = opt.WithDefaults()
	if err != nil {
		return nil, err
	}
	var mem, non []int
	for i, m := range member {
		if m {
			mem = append(mem, i)
		} else {
			non = append(non, i)
		}
	}
	out := make([]RiskAtFPR, len(targets))
	for k, t := range targets {
		p, err := roc.TPRAtFPR(t)
		if err != nil {
			return nil, err
		}
		out[k] = RiskAtFPR{TargetFPR: t, TPR: p.TPR, FPR: p.FPR, Members: len(mem), NonMembers: len(non),
			Exposed: int(math.Round(p.TPR * float64(len(mem)))), FalsePositives: int(math.Round(p.FPR * float64(len(non))))}
	}
	// Replicates: vals[k][j] holds PPV at target k and prior j.
	vals := make([][][]float64, len(targets))
	for k := range vals {
		vals[k] = make([][]float64, len(priors))
	}
	rng := StreamBootstrap.Rand(opt.Seed)
	rs, rm := make([]float64, len(member)), make([]bool, len(member))
	for range opt.Replicates {
		i := 0
		for _, group := range [][]int{mem, non} {
			for range group {
				src := group[rng.IntN(len(group))]
				rs[i], rm[i] = scores[src], member[src]
				i++
			}
		}
		r, err := NewROC(rs, rm)
		if err != nil {
			return nil, err
		}
		for k, t := range targets {
			p, _ := r.TPRAtFPR(t) // t checked above
			for j, pi := range priors {
				if v := PPV(pi, p.TPR, p.FPR); !math.IsNaN(v) {
					vals[k][j] = append(vals[k][j], v)
				}
			}
		}
	}
	for k := range out {
		if out[k].Exposed+out[k].FalsePositives == 0 {
			continue // nothing flagged: no claim, no precision
		}
		for j, pi := range priors {
			iv := Interval{Estimate: PPV(pi, out[k].TPR, out[k].FPR), Lo: math.NaN(), Hi: math.NaN()}
			if len(vals[k][j]) > 0 {
				iv.Lo, iv.Hi = percentile(vals[k][j], opt.Level)
			}
			out[k].PPV = append(out[k].PPV, PPVAtPrior{Prior: pi, PPV: iv})
		}
	}
	return out, nil
}

// AddRiskAtPriors sets the risk at each prior of every attack of v on
// members against non-members, from the per-sample table of the run the
// attacks were measured on (its non-canary rows with a score: a NaN score
// marks a row the attack did not score), at each attack's own target
// FPRs.
func AddRiskAtPriors(v *VariantReport, t *SampleTable, priors []float64, opt BootstrapOptions) error {
	if t == nil {
		return nil
	}
	for a := range v.Attacks {
		att := &v.Attacks[a]
		col, ok := t.Scores[att.Attack]
		if !ok || len(col) != len(t.Member) {
			continue
		}
		// The non-canary rows the attack scored (a NaN score: a row the
		// attack leaves out, as the quantile-regression attack does with
		// the non-members its regression was fitted on).
		var rows []int
		var member []bool
		for i := range t.Member {
			if (i >= len(t.Canary) || !t.Canary[i]) && !math.IsNaN(col[i]) {
				rows = append(rows, i)
				member = append(member, t.Member[i])
			}
		}
		if !slices.Contains(member, true) || !slices.Contains(member, false) {
			continue
		}
		var targets []float64
		for _, tp := range att.TPRAt {
			targets = append(targets, tp.TargetFPR)
		}
		if len(targets) == 0 {
			targets = DefaultTargetFPRs()
		}
		risk, err := RiskAtPriors(Pick(col, rows), member, targets, priors, opt)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", att.Attack, err)
		}
		att.Risk = risk
	}
	return nil
}
