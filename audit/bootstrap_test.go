package audit

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// synthScores returns nMem member scores N(shift, 1) followed by nNon
// non-member scores N(0, 1).
func synthScores(seed uint64, nMem, nNon int, shift float64) ([]float64, []bool) {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := make([]float64, nMem+nNon)
	m := make([]bool, nMem+nNon)
	for i := range s {
		s[i] = rng.NormFloat64()
		if i < nMem {
			s[i] += shift
			m[i] = true
		}
	}
	return s, m
}

func TestBootstrapContainsEstimate(t *testing.T) {
	scores, member := synthScores(1, 1000, 1000, 1)
	ci, err := BootstrapMetrics(scores, member, BootstrapOptions{Seed: 7, Replicates: 500, TargetFPRs: []float64{0.01, 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Evaluate(scores, member, 0.01, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, iv Interval, want float64) {
		if iv.Estimate != want {
			t.Errorf("%s: estimate %v, Evaluate says %v", name, iv.Estimate, want)
		}
		if !(iv.Lo <= iv.Estimate && iv.Estimate <= iv.Hi) || !(iv.Lo < iv.Hi) {
			t.Errorf("%s: interval %v does not bracket its estimate", name, iv)
		}
	}
	check("AUC", ci.AUC, m.AUC)
	check("advantage", ci.Advantage, m.Advantage)
	check("TPR@1%", ci.TPRAt[0], m.TPRAt[0].TPR)
	check("TPR@10%", ci.TPRAt[1], m.TPRAt[1].TPR)
	// The AUC's standard error here is about 0.011: a 95% interval about
	// 0.045 wide. Far narrower or wider means the resampling is wrong.
	if w := ci.AUC.Hi - ci.AUC.Lo; w < 0.03 || w > 0.06 {
		t.Errorf("AUC interval %v has width %v, want about 0.045", ci.AUC, w)
	}
	if ci.Replicates != 500 || ci.Level != 0.95 || ci.Seed != 7 {
		t.Errorf("options not reported: %+v", ci)
	}
}

func TestBootstrapSeeds(t *testing.T) {
	scores, member := synthScores(2, 300, 300, 0.5)
	opt := BootstrapOptions{Seed: 42, Replicates: 200}
	a, err := BootstrapMetrics(scores, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BootstrapMetrics(scores, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different intervals:\n%+v\n%+v", a, b)
	}
	opt.Seed = 43
	c, err := BootstrapMetrics(scores, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	if a.AUC.Lo == c.AUC.Lo && a.AUC.Hi == c.AUC.Hi {
		t.Errorf("seeds 42 and 43 gave the same AUC interval %v", a.AUC)
	}
}

// TestBootstrapStratified: with 2 members among 400 samples an unstratified
// resample would often hold no member; stratified, every replicate keeps
// both classes at their sizes.
func TestBootstrapStratified(t *testing.T) {
	pos, neg := []int{3, 150}, make([]int, 0, 398)
	for i := range 400 {
		if i != 3 && i != 150 {
			neg = append(neg, i)
		}
	}
	rs := newResampler(9, [][]int{pos, neg}, 400)
	for range 100 {
		w := rs.draw()
		var np, nn int32
		for _, i := range pos {
			np += w[i]
		}
		for _, i := range neg {
			nn += w[i]
		}
		if np != 2 || nn != 398 {
			t.Fatalf("replicate has %d members and %d non-members, want 2 and 398", np, nn)
		}
	}
	scores, member := synthScores(3, 2, 398, 2)
	if _, err := BootstrapMetrics(scores, member, BootstrapOptions{Replicates: 300}); err != nil {
		t.Errorf("bootstrap with 2 members: %v", err)
	}
}

// TestBootstrapWeightsEqualRepeats: a resample given as counts must give
// the curve of the data with each sample repeated that many times.
func TestBootstrapWeightsEqualRepeats(t *testing.T) {
	scores, member := synthScores(4, 30, 40, 0.7)
	for i := range scores {
		scores[i] = math.Round(scores[i]*4) / 4 // ties
	}
	rng := rand.New(rand.NewPCG(6, 0))
	w := make([]int32, len(scores))
	var rep []float64
	var repM []bool
	for i := range w {
		w[i] = int32(rng.IntN(3))
		for range w[i] {
			rep = append(rep, scores[i])
			repM = append(repM, member[i])
		}
	}
	var r ROC
	r.fill(sortDescending(scores), scores, member, w)
	want, err := NewROC(rep, repM)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.FP, want.FP) || !reflect.DeepEqual(r.TP, want.TP) || !reflect.DeepEqual(r.Thresholds, want.Thresholds) {
		t.Errorf("weighted curve differs from the repeated data's curve")
	}
}

func TestBootstrapDifference(t *testing.T) {
	strong, member := synthScores(10, 500, 500, 1.5)
	weak := make([]float64, len(strong))
	rng := rand.New(rand.NewPCG(11, 0))
	for i := range weak {
		weak[i] = strong[i] + 2*rng.NormFloat64() // same samples, noisier
	}
	opt := BootstrapOptions{Seed: 3, Replicates: 400}
	d, err := BootstrapDifference(strong, weak, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !(d.Diff.AUC.Lo > 0) {
		t.Errorf("AUC difference %v should exclude 0 (strong %v, weak %v)", d.Diff.AUC, d.A.AUC, d.B.AUC)
	}
	if got, want := d.Diff.AUC.Estimate, d.A.AUC.Estimate-d.B.AUC.Estimate; got != want {
		t.Errorf("difference estimate %v, want %v", got, want)
	}
	// Pairing: each side equals its own bootstrap with the same seed.
	a, _ := BootstrapMetrics(strong, member, opt)
	b, _ := BootstrapMetrics(weak, member, opt)
	if !reflect.DeepEqual(d.A, a) || !reflect.DeepEqual(d.B, b) {
		t.Errorf("paired sides differ from the single bootstraps")
	}
	// An attack against itself: the difference is exactly 0 in every replicate.
	same, err := BootstrapDifference(strong, strong, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	if same.Diff.AUC != (Interval{}) || same.Diff.TPRAt[1] != (Interval{}) {
		t.Errorf("self-difference %+v, want zeros", same.Diff)
	}
	// Paired intervals of the difference are narrower than what unpaired
	// (independent) intervals would suggest when the attacks correlate.
	pairedWidth := d.Diff.AUC.Hi - d.Diff.AUC.Lo
	indep := math.Hypot(a.AUC.Hi-a.AUC.Lo, b.AUC.Hi-b.AUC.Lo)
	if !(pairedWidth < indep) {
		t.Errorf("paired width %v not below the independent width %v", pairedWidth, indep)
	}
}

// TestPercentile checks numpy's default quantiles:
// np.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925].
func TestPercentile(t *testing.T) {
	lo, hi := percentile([]float64{4, 2, 1, 3}, 0.95)
	if math.Abs(lo-1.075) > 1e-15 || math.Abs(hi-3.925) > 1e-15 {
		t.Errorf("percentile = %v, %v; want 1.075, 3.925", lo, hi)
	}
	if lo, hi := percentile([]float64{5}, 0.9); lo != 5 || hi != 5 {
		t.Errorf("one value: %v, %v", lo, hi)
	}
}

func TestBootstrapGroups(t *testing.T) {
	// The mean of group 0 minus the mean of group 1.
	g0 := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	g1 := []float64{0, 0, 1, 0, 1}
	stat := func(idx [][]int) []float64 {
		var a, b float64
		for _, i := range idx[0] {
			a += g0[i]
		}
		for _, i := range idx[1] {
			b += g1[i]
		}
		return []float64{a/float64(len(idx[0])) - b/float64(len(idx[1]))}
	}
	iv, err := BootstrapGroups([]int{len(g0), len(g1)}, stat, BootstrapOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(iv) != 1 || iv[0].Estimate != 4.5-0.4 || !(iv[0].Lo < iv[0].Estimate && iv[0].Estimate < iv[0].Hi) {
		t.Errorf("interval %+v, want estimate 4.1 inside", iv)
	}
	_, err = BootstrapGroups([]int{3, 0}, stat, BootstrapOptions{})
	wantInvalid(t, "empty group", err)
}

func TestBootstrapInvalidOptions(t *testing.T) {
	scores, member := synthScores(1, 5, 5, 1)
	for _, c := range []struct {
		name string
		opt  BootstrapOptions
	}{
		{"negative replicates", BootstrapOptions{Replicates: -1}},
		{"level 1", BootstrapOptions{Level: 1}},
		{"level above 1", BootstrapOptions{Level: 95}},
		{"bad target", BootstrapOptions{TargetFPRs: []float64{2}}},
	} {
		_, err := BootstrapMetrics(scores, member, c.opt)
		wantInvalid(t, c.name, err)
	}
	_, err := BootstrapDifference(scores, scores[:3], member, BootstrapOptions{})
	wantInvalid(t, "length mismatch", err)
}

// TestBootstrapProgress: a progress hook hears every replicate (the last
// call is total of total, counts never go back) and leaves the intervals
// as they are without it.
func TestBootstrapProgress(t *testing.T) {
	scores, member := synthScores(3, 300, 300, 0.5)
	opt := BootstrapOptions{Seed: 7, Replicates: 150}
	want, err := BootstrapMetrics(scores, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	calls, last := 0, 0
	opt.Progress = func(done, total int) {
		if total != 150 || done < last || done > total {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		calls, last = calls+1, done
	}
	got, err := BootstrapMetrics(scores, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	if calls < 150 || last != 150 {
		t.Errorf("%d calls ending at %d, want ≥ 150 ending at 150", calls, last)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("intervals changed with a progress hook:\n%+v\n%+v", got, want)
	}
}
