package audit

import (
	"context"
	"errors"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// TestCompareResumesFinishedRuns: a comparison interrupted after its first
// trained model, rerun with Resume, retrains nothing that was finished, and
// the report has a row per variant and a comparison.
func TestCompareResumesFinishedRuns(t *testing.T) {
	requireORT(t)
	norm := dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}
	load := func(path, split string, n int) *dataset.Dataset {
		d, err := dataset.Load(path, dataset.LoadOptions{Split: split, MaxSamples: n})
		if err != nil {
			t.Fatal(err)
		}
		if d, err = d.WithNorm(norm); err != nil {
			t.Fatal(err)
		}
		return d
	}
	c, err := MakeCanaries(load("../testdata/mnist-canaries", "train", 0), 20, 10, norm, 1)
	if err != nil {
		t.Fatal(err)
	}
	model, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := CompareConfig{
		Model: model, Variants: []string{"original", "remove"},
		Members: load("../testdata/fashion-mnist", "train", 300), NonMembers: load("../testdata/fashion-mnist", "test", 300),
		Canaries: c, Seeds: 1, Seed: 4, Dir: dir,
		Train: trainer.Config{Init: trainer.InitScratch, Epochs: 2, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false),
			LR: 0.02, Schedule: trainer.Cosine, Session: ort.SessionOptions{Threads: 2}},
		Bootstrap: BootstrapOptions{Replicates: 200, Seed: 1},
		Session:   ort.SessionOptions{Threads: 2},
	}
	ctx, cancel := context.WithCancel(context.Background())
	trained := map[string]int{}
	cfg.Progress = func(p CompareProgress) {
		if p.Finished && !p.Reused {
			trained[p.Variant]++
			if p.Run == 1 {
				cancel()
			}
		}
	}
	if _, err := Compare(ctx, cfg); !errors.Is(err, trainer.ErrInterrupted) {
		t.Fatalf("want an interruption, got %v", err)
	}
	cfg.Resume = true
	reused := map[string]bool{}
	cfg.Progress = func(p CompareProgress) {
		if p.Finished {
			if p.Reused {
				reused[p.Variant] = true
			} else {
				trained[p.Variant]++
			}
		}
	}
	rep, err := Compare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reused["original"] || trained["original"] != 1 || trained["remove"] != 1 {
		t.Fatalf("original reused %v; trained %v", reused["original"], trained)
	}
	if len(rep.Variants) != 2 || rep.Variants[0].BatchNorms != 2 || rep.Variants[1].BatchNorms != 0 {
		t.Fatalf("variants: %+v", rep.Variants)
	}
	if len(rep.Comparisons) == 0 || rep.Verdict == "" || rep.VerdictCode == "" {
		t.Fatalf("comparisons %d, verdict %q (%s)", len(rep.Comparisons), rep.Verdict, rep.VerdictCode)
	}
	t.Logf("verdict: %s", rep.Verdict)
}
