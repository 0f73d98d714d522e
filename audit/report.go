package audit

import "math"

// The report data model: what an audit (or a BN comparison) found, in the
// form every report writer (report.json, report.md, report.html, scores.csv,
// signals.npz) renders. Numbers carry their interval and definition.

// ReportSchema names the version of report.json's layout.
const ReportSchema = "bnaudit.report/v1"

// Report is one audit or comparison.
type Report struct {
	Schema  string `json:"schema"`
	Tool    string `json:"tool"`    // "bnaudit 0.1.0-dev"
	Created string `json:"created"` // RFC 3339, UTC
	Command string `json:"command"` // the command line that produced it
	Seed    uint64 `json:"seed"`
	// Kind is "audit" (one model) or "compare" (BN variants of one model).
	Kind string `json:"kind"`
	// Variants holds one entry per audited model (one for an audit).
	Variants []VariantReport `json:"variants"`
	// Comparisons are BN-vs-no-BN differences (compare only).
	Comparisons []Comparison `json:"comparisons,omitempty"`
	// Verdict is the conclusion in words; VerdictCode a machine-readable
	// form, one of the Verdict… codes (VerdictAmplifies, …).
	Verdict     string `json:"verdict"`
	VerdictCode string `json:"verdict_code"`
	// Notes are caveats the reader must see (fit differences, sparse
	// TPR@FPR, departures from docs/METHODS.md).
	Notes []string `json:"notes"`
	// Definitions maps each metric and attack name to its definition.
	Definitions map[string]string `json:"definitions"`
	// Samples is the per-sample table (scores.csv, signals.npz).
	Samples *SampleTable `json:"-"`
	// Runs holds every training run's own per-sample table (a comparison
	// of several variants or seeds); the writers put each in
	// samples/VARIANT-seedK.{csv,npz} and list them in SampleFiles.
	Runs []RunSamples `json:"-"`
	// SampleFiles lists the per-run sample files of the report folder.
	SampleFiles []SampleFile `json:"sample_files,omitempty"`
	// Units lists the work units of a study run on an engine (local,
	// slurm, k8s): what each was, where it ran and how long it took.
	Units []UnitRun `json:"units,omitempty"`
	// ReferenceArch is the architecture an audit's reference models were
	// trained on (nil without reference models).
	ReferenceArch *ReferenceArch `json:"reference_architecture,omitempty"`
}

// UnitRun is one work unit of a study as it ran.
type UnitRun struct {
	Index   int     `json:"index"`
	Name    string  `json:"name"` // "run original-seed0", "reference remove #3"
	Engine  string  `json:"engine"`
	Host    string  `json:"host,omitempty"`
	Job     string  `json:"job,omitempty"` // the scheduler's job or task id
	Seconds float64 `json:"seconds"`
}

// RunSamples is one training run's per-sample table.
type RunSamples struct {
	Variant string
	Seed    int // 0-based, as in SeedReport
	Table   *SampleTable
}

// SampleFile names one run's per-sample files, relative to the report
// folder.
type SampleFile struct {
	Variant string `json:"variant"`
	Seed    int    `json:"seed"`
	Scores  string `json:"scores"`
	Signals string `json:"signals"`
}

// VariantReport is what was measured on one model.
type VariantReport struct {
	Name       string `json:"name"` // "original", "remove", "freeze", …
	Model      string `json:"model"`
	ModelHash  string `json:"model_sha256"`
	BatchNorms int    `json:"batchnorms"`
	// Fit: training and test loss/accuracy (intervals over seeds when
	// several were trained; Lo = Hi = Estimate for one).
	TrainAccuracy Interval `json:"train_accuracy"`
	TestAccuracy  Interval `json:"test_accuracy"`
	TrainLoss     Interval `json:"train_loss"`
	TestLoss      Interval `json:"test_loss"`
	Seeds         int      `json:"seeds"`
	// Attacks on members vs non-members (and on canaries alone).
	Attacks       []AttackReport `json:"attacks"`
	CanaryAttacks []AttackReport `json:"canary_attacks,omitempty"`
	Memorization  *CanaryGap     `json:"memorization,omitempty"`
	// DPLowerBound is the one-run lower bound on ε from the canaries
	// (docs/METHODS.md, "One-run privacy audit"), from the first training
	// run when the row aggregates several.
	DPLowerBound *EpsilonBound `json:"dp_lower_bound,omitempty"`
	// FeldmanZhang summarizes the Feldman–Zhang scores (mean, quantiles),
	// when reference models were trained.
	FeldmanZhang *Distribution `json:"feldman_zhang,omitempty"`
	// RefModels is how many reference models LiRA, RMIA and Feldman–Zhang
	// rest on (0: none were trained).
	RefModels int `json:"ref_models,omitempty"`
	// GradNorms is the gradient-norm study along training.
	GradNorms []GradNormPoint `json:"grad_norms,omitempty"`
	// Slices are the strongest attack's metrics on subsets (per class,
	// canaries vs typical, correct vs incorrect).
	Slices []SliceReport `json:"slices,omitempty"`
	// PerSeed holds each training seed's own numbers when the row
	// aggregates several (the per-sample table belongs to the first seed
	// of the first variant).
	PerSeed []SeedReport `json:"per_seed,omitempty"`
	// Vulnerable are the members the strongest attack (VulnerableBy)
	// scores highest.
	VulnerableBy string       `json:"most_vulnerable_attack,omitempty"`
	Vulnerable   []SampleRisk `json:"most_vulnerable,omitempty"`
}

// SeedReport is one training run of a variant.
type SeedReport struct {
	Seed          int         `json:"seed"` // 0-based: the run trained with Seed + seed
	TrainAccuracy float64     `json:"train_accuracy"`
	TestAccuracy  float64     `json:"test_accuracy"`
	Epochs        int         `json:"epochs,omitempty"`
	StoppedEarly  bool        `json:"stopped_early,omitempty"`
	AUC           []AttackAUC `json:"auc"`
	CanaryAUC     []AttackAUC `json:"canary_auc,omitempty"`
	CanaryGap     *float64    `json:"canary_gap,omitempty"`
}

// AttackAUC is one attack's AUC on one run.
type AttackAUC struct {
	Attack string   `json:"attack"`
	AUC    Interval `json:"auc,required"`
}

// AttackReport is one attack's metrics with intervals.
type AttackReport struct {
	Attack      string   `json:"attack"` // one of the Attack… names (AttackLoss, …)
	Members     int      `json:"members"`
	NonMembers  int      `json:"non_members"`
	AUC         Interval `json:"auc,required"`
	Advantage   Interval `json:"advantage"`
	BalancedAcc float64  `json:"balanced_accuracy"`
	// BalancedAccInterval is BalancedAcc with its interval: balanced
	// accuracy at the best threshold is (1 + advantage)/2 for every
	// resample, so the interval is the advantage interval mapped the same
	// way.
	BalancedAccInterval Interval        `json:"balanced_accuracy_interval"`
	TPRAt               []TPRAtInterval `json:"tpr_at_fpr"`
	// Risk is what the threshold at each target FPR means at a prior
	// fraction of members: PPV, and the members it exposes.
	Risk []RiskAtFPR `json:"risk,omitempty"`
	// ROC is the curve, thinned for plotting (at most a few hundred points,
	// always keeping the low-FPR end).
	ROC []ROCPoint `json:"roc"`
	// ModelsTrained is the attack's cost in models trained for it besides
	// the audited one: the reference models of LiRA and RMIA, the one
	// regression model of the quantile-regression attack; 0 (left out of
	// report.json) for attacks that only query the audited model.
	ModelsTrained int `json:"models_trained,omitempty"`
}

// BalancedAccuracy returns the balanced accuracy with its interval. A
// record or report.json from before the interval was kept (left at zero)
// or one without it (NaN) gives the estimate alone, as Lo = Hi = Estimate.
func (a AttackReport) BalancedAccuracy() Interval {
	if a.HasBalancedAccInterval() {
		return a.BalancedAccInterval
	}
	return Interval{Estimate: a.BalancedAcc, Lo: a.BalancedAcc, Hi: a.BalancedAcc}
}

// HasBalancedAccInterval says whether the balanced accuracy's interval was
// recorded (see BalancedAccuracy).
func (a AttackReport) HasBalancedAccInterval() bool {
	iv := a.BalancedAccInterval
	return iv != (Interval{}) && !math.IsNaN(iv.Estimate)
}

// TPRAtInterval is TPR at a target FPR with its interval and how many
// non-members it rests on.
type TPRAtInterval struct {
	TargetFPR float64  `json:"target_fpr,required"`
	TPR       Interval `json:"tpr,required"`
	AllowedFP int      `json:"allowed_false_positives"`
	Note      string   `json:"note,omitempty"`
}

// ROCPoint is one point of a ROC curve.
type ROCPoint struct {
	FPR float64 `json:"fpr"`
	TPR float64 `json:"tpr"`
}

// Distribution summarizes a sample of values.
type Distribution struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
	// Histogram for plots: Edges has len(Counts)+1 entries.
	Edges  []float64 `json:"edges,omitempty"`
	Counts []int     `json:"counts,omitempty"`
}

// GradNormPoint is the gradient-norm study at one checkpoint of training.
type GradNormPoint struct {
	Epoch int    `json:"epoch"`
	Mode  string `json:"mode"` // "eval" or "inbatch"
	// Outlier (canary) and typical (member) per-sample gradient norms.
	Outlier Distribution `json:"outlier"`
	Typical Distribution `json:"typical"`
	// Ratio is median(outlier)/median(typical), with a bootstrap interval.
	Ratio Interval `json:"ratio"`
}

// SliceReport is an attack's metrics on a subset of the samples.
type SliceReport struct {
	Slice  string       `json:"slice"` // "class=3", "canaries", "correct", "incorrect"
	Attack AttackReport `json:"attack"`
}

// Comparison is a difference between a BN variant and a no-BN variant.
type Comparison struct {
	Metric  string   `json:"metric"` // "loss_auc", "canary_gap_accuracy", "grad_norm_ratio", …
	With    string   `json:"with_bn"`
	Without string   `json:"without_bn"`
	Diff    Interval `json:"difference,required"` // with − without
	// Distinguishable is true when the interval excludes zero.
	Distinguishable bool `json:"distinguishable"`
}

// SampleTable is the per-sample data behind a report.
type SampleTable struct {
	// Variant names the model each column block belongs to.
	Variant string
	Index   []int
	Label   []int64
	Member  []bool
	Canary  []bool
	// Scores maps an attack name to one score per sample; NaN marks a
	// sample the attack does not score (the quantile-regression attack's
	// fitting non-members), left out of its metrics.
	Scores map[string][]float64
	// Memorization is the Feldman–Zhang score (NaN where undefined).
	Memorization []float64
	// GradNormEval and GradNormInBatch are per-sample gradient norms (NaN
	// where not computed).
	GradNormEval, GradNormInBatch []float64
	// Phi, Loss: the signals; PhiRef [models][samples] and InRef the
	// reference models' φ and IN masks (nil without reference models).
	Phi, Loss []float64
	// Correct says whether the audited model classifies the sample right.
	Correct []bool
	PhiRef  [][]float64
	InRef   [][]bool
}
