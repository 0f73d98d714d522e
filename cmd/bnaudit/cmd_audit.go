package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer"
)

// auditDataFlags are the flags of auditing a model, shared by audit and check.
func auditDataFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "members", Usage: "samples the model was trained on (IDX folder/file, .npz, image folder)"},
		&cli.StringFlag{Name: "nonmembers", Usage: "samples it never saw, from the same distribution"},
		&cli.StringFlag{Name: "members-split", Value: "train", Usage: "split of an IDX folder given as --members"},
		&cli.StringFlag{Name: "nonmembers-split", Value: "test", Usage: "split of an IDX folder given as --nonmembers"},
		&cli.IntFlag{Name: "max-samples", Usage: "use at most N samples of each (0: all)"},
		&cli.StringFlag{Name: "norm", Usage: "normalization MEAN/STD the model expects (required for raw image data; e.g. 0.2860/0.3530)"},
	}
	flags = append(flags, referenceFlags("members ∪ non-members ∪ population")...)
	return append(append(flags,
		&cli.StringFlag{Name: "population", Usage: "more data from the same distribution, neither member nor audited non-member: reference models also train on it and RMIA compares against it, and qmia fits its regression on it (needs --ref-models or --qmia)"},
		&cli.StringFlag{Name: "population-split", Value: "train", Usage: "split of an IDX folder given as --population"},
		&cli.StringFlag{Name: "ref-arch", Usage: "reference models: train them on this export of the audited network instead of MODEL's architecture (e.g. the PRESERVE export of a model whose BN was folded on export); same input and classes, weights re-drawn"},
		&cli.IntFlag{Name: "ref-epochs", Value: 10, Usage: "reference models: epochs"},
		&cli.IntFlag{Name: "ref-batch", Value: 64, Usage: "reference models: batch size"},
		&cli.Float64Flag{Name: "ref-lr", Value: 0.02, Usage: fmt.Sprintf("reference models: learning rate (SGD, momentum %g, cosine)", defaultMomentum)},
		seedFlag("seed of the bootstrap, and of the qmia split and regression"),
		priorFlag(),
		augmentationsFlag(),
	), qmiaFlags()...)
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "audit a trained model: membership inference on members vs non-members, with intervals",
		ArgsUsage: "MODEL",
		Description: "Runs the threshold attacks (loss, confidence, entropy, modified entropy) on MODEL with its\n" +
			"training samples (--members) against unseen ones (--nonmembers), reports AUC, advantage and\n" +
			"TPR at 0.1% and 1% FPR with 95% bootstrap intervals, and the BN layers found. With --ref-models K\n" +
			"it trains K reference models of the same architecture (--jobs at a time; cached in OUTPUT) for LiRA,\n" +
			"RMIA and Feldman–Zhang memorization; --population adds data neither member nor audited. --qmia adds\n" +
			"the quantile-regression attack: one regression model fitted on part of the non-members (those are\n" +
			"not scored) or on --population. Reports\n" +
			"slices (per class, correct/incorrect) and the most exposed members. Writes report.json,\n" +
			"report.md, report.html, scores.csv and signals.npz to --output.\n\n" + exitCodesHelp,
		Flags: append(append(auditDataFlags(), outputFlag("report folder (required)"),
			&cli.BoolFlag{Name: "resume", Usage: "slurm, k8s: follow the submitted reference models and gather"}), engineFlags()...),
		OnUsageError: commandUsageError,
		Action:       action(readAudit, runAudit),
	}
}

// auditOptions are the options of audit, and of check given a model.
type auditOptions struct {
	global globalOptions
	modelPath
	Members, MembersSplit       string
	NonMembers, NonMembersSplit string
	MaxSamples                  int
	Norm                        string
	Population, PopulationSplit string
	Reference                   referenceOptions
	RefArch                     string // the reference models' architecture ("": MODEL's)
	RefEpochs, RefBatch         int
	RefLR                       float64
	Seed                        uint64
	// Priors are the member fractions of each attack's PPV;
	// Augmentations > 0 adds the data-augmentation attack.
	Priors        []float64
	Augmentations int
	// QMIA adds the quantile-regression attack.
	QMIA qmiaOptions
	// Output is the report folder; reference models and the logits cache
	// are kept there ("": nowhere).
	Output string
	// Command is recorded in the report.
	Command string
	// Engine runs the reference models elsewhere (audit only, not check).
	Engine engineOptions
	Resume bool
}

func readAudit(c *cli.Context) auditOptions {
	return auditOptions{global: readGlobal(c), modelPath: readModelPath(c),
		Members: c.String("members"), MembersSplit: c.String("members-split"),
		NonMembers: c.String("nonmembers"), NonMembersSplit: c.String("nonmembers-split"),
		MaxSamples: c.Int("max-samples"), Norm: c.String("norm"),
		Population: c.String("population"), PopulationSplit: c.String("population-split"),
		Reference: readReference(c), RefArch: c.String("ref-arch"), RefEpochs: c.Int("ref-epochs"), RefBatch: c.Int("ref-batch"), RefLR: c.Float64("ref-lr"),
		Seed: c.Uint64("seed"), Output: c.String("output"), Command: command(), Priors: c.Float64Slice("prior"),
		Augmentations: c.Int("augmentations"), QMIA: readQMIA(c), Engine: readEngine(c), Resume: c.Bool("resume")}
}

func (o auditOptions) validate() error {
	if o.Output == "" {
		return usageErrorf("audit needs --output; see bnaudit audit --help")
	}
	if err := o.modelPath.validate(); err != nil {
		return err
	}
	if err := checkOutputDir("--output", o.Output); err != nil {
		return err
	}
	if err := o.Engine.validate(); err != nil {
		return err
	}
	return o.validateData()
}

// validateData checks the options of auditing a model (audit, check).
func (o auditOptions) validateData() error {
	if o.Members == "" || o.NonMembers == "" {
		return usageErrorf("auditing a model needs --members and --nonmembers")
	}
	if o.Norm == "" {
		return usageErrorf("auditing needs --norm MEAN/STD: the normalization the model was trained with")
	}
	if o.Population != "" && o.Reference.RefModels < 2 && !o.QMIA.On {
		return usageErrorf("--population serves reference models and qmia: add --ref-models K (K ≥ 2) or --qmia")
	}
	if err := o.QMIA.validate(); err != nil {
		return err
	}
	if err := o.Reference.validate(); err != nil {
		return err
	}
	if o.RefArch != "" && o.Reference.RefModels < 2 {
		return usageErrorf("--ref-arch is the architecture of the reference models: add --ref-models K (K ≥ 2)")
	}
	if o.RefArch != "" {
		if st, err := os.Stat(o.RefArch); err != nil || st.IsDir() {
			return usageErrorf("--ref-arch %s: %v; give an ONNX export of the audited network", o.RefArch, fileReason(st, err))
		}
	}
	if err := checkPriors(o.Priors); err != nil {
		return err
	}
	if err := checkNonNegative("--augmentations", o.Augmentations); err != nil {
		return err
	}
	if err := checkNonNegative("--max-samples", o.MaxSamples); err != nil {
		return err
	}
	if o.Reference.RefModels > 0 {
		if err := checkPositive("--ref-epochs", o.RefEpochs); err != nil {
			return err
		}
		if err := checkPositive("--ref-batch", o.RefBatch); err != nil {
			return err
		}
		if err := checkRange("--ref-lr", o.RefLR, 0, math.Inf(1), true); err != nil {
			return err
		}
	}
	return o.global.validateSession()
}

func runAudit(ctx context.Context, o auditOptions, w io.Writer) (err error) {
	m, err := o.global.loadModel(o.Model)
	if err != nil {
		return err
	}
	out, err := openOutputDir(o.Output, o.Command)
	if err != nil {
		return err
	}
	defer func() { out.close(err) }()
	if e := o.Engine.Engine; e != "" && e != study.EngineLocal {
		if o.Reference.RefModels < 2 {
			return usageErrorf("--engine %s runs reference models: give --ref-models 2 or more", e)
		}
		spec, err := o.spec()
		if err != nil {
			return err
		}
		write := func(work string) (*study.Plan, error) { return study.WriteAuditPlan(work, spec) }
		return runOnCluster(ctx, o.global, o.Engine, write, o.Output, o.Resume, w)
	}
	r, err := auditModel(ctx, o, m)
	if err != nil {
		return err
	}
	if err := report.Write(o.Output, r); err != nil {
		return err
	}
	if err := report.WriteMarkdown(w, r); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nreport: %s\n", filepath.Join(o.Output, "report.html"))
	return nil
}

// auditModel loads the data and audits a model.
// spec is the audit the flags describe, as data (for a cluster engine).
func (o auditOptions) spec() (study.AuditSpec, error) {
	norm, err := parseNorm(o.Norm)
	if err != nil {
		return study.AuditSpec{}, err
	}
	return study.AuditSpec{Model: o.Model, MaxModelBytes: o.global.MaxModelBytes,
		Data: study.DataConfig{Norm: &norm,
			Members:    study.DataSource{Path: o.Members, Split: o.MembersSplit, Max: o.MaxSamples},
			NonMembers: study.DataSource{Path: o.NonMembers, Split: o.NonMembersSplit, Max: o.MaxSamples},
			Population: study.DataSource{Path: o.Population, Split: o.PopulationSplit}},
		Recipe: study.Recipe{Epochs: o.RefEpochs, Batch: o.RefBatch, Optimizer: trainer.SGD(defaultMomentum, defaultWeightDecay, false),
			LR: float32(o.RefLR), Schedule: trainer.Cosine},
		References: o.Reference.RefModels, LiRAVariance: o.Reference.LiRAVariance, RefArch: o.RefArch,
		Seed: o.Seed, Replicates: o.Reference.Bootstrap, Priors: o.Priors, Augmentations: o.Augmentations, QMIA: o.QMIA.config(), Command: o.Command}, nil
}

func auditModel(ctx context.Context, o auditOptions, m *onnxio.Model) (*audit.Report, error) {
	norm, err := parseNorm(o.Norm)
	if err != nil {
		return nil, err
	}
	shape, err := study.ShapeOf(m)
	if err != nil {
		return nil, badInput(err)
	}
	data, err := study.LoadData(study.DataConfig{Norm: &norm, FitTo: shape.Sample,
		Members:    study.DataSource{Path: o.Members, Split: o.MembersSplit, Max: o.MaxSamples},
		NonMembers: study.DataSource{Path: o.NonMembers, Split: o.NonMembersSplit, Max: o.MaxSamples},
		// The whole population, whatever --max-samples says of the audited sets.
		Population: study.DataSource{Path: o.Population, Split: o.PopulationSplit}})
	if err != nil {
		return nil, err
	}
	m, notes, err := prepareModel(o.global, m, data.Members, data.NonMembers, data.Population)
	if err != nil {
		return nil, err
	}
	var refArch *onnxio.Model
	if o.RefArch != "" {
		if refArch, err = o.global.loadModel(o.RefArch); err != nil {
			return nil, err
		}
	}
	session, err := o.global.session()
	if err != nil {
		return nil, err
	}
	refDir := ""
	if o.Output != "" {
		refDir = filepath.Join(o.Output, "reference-models")
	}
	bars := newStageBar(o.global.Stderr)
	defer bars.finish()
	ctx = trainer.WithEvalProgress(ctx, func(done, total int) { bars.update("evaluate", done, total) })
	r, err := study.Audit(ctx, study.AuditConfig{Model: m, Members: data.Members, NonMembers: data.NonMembers, Population: data.Population,
		Jobs: o.Reference.Jobs, Cache: o.Reference.cache(o.Output),
		Bootstrap: audit.BootstrapOptions{Replicates: o.Reference.Bootstrap, Seed: o.Seed,
			Progress: func(done, total int) { bars.update("bootstrap", done, total) }}, Priors: o.Priors, Augmentations: o.Augmentations,
		QMIA:    o.QMIA.config(),
		Session: session, Command: o.Command,
		References: o.Reference.RefModels, RefDir: refDir, LiRAVariance: o.Reference.LiRAVariance, RefArch: refArch,
		Train: trainer.Config{Epochs: o.RefEpochs, Batch: o.RefBatch, Optimizer: trainer.SGD(defaultMomentum, defaultWeightDecay, false),
			LR: float32(o.RefLR), Schedule: trainer.Cosine, Session: session},
		Progress: func(done, total int, reused bool) {
			what := "trained"
			if reused {
				what = "reused"
			}
			fmt.Fprintf(o.global.Stderr, "reference model %d/%d %s\n", done, total, what)
		}})
	if err != nil {
		return nil, err
	}
	for _, n := range notes { // study.Audit prepared the model again: skip notes it repeated
		if !slices.Contains(r.Notes, n) {
			r.Notes = append(r.Notes, n)
		}
	}
	return r, nil
}

// fileReason says why a path is not a readable file: the OS's words, or
// that it is a folder.
func fileReason(st os.FileInfo, err error) error {
	if err != nil {
		return osReason(err)
	}
	return fmt.Errorf("is a folder, not a file")
}
