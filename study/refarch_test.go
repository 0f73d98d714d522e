package study

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

const models = "../testdata/models"

func loadModel(t *testing.T, name string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(filepath.Join(models, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// refArchAudit is a tiny audit of PyTorch's default eval export of the
// small CNN (BN folded into its convolutions): 150 members, 150
// non-members, 2 reference models of one epoch.
func refArchAudit(t *testing.T, refArch *onnxio.Model, dir string) AuditConfig {
	t.Helper()
	load := func(split string) *dataset.Dataset {
		d, err := dataset.Load("../testdata/fashion-mnist", dataset.LoadOptions{Split: split, MaxSamples: 150})
		if err != nil {
			t.Fatal(err)
		}
		if d, err = d.WithNorm(fashionNorm); err != nil {
			t.Fatal(err)
		}
		return d
	}
	session := ort.SessionOptions{Threads: 1}
	return AuditConfig{Model: loadModel(t, "small_cnn.eval_default.onnx"), Members: load("train"), NonMembers: load("test"),
		Bootstrap: audit.BootstrapOptions{Replicates: 20, Seed: 3}, Session: session, References: 2, RefDir: dir, RefArch: refArch,
		Train: trainer.Config{Epochs: 1, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false), LR: 0.02, Schedule: trainer.Cosine, Session: session}}
}

// refModelBNs counts the BN nodes of each reference model cached in dir.
func refModelBNs(t *testing.T, dir string) []int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "ref-*.onnx"))
	if err != nil || len(files) != 2 {
		t.Fatalf("reference models in %s: %v, %v; want 2", dir, files, err)
	}
	var n []int
	for _, f := range files {
		m, err := onnxio.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		bns, err := onnxio.FindBatchNorms(m)
		if err != nil {
			t.Fatal(err)
		}
		n = append(n, len(bns))
	}
	return n
}

func hasNote(r *audit.Report, part string) bool {
	for _, n := range r.Notes {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// TestAuditRefArchTrainsWithBN is issue 16's item 2: the reference models
// of an eval export whose BN was folded, trained with --ref-arch on its
// PRESERVE export, have the BN layers the eval export lost, and the report
// says so; without --ref-arch they have none and the report warns that BN
// may have been folded.
func TestAuditRefArchTrainsWithBN(t *testing.T) {
	requireORT(t)
	withDir, withoutDir := t.TempDir(), t.TempDir()
	with, err := Audit(context.Background(), refArchAudit(t, loadModel(t, "small_cnn.preserve.onnx"), withDir))
	if err != nil {
		t.Fatal(err)
	}
	without, err := Audit(context.Background(), refArchAudit(t, nil, withoutDir))
	if err != nil {
		t.Fatal(err)
	}
	if got := refModelBNs(t, withDir); !reflect.DeepEqual(got, []int{2, 2}) {
		t.Errorf("reference models with --ref-arch small_cnn.preserve.onnx have %v BN nodes, want 2 each", got)
	}
	if got := refModelBNs(t, withoutDir); !reflect.DeepEqual(got, []int{0, 0}) {
		t.Errorf("reference models of the eval export have %v BN nodes, want none", got)
	}
	ra := with.ReferenceArch
	if ra == nil || ra.Model != "small_cnn.preserve.onnx" || ra.BatchNorms != 2 || !ra.Given || len(ra.ModelHash) != 64 {
		t.Errorf("with --ref-arch: reference architecture %+v", ra)
	}
	if ra := without.ReferenceArch; ra == nil || ra.Model != "small_cnn.eval_default.onnx" || ra.BatchNorms != 0 || ra.Given {
		t.Errorf("without --ref-arch: reference architecture %+v", ra)
	}
	for _, c := range []struct {
		r    *audit.Report
		note string
		want bool
	}{
		{with, "Reference architecture: the reference models were trained from scratch (weights re-drawn) on small_cnn.preserve.onnx (--ref-arch; model sha256 " + ra.ModelHash[:16] + ", 2 BatchNorm layer(s))", true},
		{with, "the reference models were trained with BN on small_cnn.preserve.onnx (2 BatchNorm layer(s))", true},
		{with, "has no BatchNormalization node (BN folded on export by pytorch 1.13.0", true},
		{with, "BatchNorm may have been folded", false},
		{with, "trained on this folded architecture", false},
		{with, "reference models of small_cnn.preserve.onnx (--ref-arch)", true},
		{without, "BatchNorm may have been folded: small_cnn.eval_default.onnx has no BatchNormalization node and was exported by pytorch 1.13.0", true},
		{without, "The reference models were trained on this folded architecture, without BN", true},
		{without, "Reference architecture:", false},
	} {
		if hasNote(c.r, c.note) != c.want {
			t.Errorf("a note with %q: %v, want %v; notes:\n%s", c.note, !c.want, c.want, strings.Join(c.r.Notes, "\n"))
		}
	}
	if !strings.Contains(without.Verdict, "BN may have been folded") || !strings.Contains(with.Verdict, "BN may have been folded") {
		t.Errorf("verdicts: %q / %q", with.Verdict, without.Verdict)
	}
	// The PRESERVE export audited itself: nothing folded, no warning.
	own := refArchAudit(t, nil, t.TempDir())
	own.Model, own.References = loadModel(t, "small_cnn.preserve.onnx"), 0
	r, err := Audit(context.Background(), own)
	if err != nil {
		t.Fatal(err)
	}
	if hasNote(r, "folded") || strings.Contains(r.Verdict, "folded") || r.ReferenceArch != nil {
		t.Errorf("audit of the PRESERVE export: verdict %q, notes %q, reference architecture %+v", r.Verdict, r.Notes, r.ReferenceArch)
	}
}

// TestRefArchKeys: the reference architecture is part of the reference
// models' key: another one gives other units.
func TestRefArchKeys(t *testing.T) {
	keys := map[string]string{}
	for _, arch := range []string{"", "small_cnn.preserve.onnx", "small_cnn.training.onnx", "small_resnet.preserve.onnx"} {
		var m *onnxio.Model
		if arch != "" {
			m = loadModel(t, arch)
		}
		units, err := PlanAudit(refArchAudit(t, m, ""))
		if err != nil {
			t.Fatal(err)
		}
		key := units[0].Key
		if other, ok := keys[key]; ok {
			t.Errorf("reference architectures %q and %q give the same key %s", other, arch, key)
		}
		keys[key] = arch
	}
}

// mlpTaking is the MLP fixture changed to take [batch, 784] (Flatten
// leaves it as it is) or to give 5 classes.
func mlpTaking(t *testing.T, flat bool, classes int64) *onnxio.Model {
	t.Helper()
	m := loadModel(t, "mlp.preserve.onnx")
	g := m.Graph()
	if flat {
		g.GetInput()[0].GetType().GetTensorType().Shape = &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
			{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}},
			{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 784}}}}
		m.Name = "mlp_flat.onnx"
	}
	if classes != 10 {
		for _, n := range g.GetNode() {
			if n.GetOpType() != "Gemm" || n.GetOutput()[0] != g.GetOutput()[0].GetName() {
				continue
			}
			for _, init := range g.GetInitializer() {
				if init.GetName() == n.GetInput()[1] || init.GetName() == n.GetInput()[2] {
					per := len(init.GetRawData()) / int(init.GetDims()[0])
					init.RawData, init.Dims[0] = init.RawData[:per*int(classes)], classes
				}
			}
		}
		g.GetOutput()[0].GetType().GetTensorType().GetShape().GetDim()[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: classes}
		m.Name = "mlp_5.onnx"
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRefArchInterfaceMismatch: a reference architecture must take the
// audited model's input and give its classes; names may differ; the
// error is one line naming both.
func TestRefArchInterfaceMismatch(t *testing.T) {
	renamed := loadModel(t, "small_resnet.preserve.onnx")
	renamed.Graph().GetInput()[0].Name = "pixels" // and the nodes reading it
	for _, n := range renamed.Graph().GetNode() {
		for i, in := range n.GetInput() {
			if in == "input" {
				n.Input[i] = "pixels"
			}
		}
	}
	cases := []struct {
		name string
		arch *onnxio.Model
		want string
	}{
		{"same interface, another network", loadModel(t, "mlp.preserve.onnx"), ""},
		{"input renamed", renamed, ""},
		{"flat input", mlpTaking(t, true, 10), "reference architecture mlp_flat.onnx takes float [batch, 784] and gives 10 classes, but the audited model small_cnn.eval_default.onnx takes float [batch, 1, 28, 28] and gives 10"},
		{"5 classes", mlpTaking(t, false, 5), "reference architecture mlp_5.onnx takes float [batch, 1, 28, 28] and gives 5 classes, but the audited model small_cnn.eval_default.onnx takes float [batch, 1, 28, 28] and gives 10"},
	}
	for _, c := range cases {
		_, _, _, err := prepareAudit(refArchAudit(t, c.arch, ""))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, audit.ErrInvalidInput) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: %v; want one line with %q", c.name, err, c.want)
		}
	}
	// Without reference models a reference architecture serves nothing.
	cfg := refArchAudit(t, loadModel(t, "small_cnn.preserve.onnx"), "")
	cfg.References = 0
	if _, _, _, err := prepareAudit(cfg); !errors.Is(err, audit.ErrInvalidInput) || !strings.Contains(err.Error(), "--ref-models") {
		t.Errorf("a reference architecture without reference models: %v", err)
	}
}

// TestRefArchTravelsInThePlan: an audit plan carries the reference
// architecture (copied into the work folder, under its own name in the
// report); a plan of another reference architecture is another plan; units
// run from the plan and gathered give the report of the audit run in one
// process, with BN in the reference models.
func TestRefArchTravelsInThePlan(t *testing.T) {
	requireORT(t)
	norm := fashionNorm
	spec := AuditSpec{Model: filepath.Join(models, "small_cnn.eval_default.onnx"), RefArch: filepath.Join(models, "small_cnn.preserve.onnx"),
		Data: DataConfig{Norm: &norm,
			Members:    DataSource{Path: "../testdata/fashion-mnist", Split: "train", Max: 150},
			NonMembers: DataSource{Path: "../testdata/fashion-mnist", Split: "test", Max: 150}},
		Recipe:     Recipe{Epochs: 1, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false), LR: 0.02, Schedule: trainer.Cosine},
		References: 2, Seed: 3, Replicates: 20}
	work := t.TempDir()
	plan, err := WriteAuditPlan(work, spec)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Audit.RefArch != filepath.Join(work, "inputs", refArchFile) || plan.Audit.RefArchName != "small_cnn.preserve.onnx" {
		t.Fatalf("plan's reference architecture: %q named %q", plan.Audit.RefArch, plan.Audit.RefArchName)
	}
	if _, err := os.Stat(plan.Audit.RefArch); err != nil {
		t.Fatal(err)
	}
	// Another reference architecture (or none) is another plan.
	var pe *PlanError
	for _, arch := range []string{"", filepath.Join(models, "small_cnn.training.onnx")} {
		other := spec
		other.RefArch = arch
		if _, err := WriteAuditPlan(work, other); !errors.As(err, &pe) {
			t.Errorf("reference architecture %q in the folder of another: %v, want a PlanError", arch, err)
		}
	}
	sess := ort.SessionOptions{Threads: 1}
	again, err := ReadPlan(work)
	if err != nil {
		t.Fatal(err)
	}
	built, err := again.Build(work, sess)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plan.Units {
		if _, err := RunUnit(context.Background(), work, again, i, built, RunUnitOptions{Engine: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := built.Gather(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := refModelBNs(t, filepath.Join(work, "refs", auditedVariant)); !reflect.DeepEqual(got, []int{2, 2}) {
		t.Errorf("reference models run as units have %v BN nodes, want 2 each", got)
	}
	local, err := spec.Build(t.TempDir(), sess, SignalCache{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Audit(context.Background(), local)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.ReferenceArch, want.ReferenceArch) || got.ReferenceArch.Model != "small_cnn.preserve.onnx" {
		t.Errorf("gathered reference architecture %+v, local %+v", got.ReferenceArch, want.ReferenceArch)
	}
	if !reflect.DeepEqual(got.Variants[0].Attacks, want.Variants[0].Attacks) {
		t.Error("the gathered attacks differ from the audit's in one process")
	}
}
