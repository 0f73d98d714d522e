package trainer

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// sameOutputs compares two models' evaluation outputs bit for bit.
func sameOutputs(t *testing.T, a, b *onnxio.Model, d *dataset.Dataset) {
	t.Helper()
	ev := func(m *onnxio.Model) *Outputs {
		out, err := Evaluate(context.Background(), m, d, 64, ort.SessionOptions{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	oa, ob := ev(a), ev(b)
	if len(oa.Logits) != len(ob.Logits) {
		t.Fatalf("%d logits vs %d", len(oa.Logits), len(ob.Logits))
	}
	for i := range oa.Logits {
		if math.Float32bits(oa.Logits[i]) != math.Float32bits(ob.Logits[i]) {
			t.Fatalf("logit %d: %v vs %v", i, oa.Logits[i], ob.Logits[i])
		}
	}
}

// TestOnEpochHook: the hook sees epochs 1..N with their stats, and the last
// epoch's model evaluates exactly as Result.Model; with or without the hook
// the weights are the same.
func TestOnEpochHook(t *testing.T) {
	requireORT(t)
	train := fashion(t, "train", 700) // 11 steps of 64, the last of 60
	test := fashion(t, "t10k", 200)
	cfg := smallRun(t, train, test, 2, 5)
	var got []EpochEnd
	cfg.OnEpoch = func(ctx context.Context, e EpochEnd) error {
		if ctx == nil {
			t.Error("nil context")
		}
		got = append(got, e)
		return nil
	}
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(res.Epochs) != 2 {
		t.Fatalf("%d hook calls, %d epochs; want 2 and 2", len(got), len(res.Epochs))
	}
	for i, e := range got {
		if e.Epoch != i+1 || e.Stats != res.Epochs[i] {
			t.Fatalf("call %d: epoch %d stats %+v; want epoch %d stats %+v", i, e.Epoch, e.Stats, i+1, res.Epochs[i])
		}
		bns, err := onnxio.FindBatchNorms(e.Model)
		if err != nil || len(bns) != 2 || bns[0].TrainingMode {
			t.Fatalf("epoch %d model BN: %+v %v", e.Epoch, bns, err)
		}
	}
	if !sameWeights(weights(t, got[1].Model), weights(t, res.Model)) {
		t.Fatal("the last epoch's hook model has other weights than Result.Model")
	}
	if sameWeights(weights(t, got[0].Model), weights(t, got[1].Model)) {
		t.Fatal("the epoch 1 model was changed by epoch 2 (or did not train)")
	}
	sameOutputs(t, got[1].Model, res.Model, test)

	cfg.OnEpoch = nil
	plain, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !sameWeights(weights(t, plain.Model), weights(t, res.Model)) {
		t.Fatal("the hook changed the training: other weights than without it")
	}
}

// TestOnEpochHookErrorStops: an error from the hook ends training and is
// returned.
func TestOnEpochHookErrorStops(t *testing.T) {
	requireORT(t)
	cfg := smallRun(t, fashion(t, "train", 300), nil, 3, 5)
	stop := errors.New("enough")
	calls := 0
	cfg.OnEpoch = func(ctx context.Context, e EpochEnd) error {
		calls++
		return stop
	}
	steps := 0
	cfg.Progress = func(Progress) { steps++ }
	res, err := Train(context.Background(), cfg)
	if !errors.Is(err, stop) || res != nil {
		t.Fatalf("want the hook's error and no result, got %v, %v", res, err)
	}
	if calls != 1 || steps != 5 {
		t.Fatalf("%d hook calls and %d steps; want 1 and 5 (one epoch of 300/64)", calls, steps)
	}
}

// TestStopAtTrainAcc: a low target stops after the first epoch.
func TestStopAtTrainAcc(t *testing.T) {
	requireORT(t)
	cfg := smallRun(t, fashion(t, "train", 700), nil, 4, 5)
	cfg.StopAtTrainAcc = 0.25
	calls := 0
	cfg.OnEpoch = func(context.Context, EpochEnd) error { calls++; return nil }
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Epochs) != 1 || !res.StoppedEarly || res.Steps != 11 || calls != 1 {
		t.Fatalf("epochs %d, stopped early %v, steps %d, hook calls %d; want 1, true, 11, 1 (epoch 1 train acc %.3f)",
			len(res.Epochs), res.StoppedEarly, res.Steps, calls, res.Epochs[0].TrainAcc)
	}
	t.Logf("epoch 1 train acc %.3f", res.Epochs[0].TrainAcc)
	if res.Epochs[0].TrainAcc < 0.25 {
		t.Fatalf("stopped at train acc %.3f < 0.25", res.Epochs[0].TrainAcc)
	}
	// Whether or not the last epoch meets the target, ending there is not
	// an early stop.
	for _, target := range []float64{0.25, 1} {
		cfg := smallRun(t, fashion(t, "train", 300), nil, 1, 5)
		cfg.StopAtTrainAcc = target
		res, err := Train(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Epochs) != 1 || res.StoppedEarly {
			t.Fatalf("target %v, 1 epoch: epochs %d, stopped early %v", target, len(res.Epochs), res.StoppedEarly)
		}
	}
}

func TestStopAtTrainAccChecked(t *testing.T) {
	for _, v := range []float64{1.01, -0.1, math.NaN(), math.Inf(1)} {
		cfg := Config{Model: &onnxio.Model{}, Train: fashion(t, "train", 10), Epochs: 1, Batch: 1, StopAtTrainAcc: v}
		if err := cfg.check(); err == nil {
			t.Errorf("StopAtTrainAcc %v accepted", v)
		}
		if _, err := Train(context.Background(), cfg); err == nil {
			t.Errorf("Train accepted StopAtTrainAcc %v", v)
		}
	}
	for _, v := range []float64{0, 0.5, 1} {
		cfg := Config{Model: &onnxio.Model{}, Train: fashion(t, "train", 10), Epochs: 1, Batch: 1, StopAtTrainAcc: v}
		if err := cfg.check(); err != nil {
			t.Errorf("StopAtTrainAcc %v: %v", v, err)
		}
	}
}

// TestStopAtTrainAccResume: resuming the checkpoint of a run that stopped
// early stops again without training or calling the hook; resuming it with
// the target off continues exactly as a run that never stopped, calling the
// hook only for the epochs it trains.
func TestStopAtTrainAccResume(t *testing.T) {
	requireORT(t)
	train := fashion(t, "train", 700)
	full, err := Train(context.Background(), smallRun(t, train, nil, 2, 9))
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallRun(t, train, nil, 2, 9)
	cfg.CheckpointDir, cfg.Resume, cfg.StopAtTrainAcc = t.TempDir(), true, 0.25
	first, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !first.StoppedEarly || first.Resumed || len(first.Epochs) != 1 {
		t.Fatalf("first run: stopped early %v, resumed %v, epochs %d (train acc %.3f)", first.StoppedEarly, first.Resumed, len(first.Epochs), first.Epochs[0].TrainAcc)
	}
	t.Logf("epoch 1 train acc %.3f", first.Epochs[0].TrainAcc)
	var calls []int
	cfg.OnEpoch = func(_ context.Context, e EpochEnd) error { calls = append(calls, e.Epoch); return nil }
	cfg.Progress = func(Progress) { t.Fatal("the resumed run trained although the target was met") }
	again, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Resumed || !again.StoppedEarly || again.Steps != first.Steps || len(again.Epochs) != 1 || len(calls) != 0 {
		t.Fatalf("resumed: resumed %v, stopped early %v, steps %d, epochs %d, hook calls %v", again.Resumed, again.StoppedEarly, again.Steps, len(again.Epochs), calls)
	}
	if !sameWeights(weights(t, first.Model), weights(t, again.Model)) {
		t.Fatal("the resumed stopped run has other weights")
	}
	cfg.Progress = nil
	cfg.StopAtTrainAcc = 0
	rest, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rest.Resumed || rest.StoppedEarly || rest.Steps != full.Steps || len(rest.Epochs) != 2 || len(calls) != 1 || calls[0] != 2 {
		t.Fatalf("continued: resumed %v, stopped early %v, steps %d want %d, epochs %d, hook calls %v", rest.Resumed, rest.StoppedEarly, rest.Steps, full.Steps, len(rest.Epochs), calls)
	}
	if !sameWeights(weights(t, full.Model), weights(t, rest.Model)) {
		t.Fatal("stopping and continuing gave other weights than an uninterrupted run")
	}
}
