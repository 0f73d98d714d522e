package audit

import (
	"fmt"
	"math"
)

// The policy rules on risk in the user's terms: max_ppv (with prior) and
// max_epsilon_lower_bound. Like every rule they fail closed (see Check).

// validateRisk checks the risk rules' own settings.
func (p Policy) validateRisk() error {
	if p.MaxPPV > 0 && !(p.Prior > 0 && p.Prior < 1) {
		return fmt.Errorf("audit: policy: max_ppv needs prior, the fraction of members in (0, 1) it applies at, not %v: %w", p.Prior, ErrInvalidInput)
	}
	if e := p.MaxEpsilonLowerBound; e < 0 || math.IsNaN(e) || math.IsInf(e, 0) {
		return fmt.Errorf("audit: policy: max_epsilon_lower_bound = %v must be a finite number ≥ 0: %w", e, ErrInvalidInput)
	}
	return nil
}

// checkRisk applies max_ppv and max_epsilon_lower_bound to one variant.
func (p Policy) checkRisk(v VariantReport, fpr float64, val func(Interval) float64, add func(rule, variant string, limit, value float64, detail string)) error {
	if p.MaxPPV > 0 {
		best, name, found := math.NaN(), "", false
		for _, a := range v.Attacks {
			for _, r := range a.Risk {
				if math.Abs(r.TargetFPR-fpr) > 1e-12 {
					continue
				}
				if len(r.PPV) == 0 && r.Exposed+r.FalsePositives == 0 {
					found = true // nothing flagged: no precision, the rule cannot pass on it
				}
				for _, pp := range r.PPV {
					if math.Abs(pp.Prior-p.Prior) > 1e-12 {
						continue
					}
					found = true
					if err := inRange(pp.PPV, 0, 1, v.Name, fmt.Sprintf("%s PPV at prior %g, %g FPR", a.Attack, p.Prior, fpr)); err != nil {
						return err
					}
					if x := val(pp.PPV); !math.IsNaN(x) && (math.IsNaN(best) || x > best) {
						best, name = x, a.Attack
					}
				}
			}
		}
		if !found {
			return fmt.Errorf("audit: check: variant %q has no PPV at prior %g and %g FPR (reports measure the priors given with --prior and the FPRs of TPR@FPR): %w", v.Name, p.Prior, fpr, ErrInvalidInput)
		}
		add("max_ppv", v.Name, p.MaxPPV, best, fmt.Sprintf("best precision of a membership claim at %.2g%% FPR with %.3g%% members (%s)", 100*fpr, 100*p.Prior, name))
	}
	if p.MaxEpsilonLowerBound > 0 {
		b := v.DPLowerBound
		if b == nil {
			return fmt.Errorf("audit: check: max_epsilon_lower_bound does not apply: variant %q has no one-run bound on ε (only compare and demo reports insert canaries): %w", v.Name, ErrInvalidInput)
		}
		if b.Epsilon < 0 || math.IsInf(b.Epsilon, -1) {
			return fmt.Errorf("audit: check: variant %q: ε lower bound %v is negative; the report is damaged: %w", v.Name, b.Epsilon, ErrInvalidInput)
		}
		add("max_epsilon_lower_bound", v.Name, p.MaxEpsilonLowerBound, b.Epsilon,
			fmt.Sprintf("one-run lower bound on ε at δ = %.3g, %.3g%% confidence (%d canaries)", b.Delta, 100*b.Confidence, b.Canaries))
	}
	return nil
}
