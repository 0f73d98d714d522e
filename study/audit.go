package study

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// AuditConfig is the audit of a trained (third-party) model: its known
// training samples (members) against samples it never saw (non-members).
type AuditConfig struct {
	Model      *onnxio.Model
	Members    *dataset.Dataset
	NonMembers *dataset.Dataset
	// Population, when set, is data from the same distribution that is
	// neither member nor audited non-member: the reference models train on
	// random halves of members ∪ non-members ∪ population, and RMIA
	// compares against the population samples. Without it the pool is
	// members ∪ non-members and RMIA's population is the non-members.
	Population *dataset.Dataset
	Bootstrap  audit.BootstrapOptions
	// Priors are the member fractions each attack's PPV is reported at
	// (nil: audit.DefaultPriors).
	Priors []float64
	// Augmentations > 0 adds the data-augmentation label-only attack with
	// that many queries per sample.
	Augmentations int
	Session       ort.SessionOptions
	Command       string
	// References > 0 trains that many reference models of the audited
	// architecture (recipe Train, from scratch), Jobs at a time, for LiRA,
	// RMIA and Feldman–Zhang scores; RefDir caches them.
	References int
	Jobs       int
	// RefArch, when set, is the architecture the reference models train on
	// instead of the audited model's: another export of the same network
	// (a PRESERVE or TRAINING export of a model whose BN was folded on
	// export, an ablation). It must take the same input and give the same
	// classes; its weights are re-drawn as every reference model's are.
	RefArch *onnxio.Model
	// LiRAVariance is "auto" (or ""), "fixed" or "per-sample"
	// (LiRAVarianceFor).
	LiRAVariance string
	Train        trainer.Config
	RefDir       string
	// Cache keeps logits on disk by model and data hashes.
	Cache    SignalCache
	Progress func(done, total int, reused bool)
	// Gather reads the reference models from RefDir and trains none (an
	// audit whose reference models ran as work units); missing ones are a
	// *MissingError.
	Gather bool
	// QMIA, when set, adds the quantile-regression attack: one regression
	// model fitted on part of the non-members (or on Population).
	QMIA *QMIAConfig
}

// prepareAudit checks an audit's inputs: the model must be a classifier
// of the data's classes (logits taken back from a final Softmax), the
// non-members must not be members. It returns the prepared configuration,
// the notes to report, and, with reference models, their pool (members ∪
// non-members ∪ population).
func prepareAudit(cfg AuditConfig) (AuditConfig, []string, *dataset.Dataset, error) {
	if cfg.Model == nil || cfg.Members == nil || cfg.NonMembers == nil {
		return cfg, nil, nil, fmt.Errorf("study: an audit needs a model, members and non-members: %w", audit.ErrInvalidInput)
	}
	if _, err := LiRAVarianceFor(cfg.LiRAVariance, cfg.References); err != nil {
		return cfg, nil, nil, err
	}
	if cfg.Population != nil && cfg.References == 0 && cfg.QMIA == nil {
		return cfg, nil, nil, fmt.Errorf("study: a population serves reference models or the quantile-regression attack; give a number of reference models (--ref-models) or --qmia too: %w", audit.ErrInvalidInput)
	}
	if cfg.QMIA != nil {
		if _, err := cfg.QMIA.withDefaults(); err != nil {
			return cfg, nil, nil, err
		}
	}
	model, notes, err := PrepareClassifier(cfg.Model, cfg.Members, cfg.NonMembers, cfg.Population)
	if err != nil {
		return cfg, nil, nil, err
	}
	cfg.Model = model
	if cfg.RefArch != nil {
		if cfg.References == 0 {
			return cfg, nil, nil, fmt.Errorf("study: a reference architecture serves reference models; give a number of them (--ref-models) too: %w", audit.ErrInvalidInput)
		}
		if cfg.RefArch, err = prepareRefArch(cfg.Model, cfg.RefArch); err != nil {
			return cfg, nil, nil, err
		}
	}
	nonMembers, overlapNote, err := DisjointNonMembers(cfg.Members, cfg.NonMembers)
	if err != nil {
		return cfg, nil, nil, err
	}
	if cfg.NonMembers = nonMembers; overlapNote != "" {
		notes = append(notes, overlapNote)
	}
	if cfg.References == 0 {
		return cfg, notes, nil, nil
	}
	parts := []*dataset.Dataset{cfg.Members, cfg.NonMembers}
	if cfg.Population != nil {
		parts = append(parts, cfg.Population)
	}
	pop, err := dataset.Concat("pool", parts...)
	return cfg, notes, pop, err
}

// auditReferences is the reference-model training of a prepared audit:
// the audited architecture (or RefArch) from scratch with the audit's
// recipe, on random halves of the pool.
func auditReferences(cfg AuditConfig, pop *dataset.Dataset) ReferenceConfig {
	tc := cfg.Train
	tc.Model = cfg.Model
	if cfg.RefArch != nil {
		tc.Model = cfg.RefArch
	}
	tc.Init = trainer.InitScratch
	return ReferenceConfig{Train: tc, Population: pop, Models: cfg.References, Seed: cfg.Bootstrap.Seed,
		Session: cfg.Session, Jobs: cfg.Jobs, Dir: cfg.RefDir, Cache: cfg.Cache, Progress: cfg.Progress, NoTrain: cfg.Gather}
}

// Audit runs the threshold attacks on a trained model, and with reference
// models LiRA, RMIA and Feldman–Zhang scores, and reports them with
// intervals, slices and the most exposed members, with the BN layers it
// found.
func Audit(ctx context.Context, cfg AuditConfig) (*audit.Report, error) {
	cfg, notes, pop, err := prepareAudit(cfg)
	if err != nil {
		return nil, err
	}
	perSample, _ := LiRAVarianceFor(cfg.LiRAVariance, cfg.References) // checked by prepareAudit
	ec := ExperimentConfig{Name: "audited", Members: cfg.Members, NonMembers: cfg.NonMembers,
		Bootstrap: cfg.Bootstrap, Session: cfg.Session, Cache: cfg.Cache, Augmentations: cfg.Augmentations}
	if cfg.QMIA != nil {
		ec.qmia = &qmiaRun{cfg: *cfg.QMIA, population: cfg.Population}
	}
	refNote := "Reference-model attacks (LiRA, RMIA) were not run (no --ref-models); the AUCs here are those of the threshold attacks (loss, confidence, entropy, modified entropy), which underestimate the strongest attacks at low FPR."
	if cfg.QMIA != nil {
		refNote = "Reference-model attacks (LiRA, RMIA) were not run (no --ref-models); the AUCs here are those of the threshold attacks (loss, confidence, entropy, modified entropy) and of the one-model quantile-regression attack (qmia), which may underestimate the strongest attacks at low FPR."
	}
	if cfg.References > 0 {
		ref, err := TrainReferences(ctx, auditReferences(cfg, pop))
		if err != nil {
			return nil, err
		}
		ref.PerSampleVariance = perSample
		notes = append(notes, ref.Notes...)
		audited := cfg.Members.Len() + cfg.NonMembers.Len()
		idx := make([]int, audited)
		for i := range idx {
			idx[i] = i
		}
		ec.References = ref.Pick(idx)
		if cfg.Population != nil {
			// RMIA's z: the population samples, under the target and the
			// reference models.
			target, err := cfg.Cache.Signals(ctx, cfg.Model, cfg.Population, cfg.Session)
			if err != nil {
				return nil, err
			}
			zIdx := make([]int, cfg.Population.Len())
			for i := range zIdx {
				zIdx[i] = audited + i
			}
			ec.rmiaZ = &audit.RMIAData{Target: target.Prob, Ref: pickRows(ref.Prob, zIdx), In: pickBoolRows(ref.In, zIdx)}
		}
		pool := "members ∪ non-members"
		z := "the non-members as the population z"
		if cfg.Population != nil {
			pool = fmt.Sprintf("members ∪ non-members ∪ %d population samples", cfg.Population.Len())
			z = fmt.Sprintf("the %d population samples as z", cfg.Population.Len())
		}
		variance := "fixed variance"
		if perSample {
			variance = "per-sample variance"
		}
		arch := "the audited architecture"
		if cfg.RefArch != nil {
			arch = onnxio.CleanMessage(cfg.RefArch.Name) + " (--ref-arch)"
		}
		refNote = fmt.Sprintf("LiRA ("+variance+", means of φ) and RMIA (online and offline, γ = 1, %s) use %d reference models of %s trained from scratch with the audit's recipe on random halves of %s; Feldman–Zhang scores come from the same models.", z, cfg.References, arch, pool)
	}
	var refArch *audit.ReferenceArch
	if cfg.References > 0 {
		if refArch, err = referenceArchOf(cfg); err != nil {
			return nil, err
		}
	}
	archNotes, folded, err := architectureNotes(cfg, refArch)
	if err != nil {
		return nil, err
	}
	res, err := Measure(ctx, cfg.Model, ec)
	if err != nil {
		return nil, err
	}
	v := res.Variant
	v.Seeds = 0
	// Its "training" numbers are those of the audited model on its members.
	v.TrainAccuracy, v.TrainLoss = memberFit(res.Samples)
	if err := audit.AddRiskAtPriors(&v, res.Samples, priorsOrDefault(cfg.Priors), cfg.Bootstrap); err != nil {
		return nil, err
	}
	r := &audit.Report{Schema: audit.ReportSchema, Tool: "bnaudit", Created: time.Now().UTC().Format(time.RFC3339), Command: cfg.Command,
		Seed: cfg.Bootstrap.Seed, Kind: "audit", Variants: []audit.VariantReport{v}, Samples: res.Samples, Definitions: Definitions(),
		VerdictCode: audit.VerdictNotApplicable, ReferenceArch: refArch}
	best := audit.AttackReport{Members: cfg.Members.Len(), NonMembers: cfg.NonMembers.Len()}
	for _, a := range v.Attacks {
		if a.AUC.Estimate > best.AUC.Estimate {
			best = a // its own counts: qmia scores part of the non-members
		}
	}
	bnNote, compare := "", "bnaudit compare"
	if folded {
		bnNote, compare = " (BN may have been folded into its convolutions on export: see the notes)", "bnaudit compare on an export that keeps BN (PRESERVE or TRAINING)"
	}
	r.Verdict = fmt.Sprintf("Audit of %s: the strongest attack (%s) reaches AUC %.3f on %d members vs %d non-members; the model has %d BatchNorm layer(s)%s. Use %s to measure what BatchNorm contributes.",
		cfg.Model.Name, best.Attack, best.AUC.Estimate, best.Members, best.NonMembers, v.BatchNorms, bnNote, compare)
	r.Notes = append(append(append(append(r.Notes, notes...), archNotes...), refNote), res.notes...)
	recordRefModels(r, cfg.References, false)
	return r, nil
}

// memberFit is the accuracy and the mean loss of a model on the members of
// its sample table.
func memberFit(t *audit.SampleTable) (acc, loss audit.Interval) {
	var correct, lossSum float64
	n := 0
	for i, m := range t.Member {
		if !m || t.Canary[i] {
			continue
		}
		n++
		lossSum += t.Loss[i]
		if t.Correct[i] {
			correct++
		}
	}
	if n == 0 {
		return audit.PointInterval(math.NaN()), audit.PointInterval(math.NaN())
	}
	return audit.PointInterval(correct / float64(n)), audit.PointInterval(lossSum / float64(n))
}
