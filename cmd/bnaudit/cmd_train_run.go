package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func trainFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "training data (IDX folder or file, .npz, image folder) (required)"},
		&cli.StringFlag{Name: "test", Usage: "test data, evaluated after every epoch (an IDX folder's t10k split)"},
		&cli.StringFlag{Name: "train-index", Usage: "file of training-sample indices to use (a subset)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "where to write the trained model (required)"},
		&cli.IntFlag{Name: "epochs", Value: 5, Usage: "passes over the training data"},
		&cli.IntFlag{Name: "batch", Value: 128, Usage: "batch size"},
		&cli.StringFlag{Name: "optimizer", Value: "sgd", Usage: "sgd or adamw"},
		&cli.Float64Flag{Name: "lr", Value: 0.02, Usage: "learning rate"},
		&cli.StringFlag{Name: "schedule", Value: "cosine", Usage: "constant or cosine (per step)"},
		&cli.Float64Flag{Name: "momentum", Value: 0.9, Usage: "sgd: momentum"},
		&cli.BoolFlag{Name: "nesterov", Usage: "sgd: Nesterov momentum"},
		&cli.Float64Flag{Name: "weight-decay", Value: 5e-4, Usage: "weight decay"},
		&cli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing of the loss"},
		&cli.StringFlag{Name: "init", Value: "scratch", Usage: "scratch (PyTorch's default initialization) or pretrained (the model's weights)"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of initialization, data order, augmentation and dropout"},
		&cli.StringFlag{Name: "norm", Value: "auto", Usage: "per-channel normalization MEAN/STD (e.g. 0.2860/0.3530, or 0.49,0.48,0.45/0.25,0.24,0.26), or auto (computed on the training data and recorded)"},
		&cli.IntFlag{Name: "augment-crop", Usage: "random crop with this much padding (0: off)"},
		&cli.BoolFlag{Name: "augment-flip", Usage: "random horizontal flips"},
		&cli.IntFlag{Name: "max-samples", Usage: "use only the first N training samples (0: all)"},
		&cli.StringFlag{Name: "checkpoint", Usage: "folder for checkpoints"},
		&cli.IntFlag{Name: "checkpoint-every", Usage: "also checkpoint every N steps (0: after each epoch only)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue from the checkpoint in --checkpoint"},
		&cli.StringFlag{Name: "log", Usage: "JSON-lines log (default: OUTPUT with .jsonl)"},
		&cli.IntFlag{Name: "log-every", Value: 50, Usage: "also log every N steps (0: epochs only)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
	}
}

// parseNorm reads "MEAN/STD" with comma-separated channels.
func parseNorm(s string) (dataset.Normalization, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 2 {
		return dataset.Normalization{}, usageErrorf("--norm %q: want MEAN/STD, e.g. 0.2860/0.3530", s)
	}
	read := func(p string) ([]float32, error) {
		var out []float32
		for _, f := range strings.Split(p, ",") {
			var v float32
			if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err != nil {
				return nil, usageErrorf("--norm %q: %q is not a number", s, f)
			}
			out = append(out, v)
		}
		return out, nil
	}
	mean, err := read(parts[0])
	if err != nil {
		return dataset.Normalization{}, err
	}
	std, err := read(parts[1])
	if err != nil {
		return dataset.Normalization{}, err
	}
	for _, v := range std {
		if v <= 0 {
			return dataset.Normalization{}, usageErrorf("--norm %q: a standard deviation must be positive", s)
		}
	}
	return dataset.Normalization{Mean: mean, Std: std}, nil
}

func runTrainCommand(c *cli.Context) error {
	if c.String("data") == "" || c.String("output") == "" {
		return usageErrorf("train needs --data and --output; see bnaudit train --help")
	}
	m, err := loadModel(c)
	if err != nil {
		return err
	}
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	train, err := dataset.Load(c.String("data"), dataset.LoadOptions{Split: "train", MaxSamples: c.Int("max-samples")})
	if err != nil {
		return err
	}
	if p := c.String("train-index"); p != "" {
		idx, err := dataset.LoadIndex(p, train.Len())
		if err != nil {
			return err
		}
		if train, err = train.Subset(idx); err != nil {
			return err
		}
	}
	norm := dataset.ComputeNorm(train)
	if c.String("norm") != "auto" {
		if norm, err = parseNorm(c.String("norm")); err != nil {
			return err
		}
	}
	if train, err = train.WithNorm(norm); err != nil {
		return err
	}
	var test *dataset.Dataset
	if p := c.String("test"); p != "" {
		if test, err = dataset.Load(p, dataset.LoadOptions{Split: "test"}); err != nil {
			return err
		}
		if test, err = test.WithNorm(norm); err != nil {
			return err
		}
	}
	init, err := trainer.ParseInit(c.String("init"))
	if err != nil {
		return usageErrorf("%v", err)
	}
	sched, err := trainer.ParseSchedule(c.String("schedule"))
	if err != nil {
		return usageErrorf("%v", err)
	}
	opt, err := optimizerFlags(c)
	if err != nil {
		return err
	}
	if c.Bool("resume") && c.String("checkpoint") == "" {
		return usageErrorf("--resume needs --checkpoint DIR")
	}
	out := c.String("output")
	logPath := c.String("log")
	if logPath == "" {
		logPath = strings.TrimSuffix(out, filepath.Ext(out)) + ".jsonl"
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if c.Bool("resume") {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	logFile, err := os.OpenFile(logPath, flags, 0o644)
	if err != nil {
		return fmt.Errorf("bnaudit: cannot write the log: %w", err)
	}
	defer logFile.Close()
	cfg := trainer.Config{
		Model: m, Init: init, Train: train, Test: test,
		Epochs: c.Int("epochs"), Batch: c.Int("batch"), Optimizer: opt, LR: float32(c.Float64("lr")), Schedule: sched,
		LabelSmoothing: float32(c.Float64("label-smoothing")),
		Augment:        trainer.Augment{Crop: c.Int("augment-crop"), Flip: c.Bool("augment-flip")},
		Seed:           c.Uint64("seed"), Session: opts,
		CheckpointDir: c.String("checkpoint"), CheckpointEvery: c.Int("checkpoint-every"), Resume: c.Bool("resume"),
		Log: logFile, LogEvery: c.Int("log-every"),
	}
	// Record the run's settings as the log's first line.
	fmt.Fprintf(logFile, `{"run":{"model":%q,"train":%q,"samples":%d,"norm_mean":%v,"norm_std":%v,"epochs":%d,"batch":%d,"optimizer":%q,"lr":%v,"schedule":%q,"seed":%d,"init":%q,"resume":%v}}`+"\n",
		m.Name, train.Name(), train.Len(), jsonFloats(norm.Mean), jsonFloats(norm.Std), cfg.Epochs, cfg.Batch, opt.Kind, cfg.LR, sched, cfg.Seed, init, cfg.Resume)
	errw := c.App.ErrWriter
	var bar *progressbar.ProgressBar
	if !c.Bool("quiet") {
		if f, ok := errw.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			cfg.Progress = terminalProgress(&bar, errw)
		} else {
			cfg.Progress = plainProgress(errw)
		}
	}
	res, err := trainer.Train(c.Context, cfg)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(errw)
	}
	if err != nil {
		if errors.Is(err, trainer.ErrInterrupted) {
			return &exitError{exitRuntime, err}
		}
		if errors.Is(err, dataset.ErrBadData) || errors.Is(err, trainer.ErrUnsupported) {
			return &exitError{exitBadInput, err}
		}
		return err
	}
	if err := res.Model.Save(out); err != nil {
		return err
	}
	w := c.App.Writer
	for _, e := range res.Epochs {
		fmt.Fprintf(w, "epoch %d: train loss %.4f acc %.4f", e.Epoch, e.TrainLoss, e.TrainAcc)
		if e.HasTest || test != nil {
			fmt.Fprintf(w, ", test loss %.4f acc %.4f", e.TestLoss, e.TestAcc)
		}
		fmt.Fprintf(w, ", %.1f steps/s, lr %.3g\n", e.StepsPerSec, e.LR)
	}
	fmt.Fprintf(w, "wrote %s (%d steps%s); log %s\n", out, res.Steps, map[bool]string{true: ", resumed", false: ""}[res.Resumed], logPath)
	return nil
}

func jsonFloats(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%g", x)
	}
	return "[" + strings.Join(parts, ",") + "]"
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
