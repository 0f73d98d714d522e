package audit

import (
	"math"
	"testing"
)

type signalRef struct {
	Name       string    `json:"name"`
	Logits     []float64 `json:"logits"`
	Label      int       `json:"label"`
	Loss       float64   `json:"loss"`
	Prob       float64   `json:"prob"`
	Phi        float64   `json:"phi"`
	Entropy    float64   `json:"entropy"`
	ModEntropy float64   `json:"mod_entropy"`
	Correct    bool      `json:"correct"`
	Float32    bool      `json:"float32"`
}

// TestSignalsMatchMpmath compares every signal with 60-digit mpmath values
// (testdata/make_signal_refs.py), including extreme logits.
func TestSignalsMatchMpmath(t *testing.T) {
	var refs struct {
		Signals []signalRef `json:"signals"`
	}
	loadJSON(t, "signal_refs.json", &refs)
	if len(refs.Signals) < 50 {
		t.Fatalf("only %d signal references", len(refs.Signals))
	}
	for _, c := range refs.Signals {
		var got Signal
		var err error
		if c.Float32 {
			z := make([]float32, len(c.Logits))
			for j, v := range c.Logits {
				z[j] = float32(v) // exact: the reference logits are float32 values
			}
			got, err = ComputeSignal(z, c.Label)
		} else {
			got, err = ComputeSignal(c.Logits, c.Label)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		// Loss, p_y, H and Mentr are non-negative and may be tiny (4e-18
		// for logits (40, 0)): relative tolerance. φ: absolute, scaled.
		for _, f := range []struct {
			name      string
			got, want float64
		}{
			{"loss", got.Loss, c.Loss},
			{"prob", got.Prob, c.Prob},
			{"entropy", got.Entropy, c.Entropy},
			{"mod_entropy", got.ModEntropy, c.ModEntropy},
		} {
			if !relNear(f.got, f.want, 1e-12) {
				t.Errorf("%s: %s = %.17g, want %.17g", c.Name, f.name, f.got, f.want)
			}
		}
		if !near(got.Phi, c.Phi, 1e-13) {
			t.Errorf("%s: phi = %.17g, want %.17g", c.Name, got.Phi, c.Phi)
		}
		if got.Correct != c.Correct {
			t.Errorf("%s: correct = %v, want %v", c.Name, got.Correct, c.Correct)
		}
	}
}

// TestSignalsHandComputed checks logits (0, ln 3): p = (1/4, 3/4).
func TestSignalsHandComputed(t *testing.T) {
	z := []float64{0, math.Log(3)}
	h := -(0.25*math.Log(0.25) + 0.75*math.Log(0.75))
	for _, c := range []struct {
		y    int
		want Signal
	}{
		{1, Signal{Loss: math.Log(4.0 / 3), Prob: 0.75, Phi: math.Log(3), Entropy: h,
			ModEntropy: -0.25*math.Log(0.75) - 0.25*math.Log(0.75), Correct: true}},
		{0, Signal{Loss: math.Log(4), Prob: 0.25, Phi: -math.Log(3), Entropy: h,
			ModEntropy: -0.75*math.Log(0.25) - 0.75*math.Log(0.25), Correct: false}},
	} {
		got, err := ComputeSignal(z, c.y)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range [][3]float64{
			{got.Loss, c.want.Loss}, {got.Prob, c.want.Prob}, {got.Phi, c.want.Phi},
			{got.Entropy, c.want.Entropy}, {got.ModEntropy, c.want.ModEntropy},
		} {
			if !near(f[0], f[1], 1e-15) {
				t.Errorf("y=%d: got %+v, want %+v", c.y, got, c.want)
				break
			}
		}
		if got.Correct != c.want.Correct {
			t.Errorf("y=%d: correct = %v, want %v", c.y, got.Correct, c.want.Correct)
		}
	}
}

// TestSignalsExtremeLogits is the float32-underflow pitfall of docs/METHODS.md:
// losses and φ must stay finite and informative when p_y rounds to 1.
func TestSignalsExtremeLogits(t *testing.T) {
	// The wrong class of (1000, 0): loss exactly 1000, φ = −1000.
	s, err := ComputeSignal([]float64{1000, 0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Loss != 1000 || s.Phi != -1000 || s.Prob != 0 {
		t.Errorf("(1000, 0), y=1: loss %v, phi %v, p %v; want 1000, -1000, 0", s.Loss, s.Phi, s.Prob)
	}
	// The right class: the true loss e^-1000 is below float64's smallest
	// subnormal, so it is 0, but φ keeps the full separation.
	s, err = ComputeSignal([]float32{1000, 0}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Phi != 1000 || s.Loss != 0 || math.IsNaN(s.ModEntropy) || math.IsNaN(s.Entropy) {
		t.Errorf("(1000, 0), y=0: %+v; want phi 1000, loss 0 and no NaN", s)
	}
	// (40, 0): a float32 softmax gives p = 1 and loss 0; float64
	// log-sum-exp gives loss e^-40 ≈ 4.25e-18 and φ = 40.
	p32 := float32(1) / (1 + float32(math.Exp(-40)))
	if -math.Log(float64(p32)) != 0 {
		t.Fatalf("the float32 pitfall did not reproduce")
	}
	s, err = ComputeSignal([]float32{40, 0}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Exp(-40); !relNear(s.Loss, want, 1e-12) {
		t.Errorf("(40, 0), y=0: loss %v, want %v (not 0)", s.Loss, want)
	}
	if s.Phi != 40 {
		t.Errorf("(40, 0), y=0: phi %v, want 40", s.Phi)
	}
	// Several confident samples keep distinct losses: no ties at 0.
	var losses []float64
	for _, g := range []float32{20, 25, 30, 35} {
		s, err := ComputeSignal([]float32{g, 0, -1}, 0)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, s.Loss)
	}
	for i := 1; i < len(losses); i++ {
		if !(losses[i] < losses[i-1] && losses[i] > 0) {
			t.Errorf("losses of increasingly confident samples %v are not strictly decreasing and positive", losses)
		}
	}
}

func TestComputeSignalsBatchForms(t *testing.T) {
	rows := [][]float32{{1, 2, 3}, {0.5, -1, 4}, {7, 7, -2}, {-3, 0, 0}}
	labels := []uint8{2, 0, 1, 1}
	byRow, err := ComputeSignals(rows, labels)
	if err != nil {
		t.Fatal(err)
	}
	var flat []float32
	for _, r := range rows {
		flat = append(flat, r...)
	}
	byFlat, err := ComputeSignalsFlat(flat, 3, []int64{2, 0, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if byRow.Len() != 4 || byFlat.Len() != 4 {
		t.Fatalf("lengths %d, %d; want 4", byRow.Len(), byFlat.Len())
	}
	for i := range rows {
		one, err := ComputeSignal(rows[i], labels[i])
		if err != nil {
			t.Fatal(err)
		}
		if byRow.At(i) != one || byFlat.At(i) != one {
			t.Errorf("sample %d: rows %+v, flat %+v, single %+v", i, byRow.At(i), byFlat.At(i), one)
		}
	}
	sub := byRow.Subset([]int{3, 0})
	if sub.At(0) != byRow.At(3) || sub.At(1) != byRow.At(0) {
		t.Errorf("Subset picked the wrong samples")
	}
	empty, err := ComputeSignals([][]float64{}, []int{})
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty input: %v, len %d", err, empty.Len())
	}
}

func TestSignalsInvalidInput(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"label too large", func() error { _, err := ComputeSignals([][]float64{{1, 2}}, []int{2}); return err }},
		{"negative label", func() error { _, err := ComputeSignals([][]float64{{1, 2}}, []int{-1}); return err }},
		{"huge unsigned label", func() error { _, err := ComputeSignal([]float64{1, 2}, uint64(math.MaxUint64)); return err }},
		{"ragged rows", func() error { _, err := ComputeSignals([][]float64{{1, 2}, {1, 2, 3}}, []int{0, 0}); return err }},
		{"NaN logit", func() error { _, err := ComputeSignals([][]float64{{1, 2}, {nan, 2}}, []int{0, 0}); return err }},
		{"Inf logit", func() error { _, err := ComputeSignal([]float32{float32(math.Inf(1)), 2}, 0); return err }},
		{"length mismatch", func() error { _, err := ComputeSignals([][]float64{{1, 2}}, []int{0, 1}); return err }},
		{"one class", func() error { _, err := ComputeSignals([][]float64{{1}}, []int{0}); return err }},
		{"one class single", func() error { _, err := ComputeSignal([]float64{1}, 0); return err }},
		{"flat length", func() error { _, err := ComputeSignalsFlat([]float64{1, 2, 3}, 2, []int{0, 1}); return err }},
		{"flat classes", func() error { _, err := ComputeSignalsFlat([]float64{1, 2}, 1, []int{0, 0}); return err }},
		{"flat NaN", func() error { _, err := ComputeSignalsFlat([]float64{1, nan}, 2, []int{0}); return err }},
	} {
		wantInvalid(t, c.name, c.run())
	}
}
