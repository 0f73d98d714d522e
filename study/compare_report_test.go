package study

import (
	"math"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// seedRecord is a finished run with the numbers a report row averages.
func seedRecord(auc, adv, tpr1, insAcc, lossGap float64, balanced *audit.Interval) *runRecord {
	a := audit.AttackReport{Attack: "loss", AUC: audit.Interval{Estimate: auc, Lo: auc - 0.01, Hi: auc + 0.01},
		Advantage: audit.Interval{Estimate: adv, Lo: adv - 0.01, Hi: adv + 0.01}, BalancedAcc: (1 + adv) / 2,
		TPRAt: []audit.TPRAtInterval{{TargetFPR: 0.01, TPR: audit.Interval{Estimate: tpr1, Lo: tpr1, Hi: tpr1}, AllowedFP: 5}}}
	if balanced != nil {
		a.BalancedAccInterval = *balanced
	}
	return &runRecord{
		Variant: audit.VariantReport{Name: "v", Attacks: []audit.AttackReport{a},
			Memorization: &audit.CanaryGap{InsertedAccuracy: audit.Interval{Estimate: insAcc, Lo: insAcc, Hi: insAcc}, LossGap: audit.Interval{Estimate: lossGap, Lo: lossGap, Hi: lossGap}}},
		Samples: &audit.SampleTable{Label: []int64{int64(math.Round(auc * 100))}},
	}
}

// TestCompareRowAveragesSeeds: every number of a row that aggregates
// seeds is the mean over the seeds (worked by hand), not the first seed's;
// every run's sample table is handed to the writers in order.
func TestCompareRowAveragesSeeds(t *testing.T) {
	b1, b2 := audit.Interval{Estimate: 0.6, Lo: 0.55, Hi: 0.65}, audit.Interval{Estimate: 0.7, Lo: 0.65, Hi: 0.75}
	records := map[string][]*runRecord{
		"original": {seedRecord(0.60, 0.20, 0.05, 0.50, -1, &b1), seedRecord(0.70, 0.40, 0.15, 0.70, -3, &b2)},
		// An older record lacks the balanced-accuracy interval: its
		// estimate (1 + adv)/2 is used.
		"remove": {seedRecord(0.52, 0.04, 0.01, 0.10, -0.5, nil), seedRecord(0.54, 0.08, 0.03, 0.30, -1.5, nil)},
	}
	cfg := CompareConfig{Variants: []string{"original", "remove"}, Seeds: 2, Bootstrap: audit.BootstrapOptions{Replicates: 200, Seed: 1}}
	r, err := buildCompareReport(cfg, records)
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	want := []struct{ auc, adv, bal, tpr, ins, gap float64 }{
		{0.65, 0.30, 0.65, 0.10, 0.60, -2},
		{0.53, 0.06, 0.53, 0.02, 0.20, -1},
	}
	if len(r.Variants) != 2 {
		t.Fatalf("%d rows, want 2", len(r.Variants))
	}
	for i, w := range want {
		v := r.Variants[i]
		a := v.Attacks[0]
		near(v.Name+" AUC", a.AUC.Estimate, w.auc)
		near(v.Name+" advantage", a.Advantage.Estimate, w.adv)
		near(v.Name+" balanced accuracy interval", a.BalancedAccInterval.Estimate, w.bal)
		near(v.Name+" balanced accuracy", a.BalancedAcc, w.bal)
		near(v.Name+" TPR@1%", a.TPRAt[0].TPR.Estimate, w.tpr)
		near(v.Name+" inserted accuracy", v.Memorization.InsertedAccuracy.Estimate, w.ins)
		near(v.Name+" loss gap", v.Memorization.LossGap.Estimate, w.gap)
		if a.TPRAt[0].AllowedFP != 5 {
			t.Errorf("%s: allowed false positives %d, want 5", v.Name, a.TPRAt[0].AllowedFP)
		}
	}
	// The records themselves are untouched (seed 0 keeps its own numbers).
	near("original seed 0 advantage", records["original"][0].Variant.Attacks[0].Advantage.Estimate, 0.20)
	near("original seed 0 TPR", records["original"][0].Variant.Attacks[0].TPRAt[0].TPR.Estimate, 0.05)
	wantRuns := []struct {
		v     string
		seed  int
		label int64
	}{{"original", 0, 60}, {"original", 1, 70}, {"remove", 0, 52}, {"remove", 1, 54}}
	if len(r.Runs) != len(wantRuns) {
		t.Fatalf("%d runs, want %d", len(r.Runs), len(wantRuns))
	}
	for i, w := range wantRuns {
		got := r.Runs[i]
		if got.Variant != w.v || got.Seed != w.seed || got.Table.Label[0] != w.label {
			t.Errorf("run %d: %s seed %d label %d, want %s seed %d label %d", i, got.Variant, got.Seed, got.Table.Label[0], w.v, w.seed, w.label)
		}
	}
}
