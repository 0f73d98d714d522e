package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

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
	wantUsage(t, "missing.onnx: no such file or directory; give an ONNX export", args("missing", "--ref-models", "2", "--ref-arch", filepath.Join(dir, "missing.onnx"))...)
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
