package main

import (
	"path/filepath"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
)

// TestCheckRiskGate: check --max-ppv with --prior gates on the PPV a
// report measured (exit 0 or 1), refuses a prior it did not measure or
// several priors (exit 2), and --max-epsilon-lower-bound gates on the
// one-run bound.
func TestCheckRiskGate(t *testing.T) {
	dir := t.TempDir()
	r := &audit.Report{Schema: audit.ReportSchema, Kind: "compare", Verdict: "v", VerdictCode: "not_distinguishable",
		Variants: []audit.VariantReport{{Name: "original", BatchNorms: 2,
			Attacks: []audit.AttackReport{{Attack: "loss", Members: 100, NonMembers: 100, AUC: audit.Interval{Estimate: 0.62, Lo: 0.58, Hi: 0.66},
				TPRAt: []audit.TPRAtInterval{{TargetFPR: 0.01, TPR: audit.Interval{Estimate: 0.03, Lo: 0.01, Hi: 0.06}, AllowedFP: 1}},
				Risk: []audit.RiskAtFPR{{TargetFPR: 0.01, TPR: 0.03, FPR: 0.01, Exposed: 3, FalsePositives: 1, Members: 100, NonMembers: 100,
					PPV: []audit.PPVAtPrior{{Prior: 0.1, PPV: audit.Interval{Estimate: 0.25, Lo: 0.1, Hi: 0.6}}}}}}},
			DPLowerBound: &audit.EpsilonBound{Epsilon: 1.75, Delta: 1e-5, Confidence: 0.95, Canaries: 100, Tests: 96}}},
	}
	if err := report.Write(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--max-ppv", "0.5", "--prior", "0.1"}, 0},
		{[]string{"--max-ppv", "0.2", "--prior", "0.1"}, exitCheckFailed},
		{[]string{"--max-ppv", "0.5", "--prior", "0.1", "--conservative"}, exitCheckFailed},
		{[]string{"--max-ppv", "0.5", "--prior", "0.3"}, exitBadInput},
		{[]string{"--max-ppv", "0.5"}, exitBadInput},
		{[]string{"--max-ppv", "0.5", "--prior", "0.1", "--prior", "0.5"}, exitBadInput},
		{[]string{"--max-epsilon-lower-bound", "2"}, 0},
		{[]string{"--max-epsilon-lower-bound", "1"}, exitCheckFailed},
	} {
		args := append([]string{"check", filepath.Join(dir, "report.json")}, c.args...)
		if code, stdout, stderr := bnaudit(t, args...); code != c.code {
			t.Errorf("%v: exit %d, want %d; %s %s", c.args, code, c.code, stdout, stderr)
		}
	}
}
