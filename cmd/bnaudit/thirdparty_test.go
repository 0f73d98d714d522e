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
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
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

// TestAuditRefArchCommand: audit --ref-arch trains the reference models of
// a folded eval export on its PRESERVE export, which the report names
// (stdout and report.json); a reference architecture with another
// interface, one without --ref-models, or a missing file are refused with
// one line and exit 2.
func TestAuditRefArchCommand(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	evalDefault, preserve := filepath.Join(models, "small_cnn.eval_default.onnx"), filepath.Join(models, "small_cnn.preserve.onnx")
	args := func(out string, extra ...string) []string {
		return append([]string{"--threads", "1", "audit", evalDefault, "--members", fmnist, "--nonmembers", fmnist, "--max-samples", "100",
			"--norm", "0.2860/0.3530", "--bootstrap", "10", "--ref-epochs", "1", "-o", filepath.Join(dir, out)}, extra...)
	}
	code, stdout, stderr := bnaudit(t, args("ok", "--ref-models", "2", "--ref-arch", preserve)...)
	if code != 0 {
		t.Fatalf("audit --ref-arch: exit %d: %s", code, stderr)
	}
	r := readReport(t, filepath.Join(dir, "ok"))
	if ra := r.ReferenceArch; ra == nil || ra.Model != "small_cnn.preserve.onnx" || ra.BatchNorms != 2 || !ra.Given {
		t.Errorf("report's reference architecture: %+v", ra)
	}
	for _, s := range []string{"Reference architecture: the reference models were trained from scratch (weights re-drawn) on small_cnn.preserve.onnx", "trained with BN on small_cnn.preserve.onnx"} {
		if !strings.Contains(stdout, s) || !fileHas(t, filepath.Join(dir, "ok"), report.HTMLFile, s) {
			t.Errorf("stdout or report.html lacks %q:\n%s", s, stdout)
		}
	}
	refs, _ := filepath.Glob(filepath.Join(dir, "ok", "reference-models", "ref-*.onnx"))
	for _, f := range refs {
		m, err := onnxio.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if bns, _ := onnxio.FindBatchNorms(m); len(bns) != 2 {
			t.Errorf("%s has %d BN nodes, want 2", f, len(bns))
		}
	}
	if len(refs) != 2 {
		t.Errorf("reference models %v, want 2", refs)
	}

	// The MLP taking [batch, 784]: another interface.
	m, err := onnxio.Load(filepath.Join(models, "mlp.preserve.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m.Graph().GetInput()[0].GetType().GetTensorType().Shape = &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
		{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}},
		{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 784}}}}
	flat := filepath.Join(dir, "mlp_flat.onnx")
	if err := m.Save(flat); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, "reference architecture mlp_flat.onnx takes float [batch, 784] and gives 10 classes, but the audited model small_cnn.eval_default.onnx takes float [batch, 1, 28, 28] and gives 10; --ref-arch must be another export of the audited network",
		args("flat", "--ref-models", "2", "--ref-arch", flat)...)
	wantUsage(t, "--ref-arch is the architecture of the reference models: add --ref-models K", args("none", "--ref-arch", preserve)...)
	wantUsage(t, "missing.onnx", args("missing", "--ref-models", "2", "--ref-arch", filepath.Join(dir, "missing.onnx"))...)
	for _, out := range []string{"flat", "none", "missing"} {
		if _, err := os.Stat(filepath.Join(dir, out)); err == nil {
			t.Errorf("the refused audit left %s", out)
		}
	}
}

// TestAuditRefArchInThePlan: audit --engine k8s plans the reference
// architecture with the reference models: copied into the work folder,
// named in the plan, and part of the units' keys (another --ref-arch in
// the same folder is another study and is refused); the workers (what a
// Slurm array task or a pod runs) train the reference models with its BN.
func TestAuditRefArchInThePlan(t *testing.T) {
	requireORT(t)
	work := t.TempDir()
	args := func(arch string) []string {
		return []string{"audit", filepath.Join(models, "small_cnn.eval_default.onnx"), "--members", fmnist, "--nonmembers", fmnist,
			"--max-samples", "100", "--norm", "0.2860/0.3530", "--ref-models", "2", "--ref-epochs", "1", "--ref-arch", filepath.Join(models, arch),
			"--engine", "k8s", "--work", work, "--k8s-image", "registry.example/bnaudit:1", "--k8s-claim", "bnaudit-work",
			"-o", filepath.Join(work, "report")}
	}
	if code, stdout, stderr := bnaudit(t, args("small_cnn.preserve.onnx")...); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var plan struct {
		Hash  string
		Audit struct {
			RefArch     string `json:"ref_arch"`
			RefArchName string `json:"ref_arch_name"`
		}
	}
	b, err := os.ReadFile(filepath.Join(work, "plan.json"))
	if err != nil || json.Unmarshal(b, &plan) != nil {
		t.Fatalf("plan.json: %v", err)
	}
	if plan.Audit.RefArch != filepath.Join(work, "inputs", "ref-arch.onnx") || plan.Audit.RefArchName != "small_cnn.preserve.onnx" {
		t.Errorf("plan's reference architecture %q named %q", plan.Audit.RefArch, plan.Audit.RefArchName)
	}
	m, err := onnxio.Load(plan.Audit.RefArch)
	if err != nil {
		t.Fatal(err)
	}
	if bns, _ := onnxio.FindBatchNorms(m); len(bns) != 2 {
		t.Errorf("the work folder's reference architecture has %d BN nodes, want 2", len(bns))
	}
	if code, _, stderr := bnaudit(t, append(args("small_cnn.training.onnx"), "--resume")...); code != exitBadInput || !strings.Contains(stderr, "plan of another study") {
		t.Errorf("another --ref-arch in the same work folder: exit %d, %q", code, stderr)
	}
	for _, unit := range []string{"0", "1"} {
		if code, stdout, stderr := bnaudit(t, "--threads", "1", "worker", "--work", work, "--unit", unit); code != 0 {
			t.Fatalf("worker --unit %s: exit %d\n%s\n%s", unit, code, stdout, stderr)
		}
	}
	refs, _ := filepath.Glob(filepath.Join(work, "refs", "*", "ref-*.onnx"))
	if len(refs) != 2 {
		t.Fatalf("the workers left %v, want 2 reference models", refs)
	}
	for _, f := range refs {
		m, err := onnxio.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if bns, _ := onnxio.FindBatchNorms(m); len(bns) != 2 {
			t.Errorf("%s, trained by a worker, has %d BN nodes, want 2", f, len(bns))
		}
	}
}
