package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
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
	r := &Report{Schema: ReportSchema, Tool: "bnaudit", Created: time.Now().UTC().Format(time.RFC3339), Command: cfg.Command,
		Seed: cfg.Bootstrap.Seed, Kind: "audit", Variants: []VariantReport{v}, Samples: res.Samples, Definitions: Definitions(),
		VerdictCode: "not_applicable"}
	best := 0.0
	for _, a := range v.Attacks {
		best = max(best, a.AUC.Estimate)
	}
	r.Verdict = fmt.Sprintf("Audit of %s: the strongest threshold attack reaches AUC %.3f on %d members vs %d non-members; the model has %d BatchNorm layer(s). Use bnaudit compare to measure what BatchNorm contributes.",
		cfg.Model.Name, best, cfg.Members.Len(), cfg.NonMembers.Len(), v.BatchNorms)
	r.Notes = append(r.Notes, "Reference-model attacks (LiRA, RMIA) are not run by bnaudit audit yet; the AUCs here are those of the threshold attacks (loss, confidence, entropy, modified entropy), which underestimate the strongest attacks at low FPR.")
	return r, nil
}
