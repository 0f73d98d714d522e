package study

import (
	"fmt"
	"path/filepath"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
)

// CompareSpec is a comparison written as data: where its model and data
// come from and every setting that decides its numbers. The bnaudit
// command builds one from its flags, and so does every process that runs
// a unit of the comparison from the study's plan, so that all of them
// build the very same CompareConfig.
type CompareSpec struct {
	// Model is the model file's path; MaxModelBytes its size limit (0:
	// onnxio's default).
	Model         string `json:"model"`
	MaxModelBytes int64  `json:"max_model_bytes,omitempty"`
	// Data are the members and non-members (paths every node can read).
	Data DataConfig `json:"data"`
	// Canaries inserted among the members and held out.
	Canaries CanaryConfig `json:"canaries"`
	// Variants, and the groupnorm variant's settings.
	Variants   []string `json:"variants"`
	Groups     int      `json:"groups,omitempty"`
	CopyAffine bool     `json:"copy_affine,omitempty"`
	// Recipe of every run and reference model; StopAtTrainAcc is the
	// matched-fit target (0: train every epoch).
	Recipe         Recipe  `json:"recipe"`
	StopAtTrainAcc float64 `json:"stop_at_train_acc,omitempty"`
	// Seeds per variant, and the study's seed (data order, initialization,
	// canaries, reference halves, bootstrap).
	Seeds int    `json:"seeds"`
	Seed  uint64 `json:"seed"`
	// Replicates of every bootstrap interval.
	Replicates int `json:"bootstrap_replicates"`
	// Reference models per variant and LiRA's variance setting.
	RefModels    int    `json:"ref_models,omitempty"`
	LiRAVariance string `json:"lira_variance,omitempty"`
	// The gradient-norm study.
	GradNormCheckpoints int  `json:"grad_norm_checkpoints"`
	InBatch             bool `json:"in_batch"`
	GradNormSample      int  `json:"grad_norm_sample,omitempty"`
	// DPDelta of the one-run bound on ε, Priors of the PPV, and
	// Augmentations of the label-only augmentation attack (CompareConfig).
	DPDelta       float64   `json:"dp_delta,omitempty"`
	Priors        []float64 `json:"priors,omitempty"`
	Augmentations int       `json:"augmentations,omitempty"`
	// QMIA adds the quantile-regression attack to every run
	// (CompareConfig.QMIA).
	QMIA *QMIAConfig `json:"qmia,omitempty"`
	// Command is recorded in the report.
	Command string `json:"command,omitempty"`
}

// Build loads the model, the data and the canaries and returns the
// comparison's configuration, writing its results into dir with the
// given ONNX Runtime options and logits cache. Progress, Jobs and Resume
// are the caller's to set.
func (s CompareSpec) Build(dir string, session ort.SessionOptions, cache SignalCache) (CompareConfig, error) {
	lim := onnxio.DefaultLimits()
	if s.MaxModelBytes > 0 {
		lim.MaxFileBytes = s.MaxModelBytes
	}
	m, err := onnxio.LoadWithLimits(s.Model, lim)
	if err != nil {
		return CompareConfig{}, err
	}
	variants := s.Variants
	if len(variants) == 0 {
		variants = DefaultVariants
	}
	if err := CheckVariants(m, variants, s.Groups); err != nil {
		return CompareConfig{}, err
	}
	shape, err := ShapeOf(m)
	if err != nil {
		return CompareConfig{}, err
	}
	dc := s.Data
	dc.FitTo = shape.Sample
	data, err := LoadData(dc)
	if err != nil {
		return CompareConfig{}, err
	}
	if data.NonMembers == nil {
		return CompareConfig{}, fmt.Errorf("study: a comparison needs non-members: %w", audit.ErrInvalidInput)
	}
	// A final Softmax comes off; the output must be one logit per class.
	m, notes, err := PrepareClassifier(m, data.Members, data.NonMembers)
	if err != nil {
		return CompareConfig{}, err
	}
	// Non-members that are members too (by content) are refused, or a few
	// dropped with a note.
	nonMembers, overlap, err := DisjointNonMembers(data.Members, data.NonMembers)
	if err != nil {
		return CompareConfig{}, err
	}
	if data.NonMembers = nonMembers; overlap != "" {
		notes = append(notes, overlap)
	}
	canaries, err := data.Canaries(s.Canaries)
	if err != nil {
		return CompareConfig{}, err
	}
	tc := trainer.Config{Session: session, StopAtTrainAcc: s.StopAtTrainAcc}
	s.Recipe.Apply(&tc)
	return CompareConfig{
		Model: m, Variants: s.Variants, Groups: s.Groups, CopyAffine: s.CopyAffine,
		Members: data.Members, NonMembers: data.NonMembers, Canaries: canaries,
		Train: tc, Seeds: s.Seeds, Seed: s.Seed,
		Bootstrap: audit.BootstrapOptions{Replicates: s.Replicates, Seed: s.Seed},
		Session:   session, Dir: dir, Command: s.Command,
		RefModels: s.RefModels, LiRAVariance: s.LiRAVariance, Cache: cache,
		GradNormCheckpoints: s.GradNormCheckpoints, InBatch: s.InBatch, GradNormSample: s.GradNormSample,
		Notes: notes, DPDelta: s.DPDelta, Priors: s.Priors, Augmentations: s.Augmentations, QMIA: s.QMIA,
	}, nil
}

// AuditSpec is an audit of a trained model written as data, as
// CompareSpec is a comparison: what a work unit needs to build the same
// AuditConfig in another process.
type AuditSpec struct {
	Model         string `json:"model"`
	MaxModelBytes int64  `json:"max_model_bytes,omitempty"`
	// Data: members, non-members and, optionally, the population.
	Data DataConfig `json:"data"`
	// Recipe of the reference models (trained from scratch).
	Recipe       Recipe `json:"recipe"`
	References   int    `json:"ref_models"`
	LiRAVariance string `json:"lira_variance,omitempty"`
	// RefArch is the file of the reference models' architecture
	// (AuditConfig.RefArch; "": the audited model's), RefArchName the name
	// the report gives it (default: the file's).
	RefArch     string `json:"ref_arch,omitempty"`
	RefArchName string `json:"ref_arch_name,omitempty"`
	// Seed of the reference halves and the bootstrap; Replicates of every
	// bootstrap interval.
	Seed       uint64 `json:"seed"`
	Replicates int    `json:"bootstrap_replicates"`
	// Priors of the PPV and Augmentations of the label-only attack
	// (AuditConfig).
	Priors        []float64 `json:"priors,omitempty"`
	Augmentations int       `json:"augmentations,omitempty"`
	// QMIA adds the quantile-regression attack (AuditConfig.QMIA): its one
	// regression model trains where the audit is gathered.
	QMIA    *QMIAConfig `json:"qmia,omitempty"`
	Command string      `json:"command,omitempty"`
}

// Build loads the model and the data (fitted to the model's input) and
// returns the audit's configuration, its reference models kept in
// dir/refs/audited.
func (s AuditSpec) Build(dir string, session ort.SessionOptions, cache SignalCache) (AuditConfig, error) {
	lim := onnxio.DefaultLimits()
	if s.MaxModelBytes > 0 {
		lim.MaxFileBytes = s.MaxModelBytes
	}
	m, err := onnxio.LoadWithLimits(s.Model, lim)
	if err != nil {
		return AuditConfig{}, err
	}
	var refArch *onnxio.Model
	if s.RefArch != "" {
		if refArch, err = onnxio.LoadWithLimits(s.RefArch, lim); err != nil {
			return AuditConfig{}, err
		}
		if s.RefArchName != "" {
			refArch.Name = s.RefArchName
		}
	}
	shape, err := ShapeOf(m)
	if err != nil {
		return AuditConfig{}, err
	}
	dc := s.Data
	dc.FitTo = shape.Sample
	data, err := LoadData(dc)
	if err != nil {
		return AuditConfig{}, err
	}
	if data.NonMembers == nil {
		return AuditConfig{}, fmt.Errorf("study: an audit needs non-members: %w", audit.ErrInvalidInput)
	}
	tc := trainer.Config{Session: session}
	s.Recipe.Apply(&tc)
	refDir := ""
	if dir != "" {
		refDir = filepath.Join(dir, "refs", auditedVariant)
	}
	return AuditConfig{Model: m, Members: data.Members, NonMembers: data.NonMembers, Population: data.Population,
		Bootstrap: audit.BootstrapOptions{Replicates: s.Replicates, Seed: s.Seed}, Session: session, Command: s.Command,
		References: s.References, LiRAVariance: s.LiRAVariance, RefArch: refArch, Train: tc, RefDir: refDir, Cache: cache,
		Priors: s.Priors, Augmentations: s.Augmentations, QMIA: s.QMIA}, nil
}

// auditedVariant names an audit's one model in units and folders.
const auditedVariant = "audited"
