package study

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func fashionSubset(t *testing.T, split string, n int) *dataset.Dataset {
	t.Helper()
	return loadNormed(t, "../testdata/fashion-mnist", split, n)
}

// loadNormed loads a committed data set's split (n samples, 0: all) with
// Fashion-MNIST's normalization.
func loadNormed(t *testing.T, path, split string, n int) *dataset.Dataset {
	t.Helper()
	d, err := dataset.Load(path, dataset.LoadOptions{Split: split, MaxSamples: n})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = d.WithNorm(fashionNorm); err != nil {
		t.Fatal(err)
	}
	return d
}

var fashionNorm = dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}

// TestSignalCache: a second evaluation reads the cache file (proved by
// editing it), a damaged file is recomputed, and another model or other
// data get their own entry.
func TestSignalCache(t *testing.T) {
	requireORT(t)
	m, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	d := fashionSubset(t, "test", 64)
	dir := t.TempDir()
	c := SignalCache{Dir: dir}
	ctx, sess := context.Background(), ort.SessionOptions{Threads: 2}
	lg, k, err := c.Logits(ctx, m, d, 32, sess)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := trainer.Evaluate(ctx, m, d, 64, sess)
	if err != nil {
		t.Fatal(err)
	}
	for i := range lg {
		if lg[i] != direct.Logits[i] {
			t.Fatalf("logit %d: cached path %v, direct %v", i, lg[i], direct.Logits[i])
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.logits"))
	if len(files) != 1 {
		t.Fatalf("%d cache files, want 1", len(files))
	}
	// Edit the stored values: the next call must return the edit.
	edited := append([]float32{}, lg...)
	edited[0] += 1
	if err := os.WriteFile(files[0], encodeLogits(edited, k, d.Len()), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Logits(ctx, m, d, 32, sess)
	if err != nil || got[0] != edited[0] {
		t.Fatalf("second call did not read the cache: %v, logit 0 = %v, want %v", err, got[0], edited[0])
	}
	// Damage one byte: the checksum fails and the values are recomputed.
	raw, _ := os.ReadFile(files[0])
	raw[len(raw)/2] ^= 0xff
	os.WriteFile(files[0], raw, 0o644)
	got, _, err = c.Logits(ctx, m, d, 32, sess)
	if err != nil || got[0] != lg[0] {
		t.Fatalf("damaged cache: %v, logit 0 = %v, want the recomputed %v", err, got[0], lg[0])
	}
	// Other data and another model: new entries.
	sub, _ := d.Subset([]int{3, 2, 1, 0})
	if _, _, err := c.Logits(ctx, m, sub, 32, sess); err != nil {
		t.Fatal(err)
	}
	res, err := onnxio.Ablate(m, onnxio.AblateOptions{Mode: onnxio.ModeRemove})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Logits(ctx, res.Model, d, 32, sess); err != nil {
		t.Fatal(err)
	}
	if files, _ = filepath.Glob(filepath.Join(dir, "*.logits")); len(files) != 3 {
		t.Fatalf("%d cache files after new data and a new model, want 3", len(files))
	}
}

// TestReferenceJobs: training reference models two at a time gives the
// same IN masks and, up to the threads' summation order, the same signals
// as one at a time.
func TestReferenceJobs(t *testing.T) {
	requireORT(t)
	arch, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	pop := fashionSubset(t, "train", 128)
	recipe := trainer.Config{Model: arch, Init: trainer.InitScratch, Epochs: 1, Batch: 32, Optimizer: trainer.SGD(0.9, 0, false), LR: 0.02,
		Session: ort.SessionOptions{Threads: 2}}
	run := func(jobs int) *ReferenceSignals {
		ref, err := TrainReferences(context.Background(), ReferenceConfig{Train: recipe, Population: pop, Models: 3, Seed: 4, Jobs: jobs,
			Session: ort.SessionOptions{Threads: 2}})
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	a, b := run(1), run(2)
	worst := 0.0
	for k := range a.Phi {
		for i := range a.Phi[k] {
			if a.In[k][i] != b.In[k][i] {
				t.Fatalf("model %d sample %d: IN masks differ", k, i)
			}
			worst = math.Max(worst, math.Abs(a.Phi[k][i]-b.Phi[k][i])/math.Max(1, math.Abs(a.Phi[k][i])))
		}
	}
	t.Logf("largest φ difference between 1 and 2 jobs: %.3g", worst)
	if worst > 1e-3 {
		t.Errorf("φ differs by %.3g between 1 and 2 jobs", worst)
	}
	// The three models differ from each other (own seeds and halves).
	if a.Phi[0][0] == a.Phi[1][0] && a.Phi[0][1] == a.Phi[1][1] {
		t.Error("reference models 0 and 1 give identical signals")
	}
}

// TestAuditPopulation: with a separate population the reference models
// train on halves of members ∪ non-members ∪ population, the reported
// reference data cover the audited samples only, and the report says which
// population RMIA compared against; without --ref-models a population is
// refused.
func TestAuditPopulation(t *testing.T) {
	requireORT(t)
	arch, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	all := fashionSubset(t, "train", 192)
	part := func(lo, hi int) *dataset.Dataset {
		idx := make([]int, hi-lo)
		for i := range idx {
			idx[i] = lo + i
		}
		d, err := all.Subset(idx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	members, non, pop := part(0, 64), part(64, 128), part(128, 192)
	recipe := trainer.Config{Epochs: 1, Batch: 32, Optimizer: trainer.SGD(0.9, 0, false), LR: 0.02, Session: ort.SessionOptions{Threads: 2}}
	cfg := AuditConfig{Model: arch, Members: members, NonMembers: non, Population: pop, References: 2, Train: recipe,
		Bootstrap: audit.BootstrapOptions{Replicates: 50, Seed: 3}, Session: ort.SessionOptions{Threads: 2}, Cache: SignalCache{Dir: t.TempDir()}}
	rep, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Samples
	if len(s.InRef) != 2 || len(s.InRef[0]) != 128 {
		t.Fatalf("reference IN masks: %d × %d, want 2 × 128 audited samples", len(s.InRef), len(s.InRef[0]))
	}
	// Each model trains on 96 of the 192 pool samples; the audited 128 hold
	// some of them, not necessarily 64.
	in := 0
	for _, b := range s.InRef[0] {
		if b {
			in++
		}
	}
	if in == 0 || in == 128 {
		t.Errorf("model 0 has %d of 128 audited samples IN", in)
	}
	found := false
	for _, n := range rep.Notes {
		if strings.Contains(n, "64 population samples as z") {
			found = true
		}
	}
	if !found {
		t.Errorf("notes do not name the population: %q", rep.Notes)
	}
	if v := rep.Variants[0]; len(v.Vulnerable) == 0 || v.VulnerableBy == "" {
		t.Error("no most-vulnerable members in the report")
	}
	cfg.References = 0
	_, err = Audit(context.Background(), cfg)
	wantInvalid(t, "population without reference models", err)
}

// TestGradNormCache: gradient norms are stored once per model, data, mode
// and batch size, read back (proved by editing the file) and recomputed
// when the file is damaged.
func TestGradNormCache(t *testing.T) {
	requireORT(t)
	m, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	d := fashionSubset(t, "test", 16)
	dir := t.TempDir()
	c := SignalCache{Dir: dir}
	ctx, sess := context.Background(), ort.SessionOptions{Threads: 2}
	v, err := c.GradNorms(ctx, m, d, trainer.GradNormEval, 8, sess)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := trainer.GradNorms(ctx, m, d, trainer.GradNormEval, 8, sess)
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		if v[i] != direct[i] {
			t.Fatalf("norm %d: %v through the cache, %v direct", i, v[i], direct[i])
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.gradnorms"))
	if len(files) != 1 {
		t.Fatalf("%d cache files, want 1", len(files))
	}
	edited := append([]float64{}, v...)
	edited[3] = 42
	os.WriteFile(files[0], encodeFloat64s(edited), 0o644)
	if got, err := c.GradNorms(ctx, m, d, trainer.GradNormEval, 8, sess); err != nil || got[3] != 42 {
		t.Fatalf("second call did not read the cache: %v, %v", err, got)
	}
	raw, _ := os.ReadFile(files[0])
	raw[len(raw)-40] ^= 1
	os.WriteFile(files[0], raw, 0o644)
	if got, err := c.GradNorms(ctx, m, d, trainer.GradNormEval, 8, sess); err != nil || got[3] != v[3] {
		t.Fatalf("damaged file not recomputed: %v, %v", err, got)
	}
	// In-batch norms are another entry.
	if _, err := c.GradNorms(ctx, m, d, trainer.GradNormInBatch, 8, sess); err != nil {
		t.Fatal(err)
	}
	if files, _ = filepath.Glob(filepath.Join(dir, "*.gradnorms")); len(files) != 2 {
		t.Fatalf("%d cache files after in-batch norms, want 2", len(files))
	}
}
