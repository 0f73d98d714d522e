package audit

import (
	"errors"
	"math"
	"testing"
)

// riskReport has a LOSS attack with PPV at prior 0.1 and 1% FPR, and a
// one-run bound on ε when eps ≥ 0.
func riskReport(ppv Interval, eps float64) *Report {
	r := gateReport(Interval{Estimate: 0.6, Lo: 0.55, Hi: 0.65}, Interval{Estimate: 0.02, Lo: 0.01, Hi: 0.03}, nil, nil)
	r.Variants[0].Attacks[0].Risk = []RiskAtFPR{{TargetFPR: 0.01, PPV: []PPVAtPrior{{Prior: 0.1, PPV: ppv}}}}
	if eps >= 0 {
		r.Variants[0].DPLowerBound = &EpsilonBound{Epsilon: eps, Delta: 1e-5, Confidence: 0.95, Canaries: 100}
	}
	return r
}

func TestCheckRiskRules(t *testing.T) {
	ppv := Interval{Estimate: 0.4, Lo: 0.2, Hi: 0.6}
	for _, c := range []struct {
		name string
		p    Policy
		eps  float64
		pass bool
	}{
		{"ppv under", Policy{MaxPPV: 0.5, Prior: 0.1, TPRAtFPR: 0.01}, -1, true},
		{"ppv over, conservative", Policy{MaxPPV: 0.5, Prior: 0.1, TPRAtFPR: 0.01, Conservative: true}, -1, false},
		{"eps under", Policy{MaxEpsilonLowerBound: 2}, 1.5, true},
		{"eps over", Policy{MaxEpsilonLowerBound: 1}, 1.5, false},
	} {
		res, err := Check(riskReport(ppv, c.eps), c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Passed != c.pass {
			t.Errorf("%s: passed %v, want %v (%+v)", c.name, res.Passed, c.pass, res.Rules)
		}
	}
	// Not measured (no sample flagged): the rule fails.
	res, err := Check(riskReport(Interval{Estimate: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}, -1), Policy{MaxPPV: 0.5, Prior: 0.1, TPRAtFPR: 0.01})
	if err != nil || res.Passed {
		t.Errorf("PPV not measured: %+v, %v; want a failed rule", res, err)
	}
}

// TestCheckRiskFailsClosed: a number the risk rules need that is missing
// or out of range is bad input, and so are their own bad settings.
func TestCheckRiskFailsClosed(t *testing.T) {
	ppv := Interval{Estimate: 0.4, Lo: 0.2, Hi: 0.6}
	for _, c := range []struct {
		name string
		r    *Report
		p    Policy
	}{
		{"max_ppv without prior", riskReport(ppv, -1), Policy{MaxPPV: 0.5}},
		{"prior not measured", riskReport(ppv, -1), Policy{MaxPPV: 0.5, Prior: 0.5, TPRAtFPR: 0.01}},
		{"FPR not measured", riskReport(ppv, -1), Policy{MaxPPV: 0.5, Prior: 0.1, TPRAtFPR: 0.05}},
		{"PPV above 1", riskReport(Interval{Estimate: 1.5, Lo: 1, Hi: 2}, -1), Policy{MaxPPV: 0.5, Prior: 0.1, TPRAtFPR: 0.01}},
		{"no bound", riskReport(ppv, -1), Policy{MaxEpsilonLowerBound: 1}},
		{"negative bound", riskReport(ppv, -2), Policy{MaxEpsilonLowerBound: 1}},
		{"negative limit", riskReport(ppv, 1), Policy{MaxEpsilonLowerBound: -1}},
		{"infinite limit", riskReport(ppv, 1), Policy{MaxEpsilonLowerBound: math.Inf(1)}},
	} {
		if c.name == "negative bound" {
			c.r.Variants[0].DPLowerBound = &EpsilonBound{Epsilon: -2}
		}
		if _, err := Check(c.r, c.p); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", c.name, err)
		}
	}
}
