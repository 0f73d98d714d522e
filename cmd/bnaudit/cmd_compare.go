package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer"
)

func compareFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "in-distribution data: members are drawn from its train split (required)"},
		&cli.StringFlag{Name: "test", Usage: "non-members (default: the test split of --data)"},
		&cli.StringFlag{Name: "ood", Value: study.CanaryNoise, Usage: "canary source: a data set (e.g. MNIST digits for a Fashion-MNIST model), noise (uniform-noise images), or relabel (training samples of --data beyond --members, each with a wrong label)"},
		&cli.IntFlag{Name: "canaries", Value: 50, Usage: "canaries: 2·N are drawn and each is inserted with probability ½ (about N inserted, N held out)"},
		&cli.IntFlag{Name: "members", Usage: "members: the first N training samples (0: all)"},
		&cli.IntFlag{Name: "non-members", Usage: "non-members: the first N test samples (0: all)"},
		&cli.StringSliceFlag{Name: "variants", Usage: "original and ablation modes (fold, remove, freeze, groupnorm); default original,remove,freeze,groupnorm"},
		&cli.IntFlag{Name: "seeds", Value: 1, Usage: "training seeds per variant"},
		outputFlag("report folder (required)"),
		&cli.BoolFlag{Name: "resume", Usage: "reuse the finished runs found in the report folder"},
	}
	flags = append(flags, recipeFlags(20, 64)...)
	flags = append(flags,
		seedFlag("seed of canaries, data order, initialization and bootstrap"),
		normFlag(),
		&cli.IntFlag{Name: "groups", Usage: "groupnorm variant: groups (default gcd(32, C))"},
	)
	flags = append(flags, referenceFlags("members ∪ non-members ∪ canaries, per variant, with the same recipe")...)
	return append(append(flags,
		&cli.Float64Flag{Name: "fit-to", Usage: "matched fit: stop each run after the first epoch whose training accuracy reaches this (0–1; --epochs is the maximum)"},
		&cli.IntFlag{Name: "grad-checkpoints", Value: 5, Usage: "measure the gradient-norm study at this many evenly spaced epochs, the last included (1: the last only)"},
		&cli.IntFlag{Name: "grad-sample", Value: 256, Usage: "typical members the canaries' gradient norms are compared with"},
		&cli.BoolFlag{Name: "inbatch", Value: true, Usage: "add the in-batch gradient-norm study at the same checkpoints (BN on batch statistics; one backward per sample)"},
		&cli.Float64Flag{Name: "dp-delta", Value: audit.DefaultDPDelta, Usage: "δ of the one-run lower bound on ε from the canaries (in (0, 1))"},
		priorFlag(),
		augmentationsFlag(),
		quietFlag(),
	), append(qmiaFlags(), engineFlags()...)...)
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
		Action:       action(readCompare, runCompare),
	}
}

// compareOptions are the options of compare and demo.
type compareOptions struct {
	global globalOptions
	// name is the command's name in messages: compare or demo.
	name string
	modelPath
	Data, Test string
	OOD        string
	Canaries   int
	Members    int
	NonMembers int
	Variants   []string
	Seeds      int
	Output     string
	Resume     bool
	Recipe     recipeOptions
	Seed       uint64
	Norm       string
	Groups     int
	Reference  referenceOptions
	FitTo      float64
	// DPDelta is the δ of the one-run lower bound on ε; Priors the member
	// fractions of each attack's PPV.
	DPDelta float64
	Priors  []float64
	// Augmentations > 0 adds the data-augmentation attack.
	Augmentations int
	// QMIA adds the quantile-regression attack to every run.
	QMIA qmiaOptions

	GradCheckpoints int
	GradSample      int
	InBatch         bool
	Quiet           bool
	Engine          engineOptions
	// Command is recorded in the report.
	Command string
}

func readCompare(c *cli.Context) compareOptions {
	return compareOptions{global: readGlobal(c), name: c.Command.Name, modelPath: readModelPath(c),
		Data: c.String("data"), Test: c.String("test"), OOD: c.String("ood"), Canaries: c.Int("canaries"),
		Members: c.Int("members"), NonMembers: c.Int("non-members"), Variants: splitList(c.StringSlice("variants")),
		Seeds: c.Int("seeds"), Output: c.String("output"), Resume: c.Bool("resume"), Recipe: readRecipe(c),
		Seed: c.Uint64("seed"), Norm: c.String("norm"), Groups: c.Int("groups"), Reference: readReference(c),
		FitTo: c.Float64("fit-to"), GradCheckpoints: c.Int("grad-checkpoints"), GradSample: c.Int("grad-sample"),
		InBatch: c.Bool("inbatch"), Quiet: c.Bool("quiet"), Engine: readEngine(c), Command: command(),
		DPDelta: c.Float64("dp-delta"), Priors: c.Float64Slice("prior"), Augmentations: c.Int("augmentations"), QMIA: readQMIA(c)}
}

func (o compareOptions) validate() error {
	if o.Data == "" || o.Output == "" {
		return usageErrorf("%s needs --data and --output; see bnaudit %s --help", o.name, o.name)
	}
	if err := o.modelPath.validate(); err != nil {
		return err
	}
	if _, err := o.Recipe.config(); err != nil {
		return err
	}
	if o.FitTo < 0 || o.FitTo > 1 {
		return usageErrorf("--fit-to takes a training accuracy in (0, 1], not %g", o.FitTo)
	}
	if !(o.DPDelta > 0 && o.DPDelta < 1) {
		return usageErrorf("--dp-delta takes a δ in (0, 1), not %g", o.DPDelta)
	}
	if err := checkPriors(o.Priors); err != nil {
		return err
	}
	if err := checkNonNegative("--augmentations", o.Augmentations); err != nil {
		return err
	}
	if err := o.QMIA.validate(); err != nil {
		return err
	}
	if err := o.Reference.validate(); err != nil {
		return err
	}
	if err := o.Engine.validate(); err != nil {
		return err
	}
	if err := o.validateStudy(); err != nil {
		return err
	}
	return o.global.validateSession()
}

// runCompare is shared by compare and demo.
func runCompare(ctx context.Context, o compareOptions, w io.Writer) (err error) {
	spec, err := o.spec()
	if err != nil {
		return err
	}
	out, err := openOutputDir(o.Output, o.Command)
	if err != nil {
		return err
	}
	defer func() { out.close(err) }()
	if e := o.Engine.Engine; e != "" && e != study.EngineLocal {
		write := func(work string) (*study.Plan, error) { return study.WritePlan(work, spec) }
		return runOnCluster(ctx, o.global, o.Engine, write, o.Output, o.Resume, w)
	}
	session, err := o.global.session()
	if err != nil {
		return err
	}
	cfg, err := spec.Build(o.Output, session, o.Reference.cache(o.Output))
	var short *study.ShortPoolError
	if errors.As(err, &short) {
		return usageErrorf("--ood relabel draws %d canaries from the training samples of %s that are not members, and there are %d; lower --members or --canaries", short.Need, short.Pool, short.Have)
	}
	if err != nil {
		return err
	}
	for _, n := range cfg.Notes {
		fmt.Fprintln(o.global.Stderr, "bnaudit: note: "+onnxio.CleanMessage(n))
	}
	cfg.Resume, cfg.Jobs = o.Resume, o.Reference.Jobs
	if !o.Quiet {
		cfg.Progress = compareProgress(o.global.Stderr)
	}
	start := time.Now()
	rep, err := study.Compare(ctx, cfg)
	if errors.Is(err, trainer.ErrInterrupted) {
		return fmt.Errorf("%w; rerun the same command with --resume to continue", err)
	}
	if err != nil {
		return err
	}
	if err := report.Write(o.Output, rep); err != nil {
		return err
	}
	if err := report.WriteMarkdown(w, rep); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nreport: %s (%s)\n", filepath.Join(o.Output, "report.html"), time.Since(start).Round(time.Second))
	return nil
}

// spec is the comparison the flags describe, as data: the same for this
// process and for every worker of a cluster engine.
func (o compareOptions) spec() (study.CompareSpec, error) {
	recipe, err := o.Recipe.config()
	if err != nil {
		return study.CompareSpec{}, err
	}
	norm, err := normOrAuto(o.Norm)
	if err != nil {
		return study.CompareSpec{}, err
	}
	test := o.Test
	if test == "" {
		test = o.Data
	}
	return study.CompareSpec{
		Model: o.Model, MaxModelBytes: o.global.MaxModelBytes,
		Data: study.DataConfig{Norm: norm,
			Members:    study.DataSource{Path: o.Data, Split: "train", Max: o.Members},
			NonMembers: study.DataSource{Path: test, Split: "test", Max: o.NonMembers}},
		Canaries: study.CanaryConfig{Source: o.OOD, Count: o.Canaries, Seed: o.Seed, Pool: study.DataSource{Path: o.Data, Split: "train"}},
		Variants: o.Variants, Groups: o.Groups,
		Recipe: study.RecipeOf(recipe), StopAtTrainAcc: o.FitTo,
		Seeds: o.Seeds, Seed: o.Seed, Replicates: o.Reference.Bootstrap,
		RefModels: o.Reference.RefModels, LiRAVariance: o.Reference.LiRAVariance,
		GradNormCheckpoints: o.GradCheckpoints, InBatch: o.InBatch, GradNormSample: o.GradSample,
		DPDelta: o.DPDelta, Priors: o.Priors, Augmentations: o.Augmentations, QMIA: o.QMIA.config(),
		Command: o.Command,
	}, nil
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

// validateStudy checks compare's own counts, variants and output folder.
func (o compareOptions) validateStudy() error {
	if err := checkPositive("--seeds", o.Seeds); err != nil {
		return err
	}
	for _, c := range []struct {
		flag string
		v    int
	}{{"--canaries", o.Canaries}, {"--members", o.Members}, {"--non-members", o.NonMembers}, {"--groups", o.Groups},
		{"--grad-checkpoints", o.GradCheckpoints}, {"--grad-sample", o.GradSample}} {
		if err := checkNonNegative(c.flag, c.v); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, v := range o.Variants {
		if _, err := onnxio.ParseMode(v); err != nil && v != study.VariantOriginal {
			return usageErrorf("--variants: unknown variant %q (want original, fold, remove, freeze or groupnorm)", v)
		}
		if seen[v] {
			return usageErrorf("--variants names %q twice", v)
		}
		seen[v] = true
	}
	return checkOutputDir("--output", o.Output)
}
