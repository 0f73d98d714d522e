package study

import (
	"math"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

func TestCheckpointEpochs(t *testing.T) {
	for _, c := range []struct {
		n, k int
		want []int
	}{
		{15, 5, []int{3, 6, 9, 12, 15}},
		{4, 5, []int{1, 2, 3, 4}},
		{10, 1, []int{10}},
		{10, 3, []int{4, 7, 10}},
	} {
		got := checkpointEpochs(c.n, c.k)
		if len(got) != len(c.want) {
			t.Errorf("%d epochs, %d checkpoints: %v, want %v", c.n, c.k, got, c.want)
			continue
		}
		for _, e := range c.want {
			if !got[e] {
				t.Errorf("%d epochs, %d checkpoints: %v, want %v", c.n, c.k, got, c.want)
			}
		}
	}
}

// TestCompareRowKeepsSeeds: a variant row over two seeds holds the mean
// AUC, and per_seed keeps each run's own (the first run's numbers are not
// overwritten by the row's).
func TestCompareRowKeepsSeeds(t *testing.T) {
	rec := func(auc, canary float64) *runRecord {
		return &runRecord{Variant: audit.VariantReport{Name: "original",
			Attacks:       []audit.AttackReport{{Attack: "loss", AUC: audit.Interval{Estimate: auc, Lo: auc - 0.01, Hi: auc + 0.01}}},
			CanaryAttacks: []audit.AttackReport{{Attack: "loss", AUC: audit.Interval{Estimate: canary, Lo: canary, Hi: canary}}}}}
	}
	cfg := CompareConfig{Variants: []string{"original"}, Seeds: 2, Bootstrap: audit.BootstrapOptions{Replicates: 100, Seed: 1}}
	r, err := buildCompareReport(cfg, map[string][]*runRecord{"original": {rec(0.60, 0.90), rec(0.70, 0.80)}})
	if err != nil {
		t.Fatal(err)
	}
	v := r.Variants[0]
	if math.Abs(v.Attacks[0].AUC.Estimate-0.65) > 1e-12 || math.Abs(v.CanaryAttacks[0].AUC.Estimate-0.85) > 1e-12 {
		t.Errorf("row AUCs %v and %v, want the means 0.65 and 0.85", v.Attacks[0].AUC, v.CanaryAttacks[0].AUC)
	}
	// A third run recorded without the attack (an older bnaudit) is left
	// out of the mean instead of failing.
	old := rec(0.5, 0.5)
	old.Variant.Attacks, old.Variant.CanaryAttacks = nil, nil
	r3, err := buildCompareReport(cfg, map[string][]*runRecord{"original": {rec(0.60, 0.90), rec(0.70, 0.80), old}})
	if err != nil || math.Abs(r3.Variants[0].Attacks[0].AUC.Estimate-0.65) > 1e-12 {
		t.Errorf("with a run lacking the attack: %v, AUC %v, want 0.65", err, r3.Variants[0].Attacks[0].AUC)
	}
	if len(v.PerSeed) != 2 || v.PerSeed[0].AUC[0].AUC.Estimate != 0.60 || v.PerSeed[1].AUC[0].AUC.Estimate != 0.70 || v.PerSeed[0].CanaryAUC[0].AUC.Estimate != 0.90 {
		t.Errorf("per-seed AUCs %+v, want 0.60 and 0.70 (canary 0.90 first)", v.PerSeed)
	}
}

// TestFallbackNotes: each refused-rewrite note reaches the report once,
// naming the run that met it, in variant order.
func TestFallbackNotes(t *testing.T) {
	recs := map[string][]*runRecord{
		"original": {{Key: "original-seed0", Fallbacks: []string{"step graph at batch 128: ORT refused"}}, {Key: "original-seed1", Fallbacks: []string{"step graph at batch 128: ORT refused"}}},
		"remove":   {{Key: "remove-seed0"}},
	}
	got := fallbackNotes([]string{"original", "remove"}, recs)
	want := []string{"Run original-seed0 trained on the standard graph: step graph at batch 128: ORT refused"}
	if len(got) != len(want) || got[0] != want[0] {
		t.Errorf("notes %q, want %q", got, want)
	}
}
