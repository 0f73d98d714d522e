package study

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
)

// TestLoadGradNorms: recorded epochs come back in order; a missing or
// damaged record is listed as missing, not skipped.
func TestLoadGradNorms(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gradnorm")
	for _, e := range []int{1, 3, 4} {
		if err := saveGradNorms(dir, e, []audit.GradNormPoint{{Epoch: e, Mode: "eval"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(gradNormFile(dir, 4), []byte("not gob"), 0o644); err != nil {
		t.Fatal(err)
	}
	pts, missing, err := loadGradNorms(dir, []int{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	var epochs []int
	for _, p := range pts {
		epochs = append(epochs, p.Epoch)
	}
	if !slices.Equal(epochs, []int{1, 3}) || !slices.Equal(missing, []int{2, 4}) {
		t.Errorf("loaded epochs %v, missing %v; want [1 3] and [2 4]", epochs, missing)
	}
}

// TestResumeWithMissingGradNormRecord: a run resumed from its checkpoint
// reports the gradient-norm points recorded before it without training
// again; when one of them is missing (the process was killed between the
// checkpoint and the record), the run is trained again from the start and
// reports the same points as the uninterrupted run.
func TestResumeWithMissingGradNormRecord(t *testing.T) {
	requireORT(t)
	c, err := MakeCanaries(loadNormed(t, "../testdata/mnist-canaries", "train", 0), 10, 10, fashionNorm, 3)
	if err != nil {
		t.Fatal(err)
	}
	model, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	steps := 0
	cfg := ExperimentConfig{Name: "original", Members: loadNormed(t, "../testdata/fashion-mnist", "train", 128),
		NonMembers: loadNormed(t, "../testdata/fashion-mnist", "test", 128), Canaries: c,
		Train: trainer.Config{Model: model, Init: trainer.InitScratch, Epochs: 3, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false),
			LR: 0.02, Schedule: trainer.Cosine, Seed: 7, Session: ort.SessionOptions{Threads: 2},
			CheckpointDir: filepath.Join(dir, "checkpoints"), Progress: func(trainer.Progress) { steps++ }},
		GradNormCheckpoints: 3, GradNormSample: 32, GradNormDir: filepath.Join(dir, "gradnorm"),
		Bootstrap: audit.BootstrapOptions{Replicates: 50, Seed: 1}, Session: ort.SessionOptions{Threads: 2}}
	first, err := RunExperiment(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var epochs []int
	for _, p := range first.Variant.GradNorms {
		epochs = append(epochs, p.Epoch)
	}
	if !slices.Equal(epochs, []int{1, 2, 3}) {
		t.Fatalf("gradient-norm points at epochs %v, want [1 2 3]", epochs)
	}
	cfg.Train.Resume = true
	for _, c := range []struct {
		name    string
		remove  bool
		retrain bool
	}{
		{"all records", false, false},
		{"epoch 2 missing", true, true},
	} {
		if c.remove {
			if err := os.Remove(gradNormFile(cfg.GradNormDir, 2)); err != nil {
				t.Fatal(err)
			}
		}
		steps = 0
		again, err := RunExperiment(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if retrained := steps > 0; retrained != c.retrain {
			t.Errorf("%s: trained %d steps, want retraining %v", c.name, steps, c.retrain)
		}
		if !reflect.DeepEqual(again.Variant.GradNorms, first.Variant.GradNorms) {
			t.Errorf("%s: gradient-norm points\n%+v\nwant\n%+v", c.name, again.Variant.GradNorms, first.Variant.GradNorms)
		}
		if _, err := os.Stat(gradNormFile(cfg.GradNormDir, 2)); err != nil {
			t.Errorf("%s: epoch 2's record: %v", c.name, err)
		}
	}
}
