package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/internal/atomicfile"
)

func checkCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "policy", Usage: "YAML policy file (max_auc, max_tpr, tpr_at_fpr, max_canary_gap, max_bn_amplification, max_ppv, prior, max_epsilon_lower_bound, min_ref_models, conservative)"},
		&cli.Float64Flag{Name: "max-auc", Usage: "limit on the best membership-inference AUC"},
		&cli.Float64Flag{Name: "max-tpr", Usage: "limit on the best TPR at --tpr-at-fpr"},
		&cli.Float64Flag{Name: "tpr-at-fpr", Value: 0.01, Usage: "FPR of --max-tpr"},
		&cli.Float64Flag{Name: "max-canary-gap", Usage: "limit on the canary memorization gap"},
		&cli.Float64Flag{Name: "max-bn-amplification", Usage: "limit on every with-BN-minus-without difference (compare reports)"},
		&cli.IntFlag{Name: "min-ref-models", Usage: "require reference-model attacks (LiRA, RMIA, Feldman–Zhang) resting on at least N reference models"},
		&cli.Float64Flag{Name: "max-ppv", Usage: "limit on the best attack's precision (PPV) at --tpr-at-fpr, at the prior --prior (one value)"},
		&cli.Float64Flag{Name: "max-epsilon-lower-bound", Usage: "limit on the one-run lower bound on ε from the canaries (compare reports)"},
		&cli.BoolFlag{Name: "conservative", Usage: "compare the upper end of each 95% interval, not the estimate"},
		&cli.StringFlag{Name: "junit", Usage: "also write the result as JUnit XML to this file"},
		jsonFlag("print the result as JSON"),
	}
	return &cli.Command{
		Name:      "check",
		Usage:     "pre-deploy gate: check a report (or audit a model) against a privacy policy",
		ArgsUsage: "REPORT|MODEL",
		Description: "REPORT is a report folder or report.json written by compare, audit or demo; a MODEL (.onnx) is\n" +
			"audited first (with the audit flags). Limits come from --policy and/or flags (flags win).\n" +
			"Exit codes: 0 the policy holds; 1 it does not; 2 bad usage or input (missing file, bad policy);\n" +
			"3 runtime error. Output as text, --json, and --junit FILE for CI systems.",
		Flags:        append(flags, auditDataFlags()...),
		OnUsageError: commandUsageError,
		Action:       jsonAction(readCheck, runCheck),
	}
}

// checkOptions are the options of check.
type checkOptions struct {
	// Input is a report folder, a report.json, or a model (.onnx) to audit
	// with the options Audit.
	Input      string
	nargs      int
	PolicyFile string
	// Limits given as flags (nil: not given) override the policy file's.
	MaxAUC, MaxTPR, TPRAtFPR, MaxCanaryGap, MaxBNAmplification *float64
	MinRefModels                                               *int
	MaxPPV, Prior, MaxEpsilonLowerBound                        *float64
	// priors counts the --prior values given (max_ppv takes one).
	priors int
	// DefaultTPRAtFPR applies where neither flag nor file sets the FPR.
	DefaultTPRAtFPR float64
	Conservative    bool
	Audit           auditOptions
	JUnit           string
	JSON            bool
}

func readCheck(c *cli.Context) checkOptions {
	opts := checkOptions{Input: c.Args().First(), nargs: c.NArg(), PolicyFile: c.String("policy"), Audit: readAudit(c),
		DefaultTPRAtFPR: c.Float64("tpr-at-fpr"), Conservative: c.Bool("conservative"), JUnit: c.String("junit"), JSON: c.Bool("json")}
	// Limits set on the command line override the policy file's.
	for _, f := range []struct {
		name string
		dst  **float64
	}{{"max-auc", &opts.MaxAUC}, {"max-tpr", &opts.MaxTPR}, {"tpr-at-fpr", &opts.TPRAtFPR},
		{"max-canary-gap", &opts.MaxCanaryGap}, {"max-bn-amplification", &opts.MaxBNAmplification},
		{"max-ppv", &opts.MaxPPV}, {"max-epsilon-lower-bound", &opts.MaxEpsilonLowerBound}} {
		if c.IsSet(f.name) {
			v := c.Float64(f.name)
			*f.dst = &v
		}
	}
	if c.IsSet("min-ref-models") {
		n := c.Int("min-ref-models")
		opts.MinRefModels = &n
	}
	if c.IsSet("prior") {
		priors := c.Float64Slice("prior")
		opts.priors = len(priors)
		if len(priors) > 0 {
			opts.Prior = &priors[0]
		}
	}
	return opts
}

// isModel says whether the input is a model to audit.
func (o checkOptions) isModel() bool { return strings.HasSuffix(strings.ToLower(o.Input), ".onnx") }

func (o checkOptions) validate() error {
	if o.nargs != 1 {
		return usageErrorf("check needs one REPORT or MODEL argument; see bnaudit check --help")
	}
	if o.priors > 1 && o.MaxPPV != nil {
		return usageErrorf("--max-ppv applies at one prior; give --prior once")
	}
	if o.JUnit != "" {
		if err := checkOutputFile("--junit", o.JUnit); err != nil {
			return err
		}
	}
	if !o.isModel() {
		return nil
	}
	return o.Audit.validateData()
}

func (o checkOptions) jsonOutput() bool { return o.JSON }

// policy reads the policy file and applies the limits given as flags.
func (o checkOptions) policy() (audit.Policy, error) {
	var p audit.Policy
	if o.PolicyFile != "" {
		var err error
		if p, err = audit.LoadPolicy(o.PolicyFile); err != nil {
			return p, err
		}
	}
	for _, f := range []struct {
		flag *float64
		dst  *float64
	}{{o.MaxAUC, &p.MaxAUC}, {o.MaxTPR, &p.MaxTPR}, {o.TPRAtFPR, &p.TPRAtFPR},
		{o.MaxCanaryGap, &p.MaxCanaryGap}, {o.MaxBNAmplification, &p.MaxBNAmplification},
		{o.MaxPPV, &p.MaxPPV}, {o.Prior, &p.Prior}, {o.MaxEpsilonLowerBound, &p.MaxEpsilonLowerBound}} {
		if f.flag != nil {
			*f.dst = *f.flag
		}
	}
	if o.MinRefModels != nil {
		p.MinRefModels = *o.MinRefModels
	}
	if p.TPRAtFPR == 0 {
		p.TPRAtFPR = o.DefaultTPRAtFPR
	}
	if o.Conservative {
		p.Conservative = true
	}
	return p, nil
}

// report audits the input model or reads the input report.
func (o checkOptions) report(ctx context.Context) (*audit.Report, error) {
	if o.isModel() {
		m, err := o.Audit.global.loadModel(o.Input)
		if err != nil {
			return nil, err
		}
		return auditModel(ctx, o.Audit, m)
	}
	path := o.Input
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, report.JSONFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	r, err := report.ReadJSON(f)
	f.Close()
	if err != nil {
		return nil, badInput(fmt.Errorf("check: %s: %w", path, err))
	}
	return r, nil
}

func runCheck(ctx context.Context, o checkOptions, w io.Writer) error {
	p, err := o.policy()
	if err != nil {
		return err
	}
	r, err := o.report(ctx)
	if err != nil {
		return err
	}
	res, err := audit.Check(r, p)
	if err != nil {
		return err
	}
	if o.JUnit != "" {
		var buf bytes.Buffer
		if err := res.WriteJUnit(&buf); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(o.JUnit, buf.Bytes()); err != nil {
			return err
		}
	}
	if o.JSON {
		if err := writeJSON(w, res); err != nil {
			return err
		}
	} else {
		for _, rr := range res.Rules {
			status := "ok  "
			if !rr.Passed {
				status = "FAIL"
			}
			fmt.Fprintf(w, "%s %-22s %-12s %.4g (limit %.4g): %s\n", status, rr.Rule, clip(rr.Variant, 12), rr.Value, rr.Limit, clip(rr.Detail, 100))
		}
	}
	if !res.Passed {
		failed := 0
		for _, rr := range res.Rules {
			if !rr.Passed {
				failed++
			}
		}
		return checkFailedf("check: %d of %d rules failed", failed, len(res.Rules))
	}
	return nil
}
