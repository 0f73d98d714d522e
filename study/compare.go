package study

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// CompareConfig is the paper's study on one model: BN variants trained on
// the same data, data order, canaries and starting weights, each audited.
type CompareConfig struct {
	Model *onnxio.Model
	// Variants are "original" and ablation modes ("fold", "remove",
	// "freeze", "groupnorm"); empty means original, remove, freeze, groupnorm.
	Variants []string
	// GroupNorm settings of the groupnorm variant.
	Groups     int
	CopyAffine bool
	Members    *dataset.Dataset
	NonMembers *dataset.Dataset
	// Canaries are shared by every run.
	Canaries *Canaries
	// Train is the recipe; Model, Train, Test and Seed are set per run.
	Train trainer.Config
	// Seeds is the number of seeds per variant (K); run k uses Seed + k.
	Seeds     int
	Seed      uint64
	Bootstrap audit.BootstrapOptions
	// DPDelta is the δ of the one-run lower bound on ε from the canaries
	// (0: audit.DefaultDPDelta).
	DPDelta float64
	// Priors are the member fractions each attack's PPV is reported at
	// (nil: audit.DefaultPriors).
	Priors []float64
	// Augmentations > 0 adds the data-augmentation label-only attack with
	// that many queries per sample.
	Augmentations int
	// QMIA, when set, adds the quantile-regression attack to every run
	// (fitted on part of its non-members; AuditConfig.QMIA).
	QMIA    *QMIAConfig
	Session ort.SessionOptions
	// Dir receives the trained models and per-run results; with Resume,
	// finished runs found there are not retrained.
	Dir    string
	Resume bool
	// RefModels > 0 trains that many reference models per variant (its
	// architecture and the recipe) on random halves of members ∪
	// non-members ∪ canaries, Jobs at a time, shared by the variant's
	// seeds: LiRA, RMIA and Feldman–Zhang join the threshold attacks.
	RefModels int
	Jobs      int
	// LiRAVariance is "auto" (or ""), "fixed" or "per-sample"
	// (LiRAVarianceFor).
	LiRAVariance string
	// Cache keeps logits by model and data hashes.
	Cache SignalCache
	// GradNormCheckpoints measures the eval-mode gradient-norm study at
	// that many evenly spaced epochs (the last included; 0 or 1: the last
	// only); InBatch adds the in-batch study at the same epochs.
	GradNormCheckpoints int
	InBatch             bool
	// GradNormSample is how many members the canaries' gradient norms are
	// compared with (0: DefaultGradNormSample).
	GradNormSample int
	// Progress, when set, hears about each run.
	Progress func(CompareProgress)
	// Command is recorded in the report.
	Command string
	// Notes are caveats about the inputs (a Softmax removed, non-members
	// dropped for overlapping the members) that the report carries.
	Notes []string
	// Gather builds the report from the runs and reference models already
	// in Dir (a study whose work units ran elsewhere): nothing is trained,
	// and what is missing is a *MissingError naming it.
	Gather bool
}

// CompareProgress reports the run in progress.
type CompareProgress struct {
	Variant      string
	Seed         int
	Run, Runs    int
	Reused       bool
	Training     *trainer.Progress
	Finished     bool
	Elapsed      time.Duration
	VariantStats *audit.VariantReport
	// References, when set, reports reference models of the variant done
	// out of total (RefReused: taken from the cache).
	RefDone, RefTotal int
	RefReused         bool
}

// DefaultVariants are compared when none are named.
var DefaultVariants = []string{VariantOriginal, "remove", "freeze", "groupnorm"}

// variantModel builds a variant of the source model.
func variantModel(m *onnxio.Model, v string, cfg CompareConfig) (*onnxio.Model, error) {
	if v == VariantOriginal {
		return m, nil
	}
	mode, err := onnxio.ParseMode(v)
	if err != nil {
		return nil, fmt.Errorf("study: unknown variant %q (want original, fold, remove, freeze or groupnorm): %w", v, audit.ErrInvalidInput)
	}
	res, err := onnxio.Ablate(m, onnxio.AblateOptions{Mode: mode, Groups: cfg.Groups, CopyAffine: cfg.CopyAffine})
	if err != nil {
		return nil, err
	}
	out := res.Model
	out.Name = strings.TrimSuffix(m.Name, ".onnx") + "." + v + ".onnx"
	return out, nil
}

// Compare trains and audits every variant × seed and returns the report.
func Compare(ctx context.Context, cfg CompareConfig) (*audit.Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"runs", "models", "checkpoints"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("study: %w", err)
		}
	}
	c := &comparison{cfg: cfg, start: time.Now(), runs: len(cfg.Variants) * cfg.Seeds}
	records := map[string][]*runRecord{}
	for _, v := range cfg.Variants {
		if records[v], err = c.variant(ctx, v); err != nil {
			return nil, err
		}
	}
	return buildCompareReport(cfg, records)
}

// withDefaults checks the configuration and fills in its defaults.
func (cfg CompareConfig) withDefaults() (CompareConfig, error) {
	if cfg.Model == nil || cfg.Members == nil || cfg.NonMembers == nil {
		return cfg, fmt.Errorf("study: compare needs a model, members and non-members: %w", audit.ErrInvalidInput)
	}
	if cfg.Dir == "" {
		return cfg, fmt.Errorf("study: compare needs an output folder: %w", audit.ErrInvalidInput)
	}
	if _, err := LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels); err != nil {
		return cfg, err
	}
	if len(cfg.Variants) == 0 {
		cfg.Variants = DefaultVariants
	}
	if cfg.Seeds <= 0 {
		cfg.Seeds = 1
	}
	return cfg, nil
}

// comparison is a Compare in progress.
type comparison struct {
	cfg   CompareConfig
	start time.Time
	// n counts the runs begun, of runs.
	n, runs int
}

// progress reports p, when someone listens.
func (c *comparison) progress(p CompareProgress) {
	if c.cfg.Progress != nil {
		p.Runs, p.Elapsed = c.runs, time.Since(c.start)
		c.cfg.Progress(p)
	}
}

// variant trains (or, resuming, reuses) the variant's runs, one per seed,
// then adds the attacks that need the variant's reference models to every
// run. Runs are trained without reference models, so that a run and a
// reference model are independent work units; the reference attacks are
// pure statistics over the stored per-sample table, the same whether the
// units ran here or on a cluster.
func (c *comparison) variant(ctx context.Context, v string) ([]*runRecord, error) {
	cfg := c.cfg
	vm, err := variantModel(cfg.Model, v, cfg)
	if err != nil {
		return nil, err
	}
	recipe, err := runRecipe(cfg, vm)
	if err != nil {
		return nil, err
	}
	// Finished runs first: a folder of another recipe is refused before
	// anything is trained.
	finished, err := c.finishedRuns(v, recipe)
	if err != nil {
		return nil, err
	}
	if cfg.Gather && len(finished) < cfg.Seeds {
		var miss []string
		for k := 0; k < cfg.Seeds; k++ {
			if _, ok := finished[k]; !ok {
				miss = append(miss, "run "+pathsOf(cfg.Dir, v, k).key)
			}
		}
		return nil, &MissingError{What: miss}
	}
	var refs *ReferenceSignals
	if cfg.RefModels > 0 {
		if refs, err = compareReferences(ctx, cfg, v, vm, c.start, c.n, c.runs); err != nil {
			return nil, fmt.Errorf("study: variant %s: %w", v, err)
		}
	}
	var recs []*runRecord
	for k := 0; k < cfg.Seeds; k++ {
		c.n++
		rec, reused := finished[k]
		if !reused {
			if rec, err = c.train(ctx, v, k, vm, recipe); err != nil {
				return nil, err
			}
		}
		if refs != nil {
			if err := attachReferences(rec, refs, cfg.Bootstrap); err != nil {
				return nil, fmt.Errorf("study: run %s: %w", rec.Key, err)
			}
		}
		recs = append(recs, rec)
		c.progress(CompareProgress{Variant: v, Seed: k, Run: c.n, Reused: reused, Finished: true, VariantStats: &rec.Variant})
	}
	return recs, nil
}

// attachReferences adds the reference attacks (LiRA, RMIA,
// Feldman–Zhang) to a run's record from its per-sample table, then
// recomputes what depends on the strongest attack (slices, most exposed
// members). A record that has them already is left as it is.
func attachReferences(rec *runRecord, refs *ReferenceSignals, bs audit.BootstrapOptions) error {
	if audit.FindAttack(rec.Variant.Attacks, audit.AttackLiRAOnline) != nil {
		return nil
	}
	if err := addReferenceAttacks(&rec.Variant, rec.Samples, refs, nil, bs); err != nil {
		return err
	}
	return finishVariant(&rec.Variant, rec.Samples, bs)
}

// finishedRuns reads the records of the variant's finished runs, by seed,
// when resuming; a record of another recipe is an error.
func (c *comparison) finishedRuns(v, recipe string) (map[int]*runRecord, error) {
	finished := map[int]*runRecord{}
	if !c.cfg.Resume {
		return finished, nil
	}
	for k := 0; k < c.cfg.Seeds; k++ {
		p := pathsOf(c.cfg.Dir, v, k)
		rec, ok, err := loadRecord(p.record)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if rec.Recipe != recipe {
			return nil, fmt.Errorf("study: %s holds a run %s of another recipe (model, data, canaries or settings changed, or written by another bnaudit version); resume with the same settings or write to a new folder: %w", c.cfg.Dir, p.key, audit.ErrInvalidInput)
		}
		finished[k] = rec
	}
	return finished, nil
}

// train trains and measures run k of variant v, saves its model and
// record, and removes what served only while it trained.
func (c *comparison) train(ctx context.Context, v string, k int, vm *onnxio.Model, recipe string) (*runRecord, error) {
	cfg := c.cfg
	p := pathsOf(cfg.Dir, v, k)
	tc := cfg.Train
	tc.Model = vm
	tc.Seed = cfg.Seed + uint64(k)
	tc.CheckpointDir = p.checkpoints
	tc.Resume = cfg.Resume
	if cfg.Progress != nil {
		n := c.n
		tc.Progress = func(tp trainer.Progress) {
			c.progress(CompareProgress{Variant: v, Seed: k, Run: n, Training: &tp})
		}
	}
	res, err := RunExperiment(ctx, ExperimentConfig{Name: v, Train: tc, Members: cfg.Members, NonMembers: cfg.NonMembers,
		Canaries: cfg.Canaries, Bootstrap: cfg.Bootstrap, Session: cfg.Session, Cache: cfg.Cache,
		GradNormCheckpoints: cfg.GradNormCheckpoints, InBatch: cfg.InBatch, GradNormSample: cfg.GradNormSample,
		GradNormDir: p.gradNorm, Augmentations: cfg.Augmentations, qmia: qmiaRunOf(cfg.QMIA)})
	if err != nil {
		return nil, fmt.Errorf("study: variant %s, seed %d: %w", v, k, err)
	}
	if err := res.Model.Save(p.model); err != nil {
		return nil, err
	}
	rec := recordOf(p.key, recipe, res)
	if err := saveRecord(p.record, rec); err != nil {
		return nil, err
	}
	for _, dir := range []string{p.checkpoints, p.work} {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("study: removing what run %s needed while training: %w", p.key, err)
		}
	}
	return rec, nil
}

// compareReferences trains (or reuses) a variant's reference models on
// random halves of members ∪ non-members ∪ inserted ∪ held-out canaries,
// the order of the experiment's sample table. Gathering, it only reads
// them.
func compareReferences(ctx context.Context, cfg CompareConfig, v string, vm *onnxio.Model, start time.Time, n, runs int) (*ReferenceSignals, error) {
	rc, err := referenceConfigOf(cfg, v, vm)
	if err != nil {
		return nil, err
	}
	rc.NoTrain = cfg.Gather
	if cfg.Progress != nil {
		rc.Progress = func(done, total int, reused bool) {
			cfg.Progress(CompareProgress{Variant: v, Run: n, Runs: runs, Elapsed: time.Since(start), RefDone: done, RefTotal: total, RefReused: reused})
		}
	}
	ref, err := TrainReferences(ctx, rc)
	if err != nil {
		return nil, err
	}
	if ref.PerSampleVariance, err = LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels); err != nil {
		return nil, err
	}
	return ref, nil
}

// referenceConfigOf is the reference-model training of variant v: its
// architecture and the comparison's recipe, on the pool of every audited
// sample, models kept in Dir/refs/VARIANT.
func referenceConfigOf(cfg CompareConfig, v string, vm *onnxio.Model) (ReferenceConfig, error) {
	parts := []*dataset.Dataset{cfg.Members, cfg.NonMembers}
	if cfg.Canaries != nil {
		parts = append(parts, cfg.Canaries.Inserted, cfg.Canaries.HeldOut)
	}
	pool, err := dataset.Concat("pool", parts...)
	if err != nil {
		return ReferenceConfig{}, err
	}
	tc := cfg.Train
	tc.Model = vm
	tc.OnEpoch = nil
	return ReferenceConfig{Train: tc, Population: pool, Models: cfg.RefModels, Seed: cfg.Seed, Session: cfg.Session, Jobs: cfg.Jobs,
		Dir: filepath.Join(cfg.Dir, "refs", v), Cache: cfg.Cache}, nil
}
