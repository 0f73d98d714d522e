package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
)

// A report with one variant: best AUC 0.62 [0.58, 0.66], canary gap 0.9.
func checkFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	r := &audit.Report{Schema: audit.ReportSchema, Kind: "compare", Verdict: "v", VerdictCode: "not_distinguishable",
		Variants: []audit.VariantReport{{Name: "original", BatchNorms: 2,
			Attacks: []audit.AttackReport{
				{Attack: "loss", Members: 100, NonMembers: 100, AUC: audit.Interval{Estimate: 0.62, Lo: 0.58, Hi: 0.66},
					TPRAt: []audit.TPRAtInterval{{TargetFPR: 0.01, TPR: audit.Interval{Estimate: 0.03, Lo: 0.01, Hi: 0.06}, AllowedFP: 1}}},
				{Attack: "entropy", Members: 100, NonMembers: 100, AUC: audit.Interval{Estimate: 0.55, Lo: 0.5, Hi: 0.6}},
			},
			Memorization: &audit.CanaryGap{NInserted: 50, NHeldOut: 50, AccuracyGap: audit.Interval{Estimate: 0.9, Lo: 0.8, Hi: 0.96}},
		}},
	}
	if err := report.Write(dir, r); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckGate(t *testing.T) {
	dir := checkFixture(t)
	junit := filepath.Join(t.TempDir(), "check.xml")
	// A policy the model violates: exit 1, JUnit names the failed rule.
	code, stdout, stderr := bnaudit(t, "check", dir, "--max-auc", "0.6", "--max-canary-gap", "0.95", "--junit", junit)
	if code != exitCheckFailed {
		t.Fatalf("exit %d, want 1; %s %s", code, stdout, stderr)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal(b, &suite); err != nil {
		t.Fatalf("invalid JUnit XML: %v", err)
	}
	if suite.Tests != 2 || suite.Failures != 1 || suite.Cases[0].Failure == nil || !strings.Contains(suite.Cases[0].Name, "max_auc") || suite.Cases[1].Failure != nil {
		t.Fatalf("JUnit: %+v", suite)
	}
	// Lax: exit 0. Conservative (upper interval ends): 0.66 > 0.65 fails.
	if code, _, stderr := bnaudit(t, "check", dir, "--max-auc", "0.65"); code != 0 {
		t.Fatalf("lax policy: exit %d %s", code, stderr)
	}
	if code, _, _ := bnaudit(t, "check", filepath.Join(dir, "report.json"), "--max-auc", "0.65", "--conservative"); code != exitCheckFailed {
		t.Fatalf("conservative policy: exit %d", code)
	}
	// A policy file; a typo in it is bad input.
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("max_auc: 0.7\nmax_tpr: 0.05\ntpr_at_fpr: 0.01\n"), 0o644)
	if code, stdout, stderr := bnaudit(t, "check", dir, "--policy", pol, "--json"); code != 0 || !strings.Contains(stdout, `"passed": true`) {
		t.Fatalf("policy file: exit %d %s %s", code, stdout, stderr)
	}
	os.WriteFile(pol, []byte("max_acu: 0.7\n"), 0o644)
	if code, _, stderr := bnaudit(t, "check", dir, "--policy", pol); code != exitBadInput || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("typo in policy: exit %d %q", code, stderr)
	}
	// A missing model or report: exit 2, one line.
	for _, missing := range []string{filepath.Join(dir, "missing.onnx"), filepath.Join(dir, "nope")} {
		code, _, stderr := bnaudit(t, "check", missing, "--max-auc", "0.5", "--members", "x", "--nonmembers", "y", "--norm", "0/1")
		if code != exitBadInput || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Fatalf("%s: exit %d %q", missing, code, stderr)
		}
	}
}
