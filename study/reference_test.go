package study

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// TestAuditWithReferenceModels: a small CNN fitted to 200 Fashion-MNIST
// images is audited with 4 reference models; LiRA and RMIA run and are far
// from chance, the sample table carries the reference φ and IN masks, and a
// second audit reuses the cached reference models.
func TestAuditWithReferenceModels(t *testing.T) {
	requireORT(t)
	norm := dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}
	load := func(split string) *dataset.Dataset {
		d, err := dataset.Load("../testdata/fashion-mnist", dataset.LoadOptions{Split: split, MaxSamples: 200})
		if err != nil {
			t.Fatal(err)
		}
		if d, err = d.WithNorm(norm); err != nil {
			t.Fatal(err)
		}
		return d
	}
	members, non := load("train"), load("test")
	arch, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	session := ort.SessionOptions{Threads: 2}
	recipe := trainer.Config{Epochs: 30, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false), LR: 0.02, Schedule: trainer.Cosine, Session: session}
	tc := recipe
	tc.Model, tc.Init, tc.Train, tc.Seed = arch, trainer.InitScratch, members, 9
	target, err := trainer.Train(context.Background(), tc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reused := 0
	cfg := AuditConfig{Model: target.Model, Members: members, NonMembers: non, Bootstrap: audit.BootstrapOptions{Replicates: 200, Seed: 2},
		Session: session, References: 4, Train: recipe, RefDir: dir,
		Progress: func(done, total int, r bool) {
			if r {
				reused++
			}
		}}
	rep, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Variants[0]
	auc := map[string]audit.Interval{}
	for _, a := range v.Attacks {
		auc[a.Attack] = a.AUC
	}
	t.Logf("AUC: loss %v, lira_online %v, lira_offline %v, rmia_online %v, rmia_offline %v", auc["loss"], auc["lira_online"], auc["lira_offline"], auc["rmia_online"], auc["rmia_offline"])
	for _, name := range []string{"lira_online", "lira_offline", "rmia_online", "rmia_offline"} {
		if a, ok := auc[name]; !ok || a.Lo <= 0.5 {
			t.Errorf("%s: AUC %v should be clearly above chance for a model fitted to 200 samples", name, a)
		}
	}
	classes := 0
	for _, sl := range v.Slices {
		if strings.HasPrefix(sl.Slice, "class=") {
			classes++
			if sl.Attack.Attack != v.VulnerableBy || sl.Attack.Members+sl.Attack.NonMembers == 0 {
				t.Errorf("slice %s: attack %q (strongest %q), %d+%d samples", sl.Slice, sl.Attack.Attack, v.VulnerableBy, sl.Attack.Members, sl.Attack.NonMembers)
			}
		}
	}
	if classes == 0 || len(v.Vulnerable) != 10 {
		t.Errorf("%d class slices and %d most-vulnerable members, want some and 10", classes, len(v.Vulnerable))
	}
	if v.FeldmanZhang == nil || v.FeldmanZhang.N == 0 {
		t.Fatal("no Feldman–Zhang scores")
	}
	s := rep.Samples
	if len(s.PhiRef) != 4 || len(s.PhiRef[0]) != 400 || len(s.Scores["lira_online"]) != 400 || len(s.Memorization) != 400 {
		t.Fatalf("sample table: %d ref models × %d, lira %d, memorization %d", len(s.PhiRef), len(s.PhiRef[0]), len(s.Scores["lira_online"]), len(s.Memorization))
	}
	if _, err := Audit(context.Background(), cfg); err != nil || reused != 4 {
		t.Fatalf("second audit: %v, reused %d of 4 reference models", err, reused)
	}
}

// TestAutoJobs: one reference model per thread, no more than there are
// models or MaxAutoJobs, at least one; no threads given means one per core.
func TestAutoJobs(t *testing.T) {
	for _, c := range []struct{ threads, models, want int }{
		{2, 4, 2}, {1, 4, 1}, {16, 64, MaxAutoJobs}, {8, 3, 3}, {2, 1, 1}, {2, 0, 1},
		{0, 64, min(runtime.NumCPU(), MaxAutoJobs)},
	} {
		if got := AutoJobs(c.threads, c.models); got != c.want {
			t.Errorf("AutoJobs(%d threads, %d models) = %d, want %d", c.threads, c.models, got, c.want)
		}
	}
}
