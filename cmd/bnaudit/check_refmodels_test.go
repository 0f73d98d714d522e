package main

import (
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
)

// TestCheckMinRefModels: --min-ref-models fails (exit 1) a report whose
// LiRA rests on 2 reference models, passes it at 2, and is bad usage
// (exit 2) on a report without reference attacks.
func TestCheckMinRefModels(t *testing.T) {
	dir := t.TempDir()
	auc := audit.Interval{Estimate: 0.6, Lo: 0.55, Hi: 0.65}
	r := &audit.Report{Schema: audit.ReportSchema, Kind: "audit", Verdict: "v", VerdictCode: audit.VerdictNotApplicable,
		Variants: []audit.VariantReport{{Name: "audited", RefModels: 2, Attacks: []audit.AttackReport{
			{Attack: audit.AttackLoss, Members: 10, NonMembers: 10, AUC: auc},
			{Attack: audit.AttackLiRAOnline, Members: 10, NonMembers: 10, AUC: auc},
		}}}}
	if err := report.Write(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check", dir, "--min-ref-models", "4"}, exitCheckFailed, "FAIL min_ref_models"},
		{[]string{"check", dir, "--min-ref-models", "2"}, exitOK, "ok   min_ref_models"},
		{[]string{"check", checkFixture(t), "--min-ref-models", "4"}, exitBadInput, "no reference-model attack"},
		{[]string{"check", dir, "--min-ref-models", "-1"}, exitBadInput, "must be 0 or more"},
	} {
		code, stdout, stderr := bnaudit(t, c.args...)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%v: exit %d, want %d mentioning %q; stdout %q stderr %q", c.args, code, c.code, c.want, stdout, stderr)
		}
	}
}
