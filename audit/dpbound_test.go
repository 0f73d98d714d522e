package audit

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
)

// TestOneRunEpsilonAllCorrect checks the bound's worked relation: with
// δ = 0 and every one of r guesses right, P[W ≥ r] = q^r, so the bound at
// level β is the ε with q = β^(1/r), ε = log(q/(1 − q)).
func TestOneRunEpsilonAllCorrect(t *testing.T) {
	for _, m := range []int{10, 50, 100, 1000} {
		beta := 0.05
		q := math.Pow(beta, 1/float64(m))
		want := math.Log(q / (1 - q))
		got, err := OneRunEpsilonAt(m, m, m, 0, beta)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-8 {
			t.Errorf("m = %d: ε̂ = %.10f, want %.10f", m, got, want)
		}
		// The δ term only makes the bound smaller, and vanishes as δ → 0.
		withDelta, _ := OneRunEpsilonAt(m, m, m, 1e-5, beta)
		tiny, _ := OneRunEpsilonAt(m, m, m, 1e-300, beta)
		if withDelta > got+1e-12 || math.Abs(tiny-got) > 1e-8 {
			t.Errorf("m = %d: δ = 1e-5 gives %v, δ → 0 gives %v, δ = 0 gives %v", m, withDelta, tiny, got)
		}
	}
	// Through the sweep: separated scores, one (k₊, k₋) = (m/2, m/2) and one
	// score, so one test at β = 0.05 on 100 guesses, all right.
	scores, in := make([]float64, 100), make([]bool, 100)
	for i := range in {
		in[i] = i%2 == 0
		if in[i] {
			scores[i] = 10 + float64(i)
		}
	}
	b, err := OneRunEpsilon(map[string][]float64{"s": scores}, in, EpsilonBoundOptions{Fractions: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	q := math.Pow(0.05, 0.01)
	if want := math.Log(q / (1 - q)); math.Abs(b.Epsilon-want) > 1e-8 || b.KPlus != 50 || b.KMinus != 50 || b.Correct != 100 || b.Tests != 1 {
		t.Errorf("bound %+v, want ε̂ %.8f from 50 + 50 guesses all right", b, want)
	}
	if b.Sentence == "" {
		t.Error("no sentence")
	}
	// Sign flip: every guess wrong, nothing is shown.
	neg := make([]float64, len(scores))
	for i, s := range scores {
		neg[i] = -s
	}
	b, err = OneRunEpsilon(map[string][]float64{"s": neg}, in, EpsilonBoundOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Epsilon != 0 {
		t.Errorf("flipped scores give ε̂ = %v, want 0", b.Epsilon)
	}
}

// TestOneRunEpsilonTiesAbstain: tied scores cut by a boundary are not
// guessed, so the order of the input (inserted canaries first) cannot
// make a guess right.
func TestOneRunEpsilonTiesAbstain(t *testing.T) {
	scores := make([]float64, 40) // all tied
	in := make([]bool, 40)
	for i := 0; i < 20; i++ {
		in[i] = true
	}
	b, err := OneRunEpsilon(map[string][]float64{"s": scores}, in, EpsilonBoundOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Epsilon != 0 || b.KPlus+b.KMinus != 0 {
		t.Errorf("all-tied scores: %+v, want no guess and ε̂ = 0", b)
	}
}

func TestOneRunEpsilonInvalid(t *testing.T) {
	in := []bool{true, false}
	for name, f := range map[string]func() error{
		"no canaries": func() error {
			_, err := OneRunEpsilon(map[string][]float64{"s": nil}, nil, EpsilonBoundOptions{})
			return err
		},
		"length": func() error {
			_, err := OneRunEpsilon(map[string][]float64{"s": {1}}, in, EpsilonBoundOptions{})
			return err
		},
		"nan": func() error {
			_, err := OneRunEpsilon(map[string][]float64{"s": {1, math.NaN()}}, in, EpsilonBoundOptions{})
			return err
		},
		"delta": func() error {
			_, err := OneRunEpsilon(map[string][]float64{"s": {1, 0}}, in, EpsilonBoundOptions{Delta: 1})
			return err
		},
		"confidence": func() error {
			_, err := OneRunEpsilon(map[string][]float64{"s": {1, 0}}, in, EpsilonBoundOptions{Confidence: 1.5})
			return err
		},
		"counts": func() error { _, err := OneRunPValue(10, 5, 6, 1, 0); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: error %v, want ErrInvalidInput", name, err)
		}
	}
}

// TestOneRunEpsilonReference compares with testdata/dpbound_refs.json,
// written by testdata/make_dpbound_refs.py (scipy), to 1e-6.
func TestOneRunEpsilonReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/dpbound_refs.json")
	if err != nil {
		t.Fatal(err)
	}
	var refs struct {
		Cases []struct {
			Name       string
			Scores     map[string][]float64
			Member     []bool
			Delta      float64
			Confidence float64
			Want       struct {
				Epsilon                  float64
				Attack                   string
				KPlus                    int `json:"k_plus"`
				KMinus                   int `json:"k_minus"`
				Correct, Tests, Canaries int
			}
		}
		PValues []struct {
			M, R, V    int
			Eps, Delta float64
			P          float64
		} `json:"p_values"`
		Epsilons []struct {
			M, R, V          int
			Delta, Beta, Eps float64
		}
	}
	if err := json.Unmarshal(raw, &refs); err != nil {
		t.Fatal(err)
	}
	if len(refs.Cases) == 0 || len(refs.PValues) == 0 || len(refs.Epsilons) == 0 {
		t.Fatal("empty reference file")
	}
	for _, c := range refs.PValues {
		got, err := OneRunPValue(c.M, c.R, c.V, c.Eps, c.Delta)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-c.P) > 1e-9*math.Max(1, c.P) {
			t.Errorf("p(m=%d, r=%d, v=%d, ε=%v, δ=%v) = %.12g, scipy %.12g", c.M, c.R, c.V, c.Eps, c.Delta, got, c.P)
		}
	}
	for _, c := range refs.Epsilons {
		got, err := OneRunEpsilonAt(c.M, c.R, c.V, c.Delta, c.Beta)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-c.Eps) > 1e-6 {
			t.Errorf("ε̂(m=%d, r=%d, v=%d, δ=%v, β=%v) = %.9f, scipy %.9f", c.M, c.R, c.V, c.Delta, c.Beta, got, c.Eps)
		}
	}
	for _, c := range refs.Cases {
		got, err := OneRunEpsilon(c.Scores, c.Member, EpsilonBoundOptions{Delta: c.Delta, Confidence: c.Confidence})
		if err != nil {
			t.Fatal(err)
		}
		w := c.Want
		if math.Abs(got.Epsilon-w.Epsilon) > 1e-6 || got.KPlus != w.KPlus || got.KMinus != w.KMinus || got.Correct != w.Correct ||
			got.Tests != w.Tests || got.Canaries != w.Canaries || got.Attack != w.Attack {
			t.Errorf("%s: got ε̂ %.9f (%s, k₊ %d, k₋ %d, %d right, %d tests), scipy %.9f (%s, k₊ %d, k₋ %d, %d right, %d tests)", c.Name,
				got.Epsilon, got.Attack, got.KPlus, got.KMinus, got.Correct, got.Tests, w.Epsilon, w.Attack, w.KPlus, w.KMinus, w.Correct, w.Tests)
		}
	}
}

// TestCanaryEpsilonBound reads the canary rows of a per-sample table and
// leaves out a score that is undefined on some of them.
func TestCanaryEpsilonBound(t *testing.T) {
	tab := &SampleTable{
		Member: []bool{true, false, true, true, false, false},
		Canary: []bool{false, false, true, true, false, false},
		Scores: map[string][]float64{"loss": {9, 9, 3, 2, 1, 0}, "lira_online": {0, 0, math.NaN(), 1, 0, 0}},
	}
	if b, err := CanaryEpsilonBound(tab, EpsilonBoundOptions{}); b != nil || err != nil {
		t.Errorf("no held-out canary: %+v, %v; want nil", b, err)
	}
	tab.Canary[4], tab.Canary[5] = true, true
	b, err := CanaryEpsilonBound(tab, EpsilonBoundOptions{Delta: DefaultDPDelta})
	if err != nil {
		t.Fatal(err)
	}
	if b == nil || b.Canaries != 4 || len(b.Attacks) != 1 || b.Attacks[0] != "loss" || b.Delta != DefaultDPDelta || b.Confidence != DefaultDPConfidence {
		t.Errorf("bound %+v, want 4 canaries scored by loss alone", b)
	}
}
