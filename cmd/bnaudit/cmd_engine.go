package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/internal/lockfile"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/study/engine"
)

// engineFlags choose where a study's work units run.
func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "engine", Value: study.EngineLocal, Usage: "where the study's work units run: local (this process), slurm (one job array) or k8s (one Indexed Job)"},
		&cli.StringFlag{Name: "work", Usage: "slurm, k8s: the shared work folder every node sees (plan, inputs, unit results)"},
		&cli.BoolFlag{Name: "detach", Usage: "slurm, k8s: return once the units are submitted; rerun the command with --resume to follow them and gather"},
		&cli.IntFlag{Name: "retries", Value: 2, Usage: "slurm, k8s: resubmit units that end without a result up to this many times"},
		&cli.IntFlag{Name: "cpus", Value: 1, Usage: "slurm: CPUs per array task (the worker runs with as many threads)"},
		&cli.StringFlag{Name: "mem", Usage: "slurm: memory per task (e.g. 4G); k8s: memory per pod (e.g. 4Gi)"},
		&cli.StringFlag{Name: "time-limit", Usage: "slurm: time limit per task (e.g. 02:00:00)"},
		&cli.StringFlag{Name: "partition", Usage: "slurm: partition"},
		&cli.IntFlag{Name: "parallel", Usage: "slurm, k8s: units running at once (0: as many as the cluster gives)"},
		&cli.StringSliceFlag{Name: "sbatch", Usage: "slurm: extra #SBATCH option (repeatable), e.g. --sbatch --account=lab"},
		&cli.StringFlag{Name: "k8s-image", Usage: "k8s: image holding bnaudit and ONNX Runtime (deploy/Dockerfile)"},
		&cli.StringFlag{Name: "k8s-claim", Usage: "k8s: ReadWriteMany PersistentVolumeClaim holding --work, mounted at the same path"},
		&cli.StringFlag{Name: "k8s-namespace", Usage: "k8s: namespace"},
		&cli.StringFlag{Name: "k8s-cpu", Value: "1", Usage: "k8s: CPU per pod"},
		&cli.BoolFlag{Name: "submit", Usage: "k8s: apply the Job with kubectl and follow it (else only write the manifest)"},
	}
}

// engineOptions are the engine flags.
type engineOptions struct {
	Engine, Work         string
	Detach               bool
	Retries, CPUs        int
	Mem, Time, Partition string
	Parallel             int
	Sbatch               []string
	Image, Claim, NS     string
	K8sCPU               string
	Submit               bool
}

func readEngine(c *cli.Context) engineOptions {
	return engineOptions{Engine: c.String("engine"), Work: c.String("work"), Detach: c.Bool("detach"), Retries: c.Int("retries"),
		CPUs: c.Int("cpus"), Mem: c.String("mem"), Time: c.String("time-limit"), Partition: c.String("partition"),
		Parallel: c.Int("parallel"), Sbatch: c.StringSlice("sbatch"), Image: c.String("k8s-image"), Claim: c.String("k8s-claim"),
		NS: c.String("k8s-namespace"), K8sCPU: c.String("k8s-cpu"), Submit: c.Bool("submit")}
}

func (e engineOptions) validate() error {
	switch e.Engine {
	case "", study.EngineLocal:
		return nil
	case study.EngineSlurm, study.EngineK8s:
	default:
		return usageErrorf("--engine must be local, slurm or k8s, not %q", e.Engine)
	}
	switch {
	case e.Work == "":
		return usageErrorf("--engine %s needs --work DIR, a folder every node sees", e.Engine)
	case e.Retries < 0:
		return usageErrorf("--retries must be 0 or more, not %d", e.Retries)
	case e.CPUs < 1:
		return usageErrorf("--cpus must be 1 or more, not %d", e.CPUs)
	case e.Parallel < 0:
		return usageErrorf("--parallel must be 0 or more, not %d", e.Parallel)
	case e.Engine == study.EngineK8s && (e.Image == "" || e.Claim == ""):
		return usageErrorf("--engine k8s needs --k8s-image and --k8s-claim")
	}
	return nil
}

// cluster is the engine options as the library takes them; globalArgs
// carry this process's global flags to the workers.
func (e engineOptions) cluster(g globalOptions, log io.Writer) (study.ClusterOptions, error) {
	exe, err := os.Executable()
	if err != nil {
		return study.ClusterOptions{}, fmt.Errorf("cannot find the bnaudit binary to run on the nodes: %w", err)
	}
	var global []string
	if g.ORTLib != "" {
		lib, err := filepath.Abs(g.ORTLib)
		if err != nil {
			return study.ClusterOptions{}, err
		}
		global = append(global, "--ort-lib", lib)
	}
	global = append(global, "--nchwc", g.NCHWc)
	var env []string
	if lib := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH"); lib != "" && g.ORTLib == "" {
		env = append(env, "export ONNXRUNTIME_SHARED_LIBRARY_PATH="+shellWord(lib))
	}
	return study.ClusterOptions{
		Engine: e.Engine, Retries: e.Retries, Detach: e.Detach, Submit: e.Submit,
		Slurm: engine.SlurmOptions{Binary: exe, CPUs: e.CPUs, Memory: e.Mem, Time: e.Time, Partition: e.Partition,
			Parallel: e.Parallel, Extra: e.Sbatch, Env: env, GlobalArgs: global},
		K8s: engine.K8sOptions{Namespace: e.NS, Image: e.Image, WorkClaim: e.Claim, CPU: e.K8sCPU, Memory: e.Mem,
			Parallel: e.Parallel, GlobalArgs: global},
		Log: func(s string) { fmt.Fprintln(log, s) },
	}, nil
}

// shellWord quotes s for a POSIX shell.
func shellWord(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
		} else {
			out += string(r)
		}
	}
	return out + "'"
}

// runOnCluster plans a study into the work folder (write), runs its units
// on the engine, and gathers the report into output.
func runOnCluster(ctx context.Context, g globalOptions, e engineOptions, write func(work string) (*study.Plan, error), output string, resume bool, w io.Writer) error {
	start := time.Now()
	if !resume {
		if _, err := study.ReadPlan(e.Work); err == nil {
			return usageErrorf("%s holds a study already; rerun with --resume to continue it, or give a new --work folder", e.Work)
		}
	}
	if err := os.MkdirAll(e.Work, 0o755); err != nil {
		return fmt.Errorf("cannot create the work folder: %w", err)
	}
	// One coordinator per work folder (workers lock their units only).
	lock, err := lockfile.Acquire(e.Work, "bnaudit "+e.Engine+" study")
	if err != nil {
		return err
	}
	defer lock.Release()
	plan, err := write(e.Work)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "plan: %d units in %s (plan %s)\n", len(plan.Units), e.Work, plan.Hash)
	co, err := e.cluster(g, g.Stderr)
	if err != nil {
		return err
	}
	err = study.RunUnits(ctx, e.Work, plan, co)
	if errors.Is(err, study.ErrDetached) {
		if e.Engine == study.EngineK8s && !e.Submit {
			fmt.Fprintf(w, "manifest: %s; apply it with kubectl apply -f, follow with `bnaudit status --work %s`, then rerun this command with --resume to gather\n",
				filepath.Join(e.Work, "logs", "k8s-job.yaml"), e.Work)
			return nil
		}
		fmt.Fprintf(w, "submitted; follow with `bnaudit status --work %s`, then rerun this command with --resume to gather\n", e.Work)
		return nil
	}
	if err != nil {
		return err
	}
	return gather(ctx, g, e.Work, plan, output, start, w)
}

// gather builds the report from a work folder whose units are all done.
func gather(ctx context.Context, g globalOptions, work string, plan *study.Plan, output string, start time.Time, w io.Writer) error {
	session, err := g.session()
	if err != nil {
		return err
	}
	built, err := plan.Build(work, session)
	if err != nil {
		return err
	}
	rep, err := built.Gather(ctx)
	if err != nil {
		return err
	}
	rep.Units = study.UnitRuns(study.Status(work, plan))
	if err := report.Write(output, rep); err != nil {
		return err
	}
	if err := report.WriteMarkdown(w, rep); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nreport: %s (%s)\n", filepath.Join(output, "report.html"), time.Since(start).Round(time.Second))
	return nil
}
