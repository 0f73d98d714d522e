package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SlurmOptions describe one job array of work units.
type SlurmOptions struct {
	// Binary is the bnaudit executable as the compute nodes see it.
	Binary string
	// Work is the shared work folder (the same path on every node).
	Work string
	// Units lists the unit indices the array runs (all units of a plan,
	// or the failed ones on a resubmission).
	Units []int
	// Parallel caps how many array tasks run at once (%P); 0: no cap.
	Parallel int
	// CPUs per task; the worker runs with --threads CPUs.
	CPUs int
	// Memory per task as Slurm reads it (e.g. "4G"); "" leaves it to the
	// cluster's default.
	Memory string
	// Time limit per task (e.g. "02:00:00"); "" leaves the default.
	Time string
	// Partition; "" is the cluster's default.
	Partition string
	// JobName names the array in squeue.
	JobName string
	// Extra lines, each one "#SBATCH …" directive or a bare option
	// ("--account=lab" becomes "#SBATCH --account=lab").
	Extra []string
	// Env are shell lines run before the worker (e.g. module loads or an
	// ONNXRUNTIME_SHARED_LIBRARY_PATH export).
	Env []string
	// GlobalArgs go before the worker command (e.g. --ort-lib PATH).
	GlobalArgs []string
}

// ErrScheduler wraps failures of a scheduler's client (sbatch, squeue,
// kubectl): missing, refusing, or answering what cannot be read.
var ErrScheduler = errors.New("the scheduler failed")

var slurmToken = regexp.MustCompile(`^[A-Za-z0-9_.:+-]+$`)

// ArrayList writes unit indices as Slurm's --array list: runs of
// consecutive indices as ranges (0-7,9,12-13).
func ArrayList(units []int) string {
	u := slices.Clone(units)
	slices.Sort(u)
	u = slices.Compact(u)
	var parts []string
	for i := 0; i < len(u); {
		j := i
		for j+1 < len(u) && u[j+1] == u[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(u[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", u[i], u[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && regexp.MustCompile(`^[A-Za-z0-9_./:=+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SlurmScript renders the sbatch script of one job array: each task runs
// unit $SLURM_ARRAY_TASK_ID and logs to WORK/logs/unit-I.slurm.out.
func SlurmScript(o SlurmOptions) (string, error) {
	if o.Binary == "" || o.Work == "" {
		return "", fmt.Errorf("engine: slurm: the bnaudit binary and the work folder are required")
	}
	if len(o.Units) == 0 {
		return "", fmt.Errorf("engine: slurm: no unit to run")
	}
	for _, u := range o.Units {
		if u < 0 {
			return "", fmt.Errorf("engine: slurm: unit %d is negative", u)
		}
	}
	if o.CPUs < 1 {
		o.CPUs = 1
	}
	for name, v := range map[string]string{"memory": o.Memory, "time": o.Time, "partition": o.Partition, "job name": o.JobName} {
		if v != "" && !slurmToken.MatchString(v) {
			return "", fmt.Errorf("engine: slurm: %s %q has characters Slurm does not take", name, v)
		}
	}
	var b strings.Builder
	b.WriteString("#!/bin/bash\n# Written by bnaudit: one array task per work unit of the study in " + o.Work + ".\n")
	array := ArrayList(o.Units)
	if o.Parallel > 0 {
		array += "%" + strconv.Itoa(o.Parallel)
	}
	line := func(f string, a ...any) { fmt.Fprintf(&b, "#SBATCH "+f+"\n", a...) }
	if o.JobName != "" {
		line("--job-name=%s", o.JobName)
	}
	line("--array=%s", array)
	line("--ntasks=1")
	line("--cpus-per-task=%d", o.CPUs)
	if o.Memory != "" {
		line("--mem=%s", o.Memory)
	}
	if o.Time != "" {
		line("--time=%s", o.Time)
	}
	if o.Partition != "" {
		line("--partition=%s", o.Partition)
	}
	line("--output=%s/logs/unit-%%a.slurm.out", o.Work)
	for _, e := range o.Extra {
		e = strings.TrimSpace(e)
		if strings.ContainsAny(e, "\n\r") {
			return "", fmt.Errorf("engine: slurm: extra line %q spans lines", e)
		}
		if !strings.HasPrefix(e, "#SBATCH") {
			e = "#SBATCH " + e
		}
		b.WriteString(e + "\n")
	}
	b.WriteString("set -eu\n")
	for _, e := range o.Env {
		if strings.ContainsAny(e, "\n\r") {
			return "", fmt.Errorf("engine: slurm: environment line %q spans lines", e)
		}
		b.WriteString(e + "\n")
	}
	cmd := []string{shellQuote(o.Binary)}
	for _, g := range o.GlobalArgs {
		cmd = append(cmd, shellQuote(g))
	}
	cmd = append(cmd, "--threads", strconv.Itoa(o.CPUs), "worker", "--work", shellQuote(o.Work), "--unit", `"$SLURM_ARRAY_TASK_ID"`)
	b.WriteString("exec " + strings.Join(cmd, " ") + "\n")
	return b.String(), nil
}

// Runner runs a command-line client and returns its standard output; a
// test may replace it. The default runs the program found on PATH.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs name with args and returns its standard output; a
// failure carries the first line of its standard error.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("engine: %s is not installed or not on PATH: %w", name, ErrScheduler)
		}
		return nil, fmt.Errorf("engine: %s %s: %v: %s: %w", name, strings.Join(args, " "), err, msg, ErrScheduler)
	}
	return out, nil
}

// SubmitSlurm submits an sbatch script file and returns the job id.
func SubmitSlurm(ctx context.Context, run Runner, script string) (string, error) {
	if run == nil {
		run = ExecRunner
	}
	out, err := run(ctx, "sbatch", "--parsable", script)
	if err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";") // "123" or "123;cluster"
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("engine: sbatch answered %q, not a job id: %w", strings.TrimSpace(string(out)), ErrScheduler)
	}
	return id, nil
}

// SlurmActive returns the unit indices of job's array tasks that Slurm
// still holds (pending or running), by squeue. A finished array gives
// none.
func SlurmActive(ctx context.Context, run Runner, job string) (map[int]string, error) {
	if run == nil {
		run = ExecRunner
	}
	out, err := run(ctx, "squeue", "-h", "-r", "-j", job, "-o", "%i %t")
	if err != nil {
		// squeue refuses a job id it no longer knows: nothing is active.
		if strings.Contains(err.Error(), "Invalid job id") {
			return map[int]string{}, nil
		}
		return nil, err
	}
	active := map[int]string{}
	for _, ln := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(ln)
		if len(f) != 2 {
			continue
		}
		_, task, ok := strings.Cut(f[0], "_")
		if !ok {
			continue
		}
		if strings.HasPrefix(task, "[") { // a pending range: 1234_[3-7%2]
			for _, u := range expandArray(strings.Trim(task, "[]")) {
				active[u] = f[1]
			}
			continue
		}
		if u, err := strconv.Atoi(task); err == nil {
			active[u] = f[1]
		}
	}
	return active, nil
}

// expandArray reads a Slurm array list (0-3,7,9-10%2) back into indices.
func expandArray(s string) []int {
	s, _, _ = strings.Cut(s, "%")
	var out []int
	for _, p := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(p, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for u := a; u <= b; u++ {
			out = append(out, u)
		}
	}
	return out
}
