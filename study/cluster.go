package study

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/study/engine"
)

// Engines a study's units can run on.
const (
	EngineLocal = "local"
	EngineSlurm = "slurm"
	EngineK8s   = "k8s"
)

// ClusterOptions say how RunUnits runs a plan's units on a cluster.
type ClusterOptions struct {
	// Engine is EngineSlurm or EngineK8s.
	Engine string
	// Slurm is the job-array template (Binary, CPUs, Memory, Time,
	// Partition, Extra, Env, GlobalArgs, Parallel); Work and Units are
	// filled in.
	Slurm engine.SlurmOptions
	// K8s is the Indexed Job template; Units, WorkPath and the name are
	// filled in. Submit applies it with kubectl and follows it; without,
	// the manifest is only written.
	K8s    engine.K8sOptions
	Submit bool
	// Retries resubmits units that did not finish, up to this many times.
	Retries int
	// Detach returns after the first submission (ErrDetached).
	Detach bool
	// Poll is how often the work folder and the scheduler are read
	// (default 5 s).
	Poll time.Duration
	// Log hears one line per event (submission, progress, resubmission).
	Log func(string)
	// Run runs the scheduler's clients (default engine.ExecRunner).
	Run engine.Runner
}

// ErrDetached is RunUnits' answer when it submitted the units and did not
// wait for them (ClusterOptions.Detach, or a Kubernetes manifest written
// without Submit): rerun with --resume to follow them and gather.
var ErrDetached = errors.New("submitted; not waiting for the units")

// jobsFile records the scheduler jobs of a work folder.
type jobsFile struct {
	Engine string   `json:"engine"`
	Jobs   []string `json:"jobs"`
}

func readJobs(dir string) jobsFile {
	var j jobsFile
	if b, err := os.ReadFile(filepath.Join(dir, "jobs.json")); err == nil {
		_ = json.Unmarshal(b, &j)
	}
	return j
}

func writeJobs(dir string, j jobsFile) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "jobs.json"), append(b, '\n'))
}

// Missing lists the plan's units whose results are not in dir.
func Missing(dir string, p *Plan) []int {
	var out []int
	for _, u := range p.Units {
		if !unitDone(dir, u) {
			out = append(out, u.Index)
		}
	}
	return out
}

// RunUnits runs the plan's missing units on the engine and waits until
// every unit is done, resubmitting the ones that end without a result up
// to o.Retries times. Jobs of the folder still queued or running (an
// earlier, detached submission) are followed first, not submitted again.
func RunUnits(ctx context.Context, dir string, p *Plan, o ClusterOptions) error {
	if o.Run == nil {
		o.Run = engine.ExecRunner
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	log := func(f string, a ...any) {
		if o.Log != nil {
			o.Log(fmt.Sprintf(f, a...))
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("study: %w", err)
	}
	switch o.Engine {
	case EngineSlurm:
		return runSlurm(ctx, abs, p, o, log)
	case EngineK8s:
		return runK8s(ctx, abs, p, o, log)
	}
	return fmt.Errorf("study: engine %q: want local, slurm or k8s: %w", o.Engine, audit.ErrInvalidInput)
}

func runSlurm(ctx context.Context, dir string, p *Plan, o ClusterOptions, log func(string, ...any)) error {
	jobs := readJobs(dir)
	// An earlier submission still in the queue: follow it first.
	if jobs.Engine == EngineSlurm && len(jobs.Jobs) > 0 {
		last := jobs.Jobs[len(jobs.Jobs)-1]
		if err := followSlurm(ctx, dir, p, o, last, log); err != nil {
			return err
		}
	}
	jobs.Engine = EngineSlurm
	for attempt := 0; ; attempt++ {
		missing := Missing(dir, p)
		if len(missing) == 0 {
			return nil
		}
		if attempt > o.Retries {
			return unitsFailed(dir, p, missing, o.Retries)
		}
		so := o.Slurm
		so.Work, so.Units = dir, missing
		if so.JobName == "" {
			so.JobName = "bnaudit-" + p.Hash[:8]
		}
		script, err := engine.SlurmScript(so)
		if err != nil {
			return fmt.Errorf("study: %w: %w", err, audit.ErrInvalidInput)
		}
		path := filepath.Join(dir, "logs", fmt.Sprintf("slurm-array-%d.sh", len(jobs.Jobs)))
		if err := atomicfile.WriteFile(path, []byte(script)); err != nil {
			return fmt.Errorf("study: %w", err)
		}
		id, err := engine.SubmitSlurm(ctx, o.Run, path)
		if err != nil {
			return err
		}
		jobs.Jobs = append(jobs.Jobs, id)
		if err := writeJobs(dir, jobs); err != nil {
			return fmt.Errorf("study: %w", err)
		}
		log("slurm: job %s runs units %s (%d of %d; script %s)", id, engine.ArrayList(missing), len(missing), len(p.Units), path)
		if o.Detach {
			return ErrDetached
		}
		if err := followSlurm(ctx, dir, p, o, id, log); err != nil {
			return err
		}
	}
}

// followSlurm waits until Slurm holds no task of job, saying how many
// units are done whenever that changes.
func followSlurm(ctx context.Context, dir string, p *Plan, o ClusterOptions, job string, log func(string, ...any)) error {
	lastDone, lastActive := -1, -1
	for {
		active, err := engine.SlurmActive(ctx, o.Run, job)
		if err != nil {
			return err
		}
		done := len(p.Units) - len(Missing(dir, p))
		if done != lastDone || len(active) != lastActive {
			log("slurm: job %s: %d of %d units done, %d tasks queued or running", job, done, len(p.Units), len(active))
			lastDone, lastActive = done, len(active)
		}
		if len(active) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

func runK8s(ctx context.Context, dir string, p *Plan, o ClusterOptions, log func(string, ...any)) error {
	if len(Missing(dir, p)) == 0 {
		return nil
	}
	ko := o.K8s
	ko.Units, ko.WorkPath = len(p.Units), dir
	if ko.Name == "" {
		ko.Name = "bnaudit-" + p.Hash[:8]
	}
	if ko.Retries == 0 {
		ko.Retries = o.Retries
	}
	b, err := engine.K8sManifest(ko)
	if err != nil {
		return fmt.Errorf("study: %w: %w", err, audit.ErrInvalidInput)
	}
	path := filepath.Join(dir, "logs", "k8s-job.yaml")
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	if !o.Submit {
		log("k8s: wrote %s (%d units); apply it with `kubectl apply -f %s`, then rerun with --resume to gather", path, len(p.Units), path)
		return ErrDetached
	}
	if _, err := o.Run(ctx, "kubectl", "apply", "-f", path); err != nil {
		return err
	}
	if err := writeJobs(dir, jobsFile{Engine: EngineK8s, Jobs: []string{ko.Name}}); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	log("k8s: applied job %s (%d units)", ko.Name, len(p.Units))
	if o.Detach {
		return ErrDetached
	}
	lastDone := -1
	for {
		missing := Missing(dir, p)
		if done := len(p.Units) - len(missing); done != lastDone {
			log("k8s: job %s: %d of %d units done", ko.Name, done, len(p.Units))
			lastDone = done
		}
		if len(missing) == 0 {
			return nil
		}
		args := []string{"get", "job", ko.Name, "-o", "jsonpath={.status.conditions[*].type}"}
		if ko.Namespace != "" {
			args = append(args, "-n", ko.Namespace)
		}
		out, err := o.Run(ctx, "kubectl", args...)
		if err != nil {
			return err
		}
		if st := string(out); strings.Contains(st, "Failed") || strings.Contains(st, "Complete") {
			return unitsFailed(dir, p, missing, ko.Retries)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

// UnitsFailedError names units that ended without a result after every
// retry.
type UnitsFailedError struct {
	Units   []int
	Retries int
	// First is the first failed unit's last error, when it left one.
	First string
}

func (e *UnitsFailedError) Error() string {
	msg := fmt.Sprintf("study: units %s ended without a result after %d retries", engine.ArrayList(e.Units), e.Retries)
	if e.First != "" {
		msg += "; unit " + fmt.Sprint(e.Units[0]) + ": " + e.First
	}
	return msg + " (bnaudit status --work DIR shows each unit; logs/ holds their output)"
}

func unitsFailed(dir string, p *Plan, missing []int, retries int) error {
	e := &UnitsFailedError{Units: missing, Retries: retries}
	if b, err := os.ReadFile(unitPath(dir, missing[0], "failed")); err == nil {
		e.First = strings.TrimSpace(string(b))
	}
	return e
}
