package study

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func requireORT(t testing.TB) {
	t.Helper()
	err := ort.Init("")
	switch {
	case err == nil:
	case errors.Is(err, ort.ErrNoLibrary) && os.Getenv("BNAUDIT_REQUIRE_ORT") == "":
		t.Skipf("needs the ONNX Runtime library: run scripts/install-ort.sh or set %s (%v)", ort.LibraryEnv, err)
	default:
		t.Fatal(err)
	}
}

// TestCanaryExperimentMemorizes is issue 5's acceptance check: the small
// CNN trained to fit 1000 Fashion-MNIST images plus 50 MNIST canaries with
// random labels memorizes the canaries: the accuracy gap between inserted
// and held-out canaries, and the LOSS attack's AUC on canaries, are far
// from zero (chance: gap 0, AUC 0.5) with intervals that exclude chance.
func TestCanaryExperimentMemorizes(t *testing.T) {
	requireORT(t)
	norm := dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}
	load := func(path, split string, n int) *dataset.Dataset {
		d, err := dataset.Load(path, dataset.LoadOptions{Split: split, MaxSamples: n})
		if err != nil {
			t.Fatal(err)
		}
		d, err = d.WithNorm(norm)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	members := load("../testdata/fashion-mnist", "train", 1000)
	non := load("../testdata/fashion-mnist", "test", 1000)
	src := load("../testdata/mnist-canaries", "train", 0)
	c, err := MakeCanaries(src, 50, 10, norm, 11)
	if err != nil {
		t.Fatal(err)
	}
	model, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunExperiment(context.Background(), ExperimentConfig{
		Name: "original", Members: members, NonMembers: non, Canaries: c,
		Train: trainer.Config{Model: model, Init: trainer.InitScratch, Epochs: 20, Batch: 64,
			Optimizer: trainer.SGD(0.9, 5e-4, false), LR: 0.02, Schedule: trainer.Cosine, Seed: 3,
			Session: ort.SessionOptions{Threads: 2}},
		Bootstrap:     audit.BootstrapOptions{Replicates: 500, Seed: 1},
		Session:       ort.SessionOptions{Threads: 2},
		Augmentations: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Variant
	gap := v.Memorization.AccuracyGap
	var canaryLoss audit.AttackReport
	for _, a := range v.CanaryAttacks {
		if a.Attack == "loss" {
			canaryLoss = a
		}
	}
	t.Logf("train acc %.3f, test acc %.3f; canary gap %v; canary LOSS AUC %v; member LOSS AUC %v; grad-norm ratio %v",
		v.TrainAccuracy.Estimate, v.TestAccuracy.Estimate, gap, canaryLoss.AUC, v.Attacks[0].AUC, v.GradNorms[0].Ratio)
	if v.TrainAccuracy.Estimate < 0.9 {
		t.Fatalf("the model should fit its data (train accuracy %.3f)", v.TrainAccuracy.Estimate)
	}
	if gap.Estimate < 0.3 || gap.Lo <= 0 {
		t.Errorf("canary memorization gap %v should be far from 0", gap)
	}
	if canaryLoss.AUC.Estimate < 0.8 || canaryLoss.AUC.Lo <= 0.5 {
		t.Errorf("canary LOSS AUC %v should be far from 0.5", canaryLoss.AUC)
	}
	// The label-only attacks: gap and data augmentation, on every row.
	for _, name := range []string{audit.AttackGap, audit.AttackAugmentation} {
		if audit.FindAttack(v.CanaryAttacks, name) == nil || audit.FindAttack(v.Attacks, name) == nil || len(res.Samples.Scores[name]) != len(res.Samples.Member) {
			t.Fatalf("%s attack missing from the report or the per-sample table", name)
		}
		if a := audit.FindAttack(v.CanaryAttacks, name); a.AUC.Estimate < 0.7 {
			t.Errorf("canary %s AUC %v: a model that memorized its canaries labels them right", name, a.AUC)
		}
	}
	if v.Attacks[0].AUC.Estimate <= 0.5 {
		t.Errorf("member LOSS AUC %v should be above 0.5 for a fitted model", v.Attacks[0].AUC)
	}
}
