package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// TestCompareK8sManifest: compare --engine k8s plans the study into the
// work folder and writes an Indexed Job with one completion per unit, the
// unit from the completion index and the work folder mounted where the
// plan expects it. (No Kubernetes cluster runs here: the manifest is
// checked by decoding it into the API types.)
func TestCompareK8sManifest(t *testing.T) {
	work := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bnaudit", "compare", "../../testdata/models/small_cnn.training.onnx",
		"--data", "../../testdata/fashion-mnist", "--ood", "../../testdata/mnist-canaries", "--members", "200", "--non-members", "200",
		"--variants", "original,remove", "--ref-models", "3", "--seeds", "2", "--norm", "0.2860/0.3530",
		"--engine", "k8s", "--work", work, "--k8s-image", "registry.example/bnaudit:1", "--k8s-claim", "bnaudit-work",
		"--k8s-cpu", "2", "--mem", "4Gi", "--parallel", "4", "-o", filepath.Join(work, "report")}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "kubectl apply -f") {
		t.Errorf("stdout does not say how to apply the manifest:\n%s", out.String())
	}
	var plan struct{ Units []json.RawMessage }
	b, err := os.ReadFile(filepath.Join(work, "plan.json"))
	if err != nil || json.Unmarshal(b, &plan) != nil {
		t.Fatalf("plan.json: %v", err)
	}
	if len(plan.Units) != 2*3+2*2 {
		t.Fatalf("%d units, want 10 (6 reference models, 4 runs)", len(plan.Units))
	}
	m, err := os.ReadFile(filepath.Join(work, "logs", "k8s-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var j batchv1.Job
	if err := yaml.UnmarshalStrict(m, &j); err != nil {
		t.Fatalf("the manifest is not a Job: %v\n%s", err, m)
	}
	s := j.Spec
	c := s.Template.Spec.Containers[0]
	switch {
	case j.APIVersion != "batch/v1" || j.Kind != "Job":
		t.Errorf("%s %s", j.APIVersion, j.Kind)
	case s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion:
		t.Errorf("completion mode %v", s.CompletionMode)
	case s.Completions == nil || *s.Completions != int32(len(plan.Units)):
		t.Errorf("completions %v, want %d", s.Completions, len(plan.Units))
	case s.Parallelism == nil || *s.Parallelism != 4:
		t.Errorf("parallelism %v", s.Parallelism)
	case !strings.Contains(strings.Join(c.Args, " "), "worker --work "+work+" --unit $(JOB_COMPLETION_INDEX)"):
		t.Errorf("args %q", c.Args)
	case len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != work:
		t.Errorf("mounts %+v", c.VolumeMounts)
	case s.Template.Spec.Volumes[0].PersistentVolumeClaim == nil || s.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "bnaudit-work":
		t.Errorf("volumes %+v", s.Template.Spec.Volumes)
	}
	// Without the image: bad usage before any work.
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"bnaudit", "compare", "../../testdata/models/small_cnn.training.onnx", "--data", "../../testdata/fashion-mnist",
		"--engine", "k8s", "--work", t.TempDir(), "-o", t.TempDir()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--k8s-image") {
		t.Errorf("k8s without an image: exit %d, %q", code, errb.String())
	}
}
