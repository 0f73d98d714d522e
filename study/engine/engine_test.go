package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestArrayList(t *testing.T) {
	for _, c := range []struct {
		in   []int
		want string
	}{
		{[]int{0, 1, 2, 3}, "0-3"},
		{[]int{7, 3, 0, 1, 2, 9, 10, 12}, "0-3,7,9-10,12"},
		{[]int{5}, "5"},
		{[]int{2, 2, 3}, "2-3"},
	} {
		if got := ArrayList(c.in); got != c.want {
			t.Errorf("ArrayList(%v) = %q, want %q", c.in, got, c.want)
		}
		if got := expandArray(c.want + "%2"); !slices.Equal(got, slices.Compact(slices.Sorted(slices.Values(c.in)))) {
			t.Errorf("expandArray(%q) = %v", c.want, got)
		}
	}
}

func TestSlurmScript(t *testing.T) {
	s, err := SlurmScript(SlurmOptions{Binary: "/opt/bn audit/bnaudit", Work: "/shared/work", Units: []int{0, 1, 2, 5},
		Parallel: 2, CPUs: 4, Memory: "8G", Time: "01:00:00", Partition: "gpu", JobName: "bnaudit-ab12",
		Extra: []string{"--account=lab", "#SBATCH --qos=low"}, Env: []string{"module load gcc"}, GlobalArgs: []string{"--ort-lib", "/opt/ort/libonnxruntime.so"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --job-name=bnaudit-ab12\n",
		"#SBATCH --array=0-2,5%2\n",
		"#SBATCH --cpus-per-task=4\n",
		"#SBATCH --mem=8G\n",
		"#SBATCH --time=01:00:00\n",
		"#SBATCH --partition=gpu\n",
		"#SBATCH --output=/shared/work/logs/unit-%a.slurm.out\n",
		"#SBATCH --account=lab\n",
		"#SBATCH --qos=low\n",
		"module load gcc\n",
		`exec '/opt/bn audit/bnaudit' --ort-lib /opt/ort/libonnxruntime.so --threads 4 worker --work /shared/work --unit "$SLURM_ARRAY_TASK_ID"` + "\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	// Every #SBATCH line comes before the first command (sbatch stops
	// reading directives there).
	lines := strings.Split(s, "\n")
	lastDirective, firstCommand := -1, len(lines)
	for i, l := range lines {
		if strings.HasPrefix(l, "#SBATCH") {
			lastDirective = i
		} else if l != "" && !strings.HasPrefix(l, "#") && i < firstCommand {
			firstCommand = i
		}
	}
	if lastDirective > firstCommand {
		t.Errorf("an #SBATCH line follows a command:\n%s", s)
	}
	for _, bad := range []SlurmOptions{
		{Work: "/w", Units: []int{0}},
		{Binary: "b", Work: "/w"},
		{Binary: "b", Work: "/w", Units: []int{-1}},
		{Binary: "b", Work: "/w", Units: []int{0}, Partition: "a b"},
		{Binary: "b", Work: "/w", Units: []int{0}, Extra: []string{"--x\nrm -rf /"}},
	} {
		if _, err := SlurmScript(bad); err == nil {
			t.Errorf("SlurmScript(%+v) accepted", bad)
		}
	}
}

// fake answers like a scheduler client.
func fake(out string, err error) Runner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) { return []byte(out), err }
}

func TestSubmitAndFollowSlurm(t *testing.T) {
	id, err := SubmitSlurm(context.Background(), fake("4711;cluster\n", nil), "job.sh")
	if err != nil || id != "4711" {
		t.Errorf("SubmitSlurm = %q, %v; want 4711", id, err)
	}
	if _, err := SubmitSlurm(context.Background(), fake("sbatch: error\n", nil), "job.sh"); !errors.Is(err, ErrScheduler) {
		t.Errorf("a non-id answer: %v, want ErrScheduler", err)
	}
	act, err := SlurmActive(context.Background(), fake("4711_[4-6%2] PD\n4711_0 R\n4711_3 R\n", nil), "4711")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: "R", 3: "R", 4: "PD", 5: "PD", 6: "PD"}
	if len(act) != len(want) {
		t.Fatalf("active %v, want %v", act, want)
	}
	for k, v := range want {
		if act[k] != v {
			t.Errorf("unit %d: %q, want %q", k, act[k], v)
		}
	}
	gone, err := SlurmActive(context.Background(), fake("", errors.New("slurm_load_jobs error: Invalid job id specified")), "4711")
	if err != nil || len(gone) != 0 {
		t.Errorf("a forgotten job: %v, %v; want nothing active", gone, err)
	}
}

// TestK8sManifestDecodes: the YAML decodes back into a batch/v1 Job with
// indexed completion, one completion per unit, the index as the unit, the
// work volume mounted, resources and retries as asked.
func TestK8sManifestDecodes(t *testing.T) {
	o := K8sOptions{Name: "bnaudit-ab12", Namespace: "privacy", Image: "registry.example/bnaudit:1", Units: 12, Parallel: 4,
		Retries: 2, WorkClaim: "bnaudit-work", WorkPath: "/work", CPU: "1500m", Memory: "4Gi"}
	b, err := K8sManifest(o)
	if err != nil {
		t.Fatal(err)
	}
	var j batchv1.Job
	if err := yaml.UnmarshalStrict(b, &j); err != nil {
		t.Fatalf("the manifest does not decode strictly into a Job: %v\n%s", err, b)
	}
	s := j.Spec
	switch {
	case j.APIVersion != "batch/v1" || j.Kind != "Job":
		t.Errorf("apiVersion %q kind %q", j.APIVersion, j.Kind)
	case s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion:
		t.Errorf("completionMode %v, want Indexed", s.CompletionMode)
	case s.Completions == nil || *s.Completions != 12 || s.Parallelism == nil || *s.Parallelism != 4:
		t.Errorf("completions %v parallelism %v, want 12 and 4", s.Completions, s.Parallelism)
	case s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 2:
		t.Errorf("backoffLimitPerIndex %v, want 2", s.BackoffLimitPerIndex)
	case s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever:
		t.Errorf("restartPolicy %q, want Never (required by backoffLimitPerIndex)", s.Template.Spec.RestartPolicy)
	}
	c := s.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	if args != "--threads 2 worker --work /work --unit $(JOB_COMPLETION_INDEX)" || c.Image != o.Image {
		t.Errorf("args %q image %q", args, c.Image)
	}
	if cpu := c.Resources.Requests[corev1.ResourceCPU]; cpu.String() != "1500m" {
		t.Errorf("cpu request %s", cpu.String())
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/work" || c.VolumeMounts[0].Name != "work" {
		t.Errorf("mounts %+v", c.VolumeMounts)
	}
	v := s.Template.Spec.Volumes
	if len(v) != 1 || v[0].Name != "work" || v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != "bnaudit-work" {
		t.Errorf("volumes %+v", v)
	}
	for _, bad := range []K8sOptions{
		{Name: "Bad_Name", Image: "i", Units: 1, WorkClaim: "c", WorkPath: "/w"},
		{Name: "ok", Units: 1, WorkClaim: "c", WorkPath: "/w"},
		{Name: "ok", Image: "i", WorkClaim: "c", WorkPath: "/w"},
		{Name: "ok", Image: "i", Units: 1, WorkPath: "/w"},
		{Name: "ok", Image: "i", Units: 1, WorkClaim: "c", WorkPath: "/w", CPU: "lots"},
	} {
		if _, err := K8sJob(bad); err == nil {
			t.Errorf("K8sJob(%+v) accepted", bad)
		}
	}
}
