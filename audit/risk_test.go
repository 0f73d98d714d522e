package audit

import (
	"errors"
	"math"
	"testing"
)

// riskData: 80 members, 50 of them scored 1 and 30 scored 0; 100
// non-members, 10 scored 1 and 90 scored 0.
func riskData(sign float64) ([]float64, []bool) {
	var s []float64
	var m []bool
	for i := 0; i < 80; i++ {
		s, m = append(s, sign*b2f(i < 50)), append(m, true)
	}
	for i := 0; i < 100; i++ {
		s, m = append(s, sign*b2f(i < 10)), append(m, false)
	}
	return s, m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestRiskAtPriorsKnown: at 10% FPR the threshold 1 flags 50 members and
// 10 non-members, TPR 0.625 and FPR 0.1, so PPV = π·0.625/(π·0.625 +
// (1 − π)·0.1); at 1% FPR nothing is flagged and PPV is undefined.
func TestRiskAtPriorsKnown(t *testing.T) {
	s, m := riskData(1)
	priors := []float64{0.01, 0.1, 0.5}
	risk, err := RiskAtPriors(s, m, []float64{0.01, 0.1}, priors, BootstrapOptions{Replicates: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := risk[1]
	if r.Exposed != 50 || r.FalsePositives != 10 || r.Members != 80 || r.NonMembers != 100 || r.TPR != 0.625 || r.FPR != 0.1 {
		t.Fatalf("risk at 10%% FPR: %+v", r)
	}
	for j, pi := range priors {
		want := pi * 0.625 / (pi*0.625 + (1-pi)*0.1)
		got := r.PPV[j].PPV
		if math.Abs(got.Estimate-want) > 1e-12 || !(got.Lo <= got.Estimate && got.Estimate <= got.Hi) {
			t.Errorf("PPV at π = %v: %+v, want %.6f inside its interval", pi, got, want)
		}
	}
	if r := risk[0]; r.Exposed != 0 || r.FalsePositives != 0 || len(r.PPV) != 0 {
		t.Errorf("risk at 1%% FPR: %+v, want nothing flagged and no PPV", r)
	}
	// Sign flip: the flipped attack flags non-members first; its precision
	// at 10% FPR is not above the prior (here nothing can be flagged).
	s, m = riskData(-1)
	risk, err = RiskAtPriors(s, m, []float64{0.1}, []float64{0.5}, BootstrapOptions{Replicates: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range risk[0].PPV {
		if p.PPV.Estimate > 0.5 {
			t.Errorf("flipped attack: PPV %v above the prior", p.PPV.Estimate)
		}
	}
	if PPV(0.5, 0.3, 0) != 1 || PPV(0.5, 0.2, 0.2) != 0.5 {
		t.Error("PPV at FPR 0 must be 1, at TPR = FPR the prior")
	}
}

func TestRiskAtPriorsInvalid(t *testing.T) {
	s, m := riskData(1)
	for name, c := range map[string]struct{ targets, priors []float64 }{
		"no prior":     {[]float64{0.1}, nil},
		"prior 0":      {[]float64{0.1}, []float64{0}},
		"prior 1":      {[]float64{0.1}, []float64{1}},
		"target above": {[]float64{1.5}, []float64{0.1}},
	} {
		if _, err := RiskAtPriors(s, m, c.targets, c.priors, BootstrapOptions{}); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
}

// TestAddRiskAtPriors reads the non-canary rows of a table at each
// attack's own target FPRs.
func TestAddRiskAtPriors(t *testing.T) {
	s, m := riskData(1)
	tab := &SampleTable{Member: append(m, true, false), Canary: make([]bool, len(m)+2), Scores: map[string][]float64{AttackLoss: append(s, 5, 5)}}
	tab.Canary[len(m)], tab.Canary[len(m)+1] = true, true
	v := &VariantReport{Attacks: []AttackReport{{Attack: AttackLoss, TPRAt: []TPRAtInterval{{TargetFPR: 0.1}}}, {Attack: "absent"}}}
	if err := AddRiskAtPriors(v, tab, DefaultPriors(), BootstrapOptions{Replicates: 20}); err != nil {
		t.Fatal(err)
	}
	if r := v.Attacks[0].Risk; len(r) != 1 || r[0].Exposed != 50 || r[0].Members != 80 || len(r[0].PPV) != 3 {
		t.Errorf("risk %+v", r)
	}
	if v.Attacks[1].Risk != nil {
		t.Error("an attack without scores got a risk")
	}
}
