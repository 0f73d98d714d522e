package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/study"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func compareFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "in-distribution data: members are drawn from its train split (required)"},
		&cli.StringFlag{Name: "test", Usage: "non-members (default: the test split of --data)"},
		&cli.StringFlag{Name: "ood", Value: "noise", Usage: "canary source: a data set (e.g. MNIST digits for a Fashion-MNIST model), noise (uniform-noise images), or relabel (training samples of --data beyond --members, each with a wrong label)"},
		&cli.IntFlag{Name: "canaries", Value: 50, Usage: "canaries inserted (as many more are held out)"},
		&cli.IntFlag{Name: "members", Usage: "members: the first N training samples (0: all)"},
		&cli.IntFlag{Name: "non-members", Usage: "non-members: the first N test samples (0: all)"},
		&cli.StringSliceFlag{Name: "variants", Usage: "original and ablation modes (fold, remove, freeze, groupnorm); default original,remove,freeze,groupnorm"},
		&cli.IntFlag{Name: "seeds", Value: 1, Usage: "training seeds per variant"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report folder (required)"},
		&cli.BoolFlag{Name: "resume", Usage: "reuse the finished runs found in the report folder"},
		&cli.IntFlag{Name: "epochs", Value: 20, Usage: "training epochs"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "batch size"},
		&cli.Float64Flag{Name: "lr", Value: 0.02, Usage: "learning rate (cosine schedule)"},
		&cli.StringFlag{Name: "optimizer", Value: "sgd", Usage: "sgd (momentum 0.9) or adamw"},
		&cli.Float64Flag{Name: "weight-decay", Value: 5e-4, Usage: "weight decay"},
		&cli.StringFlag{Name: "init", Value: "scratch", Usage: "scratch or pretrained (fine-tune the model's weights)"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of canaries, data order, initialization and bootstrap"},
		&cli.StringFlag{Name: "norm", Value: "auto", Usage: "normalization MEAN/STD or auto"},
		&cli.IntFlag{Name: "bootstrap", Value: 1000, Usage: "bootstrap replicates of each interval"},
		&cli.IntFlag{Name: "groups", Usage: "groupnorm variant: groups (default gcd(32, C))"},
		&cli.StringFlag{Name: "lira-variance", Value: "auto", Usage: "LiRA's Gaussians: fixed (one pooled σ, better with few reference models), per-sample, or auto (per-sample from 64 reference models on)"},
		&cli.IntFlag{Name: "ref-models", Usage: "reference models per variant (random halves of members ∪ non-members ∪ canaries, same recipe) for LiRA, RMIA and Feldman–Zhang (0: threshold attacks only)"},
		&cli.IntFlag{Name: "jobs", Value: 1, Usage: "reference models trained at once (the threads are split between them)"},
		&cli.Float64Flag{Name: "fit-to", Usage: "matched fit: stop each run after the first epoch whose training accuracy reaches this (0–1; --epochs is the maximum)"},
		&cli.IntFlag{Name: "grad-checkpoints", Value: 5, Usage: "measure the gradient-norm study at this many evenly spaced epochs, the last included (1: the last only)"},
		&cli.IntFlag{Name: "grad-sample", Value: 256, Usage: "typical members the canaries' gradient norms are compared with"},
		&cli.BoolFlag{Name: "inbatch", Value: true, Usage: "add the in-batch gradient-norm study at the same checkpoints (BN on batch statistics; one backward per sample)"},
		&cli.BoolFlag{Name: "no-cache", Usage: "do not keep logits in OUTPUT/cache"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
	}
}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "the paper's study on your model: BN variants trained alike, audited, compared, with a verdict",
		ArgsUsage: "MODEL",
		Description: "Trains the original model and its BN ablations (default: remove, freeze, groupnorm) on the same\n" +
			"members plus the same inserted canaries, with the same data order and starting weights, and audits each:\n" +
			"canary memorization gap, outlier/typical gradient-norm ratio, membership-inference attacks with\n" +
			"bootstrap intervals. Writes report.json, report.md, report.html, scores.csv and signals.npz into\n" +
			"--output, and prints the summary. --resume reuses finished runs after an interruption.\n\n" + exitCodesHelp,
		Flags:        compareFlags(),
		OnUsageError: commandUsageError,
		Action: func(c *cli.Context) error {
			if c.String("data") == "" || c.String("output") == "" {
				return usageErrorf("compare needs --data and --output; see bnaudit compare --help")
			}
			m, err := loadModel(c)
			if err != nil {
				return err
			}
			return runCompare(c, m, c.String("data"), c.String("test"), c.String("ood"), c.String("output"))
		},
	}
}

// runCompare is shared by compare and demo.
func runCompare(c *cli.Context, m *onnxio.Model, data, test, ood, out string) error {
	// Settings first: nothing is loaded or started for a bad flag.
	var opt trainer.Optimizer
	switch c.String("optimizer") {
	case "sgd":
		opt = trainer.SGD(0.9, float32(c.Float64("weight-decay")), false)
	case "adamw":
		opt = trainer.AdamW(float32(c.Float64("weight-decay")))
	default:
		return usageErrorf("--optimizer must be sgd or adamw, not %q", c.String("optimizer"))
	}
	if f := c.Float64("fit-to"); f < 0 || f > 1 {
		return usageErrorf("--fit-to takes a training accuracy in (0, 1], not %g", f)
	}
	if _, err := study.LiRAVarianceFor(c.String("lira-variance"), c.Int("ref-models")); err != nil {
		return usageErrorf("--lira-variance must be auto, fixed or per-sample, not %q", c.String("lira-variance"))
	}
	if r := c.Int("ref-models"); r == 1 || r < 0 {
		return usageErrorf("--ref-models needs 0 or at least 2 reference models, not %d", r)
	}
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	members, err := dataset.Load(data, dataset.LoadOptions{Split: "train", MaxSamples: c.Int("members")})
	if err != nil {
		return err
	}
	if test == "" {
		test = data
	}
	non, err := dataset.Load(test, dataset.LoadOptions{Split: "test", MaxSamples: c.Int("non-members")})
	if err != nil {
		return err
	}
	norm := dataset.ComputeNorm(members)
	if c.String("norm") != "auto" {
		if norm, err = parseNorm(c.String("norm")); err != nil {
			return err
		}
	}
	if members, err = members.WithNorm(norm); err != nil {
		return err
	}
	if non, err = non.WithNorm(norm); err != nil {
		return err
	}
	classes := max(members.Classes(), non.Classes())
	var canaries *study.Canaries
	k := c.Int("canaries")
	switch {
	case k <= 0:
	case ood == "noise":
		if canaries, err = study.NoiseCanaries(members.SampleShape(), k, classes, norm, c.Uint64("seed")); err != nil {
			return err
		}
	case ood == "relabel":
		// In-distribution samples that are not members: the training
		// split of --data without the members.
		all, err := dataset.Load(data, dataset.LoadOptions{Split: "train"})
		if err != nil {
			return err
		}
		src, err := study.Outside(all, members)
		spare := 0
		switch {
		case err == nil:
			spare = src.Len()
		case !errors.Is(err, study.ErrNoneOutside):
			return &exitError{exitBadInput, err}
		}
		if spare < 2*k {
			return usageErrorf("--ood relabel draws %d canaries from the training samples of %s that are not members, and there are %d; lower --members or --canaries", 2*k, data, spare)
		}
		if canaries, err = study.RelabeledCanaries(src, k, classes, norm, c.Uint64("seed")); err != nil {
			return &exitError{exitBadInput, err}
		}
	default:
		src, err := dataset.Load(ood, dataset.LoadOptions{Split: "train"})
		if err != nil {
			return err
		}
		if canaries, err = study.MakeCanaries(src, k, classes, norm, c.Uint64("seed")); err != nil {
			return &exitError{exitBadInput, err}
		}
	}
	init, err := trainer.ParseInit(c.String("init"))
	if err != nil {
		return usageErrorf("%v", err)
	}
	variants := splitList(c.StringSlice("variants"))
	cfg := study.CompareConfig{
		Model: m, Variants: variants, Groups: c.Int("groups"),
		Members: members, NonMembers: non, Canaries: canaries,
		Train: trainer.Config{Init: init, Epochs: c.Int("epochs"), Batch: c.Int("batch"),
			Optimizer: opt, LR: float32(c.Float64("lr")),
			Schedule: trainer.Cosine, Session: opts},
		Seeds: c.Int("seeds"), Seed: c.Uint64("seed"),
		Bootstrap: audit.BootstrapOptions{Replicates: c.Int("bootstrap"), Seed: c.Uint64("seed")},
		Session:   opts, Dir: out, Resume: c.Bool("resume"),
		Command:   strings.Join(os.Args, " "),
		RefModels: c.Int("ref-models"), Jobs: c.Int("jobs"), LiRAVariance: c.String("lira-variance"),
		GradNormCheckpoints: c.Int("grad-checkpoints"), InBatch: c.Bool("inbatch"),
		GradNormSample: c.Int("grad-sample"),
	}
	cfg.Train.StopAtTrainAcc = c.Float64("fit-to")
	if !c.Bool("no-cache") {
		cfg.Cache = study.SignalCache{Dir: filepath.Join(out, "cache")}
	}
	if !c.Bool("quiet") {
		cfg.Progress = compareProgress(c.App.ErrWriter)
	}
	start := time.Now()
	rep, err := study.Compare(c.Context, cfg)
	if err != nil {
		if errors.Is(err, trainer.ErrInterrupted) {
			return &exitError{exitRuntime, fmt.Errorf("%w; rerun the same command with --resume to continue", err)}
		}
		if errors.Is(err, audit.ErrInvalidInput) || errors.Is(err, dataset.ErrBadData) || errors.Is(err, trainer.ErrUnsupported) {
			return &exitError{exitBadInput, err}
		}
		return err
	}
	if err := report.Write(out, rep); err != nil {
		return err
	}
	w := c.App.Writer
	if err := report.WriteMarkdown(w, rep); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nreport: %s (%s)\n", filepath.Join(out, "report.html"), time.Since(start).Round(time.Second))
	return nil
}

func compareProgress(w io.Writer) func(study.CompareProgress) {
	last := time.Time{}
	return func(p study.CompareProgress) {
		switch {
		case p.RefTotal > 0:
			what := "trained"
			if p.RefReused {
				what = "reused"
			}
			fmt.Fprintf(w, "%s: reference model %d/%d %s (%s)\n", p.Variant, p.RefDone, p.RefTotal, what, p.Elapsed.Round(time.Second))
		case p.Reused:
			fmt.Fprintf(w, "[%d/%d] %s seed %d: reused the finished run\n", p.Run, p.Runs, p.Variant, p.Seed)
		case p.Finished && p.VariantStats != nil:
			v := p.VariantStats
			gap := math.NaN()
			if v.Memorization != nil {
				gap = v.Memorization.AccuracyGap.Estimate
			}
			fmt.Fprintf(w, "[%d/%d] %s seed %d: train acc %.3f, test acc %.3f, canary gap %.2f (%s)\n", p.Run, p.Runs, p.Variant, p.Seed,
				v.TrainAccuracy.Estimate, v.TestAccuracy.Estimate, gap, p.Elapsed.Round(time.Second))
		case p.Training != nil && time.Since(last) > 5*time.Second:
			last = time.Now()
			t := p.Training
			fmt.Fprintf(w, "[%d/%d] %s seed %d: epoch %d/%d loss %.3f acc %.3f\n", p.Run, p.Runs, p.Variant, p.Seed, t.Epoch, t.Epochs, t.Loss, t.Accuracy)
		}
	}
}
