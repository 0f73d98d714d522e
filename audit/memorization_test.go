package audit

import (
	"math"
	"reflect"
	"slices"
	"testing"
)

// TestFeldmanZhangHandMade: four models, five samples.
//
//	model   in (sample 0..4)   correct (sample 0..4)
//	0       1 1 0 1 1          1 1 1 0 1
//	1       1 0 1 1 0          1 0 0 1 1
//	2       0 1 0 1 1          0 1 1 1 0
//	3       0 0 1 1 0          0 1 0 0 1
//
// sample 0: IN {0,1} acc 1,   OUT {2,3} acc 0    → 1
// sample 1: IN {0,2} acc 1,   OUT {1,3} acc 1/2  → 1/2
// sample 2: IN {1,3} acc 0,   OUT {0,2} acc 1    → −1
// sample 3: IN all   acc 1/2, OUT none           → NaN (missing)
// sample 4: IN {0,2} acc 1/2, OUT {1,3} acc 1    → −1/2
func TestFeldmanZhangHandMade(t *testing.T) {
	b := func(s string) []bool {
		out := make([]bool, len(s))
		for i, c := range s {
			out[i] = c == '1'
		}
		return out
	}
	in := [][]bool{b("11011"), b("10110"), b("01011"), b("00110")}
	correct := [][]bool{b("11101"), b("10011"), b("01110"), b("01001")}
	r, err := FeldmanZhang(correct, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 0.5, -1, math.NaN(), -0.5}
	for i := range want {
		if !(r.Scores[i] == want[i] || math.IsNaN(want[i]) && math.IsNaN(r.Scores[i])) {
			t.Errorf("sample %d: score %v, want %v", i, r.Scores[i], want[i])
		}
	}
	if !slices.Equal(r.Missing, []int{3}) {
		t.Errorf("missing %v, want [3]", r.Missing)
	}
	if !slices.Equal(r.NIn, []int{2, 2, 2, 4, 2}) || !slices.Equal(r.NOut, []int{2, 2, 2, 0, 2}) {
		t.Errorf("counts in %v out %v", r.NIn, r.NOut)
	}
	if r.InAccuracy[3] != 0.5 || !math.IsNaN(r.OutAccuracy[3]) {
		t.Errorf("sample 3: in accuracy %v, out accuracy %v; want 0.5, NaN", r.InAccuracy[3], r.OutAccuracy[3])
	}
	// The sign: swapping IN and OUT negates every score.
	notIn := make([][]bool, len(in))
	for k := range in {
		notIn[k] = make([]bool, len(in[k]))
		for i, v := range in[k] {
			notIn[k][i] = !v
		}
	}
	s, _ := FeldmanZhang(correct, notIn)
	if s.Scores[0] != -1 || s.Scores[2] != 1 {
		t.Errorf("swapped masks: scores %v", s.Scores)
	}

	_, err = FeldmanZhang(nil, nil)
	wantInvalid(t, "no models", err)
	_, err = FeldmanZhang(correct, in[:3])
	wantInvalid(t, "mask rows", err)
	_, err = FeldmanZhang([][]bool{b("11"), b("1")}, [][]bool{b("11"), b("11")})
	wantInvalid(t, "ragged", err)
}

func canarySignals(correct []bool, loss []float64) Signals {
	s := newSignals(len(correct))
	copy(s.Correct, correct)
	copy(s.Loss, loss)
	return s
}

// TestCanaryMemorization: 36 of 40 inserted canaries right with loss 0.1,
// 4 of 40 held-out right with loss 2.3: gap 0.8 in accuracy, −2.2 in loss.
func TestCanaryMemorization(t *testing.T) {
	mk := func(nRight int, lossRight, lossWrong float64) Signals {
		c := make([]bool, 40)
		l := make([]float64, 40)
		for i := range c {
			c[i] = i < nRight
			l[i] = lossWrong
			if c[i] {
				l[i] = lossRight
			}
		}
		return canarySignals(c, l)
	}
	ins, held := mk(36, 0.1, 0.1), mk(4, 2.3, 2.3)
	opt := BootstrapOptions{Seed: 11, Replicates: 500}
	g, err := CanaryMemorization(ins, held, opt)
	if err != nil {
		t.Fatal(err)
	}
	if g.NInserted != 40 || g.NHeldOut != 40 {
		t.Errorf("sizes %d, %d", g.NInserted, g.NHeldOut)
	}
	for _, c := range []struct {
		name string
		iv   Interval
		want float64
	}{
		{"inserted accuracy", g.InsertedAccuracy, 0.9},
		{"held-out accuracy", g.HeldOutAccuracy, 0.1},
		{"accuracy gap", g.AccuracyGap, 0.8},
		{"inserted loss", g.InsertedLoss, 0.1},
		{"held-out loss", g.HeldOutLoss, 2.3},
		{"loss gap", g.LossGap, -2.2},
	} {
		if math.Abs(c.iv.Estimate-c.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", c.name, c.iv.Estimate, c.want)
		}
		if !(c.iv.Lo <= c.iv.Estimate && c.iv.Estimate <= c.iv.Hi) {
			t.Errorf("%s: interval %v does not contain its estimate", c.name, c.iv)
		}
	}
	// Binomial sd of the gap ≈ sqrt(2·0.09/40) ≈ 0.067: the 95% interval
	// should be roughly ±0.13.
	if w := g.AccuracyGap.Hi - g.AccuracyGap.Lo; w < 0.18 || w > 0.36 {
		t.Errorf("accuracy-gap interval %v has width %v, want about 0.26", g.AccuracyGap, w)
	}
	again, _ := CanaryMemorization(ins, held, opt)
	if !reflect.DeepEqual(g, again) {
		t.Errorf("same seed, different result")
	}
	_, err = CanaryMemorization(ins, newSignals(0), opt)
	wantInvalid(t, "no held-out canaries", err)
}

func TestExposure(t *testing.T) {
	others := make([]float64, 1023)
	for i := range others {
		others[i] = float64(i + 1)
	}
	for _, c := range []struct {
		name   string
		canary float64
		want   float64
	}{
		{"lowest loss of 1024", 0.5, 10},                       // rank 1
		{"highest loss of 1024", 2000, 0},                      // rank 1024
		{"rank 512", 511.5, 10 - 9},                            // 511 below: rank 512
		{"tie", 3, 10 - math.Log2(3.5)},                        // 2 below, 1 tie: rank 3.5
		{"tie with the highest", 1023, 10 - math.Log2(1023.5)}, // 1022 below, 1 tie
	} {
		got, err := Exposure(c.canary, others)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: exposure %v, want %v", c.name, got, c.want)
		}
	}
	e, err := Exposures([]float64{0.5, 2000}, others)
	if err != nil || e[0] != 10 || e[1] != 0 {
		t.Errorf("Exposures = %v, %v", e, err)
	}
	_, err = Exposure(math.NaN(), others)
	wantInvalid(t, "NaN canary", err)
	_, err = Exposures([]float64{1}, []float64{math.NaN()})
	wantInvalid(t, "NaN candidate", err)
}
