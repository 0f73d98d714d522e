package audit

// Attack names, as AttackReport.Attack, SampleTable.Scores keys and the
// report's definitions spell them.
const (
	// Threshold attacks, run on every model.
	AttackLoss            = "loss"
	AttackConfidence      = "confidence"
	AttackEntropy         = "entropy"
	AttackModifiedEntropy = "modified_entropy"
	// Label-only attacks, from the predicted label alone.
	AttackGap          = "gap"
	AttackAugmentation = "augmentation"
	// Reference-model attacks, run when reference models were trained.
	AttackLiRAOnline  = "lira_online"
	AttackLiRAOffline = "lira_offline"
	AttackRMIAOnline  = "rmia_online"
	AttackRMIAOffline = "rmia_offline"
	// The quantile-regression attack (reference-free: one regression
	// model), run on request.
	AttackQMIA = "qmia"
)

// Verdict codes (Report.VerdictCode).
const (
	// VerdictAmplifies: with BN, some metric is higher and none lower
	// (95% intervals excluding 0).
	VerdictAmplifies = "amplifies"
	// VerdictReduces: with BN, some metric is lower and none higher.
	VerdictReduces = "reduces"
	// VerdictMixed: with BN, some metrics are higher and others lower.
	VerdictMixed = "mixed"
	// VerdictNotDistinguishable: no difference's interval excludes 0.
	VerdictNotDistinguishable = "not_distinguishable"
	// VerdictNotApplicable: there is nothing to compare (an audit of one
	// model, or a comparison without the original variant).
	VerdictNotApplicable = "not_applicable"
)

// DefaultVulnerable is how many of the most exposed members a variant
// lists (VariantReport.Vulnerable).
const DefaultVulnerable = 10
