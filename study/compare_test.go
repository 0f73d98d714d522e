package study

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
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
	norm := fashionNorm
	load := func(path, split string, n int) *dataset.Dataset { return loadNormed(t, path, split, n) }
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
		Bootstrap: audit.BootstrapOptions{Replicates: 200, Seed: 1},
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

// TestCompareWithReferences: reference models per variant give LiRA and
// RMIA on members and on canaries and a LiRA comparison; the gradient-norm
// study runs at the checkpoints and in batches (equal to eval mode without
// BN, different with it); a rerun reuses the reference models, and resuming
// with another recipe is refused.
func TestCompareWithReferences(t *testing.T) {
	requireORT(t)
	norm := fashionNorm
	load := func(path, split string, n int) *dataset.Dataset { return loadNormed(t, path, split, n) }
	c, err := MakeCanaries(load("../testdata/mnist-canaries", "train", 0), 12, 10, norm, 2)
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
		Members: load("../testdata/fashion-mnist", "train", 200), NonMembers: load("../testdata/fashion-mnist", "test", 200),
		Canaries: c, Seeds: 1, Seed: 5, Dir: dir, RefModels: 2, Jobs: 2, GradNormCheckpoints: 3, InBatch: true, GradNormSample: 64,
		Cache: SignalCache{Dir: dir + "/cache"},
		Train: trainer.Config{Init: trainer.InitScratch, Epochs: 3, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false),
			LR: 0.02, Schedule: trainer.Cosine, Session: ort.SessionOptions{Threads: 2}},
		Bootstrap: audit.BootstrapOptions{Replicates: 100, Seed: 1},
		Session:   ort.SessionOptions{Threads: 2},
	}
	rep, err := Compare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rep.Variants {
		for _, name := range []string{"lira_online", "lira_offline", "rmia_online", "rmia_offline"} {
			if audit.FindAttack(v.Attacks, name) == nil || audit.FindAttack(v.CanaryAttacks, name) == nil {
				t.Errorf("%s: no %s on members and on canaries", v.Name, name)
			}
		}
		if v.FeldmanZhang == nil {
			t.Errorf("%s: no Feldman–Zhang scores", v.Name)
		}
		var evalEpochs, inEpochs []int
		var eval3, inb *audit.GradNormPoint
		for i, p := range v.GradNorms {
			switch p.Mode {
			case string(trainer.GradNormEval):
				evalEpochs = append(evalEpochs, p.Epoch)
				if p.Epoch == 3 {
					eval3 = &v.GradNorms[i]
				}
			case string(trainer.GradNormInBatch):
				inEpochs = append(inEpochs, p.Epoch)
				if p.Epoch == 3 {
					inb = &v.GradNorms[i]
				}
			}
		}
		if len(evalEpochs) != 3 || evalEpochs[0] != 1 || evalEpochs[2] != 3 || eval3 == nil || inb == nil || len(inEpochs) != 3 {
			t.Fatalf("%s: eval-mode checkpoints %v, in-batch checkpoints %v", v.Name, evalEpochs, inEpochs)
		}
		// Without BN a sample's gradient does not depend on its batch.
		d := math.Abs(inb.Outlier.Median-eval3.Outlier.Median) / eval3.Outlier.Median
		if v.BatchNorms == 0 && d > 1e-4 {
			t.Errorf("%s: in-batch median %v differs from eval mode %v without BN", v.Name, inb.Outlier.Median, eval3.Outlier.Median)
		}
		if v.BatchNorms > 0 && d < 1e-3 {
			t.Errorf("%s: in-batch median %v equals eval mode %v with BN on batch statistics", v.Name, inb.Outlier.Median, eval3.Outlier.Median)
		}
	}
	found := false
	for _, cmp := range rep.Comparisons {
		found = found || cmp.Metric == "member_lira_auc"
	}
	if !found {
		t.Error("no member_lira_auc comparison")
	}
	// Rerun with Resume after losing one run: only that run is retrained;
	// the finished one is reused, and every variant's reference models are
	// read back from the folder (their attacks are added to the stored
	// runs), none trained.
	if err := os.Remove(filepath.Join(dir, "runs", "remove-seed0.gob")); err != nil {
		t.Fatal(err)
	}
	cfg.Resume = true
	refReused, refTrained, trained, reused := 0, 0, 0, 0
	cfg.Progress = func(p CompareProgress) {
		if p.RefTotal > 0 {
			if p.RefReused {
				refReused++
			} else {
				refTrained++
			}
		}
		if p.Finished && p.Reused {
			reused++
		} else if p.Finished {
			trained++
		}
	}
	if _, err := Compare(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if refReused != 4 || refTrained != 0 || trained != 1 || reused != 1 {
		t.Errorf("rerun: reference models %d reused, %d trained; runs %d retrained, %d reused; want 4, 0, 1, 1", refReused, refTrained, trained, reused)
	}
	cfg.Train.Epochs = 4
	_, err = Compare(context.Background(), cfg)
	wantInvalid(t, "resume with another recipe", err)
}
