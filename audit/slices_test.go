package audit

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Slices on hand-built scores whose AUCs are counted by hand.
func TestComputeSlices(t *testing.T) {
	var in SliceInput
	in.Attack = "loss"
	add := func(score float64, member bool, label int64, correct, canary bool) {
		in.Scores = append(in.Scores, score)
		in.Member = append(in.Member, member)
		in.Label = append(in.Label, label)
		in.Correct = append(in.Correct, correct)
		in.Canary = append(in.Canary, canary)
	}
	// Class 0: members score k = 1…10, non-members k − 0.5; member k beats
	// k non-members, so AUC = (1+…+10)/100 = 0.55.
	for k := 1; k <= 10; k++ {
		add(float64(k), true, 0, true, false)
		add(float64(k)-0.5, false, 0, false, false)
	}
	// Class 1: every member above every non-member: AUC 1.
	for k := 1; k <= 10; k++ {
		add(100+float64(k), true, 1, true, false)
		add(-float64(k), false, 1, false, false)
	}
	// Class 2: too few members to report (5 < 10).
	for k := 1; k <= 5; k++ {
		add(float64(k), true, 2, true, false)
		add(float64(k), false, 2, false, false)
	}
	sl, err := ComputeSlices(in, BootstrapOptions{Replicates: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range sl {
		got[s.Slice] = s.Attack.AUC.Estimate
		if s.Attack.ROC != nil {
			t.Errorf("slice %s keeps a ROC curve", s.Slice)
		}
	}
	want := map[string]float64{"class=0": 0.55, "class=1": 1}
	for k, w := range want {
		if math.Abs(got[k]-w) > 1e-12 {
			t.Errorf("%s: AUC %v, want %v", k, got[k], w)
		}
	}
	if _, ok := got["class=2"]; ok {
		t.Error("class 2 has 5 members and must be left out")
	}
	// Correct = members here, incorrect = non-members: each slice has one
	// side only, so neither is reported; no canaries either.
	for _, k := range []string{"correct", "incorrect", "canaries"} {
		if _, ok := got[k]; ok {
			t.Errorf("slice %s has one side only and must be left out", k)
		}
	}
	if len(sl) != 3 { // class=0, class=1, typical
		t.Errorf("got %d slices (%v), want class=0, class=1, typical", len(sl), got)
	}
	// Typical = all 50 non-canary samples: members beat non-members in
	// 55 + 100 + (class 2: member k vs class-2 non-members j<k: 10) +
	// cross-class pairs; counted by brute force below.
	num, den := 0.0, 0.0
	for i := range in.Scores {
		for j := range in.Scores {
			if in.Member[i] && !in.Member[j] {
				den++
				switch {
				case in.Scores[i] > in.Scores[j]:
					num++
				case in.Scores[i] == in.Scores[j]:
					num += 0.5
				}
			}
		}
	}
	if math.Abs(got["typical"]-num/den) > 1e-12 {
		t.Errorf("typical: AUC %v, want %v", got["typical"], num/den)
	}
	in.Label = in.Label[:3]
	if _, err := ComputeSlices(in, BootstrapOptions{}); err == nil {
		t.Error("mismatched lengths must fail")
	}
}

func TestMostVulnerable(t *testing.T) {
	tb := &SampleTable{
		Index:  []int{0, 1, 2, 3, 4, 5},
		Label:  []int64{3, 4, 5, 6, 7, 8},
		Member: []bool{true, true, true, false, false, false},
		Canary: []bool{false, true, false, false, false, false},
		Scores: map[string][]float64{"loss": {0.2, 0.9, 0.5, 0.6, 0.1, 0.5}},
		Loss:   []float64{1, 2, 3, 4, 5, 6},
	}
	got := MostVulnerable(tb, "loss", 2)
	if len(got) != 2 {
		t.Fatalf("got %d samples, want 2", len(got))
	}
	// Sample 1 (0.9): no non-member scores ≥ 0.9 → FPR 0. Sample 2 (0.5):
	// non-members 0.6 and 0.5 score ≥ 0.5 → FPR 2/3.
	if got[0].Index != 1 || !got[0].Canary || got[0].Score != 0.9 || got[0].FPR != 0 || got[0].Loss != 2 || got[0].Label != 4 {
		t.Errorf("first: %+v", got[0])
	}
	if got[1].Index != 2 || math.Abs(got[1].FPR-2.0/3) > 1e-15 || !math.IsNaN(got[1].Memorization) {
		t.Errorf("second: %+v", got[1])
	}
	// A tie at the top is broken by the LOSS score (higher = lower loss).
	tb.Scores["rmia_online"] = []float64{1, 1, 1, 0.5, 0.2, 0.1}
	tb.Scores["loss"] = []float64{-3, -1, -2, -4, -5, -6}
	got = MostVulnerable(tb, "rmia_online", 3)
	if got[0].Index != 1 || got[1].Index != 2 || got[2].Index != 0 {
		t.Errorf("ties: order %d, %d, %d, want 1, 2, 0", got[0].Index, got[1].Index, got[2].Index)
	}
	if MostVulnerable(tb, "lira_online", 2) != nil {
		t.Error("an attack without scores gives no samples")
	}
}

// TestHierarchicalInterval: two seeds that agree on a small positive
// difference, each measured with sampling noise larger than it: the seed
// means alone give an interval excluding zero; the two-stage bootstrap
// carries the sampling noise and includes it. Without sampling noise it
// spans the seeds' range; with one seed it is that seed's own interval.
func TestHierarchicalInterval(t *testing.T) {
	opt := BootstrapOptions{Replicates: 4000, Seed: 3}
	est := []float64{0.010, 0.020}
	r := rand.New(rand.NewPCG(1, 2))
	noisy := make([][]float64, 2)
	for s := range noisy {
		noisy[s] = make([]float64, 1000)
		for i := range noisy[s] {
			noisy[s][i] = est[s] + 0.02*r.NormFloat64()
		}
	}
	seedOnly := SeedInterval(est, []Interval{{}, {}}, opt)
	if !(seedOnly.Lo > 0) {
		t.Fatalf("seed means alone: %v; the test expects an interval above zero", seedOnly)
	}
	h := HierarchicalInterval(est, noisy, opt)
	if !(h.Lo < 0 && h.Hi > 0.02) || math.Abs(h.Estimate-0.015) > 1e-15 {
		t.Errorf("two-stage interval %v: want the estimate 0.015 and an interval that includes 0", h)
	}
	// Sampling noise of one seed: sd 0.02/√2 of the mean of two draws, so
	// the half-width is at least 1.96·0.014 ≈ 0.028.
	if h.Hi-h.Lo < 2*0.027 {
		t.Errorf("two-stage interval %v narrower than the sampling noise allows", h)
	}
	exact := [][]float64{{0.010}, {0.020}}
	if e := HierarchicalInterval(est, exact, opt); math.Abs(e.Lo-0.010) > 1e-12 || math.Abs(e.Hi-0.020) > 1e-12 {
		t.Errorf("without sampling noise: %v, want [0.010, 0.020]", e)
	}
	one := HierarchicalInterval(est[:1], noisy[:1], opt)
	lo, hi := percentile(append([]float64{}, noisy[0]...), 0.95)
	if math.Abs(one.Lo-lo) > 0.004 || math.Abs(one.Hi-hi) > 0.004 {
		t.Errorf("one seed: %v, want about its own percentile interval [%v, %v]", one, lo, hi)
	}
}

// TestComputeSlicesCanaries: with canaries, the "canaries" slice is the
// attack on inserted vs held-out canaries alone, and class slices leave
// canaries out (hand-counted AUCs).
func TestComputeSlicesCanaries(t *testing.T) {
	var in SliceInput
	in.Attack = "loss"
	add := func(score float64, member bool, label int64, canary bool) {
		in.Scores = append(in.Scores, score)
		in.Member = append(in.Member, member)
		in.Label = append(in.Label, label)
		in.Canary = append(in.Canary, canary)
	}
	// 12 typical members and 12 typical non-members of class 0, members
	// all above: class=0 and typical AUC 1.
	for k := 1; k <= 12; k++ {
		add(10+float64(k), true, 0, false)
		add(-float64(k), false, 0, false)
	}
	// 10 inserted and 10 held-out canaries, also labelled 0, interleaved:
	// inserted k scores k, held-out k scores k + 0.5, so inserted k beats
	// held-out j < k: (0+1+…+9)/100 = 0.45.
	for k := 1; k <= 10; k++ {
		add(float64(k), true, 0, true)
		add(float64(k)+0.5, false, 0, true)
	}
	sl, err := ComputeSlices(in, BootstrapOptions{Replicates: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]AttackReport{}
	for _, s := range sl {
		got[s.Slice] = s.Attack
	}
	for name, w := range map[string]struct {
		auc      float64
		pos, neg int
	}{"canaries": {0.45, 10, 10}, "class=0": {1, 12, 12}, "typical": {1, 12, 12}} {
		a, ok := got[name]
		if !ok {
			t.Errorf("no %s slice (have %d slices)", name, len(sl))
			continue
		}
		if math.Abs(a.AUC.Estimate-w.auc) > 1e-12 || a.Members != w.pos || a.NonMembers != w.neg {
			t.Errorf("%s: AUC %v on %d/%d, want %v on %d/%d", name, a.AUC.Estimate, a.Members, a.NonMembers, w.auc, w.pos, w.neg)
		}
	}
}
