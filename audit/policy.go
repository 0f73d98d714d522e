package audit

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
)

// Policy is a pre-deploy gate: limits an audited model must stay under.
// A zero field is not checked. Values are compared with the estimate, or
// with the upper end of its 95% interval when Conservative is set.
type Policy struct {
	// MaxAUC bounds the best membership-inference AUC (members vs non-members).
	MaxAUC float64 `yaml:"max_auc" json:"max_auc"`
	// MaxTPR bounds the best TPR at FPR TPRAtFPR (default 0.01).
	MaxTPR   float64 `yaml:"max_tpr" json:"max_tpr"`
	TPRAtFPR float64 `yaml:"tpr_at_fpr" json:"tpr_at_fpr"`
	// MaxCanaryGap bounds the canary memorization gap (accuracy).
	MaxCanaryGap float64 `yaml:"max_canary_gap" json:"max_canary_gap"`
	// MaxBNAmplification bounds every with-BN-minus-without difference of
	// a comparison (compare reports only).
	MaxBNAmplification float64 `yaml:"max_bn_amplification" json:"max_bn_amplification"`
	// MinRefModels requires the reference-model attacks (LiRA, RMIA,
	// Feldman–Zhang) to rest on at least this many reference models.
	MinRefModels int `yaml:"min_ref_models" json:"min_ref_models,omitempty"`
	// MaxPPV bounds the best attack's precision (PPV) at FPR TPRAtFPR
	// when a fraction Prior of the tested population are members; Prior
	// must be one of the priors the report measured.
	MaxPPV float64 `yaml:"max_ppv" json:"max_ppv"`
	Prior  float64 `yaml:"prior" json:"prior"`
	// MaxEpsilonLowerBound bounds the one-run lower bound on ε from the
	// canaries (compare reports only); a DP claim of ε sets it to ε.
	MaxEpsilonLowerBound float64 `yaml:"max_epsilon_lower_bound" json:"max_epsilon_lower_bound"`
	// Conservative compares the upper end of each 95% interval.
	Conservative bool `yaml:"conservative" json:"conservative"`
}

// LoadPolicy reads a YAML policy file; unknown keys are an error, so that a
// typo does not silently drop a rule.
func LoadPolicy(path string) (Policy, error) {
	var p Policy
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("audit: policy: %w", err)
	}
	if err := yaml.UnmarshalWithOptions(b, &p, yaml.DisallowUnknownField()); err != nil {
		return p, fmt.Errorf("audit: policy %s: %s: %w", path, oneLineYAML(err), ErrInvalidInput)
	}
	return p, p.validate()
}

func oneLineYAML(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func (p Policy) validate() error {
	for name, v := range map[string]float64{"max_auc": p.MaxAUC, "max_tpr": p.MaxTPR, "tpr_at_fpr": p.TPRAtFPR, "max_canary_gap": p.MaxCanaryGap,
		"max_ppv": p.MaxPPV, "prior": p.Prior} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			return fmt.Errorf("audit: policy: %s = %v must lie in [0, 1]: %w", name, v, ErrInvalidInput)
		}
	}
	if p.MinRefModels < 0 {
		return fmt.Errorf("audit: policy: min_ref_models = %d must be 0 or more: %w", p.MinRefModels, ErrInvalidInput)
	}
	if err := p.validateRisk(); err != nil {
		return err
	}
	if p.MaxAUC == 0 && p.MaxTPR == 0 && p.MaxCanaryGap == 0 && p.MaxBNAmplification == 0 && p.MaxPPV == 0 && p.MaxEpsilonLowerBound == 0 && p.MinRefModels == 0 {
		return fmt.Errorf("audit: the policy sets no limit (max_auc, max_tpr, max_canary_gap, max_bn_amplification, max_ppv, max_epsilon_lower_bound, min_ref_models): %w", ErrInvalidInput)
	}
	return nil
}

// RuleResult is one rule checked on one variant.
type RuleResult struct {
	Rule    string  `json:"rule"`
	Variant string  `json:"variant"`
	Limit   float64 `json:"limit"`
	Value   float64 `json:"value"`
	Passed  bool    `json:"passed"`
	Detail  string  `json:"detail"`
}

// CheckResult is the gate's outcome.
type CheckResult struct {
	Passed bool         `json:"passed"`
	Rules  []RuleResult `json:"rules"`
}

// Check applies a policy to a report: every rule to every variant.
//
// The gate fails closed. A number a rule needs that the report lacks (an
// attack list without the rule's attack, no TPR at the policy's FPR, no
// canary measurement, no comparison) or that lies outside its range (an
// AUC or TPR outside [0, 1], a canary accuracy gap outside [−1, 1], an
// infinite difference) is an error wrapping ErrInvalidInput, never a
// pass. A number the report states as not measured (NaN, null in
// report.json) fails its rule.
func Check(r *Report, p Policy) (*CheckResult, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if r == nil || len(r.Variants) == 0 {
		return nil, fmt.Errorf("audit: the report has no audited model: %w", ErrInvalidInput)
	}
	val := func(iv Interval) float64 {
		if p.Conservative {
			return iv.Hi
		}
		return iv.Estimate
	}
	res := &CheckResult{Passed: true}
	add := func(rule, variant string, limit, value float64, detail string) {
		ok := !(value > limit)
		if math.IsNaN(value) {
			ok = false
			detail += " (not measured)"
		}
		res.Rules = append(res.Rules, RuleResult{Rule: rule, Variant: variant, Limit: limit, Value: value, Passed: ok, Detail: detail})
		res.Passed = res.Passed && ok
	}
	fpr := p.TPRAtFPR
	if fpr == 0 {
		fpr = 0.01
	}
	for _, v := range r.Variants {
		if p.MaxAUC > 0 {
			if len(v.Attacks) == 0 {
				return nil, fmt.Errorf("audit: check: variant %q has no attack to read an AUC from: %w", v.Name, ErrInvalidInput)
			}
			best, name := math.NaN(), ""
			for _, a := range v.Attacks {
				if err := inRange(a.AUC, 0, 1, v.Name, a.Attack+" AUC"); err != nil {
					return nil, err
				}
				if x := val(a.AUC); math.IsNaN(best) || x > best {
					best, name = x, a.Attack
				}
			}
			add("max_auc", v.Name, p.MaxAUC, best, fmt.Sprintf("best membership-inference AUC (%s)", name))
		}
		if p.MaxTPR > 0 {
			best, name, found := math.NaN(), "", false
			for _, a := range v.Attacks {
				for _, t := range a.TPRAt {
					if math.Abs(t.TargetFPR-fpr) < 1e-12 {
						found = true
						if err := inRange(t.TPR, 0, 1, v.Name, fmt.Sprintf("%s TPR at %g FPR", a.Attack, fpr)); err != nil {
							return nil, err
						}
						if x := val(t.TPR); math.IsNaN(best) || x > best {
							best, name = x, a.Attack
						}
					}
				}
			}
			if !found {
				return nil, fmt.Errorf("audit: check: variant %q has no TPR at %g FPR (the report measured other FPRs; set tpr_at_fpr to one of them): %w", v.Name, fpr, ErrInvalidInput)
			}
			add("max_tpr", v.Name, p.MaxTPR, best, fmt.Sprintf("best TPR at %.2g%% FPR (%s)", 100*fpr, name))
		}
		if p.MaxCanaryGap > 0 {
			if v.Memorization == nil {
				return nil, fmt.Errorf("audit: check: max_canary_gap does not apply: variant %q has no canary measurement (only compare and demo reports insert canaries): %w", v.Name, ErrInvalidInput)
			}
			if err := inRange(v.Memorization.AccuracyGap, -1, 1, v.Name, "canary accuracy gap"); err != nil {
				return nil, err
			}
			add("max_canary_gap", v.Name, p.MaxCanaryGap, val(v.Memorization.AccuracyGap), "canary memorization gap (accuracy, inserted − held out)")
		}
		if p.MinRefModels > 0 {
			rr, err := minRefModelsRule(v, p.MinRefModels)
			if err != nil {
				return nil, err
			}
			res.Rules = append(res.Rules, rr)
			res.Passed = res.Passed && rr.Passed
		}
		if err := p.checkRisk(v, fpr, val, add); err != nil {
			return nil, err
		}
	}
	if p.MaxBNAmplification > 0 {
		if len(r.Comparisons) == 0 {
			return nil, fmt.Errorf("audit: check: max_bn_amplification does not apply: the report has no BN comparison (only compare and demo reports do): %w", ErrInvalidInput)
		}
		for _, c := range r.Comparisons {
			if err := inRange(c.Diff, math.Inf(-1), math.Inf(1), c.Without, c.Metric+" difference"); err != nil {
				return nil, err
			}
			add("max_bn_amplification", c.Without, p.MaxBNAmplification, val(c.Diff), fmt.Sprintf("%s, with BN minus %s", c.Metric, c.Without))
		}
	}
	return res, nil
}

// inRange checks that each end of iv is NaN (not measured) or a finite
// number in [lo, hi] (open at an infinite end), and that Lo ≤ Hi.
func inRange(iv Interval, lo, hi float64, variant, what string) error {
	for _, x := range []struct {
		name string
		v    float64
	}{{"estimate", iv.Estimate}, {"lower end", iv.Lo}, {"upper end", iv.Hi}} {
		if math.IsNaN(x.v) {
			continue
		}
		if math.IsInf(x.v, 0) || x.v < lo || x.v > hi {
			rng := fmt.Sprintf("[%g, %g]", lo, hi)
			if math.IsInf(lo, -1) {
				rng = "the finite numbers"
			}
			return fmt.Errorf("audit: check: variant %q: %s %s is %g, outside %s; the report is damaged or not bnaudit's: %w", variant, what, x.name, x.v, rng, ErrInvalidInput)
		}
	}
	if iv.Lo > iv.Hi {
		return fmt.Errorf("audit: check: variant %q: %s interval [%g, %g] has its ends swapped; the report is damaged: %w", variant, what, iv.Lo, iv.Hi, ErrInvalidInput)
	}
	return nil
}

// WriteJUnit writes the result as JUnit XML: one test case per rule and
// variant, a failure element for each broken rule.
func (c *CheckResult) WriteJUnit(w io.Writer) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type testsuite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := testsuite{Name: "bnaudit.check", Tests: len(c.Rules)}
	for _, r := range c.Rules {
		tc := testcase{Name: r.Rule + " [" + r.Variant + "]", Classname: "bnaudit.policy"}
		if !r.Passed {
			s.Failures++
			tc.Failure = &failure{Message: fmt.Sprintf("%s: %.4g > limit %.4g", r.Rule, r.Value, r.Limit), Type: r.Rule, Text: r.Detail}
		}
		s.Cases = append(s.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
