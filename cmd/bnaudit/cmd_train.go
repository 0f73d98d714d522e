package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer"
)

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train a model on a data set with bnaudit's ONNX training graphs (or: train export)",
		ArgsUsage: "MODEL",
		Description: "Trains MODEL on --data and writes the trained model (BatchNorm in inference mode with the\n" +
			"learned statistics, initializer names unchanged) to --output, with a JSON-lines log beside it.\n" +
			"Every training sample is used every epoch in a seeded order; the last partial batch runs too.\n" +
			"--data/--test take an IDX folder (MNIST layout; --data uses its train split, --test its t10k\n" +
			"split), an IDX images file with its labels file beside it, an .npz with x and y, or an image\n" +
			"folder with one subfolder per class. With --checkpoint DIR the run saves its state there after\n" +
			"every epoch (and every --checkpoint-every steps); --resume continues from it, ending with the\n" +
			"same weights as an uninterrupted run. Ctrl-C stops after the current step and saves.\n\n" + exitCodesHelp,
		Flags:        trainFlags(),
		OnUsageError: commandUsageError,
		Action:       action(readTrain, runTrain),
		Subcommands: []*cli.Command{
			trainExportCommand(),
		},
	}
}

func trainFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "training data (IDX folder or file, .npz, image folder) (required)"},
		&cli.StringFlag{Name: "test", Usage: "test data, evaluated after every epoch (an IDX folder's t10k split)"},
		&cli.StringFlag{Name: "train-index", Usage: "file of training-sample indices to use (a subset)"},
		outputFlag("where to write the trained model (required)"),
	}
	flags = append(flags, recipeFlags(5, 128)...)
	return append(flags,
		labelSmoothingFlag(),
		seedFlag("seed of initialization, data order, augmentation and dropout"),
		normFlag(),
		&cli.IntFlag{Name: "augment-crop", Usage: "random crop with this much padding (0: off)"},
		&cli.BoolFlag{Name: "augment-flip", Usage: "random horizontal flips"},
		&cli.IntFlag{Name: "max-samples", Usage: "use only the first N training samples (0: all)"},
		&cli.StringFlag{Name: "checkpoint", Usage: "folder for checkpoints"},
		&cli.IntFlag{Name: "checkpoint-every", Usage: "also checkpoint every N steps (0: after each epoch only)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue from the checkpoint in --checkpoint"},
		&cli.StringFlag{Name: "log", Usage: "JSON-lines log (default: OUTPUT with .jsonl)"},
		&cli.IntFlag{Name: "log-every", Value: 50, Usage: "also log every N steps (0: epochs only)"},
		quietFlag(),
	)
}

func readTrain(c *cli.Context) trainOptions {
	return trainOptions{global: readGlobal(c), modelPath: readModelPath(c),
		Data: c.String("data"), Test: c.String("test"), TrainIndex: c.String("train-index"), Output: c.String("output"),
		Recipe: readRecipe(c), LabelSmoothing: c.Float64("label-smoothing"), Seed: c.Uint64("seed"), Norm: c.String("norm"),
		AugmentCrop: c.Int("augment-crop"), AugmentFlip: c.Bool("augment-flip"), MaxSamples: c.Int("max-samples"),
		Checkpoint: c.String("checkpoint"), CheckpointEvery: c.Int("checkpoint-every"), Resume: c.Bool("resume"),
		Log: c.String("log"), LogEvery: c.Int("log-every"), Quiet: c.Bool("quiet")}
}

// trainOptions are the options of train.
type trainOptions struct {
	global globalOptions
	modelPath
	Data, Test      string
	TrainIndex      string
	Output          string
	Recipe          recipeOptions
	LabelSmoothing  float64
	Seed            uint64
	Norm            string
	AugmentCrop     int
	AugmentFlip     bool
	MaxSamples      int
	Checkpoint      string
	CheckpointEvery int
	Resume          bool
	Log             string
	LogEvery        int
	Quiet           bool
}

func (o trainOptions) validate() error {
	if o.Data == "" || o.Output == "" {
		return usageErrorf("train needs --data and --output; see bnaudit train --help")
	}
	if err := o.modelPath.validate(); err != nil {
		return err
	}
	if _, err := o.Recipe.config(); err != nil {
		return err
	}
	if o.Resume && o.Checkpoint == "" {
		return usageErrorf("--resume needs --checkpoint DIR")
	}
	if err := checkLabelSmoothing(o.LabelSmoothing); err != nil {
		return err
	}
	for _, c := range []struct {
		flag string
		v    int
	}{{"--augment-crop", o.AugmentCrop}, {"--max-samples", o.MaxSamples}, {"--checkpoint-every", o.CheckpointEvery}, {"--log-every", o.LogEvery}} {
		if err := checkNonNegative(c.flag, c.v); err != nil {
			return err
		}
	}
	if err := checkOutputFile("--output", o.Output); err != nil {
		return err
	}
	if err := checkOutputFile("--log", o.logPath()); err != nil {
		return err
	}
	if o.Checkpoint != "" {
		if err := checkOutputDir("--checkpoint", o.Checkpoint); err != nil {
			return err
		}
	}
	return o.global.validateSession()
}

// logPath is --log, or OUTPUT with .jsonl.
func (o trainOptions) logPath() string {
	if o.Log != "" {
		return o.Log
	}
	return strings.TrimSuffix(o.Output, filepath.Ext(o.Output)) + ".jsonl"
}

func runTrain(ctx context.Context, o trainOptions, w io.Writer) (err error) {
	m, err := o.global.loadModel(o.Model)
	if err != nil {
		return err
	}
	cfg, err := o.Recipe.config()
	if err != nil {
		return err
	}
	norm, err := normOrAuto(o.Norm)
	if err != nil {
		return err
	}
	shape, err := study.ShapeOf(m)
	if err != nil {
		return badInput(err)
	}
	if cfg.Session, err = o.global.session(); err != nil {
		return err
	}
	data, err := study.LoadData(study.DataConfig{Norm: norm, FitTo: shape.Sample,
		Members:    study.DataSource{Path: o.Data, Split: "train", Max: o.MaxSamples, Index: o.TrainIndex},
		NonMembers: study.DataSource{Path: o.Test, Split: "test"}})
	if err != nil {
		return err
	}
	if m, _, err = prepareModel(o.global, m, data.Members, data.NonMembers); err != nil {
		return err
	}
	if o.Checkpoint != "" {
		ckpt, err := openOutputDir(o.Checkpoint, command())
		if err != nil {
			return err
		}
		defer func() { ckpt.close(err) }()
	}
	logPath := o.logPath()
	logFile, err := openLog(logPath, o.Resume)
	if err != nil {
		return err
	}
	// An interrupted run with a checkpoint keeps its log for --resume.
	defer func() { err = logFile.close(err, errors.Is(err, trainer.ErrInterrupted) && o.Checkpoint != "") }()
	cfg.Model, cfg.Train, cfg.Test = m, data.Members, data.NonMembers
	cfg.LabelSmoothing = float32(o.LabelSmoothing)
	cfg.Augment = trainer.Augment{Crop: o.AugmentCrop, Flip: o.AugmentFlip}
	cfg.Seed = o.Seed
	cfg.CheckpointDir, cfg.CheckpointEvery, cfg.Resume = o.Checkpoint, o.CheckpointEvery, o.Resume
	cfg.Log, cfg.LogEvery = logFile.f, o.LogEvery
	// Record the run's settings as the log's first line.
	if _, err := fmt.Fprintf(logFile.f, `{"run":{"model":%q,"train":%q,"samples":%d,"norm_mean":%s,"norm_std":%s,"epochs":%d,"batch":%d,"optimizer":%q,"lr":%s,"schedule":%q,"seed":%d,"init":%q,"resume":%v}}`+"\n",
		m.Name, cfg.Train.Name(), cfg.Train.Len(), jsonFloats(data.Norm.Mean), jsonFloats(data.Norm.Std), cfg.Epochs, cfg.Batch, cfg.Optimizer.Kind, jsonFloat(cfg.LR), cfg.Schedule, cfg.Seed, cfg.Init, cfg.Resume); err != nil {
		return fmt.Errorf("cannot write the log %s: %w", logPath, err)
	}
	errw := o.global.Stderr
	var bar *progressbar.ProgressBar
	if !o.Quiet {
		if isTerminal(errw) {
			cfg.Progress = terminalProgress(&bar, errw)
		} else {
			cfg.Progress = plainProgress(errw)
		}
	}
	res, err := trainer.Train(ctx, cfg)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(errw)
	}
	if err != nil {
		return err
	}
	for _, f := range res.Fallbacks {
		fmt.Fprintf(errw, "warning: %s\n", f)
	}
	if err := res.Model.Save(o.Output); err != nil {
		return err
	}
	for _, e := range res.Epochs {
		fmt.Fprintf(w, "epoch %d: train loss %.4f acc %.4f", e.Epoch, e.TrainLoss, e.TrainAcc)
		if e.HasTest || cfg.Test != nil {
			fmt.Fprintf(w, ", test loss %.4f acc %.4f", e.TestLoss, e.TestAcc)
		}
		fmt.Fprintf(w, ", %.1f steps/s, lr %.3g\n", e.StepsPerSec, e.LR)
	}
	fmt.Fprintf(w, "wrote %s (%d steps%s); log %s\n", o.Output, res.Steps, map[bool]string{true: ", resumed", false: ""}[res.Resumed], logPath)
	return nil
}

func jsonFloats(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = jsonFloat(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// jsonFloat writes x as %v does, and a number JSON cannot hold as null.
func jsonFloat(x float32) string {
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		return "null"
	}
	return fmt.Sprintf("%v", x)
}

// trainLog is train's JSON-lines log.
type trainLog struct {
	f    *os.File
	path string
	// created: the run made the file (it did not exist before).
	created bool
}

// openLog opens the log: appended to when resuming, else written anew.
func openLog(path string, resume bool) (*trainLog, error) {
	_, statErr := os.Stat(path)
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot write the log: %w", err)
	}
	return &trainLog{f: f, path: path, created: errors.Is(statErr, fs.ErrNotExist)}, nil
}

// close closes the log and returns the run's error, or the close's. A
// failed run removes a log it created, unless keep.
func (l *trainLog) close(runErr error, keep bool) error {
	err := l.f.Close()
	if err != nil && runErr == nil {
		runErr = fmt.Errorf("cannot write the log %s: %w", l.path, err)
	}
	if runErr != nil && l.created && !keep {
		os.Remove(l.path)
	}
	return runErr
}

// terminalProgress draws a progress bar on a terminal.
func terminalProgress(bar **progressbar.ProgressBar, w io.Writer) func(trainer.Progress) {
	return func(p trainer.Progress) {
		if *bar == nil {
			*bar = progressbar.NewOptions(p.TotalSteps, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(30), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		(*bar).Describe(fmt.Sprintf("epoch %d/%d loss %.3f acc %.3f %.0f samples/s", p.Epoch, p.Epochs, p.Loss, p.Accuracy, p.SamplesPerSec))
		(*bar).Set(p.GlobalStep)
	}
}

// plainProgress prints a line every 10% of an epoch when not on a terminal.
func plainProgress(w io.Writer) func(trainer.Progress) {
	return func(p trainer.Progress) {
		every := max(1, p.StepsPerEpoch/10)
		if p.Step%every == 0 || p.Step == p.StepsPerEpoch {
			fmt.Fprintf(w, "epoch %d/%d step %d/%d loss %.4f acc %.4f %.0f samples/s eta %s\n", p.Epoch, p.Epochs, p.Step, p.StepsPerEpoch,
				p.Loss, p.Accuracy, p.SamplesPerSec, p.ETA.Round(time.Second))
		}
	}
}
