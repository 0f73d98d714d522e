package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bnaudit/bnaudit/internal/atomicfile"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/onnxio"
)

func checkCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "policy", Usage: "YAML policy file (max_auc, max_tpr, tpr_at_fpr, max_canary_gap, max_bn_amplification, conservative)"},
		&cli.Float64Flag{Name: "max-auc", Usage: "limit on the best membership-inference AUC"},
		&cli.Float64Flag{Name: "max-tpr", Usage: "limit on the best TPR at --tpr-at-fpr"},
		&cli.Float64Flag{Name: "tpr-at-fpr", Value: 0.01, Usage: "FPR of --max-tpr"},
		&cli.Float64Flag{Name: "max-canary-gap", Usage: "limit on the canary memorization gap"},
		&cli.Float64Flag{Name: "max-bn-amplification", Usage: "limit on every with-BN-minus-without difference (compare reports)"},
		&cli.BoolFlag{Name: "conservative", Usage: "compare the upper end of each 95% interval, not the estimate"},
		&cli.StringFlag{Name: "junit", Usage: "also write the result as JUnit XML to this file"},
		&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
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
		Action:       runCheck,
	}
}

func runCheck(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf("check needs one REPORT or MODEL argument; see bnaudit check --help")
	}
	var p audit.Policy
	var err error
	if path := c.String("policy"); path != "" {
		if p, err = audit.LoadPolicy(path); err != nil {
			return err
		}
	}
	if c.IsSet("max-auc") {
		p.MaxAUC = c.Float64("max-auc")
	}
	if c.IsSet("max-tpr") {
		p.MaxTPR = c.Float64("max-tpr")
	}
	if c.IsSet("tpr-at-fpr") || p.TPRAtFPR == 0 {
		p.TPRAtFPR = c.Float64("tpr-at-fpr")
	}
	if c.IsSet("max-canary-gap") {
		p.MaxCanaryGap = c.Float64("max-canary-gap")
	}
	if c.IsSet("max-bn-amplification") {
		p.MaxBNAmplification = c.Float64("max-bn-amplification")
	}
	if c.Bool("conservative") {
		p.Conservative = true
	}
	arg := c.Args().First()
	var r *audit.Report
	if strings.HasSuffix(strings.ToLower(arg), ".onnx") {
		m, err := onnxio.LoadWithLimits(arg, limits(c))
		if err != nil {
			return err
		}
		if r, err = runAudit(c, m); err != nil {
			return err
		}
	} else {
		path := arg
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			path = filepath.Join(path, report.JSONFile)
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		r, err = report.ReadJSON(f)
		f.Close()
		if err != nil {
			return &exitError{exitBadInput, fmt.Errorf("check: %s: %w", path, err)}
		}
	}
	res, err := audit.Check(r, p)
	if err != nil {
		return err
	}
	if j := c.String("junit"); j != "" {
		var buf bytes.Buffer
		if err := res.WriteJUnit(&buf); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(j, buf.Bytes()); err != nil {
			return err
		}
	}
	w := c.App.Writer
	if c.Bool("json") {
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
