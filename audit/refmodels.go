package audit

import (
	"fmt"
)

// MinReliableRefModels is the fewest reference models on which bnaudit
// reads Feldman–Zhang scores and LiRA as more than indicative: with k
// models a Feldman–Zhang score takes only a handful of values (0, ½ and 1
// for k = 2) and LiRA's Gaussians are fitted to one or two numbers a side.
const MinReliableRefModels = 4

// IsReferenceAttack says whether an attack (AttackReport.Attack) needs
// reference models: LiRA and RMIA, online and offline.
func IsReferenceAttack(name string) bool {
	switch name {
	case AttackLiRAOnline, AttackLiRAOffline, AttackRMIAOnline, AttackRMIAOffline:
		return true
	}
	return false
}

// ReferenceArch is the architecture an audit's reference models were
// trained on, from scratch: the audited model's own, or another export of
// the same network given with --ref-arch (the audited model's BN folded
// away on export, say).
type ReferenceArch struct {
	// Model is the file's name and ModelHash the SHA-256 of the model as
	// trained (the form of VariantReport.ModelHash).
	Model     string `json:"model"`
	ModelHash string `json:"model_sha256"`
	// BatchNorms counts its BatchNormalization nodes.
	BatchNorms int `json:"batchnorms"`
	// Given is true when it is not the audited model's own architecture
	// (--ref-arch).
	Given bool `json:"ref_arch"`
}

// FewRefModelsNote is the report's caveat for reference attacks that rest
// on n reference models, or "" when n is 0 (none were trained) or at least
// MinReliableRefModels.
func FewRefModelsNote(n int) string {
	if n <= 0 || n >= MinReliableRefModels {
		return ""
	}
	return fmt.Sprintf("Few reference models: Feldman–Zhang scores and LiRA (and RMIA) rest on %d reference model(s), fewer than %d: a Feldman–Zhang score then takes only a few values (0, ½ or 1 with 2 models) and LiRA's in and out variances are little more than guesses; read these numbers as indicative, and train %d or more (--ref-models) before relying on them.",
		n, MinReliableRefModels, MinReliableRefModels)
}

// hasReferenceAttack says whether any of the variant's attacks needs
// reference models.
func (v VariantReport) hasReferenceAttack() bool {
	for _, as := range [][]AttackReport{v.Attacks, v.CanaryAttacks} {
		for _, a := range as {
			if IsReferenceAttack(a.Attack) {
				return true
			}
		}
	}
	return v.FeldmanZhang != nil
}

// minRefModelsRule is the policy's min_ref_models rule on one variant: its
// reference-attack numbers must rest on at least `least` reference models. A
// variant without reference attacks, or whose report does not record how
// many models they rest on, is bad input (the rule does not apply).
func minRefModelsRule(v VariantReport, least int) (RuleResult, error) {
	if !v.hasReferenceAttack() {
		return RuleResult{}, fmt.Errorf("audit: check: min_ref_models does not apply: variant %q has no reference-model attack (LiRA, RMIA; run the audit or compare with --ref-models): %w", v.Name, ErrInvalidInput)
	}
	if v.RefModels <= 0 {
		return RuleResult{}, fmt.Errorf("audit: check: min_ref_models: variant %q has reference-model attacks but the report does not record how many reference models they rest on (made by an older bnaudit? rerun it): %w", v.Name, ErrInvalidInput)
	}
	rr := RuleResult{Rule: "min_ref_models", Variant: v.Name, Limit: float64(least), Value: float64(v.RefModels), Passed: v.RefModels >= least,
		Detail: fmt.Sprintf("reference models under LiRA, RMIA and Feldman–Zhang (at least %d required)", least)}
	return rr, nil
}
