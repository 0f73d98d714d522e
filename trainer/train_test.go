package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// fashion loads the committed Fashion-MNIST subset (4000 train, 1000 test).
func fashion(t testing.TB, split string, n int) *dataset.Dataset {
	t.Helper()
	img, err := dataset.ReadIDX("../testdata/fashion-mnist/" + split + "-images-idx3-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := dataset.ReadIDX("../testdata/fashion-mnist/" + split + "-labels-idx1-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		n = img.Dims[0]
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(lab.Data[i])
	}
	d, err := dataset.FromUint8("fashion-"+split, []int64{1, 28, 28}, img.Data[:n*784], y)
	if err != nil {
		t.Fatal(err)
	}
	d, err = d.WithNorm(dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func weights(t testing.TB, m *onnxio.Model) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for _, init := range m.Graph().GetInitializer() {
		if init.GetDataType() == onnxio.TypeFloat {
			v, err := m.Floats(init)
			if err != nil {
				t.Fatal(err)
			}
			out[init.GetName()] = v
		}
	}
	return out
}

func sameWeights(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if len(va) != len(vb) {
			return false
		}
		for i := range va {
			if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				return false
			}
		}
	}
	return true
}

func smallRun(t testing.TB, train, test *dataset.Dataset, epochs int, seed uint64) Config {
	return Config{
		Model: loadFixture(t, "small_cnn.training.onnx"), Init: InitScratch,
		Train: train, Test: test, Epochs: epochs, Batch: 64,
		Optimizer: SGD(0.9, 5e-4, false), LR: 0.02, Schedule: Cosine, Seed: seed,
		Session: ort.SessionOptions{Threads: 2},
	}
}

// TestTrainLearnsFashionSubset is CI's short training check on real data:
// 2 epochs of the small CNN from scratch on 4000 Fashion-MNIST images.
func TestTrainLearnsFashionSubset(t *testing.T) {
	requireORT(t)
	cfg := smallRun(t, fashion(t, "train", 0), fashion(t, "t10k", 0), 2, 1)
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := res.Epochs
	if len(e) != 2 || res.Steps != 2*63 {
		t.Fatalf("epochs %d, steps %d (4000/64 → 63 steps per epoch, the last one partial)", len(e), res.Steps)
	}
	t.Logf("epoch 1: train loss %.3f acc %.3f, test acc %.3f; epoch 2: train loss %.3f acc %.3f, test loss %.3f acc %.3f (%.1f steps/s)",
		e[0].TrainLoss, e[0].TrainAcc, e[0].TestAcc, e[1].TrainLoss, e[1].TrainAcc, e[1].TestLoss, e[1].TestAcc, e[1].StepsPerSec)
	if !(e[1].TrainLoss < e[0].TrainLoss) || e[1].TrainLoss > 1.0 {
		t.Errorf("training loss should fall well below chance (2.30): %v then %v", e[0].TrainLoss, e[1].TrainLoss)
	}
	if e[1].TestAcc < 0.6 {
		t.Errorf("test accuracy %.3f; chance is 0.1, the small CNN reaches about 0.8 here", e[1].TestAcc)
	}
	// The returned model is an inference model: BN in inference mode, names kept.
	bns, _ := onnxio.FindBatchNorms(res.Model)
	if len(bns) != 2 || bns[0].TrainingMode {
		t.Fatalf("output model BN: %+v", bns)
	}
	if _, ok := weights(t, res.Model)["conv1.weight"]; !ok {
		t.Fatal("parameter names changed")
	}
}

func TestTrainDeterministicBySeed(t *testing.T) {
	requireORT(t)
	train := fashion(t, "train", 700) // 11 steps of 64, the last of 60
	run := func(seed uint64) map[string][]float32 {
		res, err := Train(context.Background(), smallRun(t, train, nil, 1, seed))
		if err != nil {
			t.Fatal(err)
		}
		return weights(t, res.Model)
	}
	a, b, c := run(7), run(7), run(8)
	if !sameWeights(a, b) {
		t.Fatal("two runs with the same seed gave different weights")
	}
	if sameWeights(a, c) {
		t.Fatal("different seeds gave the same weights")
	}
}

// TestResumeBitIdentical: a run interrupted mid-epoch and resumed from its
// checkpoint ends with exactly the weights of an uninterrupted run.
func TestResumeBitIdentical(t *testing.T) {
	requireORT(t)
	train := fashion(t, "train", 700)
	test := fashion(t, "t10k", 200)
	full, err := Train(context.Background(), smallRun(t, train, test, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := smallRun(t, train, test, 2, 3)
	cfg.CheckpointDir, cfg.CheckpointEvery, cfg.Resume = dir, 4, true
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Progress = func(p Progress) {
		if p.GlobalStep == 15 { // epoch 2, step 4 of 11
			cancel()
		}
	}
	_, err = Train(ctx, cfg)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	cfg.Progress = nil
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Steps != full.Steps {
		t.Fatalf("resumed %v, steps %d want %d", res.Resumed, res.Steps, full.Steps)
	}
	if !sameWeights(weights(t, full.Model), weights(t, res.Model)) {
		t.Fatal("the resumed run ended with other weights than the uninterrupted one")
	}
	if res.Epochs[1].TrainLoss != full.Epochs[1].TrainLoss || res.Epochs[1].TestAcc != full.Epochs[1].TestAcc {
		t.Fatalf("epoch 2 stats differ: %+v vs %+v", res.Epochs[1], full.Epochs[1])
	}
	// Another setting refuses the checkpoint.
	cfg.LR = 0.01
	if _, err := Train(context.Background(), cfg); err == nil {
		t.Fatal("a checkpoint of another configuration was resumed")
	}
}

// TestEvaluateMatchesPyTorchLogits: Evaluate's logits on the committed MNIST
// images equal PyTorch's eval() logits of the fixture (reference.json),
// through a full batch of 5 and a remainder of 3.
func TestEvaluateMatchesPyTorchLogits(t *testing.T) {
	requireORT(t)
	m := loadFixture(t, "small_resnet.preserve.onnx")
	d, err := dataset.Load("../testdata/mnist/t10k-64-images-idx3-ubyte.gz", dataset.LoadOptions{MaxSamples: 8})
	if err != nil {
		t.Fatal(err)
	}
	d, _ = d.WithNorm(dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}})
	out, err := Evaluate(context.Background(), m, d, 5, ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Models map[string]struct {
			EvalLogits [][]float64 `json:"eval_logits"`
		} `json:"models"`
	}
	b, _ := os.ReadFile("../testdata/models/reference.json")
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	want := fx.Models["small_resnet.preserve.onnx"].EvalLogits
	worst := 0.0
	for i, row := range want {
		for j, v := range row {
			worst = math.Max(worst, math.Abs(float64(out.Logits[i*10+j])-v))
		}
	}
	if worst > 1e-4 {
		t.Fatalf("logits differ from PyTorch by %.3g", worst)
	}
}
