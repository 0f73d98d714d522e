package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Schedule is a learning-rate schedule, evaluated per step in Go and fed to
// the step graph's lr input.
type Schedule string

const (
	// Constant keeps lr.
	Constant Schedule = "constant"
	// Cosine is lr·(1 + cos(π·t/T))/2 at step t of T (no restarts).
	Cosine Schedule = "cosine"
)

// ParseSchedule reads "constant" or "cosine".
func ParseSchedule(s string) (Schedule, error) {
	switch Schedule(s) {
	case Constant, Cosine:
		return Schedule(s), nil
	}
	return "", fmt.Errorf("trainer: unknown schedule %q (want constant or cosine)", s)
}

// rate is the learning rate of step t (0-based) of total.
func (s Schedule) rate(lr float32, t, total int) float32 {
	if s == Cosine && total > 0 {
		return float32(float64(lr) * (1 + math.Cos(math.Pi*float64(t)/float64(total))) / 2)
	}
	return lr
}

// Augment configures data augmentation; the zero value is none.
type Augment struct {
	// Crop pads each image by Crop pixels (with the normalized value of a
	// black pixel) and takes a random crop of the original size.
	Crop int `json:"crop"`
	// Flip mirrors each image horizontally with probability 1/2.
	Flip bool `json:"flip"`
}

// Config is one training run.
type Config struct {
	// Model is the model to train; Init says whether its weights are kept.
	Model *onnxio.Model
	Init  Init
	// Train is the training set; Test, when set, is evaluated after each epoch.
	Train, Test *dataset.Dataset
	Epochs      int
	Batch       int
	Optimizer   Optimizer
	LR          float32
	Schedule    Schedule
	// LabelSmoothing of the cross-entropy loss.
	LabelSmoothing float32
	// Loss is the loss trained ("": LossCrossEntropy). With
	// LossGaussianNLL, Targets holds one float target per training sample,
	// Targets[i] belonging to Train's sample i; Train's labels choose each
	// sample's (μ, r) pair of the output. Training accuracy is then not
	// measured (EpochStats.TrainAcc is 0).
	Loss    Loss
	Targets []float32
	Augment Augment
	// Seed decides initialization, data order, augmentation and dropout.
	Seed uint64
	// Session configures ONNX Runtime (threads, device) and, on the CPU,
	// the blocked-layout rewrite of the graphs (Session.NCHWc).
	Session ort.SessionOptions
	// CheckpointDir, when set, receives a checkpoint after every epoch and
	// every CheckpointEvery steps (0: epochs only). With Resume, a
	// checkpoint found there is continued from.
	CheckpointDir   string
	CheckpointEvery int
	Resume          bool
	// Log receives one JSON object per line: per epoch, and per step every
	// LogEvery steps (0: epochs only).
	Log      io.Writer
	LogEvery int
	// Progress, when set, is called after every step.
	Progress func(Progress)
	// OnEpoch, when set, is called after every finished epoch, once its
	// statistics, its test evaluation and its checkpoint are done. An error
	// it returns stops training and is returned by Train (wrapped); the
	// epoch's checkpoint is already written by then. OnEpoch does not change
	// the training: the weights are the same with and without it. A run
	// resumed from a checkpoint does not call it again for the epochs that
	// finished before the checkpoint was written (including one whose
	// OnEpoch failed or never ran): callers that need every epoch persist
	// their own per-epoch results and look at what they already have when
	// resuming.
	OnEpoch func(ctx context.Context, e EpochEnd) error
	// StopAtTrainAcc, when positive, stops training after the first epoch
	// whose training accuracy (EpochStats.TrainAcc, measured during the
	// epoch) is at least this fraction in [0, 1]; 0 is off. Epochs stays the
	// maximum, and the learning-rate schedule is still computed over all
	// Epochs: stopping early leaves the schedule where it was (a cosine
	// schedule does not reach zero). A run resumed from the checkpoint of an
	// epoch that met the target stops without training more. The target is
	// not part of what a checkpoint must match, so a stopped run can be
	// resumed with a higher target, or 0, to continue exactly as a run that
	// never stopped.
	StopAtTrainAcc float64
}

// EpochEnd is what Config.OnEpoch receives after a finished epoch.
type EpochEnd struct {
	// Epoch is the finished epoch, 1-based.
	Epoch int
	// Stats are the epoch's numbers, as in Result.Epochs.
	Stats EpochStats
	// Model is the model for inference at the end of the epoch, built as
	// Result.Model is: the source model with the parameters and running
	// statistics learned so far, BatchNorm in inference mode, initializer
	// names unchanged. It is a copy that the callee may keep or change.
	Model *onnxio.Model
}

// Progress is a snapshot for progress displays.
type Progress struct {
	Epoch, Epochs          int
	Step, StepsPerEpoch    int
	Loss, Accuracy         float64 // running, this epoch
	SamplesPerSec          float64
	ETA                    time.Duration
	GlobalStep, TotalSteps int
}

// EpochStats are one epoch's numbers.
type EpochStats struct {
	Epoch       int     `json:"epoch"`
	TrainLoss   float64 `json:"train_loss"`
	TrainAcc    float64 `json:"train_acc"`
	TestLoss    float64 `json:"test_loss,omitempty"`
	TestAcc     float64 `json:"test_acc,omitempty"`
	HasTest     bool    `json:"-"`
	LR          float32 `json:"lr"`
	StepsPerSec float64 `json:"steps_per_s"`
	Seconds     float64 `json:"seconds"`
}

// Result is what Train returns.
type Result struct {
	// Model is the trained model for inference: the source model (after
	// its upgrade, for an opset before 13, and initialization) with the
	// learned parameters and running statistics, BatchNorm in inference
	// mode, initializer names unchanged.
	Model *onnxio.Model
	// Upgrade is the report of the source model's upgrade to the
	// trainer's opset (Upgrade); nil when the model was used as it is.
	// The run's log says so once, as {"opset_upgrade": {...}}.
	Upgrade *onnxio.UpgradeReport
	Epochs  []EpochStats
	// Steps is the number of training steps taken in total.
	Steps int
	// Resumed is true when the run continued from a checkpoint.
	Resumed bool
	// StoppedEarly is true when StopAtTrainAcc ended the run before Epochs
	// epochs (a run that reaches the target in its last epoch is not
	// stopped early).
	StoppedEarly bool
	// Fallbacks has one line for each graph whose blocked-layout form
	// (Session.NCHWc) ONNX Runtime refused, so that it ran as built
	// (slower, same numbers up to float rounding); empty when none. Each is
	// also written to Log, as {"nchwc_fallback": line}, before the first
	// step.
	Fallbacks []string
}

// ErrInterrupted is returned (wrapped) when the context is cancelled: the
// run stopped after a finished step and left a checkpoint when it had a
// checkpoint folder.
var ErrInterrupted = errors.New("training interrupted")

// Random streams, split from the one seed.
const (
	streamInit = iota + 1
	streamOrder
	streamAugment
	streamDropout
)

func rng(seed uint64, stream, a, b uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^(stream*0x9e3779b97f4a7c15), (a+1)*0xbf58476d1ce4e5b9^(b+1)*0x94d049bb133111eb))
}

// Train runs a training run: every training sample once per epoch in a
// seeded order (the last, partial batch runs through a step graph of its
// own size), with checkpoints, resume and cancellation.
func Train(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	// A model of an opset before 13 is trained, and comes back, upgraded.
	src, up, err := Upgrade(cfg.Model)
	if err != nil {
		return nil, err
	}
	if cfg.Init == InitScratch {
		m, _, err := Initialize(src, cfg.Seed*1000003+streamInit)
		if err != nil {
			return nil, err
		}
		src = m
	}
	t, err := newTrainer(src, cfg)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if up.Upgraded() {
		line := map[string]any{"from": up.From, "to": up.To, "note": UpgradeNote(cfg.Model.Name, up)}
		if err := cfg.logLine(map[string]any{"opset_upgrade": line}); err != nil {
			return nil, err
		}
	}
	res, err := t.run(ctx)
	if res != nil {
		res.Upgrade = up
	}
	return res, err
}

func (cfg *Config) check() error {
	switch {
	case cfg.Model == nil:
		return errors.New("trainer: no model")
	case cfg.Train == nil || cfg.Train.Len() == 0:
		return errors.New("trainer: no training data")
	case cfg.Epochs <= 0:
		return fmt.Errorf("trainer: epochs must be positive, not %d", cfg.Epochs)
	case cfg.Batch <= 0:
		return fmt.Errorf("trainer: batch size must be positive, not %d", cfg.Batch)
	case cfg.LR < 0 || math.IsNaN(float64(cfg.LR)):
		return fmt.Errorf("trainer: learning rate %v", cfg.LR)
	case cfg.Augment.Crop < 0:
		return fmt.Errorf("trainer: crop padding %d", cfg.Augment.Crop)
	case !(cfg.StopAtTrainAcc >= 0 && cfg.StopAtTrainAcc <= 1):
		return fmt.Errorf("trainer: the training accuracy to stop at must be in [0, 1], not %v", cfg.StopAtTrainAcc)
	}
	if err := cfg.checkLoss(); err != nil {
		return err
	}
	if cfg.Schedule == "" {
		cfg.Schedule = Constant
	}
	if cfg.Init == "" {
		cfg.Init = InitPretrained
	}
	if cfg.Resume && cfg.CheckpointDir == "" {
		return errors.New("trainer: resume needs a checkpoint folder")
	}
	return nil
}

// reachedTarget says whether an epoch met StopAtTrainAcc.
func (cfg *Config) reachedTarget(st EpochStats) bool {
	return cfg.StopAtTrainAcc > 0 && st.TrainAcc >= cfg.StopAtTrainAcc
}

// logLine writes one JSON line to the log. A number JSON cannot hold (NaN
// or ±Inf: a diverged loss) is written as null; a failed write is the
// run's error.
func (cfg *Config) logLine(v any) error {
	if cfg.Log == nil {
		return nil
	}
	b, err := json.Marshal(v)
	var unsupported *json.UnsupportedValueError
	if errors.As(err, &unsupported) {
		b, err = json.Marshal(finiteFields(v))
	}
	if err != nil {
		return fmt.Errorf("trainer: log line: %w", err)
	}
	if _, err := cfg.Log.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("trainer: writing the log: %w", err)
	}
	return nil
}

// finiteFields returns a log line (a map, or a struct read by its json
// names) as a map whose non-finite numbers are nil.
func finiteFields(v any) map[string]any {
	out := map[string]any{}
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			out[k] = x
		}
	} else if rv := reflect.ValueOf(v); rv.Kind() == reflect.Struct {
		for i := range rv.NumField() {
			f := rv.Type().Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" || (strings.Contains(opts, "omitempty") && rv.Field(i).IsZero()) {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = rv.Field(i).Interface()
		}
	}
	for k, x := range out {
		var f float64
		switch n := x.(type) {
		case float64:
			f = n
		case float32:
			f = float64(n)
		default:
			continue
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			out[k] = nil
		}
	}
	return out
}
