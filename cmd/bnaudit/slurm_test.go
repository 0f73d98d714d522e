package main

// Work units on a real Slurm cluster. scripts/slurm-local.sh starts a
// one-node cluster on a Debian machine (CI does); without one these tests
// skip, saying so, unless BNAUDIT_REQUIRE_SLURM is set.

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slurmBinary builds bnaudit for the array tasks (they run it as a
// program, outside this test binary).
func slurmBinary(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("sinfo", "-h", "-o", "%t").Output(); err != nil || !strings.Contains(string(out), "idle") && !strings.Contains(string(out), "mix") && !strings.Contains(string(out), "alloc") {
		if os.Getenv("BNAUDIT_REQUIRE_SLURM") != "" {
			t.Fatalf("BNAUDIT_REQUIRE_SLURM is set but no Slurm node answers (sinfo: %q, %v); start one with scripts/slurm-local.sh start", out, err)
		}
		t.Skip("no Slurm cluster here: start one with `scripts/slurm-local.sh start` (root, Debian) to run the Slurm tests")
	}
	if os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH") == "" {
		t.Skip("the array tasks need ONNXRUNTIME_SHARED_LIBRARY_PATH")
	}
	bin := filepath.Join(t.TempDir(), "bnaudit")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// bn runs the binary; it returns stdout, stderr and the exit code.
func bn(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// study is a small comparison of the bundled model and data: 2 variants,
// 1 seed, 4 reference models each: 10 units.
func studyArgs(extra ...string) []string {
	args := []string{"--threads", "1", "compare", "../../testdata/models/small_cnn.training.onnx",
		"--data", "../../testdata/fashion-mnist", "--ood", "../../testdata/mnist-canaries",
		"--members", "400", "--non-members", "400", "--canaries", "10", "--epochs", "2",
		"--variants", "original,remove", "--seeds", "1", "--ref-models", "4",
		"--grad-checkpoints", "1", "--inbatch=false", "--norm", "0.2860/0.3530", "--quiet"}
	return append(args, extra...)
}

// aucs reads every AUC interval of a report.json, by variant and attack.
func aucs(t *testing.T, dir string) map[string][3]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Variants []struct {
			Name    string `json:"name"`
			Attacks []struct {
				Attack string             `json:"attack"`
				AUC    map[string]float64 `json:"auc"`
			} `json:"attacks"`
			CanaryAttacks []struct {
				Attack string             `json:"attack"`
				AUC    map[string]float64 `json:"auc"`
			} `json:"canary_attacks"`
		} `json:"variants"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	out := map[string][3]float64{}
	for _, v := range r.Variants {
		for _, a := range v.Attacks {
			out[v.Name+"/"+a.Attack] = [3]float64{a.AUC["estimate"], a.AUC["lo"], a.AUC["hi"]}
		}
		for _, a := range v.CanaryAttacks {
			out[v.Name+"/canary/"+a.Attack] = [3]float64{a.AUC["estimate"], a.AUC["lo"], a.AUC["hi"]}
		}
	}
	return out
}

func sameAUCs(t *testing.T, what string, got, want map[string][3]float64) {
	t.Helper()
	if len(got) != len(want) || len(want) < 8 {
		t.Fatalf("%s: %d AUCs, the local run %d", what, len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		for i := range w {
			if !ok || math.Abs(g[i]-w[i]) > 1e-9 {
				t.Errorf("%s: %s AUC %v, local %v", what, k, g, w)
				break
			}
		}
	}
}

func fileMD5(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// squeueTasks lists job's array tasks Slurm holds, with their states.
func squeueTasks(job string) map[string]string {
	out, _ := exec.Command("squeue", "-h", "-r", "-j", job, "-o", "%i %t").Output()
	m := map[string]string{}
	for _, ln := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(ln); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

func lastJob(t *testing.T, work string) string {
	t.Helper()
	var j struct{ Jobs []string }
	b, err := os.ReadFile(filepath.Join(work, "jobs.json"))
	if err != nil || json.Unmarshal(b, &j) != nil || len(j.Jobs) == 0 {
		t.Fatalf("jobs.json: %s, %v", b, err)
	}
	return j.Jobs[len(j.Jobs)-1]
}

// TestSlurmEngine: the same comparison on Slurm and locally gives the same
// report; a cancelled task is rerun alone by --resume; a damaged result
// is rerun alone; two workers on one unit leave one result; a changed
// plan is refused.
func TestSlurmEngine(t *testing.T) {
	bin := slurmBinary(t)
	dir := t.TempDir()
	local, work, out := filepath.Join(dir, "local"), filepath.Join(dir, "work"), filepath.Join(dir, "report")

	if o, e, code := bn(t, bin, studyArgs("-o", local)...); code != 0 {
		t.Fatalf("local compare: exit %d\n%s\n%s", code, o, e)
	}
	want := aucs(t, local)

	// Submit detached, cancel the first run unit's task once it runs.
	o, e, code := bn(t, bin, studyArgs("-o", out, "--engine", "slurm", "--work", work, "--parallel", "2", "--detach")...)
	if code != 0 || !strings.Contains(o, "submitted") {
		t.Fatalf("detached submission: exit %d\n%s\n%s", code, o, e)
	}
	job := lastJob(t, work)
	var plan struct {
		Units []struct {
			Index int
			Kind  string
		}
	}
	b, _ := os.ReadFile(filepath.Join(work, "plan.json"))
	if err := json.Unmarshal(b, &plan); err != nil || len(plan.Units) != 10 {
		t.Fatalf("plan.json: %d units, %v", len(plan.Units), err)
	}
	victim := -1
	for _, u := range plan.Units {
		if u.Kind == "run" {
			victim = u.Index
			break
		}
	}
	task := job + "_" + strconv.Itoa(victim)
	deadline := time.Now().Add(10 * time.Minute)
	for squeueTasks(job)[task] != "R" {
		if time.Now().After(deadline) || len(squeueTasks(job)) == 0 {
			t.Fatalf("task %s never ran (queue %v)", task, squeueTasks(job))
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Into its training: its log has the first epoch's line.
	unitLog := filepath.Join(work, "logs", "unit-"+strconv.Itoa(victim)+".slurm.out")
	for {
		b, _ := os.ReadFile(unitLog)
		if strings.Contains(string(b), "epoch 1/") {
			break
		}
		if time.Now().After(deadline) || squeueTasks(job)[task] == "" {
			t.Fatalf("unit %d ended before its first epoch was logged:\n%s", victim, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := exec.Command("scancel", task).CombinedOutput(); err != nil {
		t.Fatalf("scancel %s: %v %s", task, err, out)
	}
	for len(squeueTasks(job)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the array did not finish")
		}
		time.Sleep(time.Second)
	}
	st, _, _ := bn(t, bin, "status", "--work", work)
	if !strings.Contains(st, "10 units: 9 done") {
		t.Fatalf("after scancel of unit %d, status says:\n%s", victim, st)
	}
	// --resume submits the cancelled unit alone, then gathers.
	o, e, code = bn(t, bin, studyArgs("-o", out, "--engine", "slurm", "--work", work, "--resume")...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, o, e)
	}
	script, err := os.ReadFile(filepath.Join(work, "logs", "slurm-array-1.sh"))
	if err != nil || !strings.Contains(string(script), "#SBATCH --array="+strconv.Itoa(victim)+"\n") {
		logs, _ := filepath.Glob(filepath.Join(work, "logs", "*"))
		t.Errorf("the resubmission should run unit %d alone: %v\n%s\nlogs: %v\nresume stderr:\n%s", victim, err, script, logs, e)
	}
	sameAUCs(t, "slurm after scancel and --resume", aucs(t, out), want)
	if st, _, _ := bn(t, bin, "status", "--work", work); !strings.Contains(st, "10 units: 10 done") {
		t.Errorf("status:\n%s", st)
	}

	// A damaged result (a reference model cut short) is rerun alone.
	refs, _ := filepath.Glob(filepath.Join(work, "refs", "remove", "ref-*-1.onnx"))
	if len(refs) != 1 {
		t.Fatalf("reference models of remove: %v", refs)
	}
	sum := fileMD5(t, refs[0])
	if err := os.Truncate(refs[0], 100); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := bn(t, bin, "status", "--work", work); !strings.Contains(st, "10 units: 9 done, 0 running, 0 failed, 1 missing") {
		t.Errorf("status after damage:\n%s", st)
	}
	o, e, code = bn(t, bin, studyArgs("-o", out, "--engine", "slurm", "--work", work, "--resume")...)
	if code != 0 {
		t.Fatalf("resume after damage: exit %d\n%s\n%s", code, o, e)
	}
	if got := fileMD5(t, refs[0]); got != sum {
		t.Errorf("the rerun reference model differs from the first (md5 %s, was %s)", got, sum)
	}
	sameAUCs(t, "slurm after a damaged result", aucs(t, out), want)

	// Two workers on one unit: one result, the same bytes.
	rec := filepath.Join(work, "runs", "remove-seed0.gob")
	sum = fileMD5(t, rec)
	for _, p := range []string{rec, filepath.Join(work, "units", strconv.Itoa(victim+1)+".json")} {
		os.Remove(p)
	}
	var wg sync.WaitGroup
	outs := make([]string, 2)
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			outs[i], _, codes[i] = bn(t, bin, "--threads", "1", "worker", "--work", work, "--unit", strconv.Itoa(victim+1))
		})
	}
	wg.Wait()
	if codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("two workers: exits %v\n%s\n%s", codes, outs[0], outs[1])
	}
	if got := fileMD5(t, rec); got != sum {
		t.Errorf("two workers left a record with md5 %s, the first run %s", got, sum)
	}
	if st, _, _ := bn(t, bin, "status", "--work", work); !strings.Contains(st, "10 units: 10 done") {
		t.Errorf("status after two workers:\n%s", st)
	}

	// Another plan in the same work folder is refused.
	_, e, code = bn(t, bin, studyArgs("-o", out, "--engine", "slurm", "--work", work, "--resume", "--epochs", "3")...)
	if code != 2 || !strings.Contains(e, "plan of another study") || strings.Count(strings.TrimSpace(e), "\n") != 0 {
		t.Errorf("a changed plan: exit %d, stderr %q; want 2 and one line", code, e)
	}
}

// TestSlurmAudit: an audit's reference models as Slurm array tasks give the
// report of the same audit run locally.
func TestSlurmAudit(t *testing.T) {
	bin := slurmBinary(t)
	dir := t.TempDir()
	args := func(extra ...string) []string {
		return append([]string{"--threads", "1", "audit", "../../testdata/models/small_cnn.training.onnx",
			"--members", "../../testdata/fashion-mnist", "--nonmembers", "../../testdata/fashion-mnist", "--max-samples", "300",
			"--norm", "0.2860/0.3530", "--ref-models", "3", "--ref-epochs", "2", "--qmia", "--qmia-epochs", "3"}, extra...)
	}
	local, out, work := filepath.Join(dir, "local"), filepath.Join(dir, "slurm"), filepath.Join(dir, "work")
	if o, e, code := bn(t, bin, args("-o", local)...); code != 0 {
		t.Fatalf("local audit: exit %d\n%s\n%s", code, o, e)
	}
	if o, e, code := bn(t, bin, args("-o", out, "--engine", "slurm", "--work", work)...); code != 0 {
		t.Fatalf("slurm audit: exit %d\n%s\n%s", code, o, e)
	}
	want, got := aucs(t, local), aucs(t, out)
	if len(want) < 8 || len(got) != len(want) {
		t.Fatalf("AUCs: %d local, %d slurm", len(want), len(got))
	}
	if _, ok := got["audited/qmia"]; !ok {
		t.Errorf("the slurm audit has no qmia row: %v", got)
	}
	for k, w := range want {
		for i := range w {
			if math.Abs(got[k][i]-w[i]) > 1e-9 {
				t.Errorf("%s: slurm %v, local %v", k, got[k], w)
				break
			}
		}
	}
	if st, _, _ := bn(t, bin, "status", "--work", work); !strings.Contains(st, "3 units: 3 done") {
		t.Errorf("status:\n%s", st)
	}
}
