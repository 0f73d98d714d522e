package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/study"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "the state of a study's work units: done, running, failed or missing",
		Description: "Reads the work folder of a study run with --engine slurm or k8s (or planned by any engine) and\n" +
			"prints one line per unit: its state, what it is, and where it ran and how long it took (done),\n" +
			"who holds it (running), its last error (failed), with the last line of its log.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "work", Usage: "the study's work folder (required)"},
			jsonFlag("print the units' states as JSON"),
		},
		OnUsageError: commandUsageError,
		Action: action(func(c *cli.Context) statusOptions {
			return statusOptions{Work: c.String("work"), JSON: c.Bool("json")}
		}, runStatus),
	}
}

type statusOptions struct {
	Work string
	JSON bool
}

func (o statusOptions) validate() error {
	if o.Work == "" {
		return usageErrorf("status needs --work DIR; see bnaudit status --help")
	}
	return nil
}

func runStatus(_ context.Context, o statusOptions, w io.Writer) error {
	plan, err := study.ReadPlan(o.Work)
	if err != nil {
		return err
	}
	st := study.Status(o.Work, plan)
	if o.JSON {
		return writeJSON(w, st)
	}
	count := map[string]int{}
	for _, s := range st {
		count[s.State]++
		line := fmt.Sprintf("%4d %-8s %-28s", s.Index, s.State, s.Name())
		if s.Detail != "" {
			line += " " + s.Detail
		}
		if l := lastLogLine(o.Work, s.Index); l != "" && s.State != study.StateDone {
			line += " | " + l
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "%d units: %d done, %d running, %d failed, %d missing (plan %s)\n", len(st),
		count[study.StateDone], count[study.StateRunning], count[study.StateFailed], count[study.StateMissing], plan.Hash)
	return nil
}

// lastLogLine is the last non-empty line of the unit's Slurm log.
func lastLogLine(work string, i int) string {
	f, err := os.Open(filepath.Join(work, "logs", fmt.Sprintf("unit-%d.slurm.out", i)))
	if err != nil {
		return ""
	}
	defer f.Close()
	last := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			last = t
		}
	}
	if len(last) > 120 {
		last = last[:117] + "..."
	}
	return last
}
