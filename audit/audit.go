package audit

import (
	"context"
	"fmt"
	"time"

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
	Bootstrap  BootstrapOptions
	Session    ort.SessionOptions
	Command    string
	// References > 0 trains that many reference models of the audited
	// architecture (recipe Train, from scratch) on random halves of
	// members ∪ non-members, for LiRA, RMIA and Feldman–Zhang scores;
	// RefDir caches them.
	References int
	Train      trainer.Config
	RefDir     string
	Progress   func(done, total int, reused bool)
}

// Audit runs the threshold attacks on a trained model and reports them with
// intervals, with the BN layers it found. Reference-model attacks (LiRA,
// RMIA) need a population to train reference models on; they are not run
// here yet, and the report says so.
func Audit(ctx context.Context, cfg AuditConfig) (*Report, error) {
	if cfg.Model == nil || cfg.Members == nil || cfg.NonMembers == nil {
		return nil, fmt.Errorf("audit: an audit needs a model, members and non-members: %w", ErrInvalidInput)
	}
	res, err := Measure(ctx, cfg.Model, ExperimentConfig{Name: "audited", Members: cfg.Members, NonMembers: cfg.NonMembers,
		Bootstrap: cfg.Bootstrap, Session: cfg.Session})
	if err != nil {
		return nil, err
	}
	v := res.Variant
	v.Seeds = 0
	refNote := "Reference-model attacks (LiRA, RMIA) were not run (no --ref-models); the AUCs here are those of the threshold attacks (loss, confidence, entropy, modified entropy), which underestimate the strongest attacks at low FPR."
	if cfg.References > 0 {
		pop, err := dataset.Concat("population", cfg.Members, cfg.NonMembers)
		if err != nil {
			return nil, err
		}
		tc := cfg.Train
		tc.Model = cfg.Model
		tc.Init = trainer.InitScratch
		ref, err := TrainReferences(ctx, ReferenceConfig{Train: tc, Population: pop, Models: cfg.References, Seed: cfg.Bootstrap.Seed,
			Session: cfg.Session, Dir: cfg.RefDir, Progress: cfg.Progress})
		if err != nil {
			return nil, err
		}
		o, err := trainer.Evaluate(ctx, cfg.Model, pop, 256, cfg.Session)
		if err != nil {
			return nil, err
		}
		target, err := ComputeSignalsFlat(o.Logits, o.Classes, pop.Labels())
		if err != nil {
			return nil, err
		}
		member := make([]bool, pop.Len())
		for i := 0; i < cfg.Members.Len(); i++ {
			member[i] = true
		}
		reps, scores, fz, err := ReferenceAttacks(target, ref, member, cfg.Bootstrap)
		if err != nil {
			return nil, err
		}
		v.Attacks = append(v.Attacks, reps...)
		for name, sc := range scores {
			res.Samples.Scores[name] = sc
		}
		res.Samples.Memorization = fz
		res.Samples.PhiRef, res.Samples.InRef = ref.Phi, ref.In
		if f := finite(fz); len(f) > 0 {
			d := distribution(f)
			v.FeldmanZhang = &d
		}
		refNote = fmt.Sprintf("LiRA (fixed variance, means of φ) and RMIA (online, γ = 1, non-members as the population z) use %d reference models trained from scratch with the audit's recipe on random halves of members ∪ non-members; Feldman–Zhang scores come from the same models.", cfg.References)
	}
	r := &Report{Schema: ReportSchema, Tool: "bnaudit", Created: time.Now().UTC().Format(time.RFC3339), Command: cfg.Command,
		Seed: cfg.Bootstrap.Seed, Kind: "audit", Variants: []VariantReport{v}, Samples: res.Samples, Definitions: Definitions(),
		VerdictCode: "not_applicable"}
	best := 0.0
	for _, a := range v.Attacks {
		best = max(best, a.AUC.Estimate)
	}
	r.Verdict = fmt.Sprintf("Audit of %s: the strongest attack reaches AUC %.3f on %d members vs %d non-members; the model has %d BatchNorm layer(s). Use bnaudit compare to measure what BatchNorm contributes.",
		cfg.Model.Name, best, cfg.Members.Len(), cfg.NonMembers.Len(), v.BatchNorms)
	r.Notes = append(r.Notes, refNote)
	return r, nil
}
