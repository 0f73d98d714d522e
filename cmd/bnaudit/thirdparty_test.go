package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
)

const thirdParty = "../../testdata/thirdparty"

// thirdPartyExpected is what testdata/thirdparty/make_thirdparty.py wrote:
// PyTorch trained and exported the model; scikit-learn computed the AUCs
// on PyTorch's logits.
type thirdPartyExpected struct {
	Normalization struct {
		Flag string `json:"norm_flag"`
	} `json:"normalization"`
	Members struct {
		First int `json:"first"`
	} `json:"members"`
	NonMembers struct {
		First int `json:"first"`
	} `json:"nonmembers"`
	Exports map[string]struct {
		File       string  `json:"file"`
		BatchNorms int     `json:"batchnorm_nodes"`
		AUC        float64 `json:"member_loss_auc"`
	} `json:"exports"`
}

// readReport reads an audit's report.json.
func readReport(t *testing.T, dir string) *audit.Report {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fileHas says whether the report folder's file contains s.
func fileHas(t *testing.T, dir, file, s string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), s)
}

// TestThirdPartyModel is issue 16's item 6: a model trained and exported
// by PyTorch alone, outside bnaudit, audited from its two ONNX exports
// (BN folded by the default eval export, BN kept by PRESERVE) with the
// normalization it was trained with: bnaudit's member LOSS AUC is the one
// scikit-learn computed on PyTorch's own logits. The folded export's
// report, on stdout and in report.json, .md and .html, warns that BN may
// have been folded; the PRESERVE export's does not.
func TestThirdPartyModel(t *testing.T) {
	requireORT(t)
	b, err := os.ReadFile(filepath.Join(thirdParty, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want thirdPartyExpected
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Exports) != 2 || want.Members.First != want.NonMembers.First {
		t.Fatalf("expected.json: %+v", want)
	}
	const warning = "BatchNorm may have been folded"
	for _, name := range []string{"eval_default", "preserve"} {
		exp := want.Exports[name]
		out := filepath.Join(t.TempDir(), name)
		code, stdout, stderr := bnaudit(t, "--threads", "1", "audit", filepath.Join(thirdParty, exp.File),
			"--members", fmnist, "--nonmembers", filepath.Join(thirdParty, "nonmembers"), "--max-samples", fmt.Sprint(want.Members.First),
			"--norm", want.Normalization.Flag, "--bootstrap", "20", "--no-cache", "-o", out)
		if code != 0 {
			t.Fatalf("audit %s: exit %d: %s", exp.File, code, stderr)
		}
		r := readReport(t, out)
		v := r.Variants[0]
		got := math.NaN()
		for _, a := range v.Attacks {
			if a.Attack == audit.AttackLoss {
				got = a.AUC.Estimate
				if a.Members != want.Members.First || a.NonMembers != want.NonMembers.First {
					t.Errorf("%s: %d members and %d non-members, want %d each", name, a.Members, a.NonMembers, want.Members.First)
				}
			}
		}
		t.Logf("%s: member LOSS AUC %.7f, scikit-learn on PyTorch's logits %.7f", name, got, exp.AUC)
		if !(math.Abs(got-exp.AUC) <= 1e-3) {
			t.Errorf("%s: member LOSS AUC %.7f, want %.7f (scikit-learn on PyTorch's logits) within 1e-3", name, got, exp.AUC)
		}
		if v.BatchNorms != exp.BatchNorms {
			t.Errorf("%s: %d BatchNorm layers, PyTorch exported %d", name, v.BatchNorms, exp.BatchNorms)
		}
		folded := exp.BatchNorms == 0
		for _, c := range []struct {
			where string
			has   bool
		}{
			{"stdout", strings.Contains(stdout, warning)},
			{"report.json", strings.Contains(strings.Join(r.Notes, "\n"), warning)},
			{"report.md", fileHas(t, out, report.MarkdownFile, warning)},
			{"report.html", fileHas(t, out, report.HTMLFile, warning)},
		} {
			if c.has != folded {
				t.Errorf("%s: %s has the warning %q: %v, want %v", name, c.where, warning, c.has, folded)
			}
		}
	}
}
