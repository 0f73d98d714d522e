package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/study"
)

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run one work unit of a study planned into a work folder (what a Slurm array task or a Kubernetes pod runs)",
		Description: "Runs unit --unit of the plan in --work: one training run of a variant and seed (with its evaluation\n" +
			"and gradient-norm study) or one reference model. The result goes into the work folder through\n" +
			"atomic renames; a unit whose result is there is skipped; a unit another worker is running is left\n" +
			"to it. One line per epoch goes to stdout. compare --engine slurm|k8s starts the workers.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "work", Usage: "the study's work folder (required)"},
			&cli.IntFlag{Name: "unit", Value: -1, Usage: "the unit's index in the plan (required)"},
		},
		OnUsageError: commandUsageError,
		Action: action(func(c *cli.Context) workerOptions {
			return workerOptions{global: readGlobal(c), Work: c.String("work"), Unit: c.Int("unit"), unitSet: c.IsSet("unit")}
		}, runWorker),
	}
}

type workerOptions struct {
	global  globalOptions
	Work    string
	Unit    int
	unitSet bool
}

func (o workerOptions) validate() error {
	if o.Work == "" || !o.unitSet {
		return usageErrorf("worker needs --work DIR and --unit I; see bnaudit worker --help")
	}
	if o.Unit < 0 {
		return usageErrorf("--unit must be 0 or more, not %d", o.Unit)
	}
	return o.global.validateSession()
}

// workerEngine names the engine that started this worker, from the
// variables Slurm and Kubernetes set.
func workerEngine() (name, job string) {
	if id := os.Getenv("SLURM_ARRAY_JOB_ID"); id != "" {
		return study.EngineSlurm, id + "_" + os.Getenv("SLURM_ARRAY_TASK_ID")
	}
	if os.Getenv("JOB_COMPLETION_INDEX") != "" {
		return study.EngineK8s, os.Getenv("HOSTNAME")
	}
	return study.EngineLocal, ""
}

func runWorker(ctx context.Context, o workerOptions, w io.Writer) error {
	plan, err := study.ReadPlan(o.Work)
	if err != nil {
		return err
	}
	if o.Unit >= len(plan.Units) {
		return usageErrorf("the plan in %s has units 0 to %d, not %d", o.Work, len(plan.Units)-1, o.Unit)
	}
	session, err := o.global.session()
	if err != nil {
		return err
	}
	built, err := plan.Build(o.Work, session)
	if err != nil {
		return err
	}
	name, job := workerEngine()
	u := plan.Units[o.Unit]
	fmt.Fprintf(w, "unit %d: %s (key %s) on %s\n", u.Index, u.Name(), u.Key, name)
	done, err := study.RunUnit(ctx, o.Work, plan, o.Unit, built, study.RunUnitOptions{Engine: name, Job: job,
		Log: func(s string) { fmt.Fprintln(w, s) }})
	switch {
	case errors.Is(err, study.ErrUnitBusy):
		fmt.Fprintf(w, "unit %d: %v; leaving it to that worker\n", u.Index, err)
		return nil
	case err != nil:
		return err
	case done:
		fmt.Fprintf(w, "unit %d: done already\n", u.Index)
	default:
		fmt.Fprintf(w, "unit %d: done\n", u.Index)
	}
	return nil
}
