package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// globalFlags apply to every command. They may be written before or after
// the command name.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ort-lib", Usage: "path of the ONNX Runtime shared library (else $" + ort.LibraryEnv + ", then the install location of scripts/install-ort.sh, then system paths)"},
		&cli.IntFlag{Name: "threads", Value: 0, Usage: "ONNX Runtime intra-op threads (0: ONNX Runtime's default)"},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda (needs a GPU build of ONNX Runtime)"},
		&cli.Int64Flag{Name: "max-model-bytes", Value: onnxio.DefaultLimits().MaxFileBytes, Usage: "refuse model files larger than this"},
		&cli.StringFlag{Name: "nchwc", Value: "all", EnvVars: []string{"BNAUDIT_NCHWC"}, Usage: "CPU training session layout: all (ONNX Runtime's blocked NCHWc kernels for convolutions and the activations between them), conv (convolutions only) or off (the standard graph); exported graphs are standard either way"},
	}
}

// globalOptions are the global flags, read once for every command, and
// where progress and warnings go.
type globalOptions struct {
	ORTLib        string
	Threads       int
	Device        string
	MaxModelBytes int64
	NCHWc         string
	// Stderr receives progress and warnings (results go to runX's out).
	Stderr io.Writer
}

func readGlobal(c *cli.Context) globalOptions {
	return globalOptions{ORTLib: c.String("ort-lib"), Threads: c.Int("threads"), Device: c.String("device"),
		MaxModelBytes: c.Int64("max-model-bytes"), NCHWc: c.String("nchwc"), Stderr: c.App.ErrWriter}
}

// limits reads the model-size flags.
func (g globalOptions) limits() onnxio.Limits {
	lim := onnxio.DefaultLimits()
	if g.MaxModelBytes > 0 {
		lim.MaxFileBytes = g.MaxModelBytes
	}
	return lim
}

// loadModel loads a model within the size limits.
func (g globalOptions) loadModel(path string) (*onnxio.Model, error) {
	return onnxio.LoadWithLimits(path, g.limits())
}

// validateSession checks the ONNX Runtime flags of a command that runs models.
func (g globalOptions) validateSession() error {
	if g.Threads < 0 {
		return usageErrorf("--threads must be 0 or more")
	}
	if g.Device != "cpu" && g.Device != "cuda" {
		return usageErrorf("--device must be cpu or cuda, not %q", g.Device)
	}
	if _, err := ort.ParseNCHWc(g.NCHWc); err != nil {
		return usageErrorf("--nchwc (or BNAUDIT_NCHWC) must be all, conv or off, not %q", g.NCHWc)
	}
	if g.ORTLib != "" {
		return checkLibraryFile(g.ORTLib)
	}
	return nil
}

// session initializes ONNX Runtime and returns the session options.
func (g globalOptions) session() (ort.SessionOptions, error) {
	opts := ort.SessionOptions{Threads: g.Threads, Device: g.Device}
	if err := g.validateSession(); err != nil {
		return opts, err
	}
	opts.NCHWc, _ = ort.ParseNCHWc(g.NCHWc)
	if err := ort.Init(g.ORTLib); err != nil {
		// A library that is missing or does not load is bad input (exit 2).
		return opts, badInput(err)
	}
	return opts, nil
}

// options is what every command's options struct can do: check itself
// before any work starts.
type options interface{ validate() error }

// act is what every command's Action does once it has read its flags into
// opts: validate them all, then run.
func act[O options](c *cli.Context, opts O, run func(context.Context, O, io.Writer) error) error {
	if err := opts.validate(); err != nil {
		return err
	}
	return run(c.Context, opts, c.App.Writer)
}

// action is the Action of a command whose options read reads from the
// flags and run runs.
func action[O options](read func(*cli.Context) O, run func(context.Context, O, io.Writer) error) cli.ActionFunc {
	return func(c *cli.Context) error { return act(c, read(c), run) }
}

// modelPath is a command's MODEL argument.
type modelPath struct {
	Model string
	// cmd and nargs are the command's name and argument count, for validate.
	cmd   string
	nargs int
}

func readModelPath(c *cli.Context) modelPath {
	return modelPath{Model: c.Args().First(), cmd: c.Command.Name, nargs: c.NArg()}
}

// validate checks that the command was given exactly one argument.
func (m modelPath) validate() error {
	if m.nargs != 1 {
		return usageErrorf("%s needs exactly one MODEL argument (got %d); see bnaudit %s --help", m.cmd, m.nargs, m.cmd)
	}
	return nil
}

// commandUsageError turns urfave/cli's flag-parsing errors into usage errors.
func commandUsageError(c *cli.Context, err error, _ bool) error {
	return usageErrorf("%v; see bnaudit %s --help", err, c.Command.Name)
}

// Flags that several commands share, each defined here once. A command's
// usage text, where it says what the flag means for that command, is the
// argument.

func outputFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: usage}
}

func jsonFlag(usage string) cli.Flag { return &cli.BoolFlag{Name: "json", Usage: usage} }

func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"}
}

// priorFlag is --prior of the commands that report PPV: the fractions of
// members in the population an adversary tests (repeatable).
func priorFlag() cli.Flag {
	return &cli.Float64SliceFlag{Name: "prior", Value: cli.NewFloat64Slice(audit.DefaultPriors()...),
		Usage: "fraction of members in the tested population, for each attack's precision (PPV); repeatable"}
}

// augmentationsFlag is --augmentations of the commands that attack a
// model: the data-augmentation label-only attack's queries per sample.
func augmentationsFlag() cli.Flag {
	return &cli.IntFlag{Name: "augmentations", Usage: "add the label-only data-augmentation attack: N queries per sample (shifts up to 2 pixels and flips, seeded; 0: off)"}
}

// checkPriors checks --prior's values.
func checkPriors(priors []float64) error {
	if len(priors) == 0 {
		return usageErrorf("--prior needs at least one fraction of members in (0, 1)")
	}
	for _, p := range priors {
		if !(p > 0 && p < 1) {
			return usageErrorf("--prior takes a fraction of members in (0, 1), not %g", p)
		}
	}
	return nil
}

// qmiaFlags are the quantile-regression attack's flags (audit, check,
// compare).
func qmiaFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "qmia", Usage: "add the quantile-regression attack (Bertran et al. 2023): one small regression model per audited model, fitted on part of the non-members (or on --population where the command takes it), predicts each sample's hinge score; those non-members are not scored"},
		&cli.Float64Flag{Name: "qmia-fit", Value: study.DefaultQMIAFitFraction, Usage: "qmia: share of the non-members its regression is fitted on, drawn with --seed (without --population)"},
		&cli.IntFlag{Name: "qmia-epochs", Value: study.DefaultQMIAEpochs, Usage: "qmia: epochs of its regression model (AdamW, cosine)"},
	}
}

// qmiaOptions are the quantile-regression attack's options.
type qmiaOptions struct {
	On     bool
	Fit    float64
	Epochs int
}

func readQMIA(c *cli.Context) qmiaOptions {
	return qmiaOptions{On: c.Bool("qmia"), Fit: c.Float64("qmia-fit"), Epochs: c.Int("qmia-epochs")}
}

func (q qmiaOptions) validate() error {
	if !q.On {
		return nil
	}
	if !(q.Fit > 0 && q.Fit < 1) {
		return usageErrorf("--qmia-fit must be a share in (0, 1), not %g", q.Fit)
	}
	return checkPositive("--qmia-epochs", q.Epochs)
}

// config is the attack's study configuration (nil when off).
func (q qmiaOptions) config() *study.QMIAConfig {
	if !q.On {
		return nil
	}
	return &study.QMIAConfig{FitFraction: q.Fit, Epochs: q.Epochs}
}

func seedFlag(usage string) cli.Flag { return &cli.Uint64Flag{Name: "seed", Value: 1, Usage: usage} }

// normFlag is --norm of the commands that train (auto: computed).
func normFlag() cli.Flag {
	return &cli.StringFlag{Name: "norm", Value: "auto", Usage: "per-channel normalization MEAN/STD (e.g. 0.2860/0.3530, or 0.49,0.48,0.45/0.25,0.24,0.26), or auto (computed on the training data)"}
}

// parseNorm reads a --norm MEAN/STD.
func parseNorm(s string) (dataset.Normalization, error) {
	n, err := study.ParseNorm(s)
	var ne *study.NormError
	if errors.As(err, &ne) {
		return n, usageErrorf("--norm %q: %s", ne.Input, ne.Reason)
	}
	return n, err
}

// normOrAuto reads the --norm of normFlag: nil for auto.
func normOrAuto(s string) (*dataset.Normalization, error) {
	if s == "auto" {
		return nil, nil
	}
	n, err := parseNorm(s)
	return &n, err
}

// Defaults of the SGD recipe, shared by the training commands and the
// reference models of audit.
const (
	defaultMomentum    = 0.9
	defaultWeightDecay = 5e-4
)

// optimizerOptions are the optimizer flags of train, train export and compare.
type optimizerOptions struct {
	Optimizer   string
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
}

func optimizerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "optimizer", Value: "sgd", Usage: "sgd or adamw"},
		&cli.Float64Flag{Name: "momentum", Value: defaultMomentum, Usage: "sgd: momentum (0 for none)"},
		&cli.BoolFlag{Name: "nesterov", Usage: "sgd: Nesterov momentum"},
		&cli.Float64Flag{Name: "weight-decay", Value: defaultWeightDecay, Usage: "weight decay (sgd: L2 added to the gradient; adamw: decoupled)"},
	}
}

func readOptimizer(c *cli.Context) optimizerOptions {
	return optimizerOptions{Optimizer: c.String("optimizer"), Momentum: c.Float64("momentum"), Nesterov: c.Bool("nesterov"), WeightDecay: c.Float64("weight-decay")}
}

// build returns the optimizer; its error is the one validation needs.
func (o optimizerOptions) build() (trainer.Optimizer, error) {
	if err := checkRange("--momentum", o.Momentum, 0, 1, false); err != nil {
		return trainer.Optimizer{}, err
	}
	if err := checkRange("--weight-decay", o.WeightDecay, 0, math.Inf(1), false); err != nil {
		return trainer.Optimizer{}, err
	}
	switch o.Optimizer {
	case "sgd":
		return trainer.SGD(float32(o.Momentum), float32(o.WeightDecay), o.Nesterov), nil
	case "adamw":
		return trainer.AdamW(float32(o.WeightDecay)), nil
	}
	return trainer.Optimizer{}, usageErrorf("--optimizer must be sgd or adamw, not %q", o.Optimizer)
}

// initFlag is --init; the commands differ in its default.
func initFlag(def string) cli.Flag {
	return &cli.StringFlag{Name: "init", Value: def, Usage: "scratch (PyTorch's default initialization) or pretrained (the model's weights)"}
}

func parseInit(s string) (trainer.Init, error) {
	init, err := trainer.ParseInit(s)
	if err != nil {
		return "", usageErrorf("%v", err)
	}
	return init, nil
}

func labelSmoothingFlag() cli.Flag {
	return &cli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing of the cross-entropy loss"}
}

// recipeOptions are how train and compare train a model.
type recipeOptions struct {
	Epochs   int
	Batch    int
	LR       float64
	Schedule string
	Init     string
	optimizerOptions
}

// recipeFlags are the recipe flags, with the command's defaults.
func recipeFlags(epochs, batch int) []cli.Flag {
	flags := []cli.Flag{
		&cli.IntFlag{Name: "epochs", Value: epochs, Usage: "training epochs (passes over the training data)"},
		&cli.IntFlag{Name: "batch", Value: batch, Usage: "batch size"},
		&cli.Float64Flag{Name: "lr", Value: 0.02, Usage: "learning rate"},
		&cli.StringFlag{Name: "schedule", Value: string(trainer.Cosine), Usage: "constant or cosine (per step)"},
	}
	flags = append(flags, optimizerFlags()...)
	return append(flags, initFlag(string(trainer.InitScratch)))
}

func readRecipe(c *cli.Context) recipeOptions {
	return recipeOptions{Epochs: c.Int("epochs"), Batch: c.Int("batch"), LR: c.Float64("lr"), Schedule: c.String("schedule"),
		Init: c.String("init"), optimizerOptions: readOptimizer(c)}
}

// config returns the recipe as a trainer.Config (no model, data or
// session); its error is the one validation needs.
func (r recipeOptions) config() (trainer.Config, error) {
	if err := checkPositive("--epochs", r.Epochs); err != nil {
		return trainer.Config{}, err
	}
	if err := checkPositive("--batch", r.Batch); err != nil {
		return trainer.Config{}, err
	}
	if err := checkRange("--lr", r.LR, 0, math.Inf(1), true); err != nil {
		return trainer.Config{}, err
	}
	init, err := parseInit(r.Init)
	if err != nil {
		return trainer.Config{}, err
	}
	sched, err := trainer.ParseSchedule(r.Schedule)
	if err != nil {
		return trainer.Config{}, usageErrorf("%v", err)
	}
	opt, err := r.build()
	if err != nil {
		return trainer.Config{}, err
	}
	return trainer.Config{Init: init, Epochs: r.Epochs, Batch: r.Batch, Optimizer: opt, LR: float32(r.LR), Schedule: sched}, nil
}

// referenceOptions are the attack flags of compare, audit and check:
// bootstrap intervals and reference models.
type referenceOptions struct {
	Bootstrap    int
	RefModels    int
	LiRAVariance string
	Jobs         int
	NoCache      bool
}

// referenceFlags: pool says what the reference models train on.
func referenceFlags(pool string) []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "bootstrap", Value: 1000, Usage: "bootstrap replicates of each interval"},
		&cli.IntFlag{Name: "ref-models", Usage: "reference models (trained on random halves of " + pool + ") for LiRA, RMIA and Feldman–Zhang (0: threshold attacks only)"},
		&cli.StringFlag{Name: "lira-variance", Value: "auto", Usage: "LiRA's Gaussians: fixed (one pooled σ, better with few reference models), per-sample, or auto (per-sample from 64 reference models on)"},
		&cli.IntFlag{Name: "jobs", Usage: fmt.Sprintf("reference models trained at once, the threads split between them (0: one per thread, at most %d; 1: one at a time on all threads)", study.MaxAutoJobs)},
		&cli.BoolFlag{Name: "no-cache", Usage: "do not keep logits in OUTPUT/cache"},
	}
}

func readReference(c *cli.Context) referenceOptions {
	return referenceOptions{Bootstrap: c.Int("bootstrap"), RefModels: c.Int("ref-models"), LiRAVariance: c.String("lira-variance"),
		Jobs: c.Int("jobs"), NoCache: c.Bool("no-cache")}
}

func (r referenceOptions) validate() error {
	if _, err := study.LiRAVarianceFor(r.LiRAVariance, r.RefModels); err != nil {
		return usageErrorf("--lira-variance must be auto, fixed or per-sample, not %q", r.LiRAVariance)
	}
	if r.RefModels == 1 || r.RefModels < 0 {
		return usageErrorf("--ref-models needs 0 or at least 2 reference models, not %d", r.RefModels)
	}
	if err := checkNonNegative("--bootstrap", r.Bootstrap); err != nil {
		return err
	}
	return checkNonNegative("--jobs", r.Jobs)
}

// cache is the logits cache in the report folder out ("": none).
func (r referenceOptions) cache(out string) study.SignalCache {
	if out == "" || r.NoCache {
		return study.SignalCache{}
	}
	return study.SignalCache{Dir: filepath.Join(out, "cache")}
}

// command is the command line recorded in reports.
func command() string { return strings.Join(os.Args, " ") }

// reorderArgs lets flags follow positional arguments (`bnaudit ablate
// MODEL --mode fold`), which urfave/cli v2 does not parse by itself: it moves
// the command's flags before its arguments and global flags before the
// command name. Everything after "--" stays as it is.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	takesValue := map[string]bool{}
	global := map[string]bool{}
	local := map[string]bool{}
	note := func(flags []cli.Flag, set map[string]bool) {
		for _, f := range flags {
			_, isBool := f.(*cli.BoolFlag)
			for _, n := range f.Names() {
				takesValue[n] = !isBool
				set[n] = true
			}
		}
	}
	note(app.Flags, global)
	flagName := func(a string) string {
		n := strings.TrimLeft(a, "-")
		if k := strings.IndexByte(n, '='); k >= 0 {
			n = n[:k]
		}
		return n
	}
	isFlag := func(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }
	var globals []string
	i := 1
	for ; i < len(args) && isFlag(args[i]); i++ {
		globals = append(globals, args[i])
		if takesValue[flagName(args[i])] && !strings.Contains(args[i], "=") && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
	}
	if i >= len(args) {
		return args
	}
	cmdStart := i
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	// Descend into a subcommand (`train export`).
	for i+1 < len(args) {
		sub := cmd.Command(args[i+1])
		if sub == nil {
			break
		}
		i++
		cmd = sub
	}
	note(cmd.Flags, local)
	var flags, pos []string
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			pos = append(pos, args[j:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		group := []string{a}
		name := flagName(a)
		if takesValue[name] && !strings.Contains(a, "=") && j+1 < len(args) {
			j++
			group = append(group, args[j])
		}
		if global[name] && !local[name] {
			globals = append(globals, group...)
		} else {
			flags = append(flags, group...)
		}
	}
	out := append([]string{args[0]}, globals...)
	out = append(out, args[cmdStart:i+1]...)
	out = append(out, flags...)
	return append(out, pos...)
}
