package audit

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestHingeScoresHandComputed: s = z_y − max_{j≠y} z_j, by hand.
func TestHingeScoresHandComputed(t *testing.T) {
	logits := []float32{
		2, 5, 1, // y = 1: 5 − 2
		2, 5, 1, // y = 0: 2 − 5
		-1, 4, 4, // y = 2: a tie with the runner-up gives 0
		0.5, -3, -0.25, // y = 2: −0.25 − 0.5
	}
	got, err := HingeScores(logits, 3, []int64{1, 0, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []float64{3, -3, 0, -0.75} {
		if got[i] != w {
			t.Errorf("sample %d: hinge %v, want %v", i, got[i], w)
		}
	}
}

// TestQMIAScoresHandComputed: z = ((s − shift)/scale − μ)/exp(r) on two
// members and two non-members, and the AUC of those scores counted by
// hand: z = (2, 0) for the members, (0, −2) for the non-members; of the 4
// pairs 3 are won and 1 tied, AUC = 3.5/4.
func TestQMIAScoresHandComputed(t *testing.T) {
	hinge := []float64{7, 3, 5, 1}
	st := Standardization{Shift: 1, Scale: 2} // standardized: 3, 1, 2, 0
	mu := []float64{1, 1, 2, 1}
	logSigma := []float64{0, math.Log(2), 0, math.Log(0.5)}
	z, err := QMIAScores(hinge, mu, logSigma, st)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []float64{2, 0, 0, -2} {
		if math.Abs(z[i]-w) > 1e-12 {
			t.Errorf("sample %d: z %v, want %v", i, z[i], w)
		}
	}
	r, err := NewROC(z, []bool{true, true, false, false})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.AUC(); math.Abs(got-0.875) > 1e-12 {
		t.Errorf("AUC %v, want 0.875", got)
	}
}

// qmiaSynthetic draws the known-answer case of
// audit/testdata/make_qmia_refs.py: n members and n non-members, each in
// group x ∈ {0, 1} with probability ½; a non-member's hinge score is
// N(3x, (0.5 + 1.5x)²), a member's is shifted by shift. It returns the
// scores, membership and the exact Gaussian of each sample's group.
func qmiaSynthetic(n int, shift float64, seed uint64) (s []float64, member []bool, mu, logSigma []float64) {
	r := rand.New(rand.NewPCG(seed, 99))
	for i := 0; i < 2*n; i++ {
		x := float64(r.IntN(2))
		m, sd := 3*x, 0.5+1.5*x
		v := m + sd*r.NormFloat64()
		if i < n {
			v += shift
		}
		s = append(s, v)
		member = append(member, i < n)
		mu = append(mu, m)
		logSigma = append(logSigma, math.Log(sd))
	}
	return
}

// TestQMIAKnownAnswer: with the exact Gaussian of each sample's group as
// the prediction, the attack's AUC is scipy's 0.77976 (the raw hinge
// score's is 0.67483: per-sample thresholds recover what the group's mean
// and spread hide), and the standardization does not change z.
func TestQMIAKnownAnswer(t *testing.T) {
	const n = 20000
	s, member, mu, logSigma := qmiaSynthetic(n, 1, 1)
	z, err := QMIAScores(s, mu, logSigma, Standardization{Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	auc := func(scores []float64) float64 {
		r, err := NewROC(scores, member)
		if err != nil {
			t.Fatal(err)
		}
		return r.AUC()
	}
	// audit/testdata/make_qmia_refs.py; the sampling error of an AUC over
	// 20,000 + 20,000 samples is about 0.003.
	const wantQMIA, wantRaw = 0.7797567958, 0.6748321984
	if got := auc(z); math.Abs(got-wantQMIA) > 0.012 {
		t.Errorf("QMIA AUC %.4f, want %.4f ± 0.012", got, wantQMIA)
	}
	if got := auc(s); math.Abs(got-wantRaw) > 0.012 {
		t.Errorf("raw hinge AUC %.4f, want %.4f ± 0.012", got, wantRaw)
	}
	// The same Gaussians in standardized units give the same z.
	st, err := StandardizationOf(s)
	if err != nil {
		t.Fatal(err)
	}
	mu2, ls2 := make([]float64, len(mu)), make([]float64, len(mu))
	for i := range mu {
		mu2[i] = (mu[i] - st.Shift) / st.Scale
		ls2[i] = logSigma[i] - math.Log(st.Scale)
	}
	z2, err := QMIAScores(s, mu2, ls2, st)
	if err != nil {
		t.Fatal(err)
	}
	for i := range z {
		if math.Abs(z[i]-z2[i]) > 1e-9*math.Max(1, math.Abs(z[i])) {
			t.Fatalf("sample %d: z %v in score units, %v standardized", i, z[i], z2[i])
		}
	}
	// Calibration: exact Gaussians put a share α of non-members above the
	// test's threshold (binomial error over 20,000 about 0.0007 at 1%).
	for _, alpha := range []float64{0.01, 0.1} {
		fpr, non, err := QMIAObservedFPR(z, member, alpha)
		if err != nil || non != n {
			t.Fatalf("observed FPR: %v, %d non-members", err, non)
		}
		if math.Abs(fpr-alpha) > 4*math.Sqrt(alpha*(1-alpha)/n) {
			t.Errorf("at α = %v the exact Gaussians flag %.4f of non-members", alpha, fpr)
		}
	}
}

// TestQMIASignFlip: members whose scores sit lower than the non-members'
// (shifted by −1 instead of +1) read as less member-like: the AUC is
// scipy's 1 − 0.77976, and swapping the membership flags turns an AUC a
// into 1 − a.
func TestQMIASignFlip(t *testing.T) {
	s, member, mu, logSigma := qmiaSynthetic(20000, -1, 2)
	z, err := QMIAScores(s, mu, logSigma, Standardization{Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewROC(z, member)
	if err != nil {
		t.Fatal(err)
	}
	const want = 0.2202432042 // audit/testdata/make_qmia_refs.py
	if got := r.AUC(); math.Abs(got-want) > 0.012 {
		t.Errorf("AUC with members shifted down %.4f, want %.4f ± 0.012", got, want)
	}
	flipped := make([]bool, len(member))
	for i, m := range member {
		flipped[i] = !m
	}
	rf, err := NewROC(z, flipped)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rf.AUC()-(1-r.AUC())) > 1e-12 {
		t.Errorf("swapped membership: AUC %v, want 1 − %v", rf.AUC(), r.AUC())
	}
}

// TestQMIAThreshold: Φ⁻¹(1 − α) against scipy's norm.ppf.
func TestQMIAThreshold(t *testing.T) {
	for _, c := range []struct{ alpha, want float64 }{
		{0.001, 3.0902323062}, {0.01, 2.3263478740}, {0.1, 1.2815515655},
	} {
		got, err := QMIAThreshold(c.alpha)
		if err != nil || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("α = %v: threshold %v (%v), want %v", c.alpha, got, err, c.want)
		}
	}
	for _, a := range []float64{0, 1, -0.1, math.NaN()} {
		_, err := QMIAThreshold(a)
		wantInvalid(t, "threshold", err)
	}
}

// TestQMIAInvalidInput: malformed input is refused with ErrInvalidInput.
func TestQMIAInvalidInput(t *testing.T) {
	ok := []float64{1, 2}
	st := Standardization{Scale: 1}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"short means", func() error { _, err := QMIAScores(ok, ok[:1], ok, st); return err }()},
		{"NaN hinge", func() error { _, err := QMIAScores([]float64{1, math.NaN()}, ok, ok, st); return err }()},
		{"infinite log σ", func() error { _, err := QMIAScores(ok, ok, []float64{0, math.Inf(1)}, st); return err }()},
		{"σ overflowing", func() error { _, err := QMIAScores(ok, ok, []float64{0, 800}, st); return err }()},
		{"zero scale", func() error { _, err := QMIAScores(ok, ok, ok, Standardization{}); return err }()},
		{"hinge of one class", func() error { _, err := HingeScores([]float64{1, 2}, 1, []int{0, 0}); return err }()},
		{"hinge label out of range", func() error { _, err := HingeScores([]float64{1, 2}, 2, []int{2}); return err }()},
		{"hinge NaN logit", func() error { _, err := HingeScores([]float64{1, math.NaN()}, 2, []int{0}); return err }()},
		{"hinge short logits", func() error { _, err := HingeScores([]float64{1, 2, 3}, 2, []int{0, 1}); return err }()},
		{"no scores to standardize", func() error { _, err := StandardizationOf(nil); return err }()},
		{"observed FPR without non-members", func() error { _, _, err := QMIAObservedFPR(ok, []bool{true, true}, 0.1); return err }()},
	} {
		wantInvalid(t, c.name, c.err)
	}
}

// TestUnscoredRowsLeftOut: a NaN score marks a row the attack did not
// score (as the quantile-regression attack leaves its fitting
// non-members): PPV at the priors and the slices are those of the scored
// rows alone.
func TestUnscoredRowsLeftOut(t *testing.T) {
	s, m := riskData(1) // 80 members, 100 non-members
	// 40 more non-members, unscored, that would all be flagged.
	tbl := &SampleTable{Scores: map[string][]float64{}}
	col := append([]float64{}, s...)
	member := append([]bool{}, m...)
	for i := 0; i < 40; i++ {
		col, member = append(col, math.NaN()), append(member, false)
	}
	for i := range col {
		tbl.Index = append(tbl.Index, i)
		tbl.Label = append(tbl.Label, int64(i%2))
		tbl.Canary = append(tbl.Canary, false)
	}
	tbl.Member, tbl.Scores[AttackQMIA] = member, col
	opt := BootstrapOptions{Replicates: 50, Seed: 1}
	v := VariantReport{Attacks: []AttackReport{{Attack: AttackQMIA, TPRAt: []TPRAtInterval{{TargetFPR: 0.1}}}}}
	if err := AddRiskAtPriors(&v, tbl, []float64{0.5}, opt); err != nil {
		t.Fatal(err)
	}
	want, err := RiskAtPriors(s, m, []float64{0.1}, []float64{0.5}, opt)
	if err != nil {
		t.Fatal(err)
	}
	got := v.Attacks[0].Risk
	if len(got) != 1 || got[0].NonMembers != 100 || got[0].Exposed != want[0].Exposed || got[0].PPV[0].PPV != want[0].PPV[0].PPV {
		t.Errorf("risk with unscored rows %+v, want that of the scored rows %+v", got, want)
	}
	sl, err := ComputeSlices(SliceInput{Attack: AttackQMIA, Scores: col, Member: member, Label: tbl.Label}, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range sl {
		if x.Attack.Members+x.Attack.NonMembers != 90 {
			t.Errorf("slice %s rests on %d + %d samples, want the 90 scored ones of its class", x.Slice, x.Attack.Members, x.Attack.NonMembers)
		}
	}
	if len(sl) != 2 {
		t.Errorf("%d slices, want one per class", len(sl))
	}
}

// TestMeanGaussianNLL: against scipy's norm.logpdf
// (audit/testdata/make_qmia_refs.py).
func TestMeanGaussianNLL(t *testing.T) {
	got, err := MeanGaussianNLL([]float64{0.3, -2.5, 4.0}, []float64{1.2, -1.0, -0.4}, []float64{0.4, 0.2, 0.7})
	if err != nil || math.Abs(got-2.4599874976) > 1e-9 {
		t.Errorf("mean NLL %v (%v), want 2.4599874976", got, err)
	}
	_, err = MeanGaussianNLL(nil, nil, nil)
	wantInvalid(t, "no values", err)
}
