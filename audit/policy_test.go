package audit

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// gateReport is a one-variant audit report with a LOSS attack of the
// given AUC and TPR at 1% FPR, and optionally a canary gap and a
// comparison.
func gateReport(auc, tpr Interval, canary *CanaryGap, cmp []Comparison) *Report {
	return &Report{
		Variants: []VariantReport{{Name: "original", Memorization: canary,
			Attacks: []AttackReport{{Attack: "loss", AUC: auc,
				TPRAt: []TPRAtInterval{{TargetFPR: 0.01, TPR: tpr}}}}}},
		Comparisons: cmp,
	}
}

// TestCheckFailsClosed: a number the gate needs that is missing, out of
// its range or that a rule cannot apply to is bad input (ErrInvalidInput),
// never a pass; a number stated as not measured (NaN) fails its rule.
func TestCheckFailsClosed(t *testing.T) {
	ok := Interval{Estimate: 0.55, Lo: 0.5, Hi: 0.6}
	tpr := Interval{Estimate: 0.02, Lo: 0.01, Hi: 0.03}
	gap := &CanaryGap{AccuracyGap: Interval{Estimate: 0.1, Lo: 0, Hi: 0.2}}
	for _, c := range []struct {
		name string
		r    *Report
		p    Policy
		want string
	}{
		{"negative AUC", gateReport(Interval{Estimate: -3, Lo: -3, Hi: -3}, tpr, nil, nil), Policy{MaxAUC: 0.6}, "outside [0, 1]"},
		{"AUC above 1", gateReport(Interval{Estimate: 0.5, Lo: 0.4, Hi: 1.2}, tpr, nil, nil), Policy{MaxAUC: 0.6}, "upper end is 1.2"},
		{"swapped interval", gateReport(Interval{Estimate: 0.5, Lo: 0.6, Hi: 0.4}, tpr, nil, nil), Policy{MaxAUC: 0.6}, "swapped"},
		{"no attacks", &Report{Variants: []VariantReport{{Name: "original"}}}, Policy{MaxAUC: 0.6}, "no attack"},
		{"TPR above 1", gateReport(ok, Interval{Estimate: 2, Lo: 2, Hi: 2}, nil, nil), Policy{MaxTPR: 0.1}, "outside [0, 1]"},
		{"TPR at an FPR not measured", gateReport(ok, tpr, nil, nil), Policy{MaxTPR: 0.1, TPRAtFPR: 0.05}, "no TPR at 0.05 FPR"},
		{"canary rule on an audit report", gateReport(ok, tpr, nil, nil), Policy{MaxCanaryGap: 0.3}, "does not apply"},
		{"canary gap out of range", gateReport(ok, tpr, &CanaryGap{AccuracyGap: Interval{Estimate: -2, Lo: -2, Hi: -2}}, nil), Policy{MaxCanaryGap: 0.3}, "outside [-1, 1]"},
		{"BN rule without a comparison", gateReport(ok, tpr, gap, nil), Policy{MaxBNAmplification: 0.05}, "does not apply"},
		{"infinite difference", gateReport(ok, tpr, gap, []Comparison{{Metric: "loss_auc", Without: "remove", Diff: Interval{Estimate: math.Inf(1), Lo: 0, Hi: math.Inf(1)}}}), Policy{MaxBNAmplification: 0.05}, "finite"},
	} {
		res, err := Check(c.r, c.p)
		if err == nil || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: result %+v, error %v; want an ErrInvalidInput mentioning %q", c.name, res, err, c.want)
		}
	}

	// Not measured: the rule fails, as a failed check (no error).
	res, err := Check(gateReport(Interval{Estimate: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}, tpr, nil, nil), Policy{MaxAUC: 0.6})
	if err != nil || res.Passed || !strings.Contains(res.Rules[0].Detail, "not measured") {
		t.Errorf("NaN AUC: result %+v, error %v; want a failed rule saying not measured", res, err)
	}
	// In range: the gate decides by the number (0.55 ≤ 0.6 passes, 0.55 > 0.5 fails).
	for limit, want := range map[float64]bool{0.6: true, 0.5: false} {
		res, err := Check(gateReport(ok, tpr, gap, nil), Policy{MaxAUC: limit, MaxTPR: 0.05, MaxCanaryGap: 0.3})
		if err != nil || res.Passed != want {
			t.Errorf("limit %v: passed %v, error %v; want passed %v", limit, res != nil && res.Passed, err, want)
		}
	}
}
