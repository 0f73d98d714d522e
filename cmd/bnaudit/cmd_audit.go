package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bnaudit/bnaudit/study"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func auditDataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "members", Usage: "samples the model was trained on (IDX folder/file, .npz, image folder)"},
		&cli.StringFlag{Name: "nonmembers", Usage: "samples it never saw, from the same distribution"},
		&cli.StringFlag{Name: "members-split", Value: "train", Usage: "split of an IDX folder given as --members"},
		&cli.StringFlag{Name: "nonmembers-split", Value: "test", Usage: "split of an IDX folder given as --nonmembers"},
		&cli.IntFlag{Name: "max-samples", Usage: "use at most N samples of each (0: all)"},
		&cli.StringFlag{Name: "norm", Usage: "normalization MEAN/STD the model expects (required for raw image data; e.g. 0.2860/0.3530)"},
		&cli.IntFlag{Name: "bootstrap", Value: 1000, Usage: "bootstrap replicates"},
		&cli.IntFlag{Name: "ref-models", Usage: "train this many reference models (random halves of members ∪ non-members ∪ population) for LiRA, RMIA and Feldman–Zhang (0: threshold attacks only)"},
		&cli.StringFlag{Name: "lira-variance", Value: "auto", Usage: "LiRA's Gaussians: fixed (one pooled σ, better with few reference models), per-sample, or auto (per-sample from 64 reference models on)"},
		&cli.StringFlag{Name: "population", Usage: "more data from the same distribution, neither member nor audited non-member: reference models also train on it and RMIA compares against it (needs --ref-models)"},
		&cli.StringFlag{Name: "population-split", Value: "train", Usage: "split of an IDX folder given as --population"},
		&cli.IntFlag{Name: "jobs", Value: 1, Usage: "reference models trained at once (the threads are split between them)"},
		&cli.BoolFlag{Name: "no-cache", Usage: "do not keep logits in OUTPUT/cache"},
		&cli.IntFlag{Name: "ref-epochs", Value: 10, Usage: "reference models: epochs"},
		&cli.IntFlag{Name: "ref-batch", Value: 64, Usage: "reference models: batch size"},
		&cli.Float64Flag{Name: "ref-lr", Value: 0.02, Usage: "reference models: learning rate (SGD, momentum 0.9, cosine)"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the bootstrap"},
	}
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "audit a trained model: membership inference on members vs non-members, with intervals",
		ArgsUsage: "MODEL",
		Description: "Runs the threshold attacks (loss, confidence, entropy, modified entropy) on MODEL with its\n" +
			"training samples (--members) against unseen ones (--nonmembers), reports AUC, advantage and\n" +
			"TPR at 0.1% and 1% FPR with 95% bootstrap intervals, and the BN layers found. With --ref-models K\n" +
			"it trains K reference models of the same architecture (--jobs at a time; cached in OUTPUT) for LiRA,\n" +
			"RMIA and Feldman–Zhang memorization; --population adds data neither member nor audited. Reports\n" +
			"slices (per class, correct/incorrect) and the most exposed members. Writes report.json,\n" +
			"report.md, report.html, scores.csv and signals.npz to --output.\n\n" + exitCodesHelp,
		Flags:        append(auditDataFlags(), &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report folder (required)"}),
		OnUsageError: commandUsageError,
		Action: func(c *cli.Context) error {
			if c.String("output") == "" {
				return usageErrorf("audit needs --output; see bnaudit audit --help")
			}
			m, err := loadModel(c)
			if err != nil {
				return err
			}
			r, err := runAudit(c, m)
			if err != nil {
				return err
			}
			if err := report.Write(c.String("output"), r); err != nil {
				return err
			}
			if err := report.WriteMarkdown(c.App.Writer, r); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "\nreport: %s\n", filepath.Join(c.String("output"), "report.html"))
			return nil
		},
	}
}

// runAudit loads the data and audits a model.
func runAudit(c *cli.Context, m *onnxio.Model) (*audit.Report, error) {
	if c.String("members") == "" || c.String("nonmembers") == "" {
		return nil, usageErrorf("auditing a model needs --members and --nonmembers")
	}
	if c.String("norm") == "" {
		return nil, usageErrorf("auditing needs --norm MEAN/STD: the normalization the model was trained with")
	}
	norm, err := parseNorm(c.String("norm"))
	if err != nil {
		return nil, err
	}
	load := func(path, split string) (*dataset.Dataset, error) {
		d, err := dataset.Load(path, dataset.LoadOptions{Split: split, MaxSamples: c.Int("max-samples")})
		if err != nil {
			return nil, err
		}
		return d.WithNorm(norm)
	}
	mem, err := load(c.String("members"), c.String("members-split"))
	if err != nil {
		return nil, err
	}
	non, err := load(c.String("nonmembers"), c.String("nonmembers-split"))
	if err != nil {
		return nil, err
	}
	var pop *dataset.Dataset
	if p := c.String("population"); p != "" {
		if c.Int("ref-models") < 2 {
			return nil, usageErrorf("--population serves reference models: add --ref-models K (K ≥ 2)")
		}
		// The whole population, whatever --max-samples says of the audited sets.
		d, err := dataset.Load(p, dataset.LoadOptions{Split: c.String("population-split")})
		if err != nil {
			return nil, err
		}
		if pop, err = d.WithNorm(norm); err != nil {
			return nil, err
		}
	}
	if _, err := study.LiRAVarianceFor(c.String("lira-variance"), c.Int("ref-models")); err != nil {
		return nil, usageErrorf("--lira-variance must be auto, fixed or per-sample, not %q", c.String("lira-variance"))
	}
	if r := c.Int("ref-models"); r == 1 || r < 0 {
		return nil, usageErrorf("--ref-models needs 0 or at least 2 reference models, not %d", r)
	}
	opts, err := sessionOptions(c)
	if err != nil {
		return nil, err
	}
	refDir := ""
	var cache study.SignalCache
	if out := c.String("output"); out != "" {
		refDir = filepath.Join(out, "reference-models")
		if !c.Bool("no-cache") {
			cache.Dir = filepath.Join(out, "cache")
		}
	}
	return study.Audit(c.Context, study.AuditConfig{Model: m, Members: mem, NonMembers: non, Population: pop, Jobs: c.Int("jobs"), Cache: cache,
		Bootstrap: audit.BootstrapOptions{Replicates: c.Int("bootstrap"), Seed: c.Uint64("seed")},
		Session:   opts, Command: strings.Join(os.Args, " "),
		References: c.Int("ref-models"), RefDir: refDir, LiRAVariance: c.String("lira-variance"),
		Train: trainer.Config{Epochs: c.Int("ref-epochs"), Batch: c.Int("ref-batch"), Optimizer: trainer.SGD(0.9, 5e-4, false),
			LR: float32(c.Float64("ref-lr")), Schedule: trainer.Cosine, Session: opts},
		Progress: func(done, total int, reused bool) {
			what := "trained"
			if reused {
				what = "reused"
			}
			fmt.Fprintf(c.App.ErrWriter, "reference model %d/%d %s\n", done, total, what)
		}})
}
