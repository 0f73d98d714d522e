package engine

import (
	"fmt"
	"regexp"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// K8sOptions describe one Indexed Job of work units.
type K8sOptions struct {
	// Name of the Job (a DNS label); Namespace "" is the client's default.
	Name, Namespace string
	// Image holds bnaudit and ONNX Runtime (see the README's Dockerfile).
	Image string
	// Binary is bnaudit's path in the image ("bnaudit" when on PATH).
	Binary string
	// Units is the number of units: completions, one index per unit.
	Units int
	// Parallel pods at once (parallelism); 0: as many as units.
	Parallel int
	// Retries per unit (backoffLimitPerIndex).
	Retries int
	// WorkClaim is the PersistentVolumeClaim (ReadWriteMany) holding the
	// work folder; WorkPath is where it is mounted, the same path the plan
	// was written under.
	WorkClaim, WorkPath string
	// CPU and Memory per pod as Kubernetes quantities ("2", "4Gi"); the
	// worker runs with --threads set to the CPU count (rounded up).
	CPU, Memory string
	// GlobalArgs go before the worker command.
	GlobalArgs []string
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// K8sJob builds the Indexed Job: pod I runs `bnaudit --threads T worker
// --work WORKPATH --unit $(JOB_COMPLETION_INDEX)` (Kubernetes sets that
// variable in each pod of an Indexed Job and expands $(VAR) in args).
func K8sJob(o K8sOptions) (*batchv1.Job, error) {
	switch {
	case !dnsLabel.MatchString(o.Name):
		return nil, fmt.Errorf("engine: k8s: job name %q is not a DNS label (lower-case letters, digits, '-', at most 63)", o.Name)
	case o.Image == "":
		return nil, fmt.Errorf("engine: k8s: an image is required (--k8s-image)")
	case o.Units < 1:
		return nil, fmt.Errorf("engine: k8s: no unit to run")
	case o.WorkClaim == "" || o.WorkPath == "":
		return nil, fmt.Errorf("engine: k8s: the work folder's volume claim and mount path are required")
	case o.Retries < 0:
		return nil, fmt.Errorf("engine: k8s: retries %d is negative", o.Retries)
	}
	if o.Binary == "" {
		o.Binary = "bnaudit"
	}
	par := o.Parallel
	if par <= 0 || par > o.Units {
		par = o.Units
	}
	res := corev1.ResourceList{}
	threads := 1
	if o.CPU != "" {
		q, err := resource.ParseQuantity(o.CPU)
		if err != nil {
			return nil, fmt.Errorf("engine: k8s: CPU %q: %v", o.CPU, err)
		}
		res[corev1.ResourceCPU] = q
		threads = max(1, int((q.MilliValue()+999)/1000))
	}
	if o.Memory != "" {
		q, err := resource.ParseQuantity(o.Memory)
		if err != nil {
			return nil, fmt.Errorf("engine: k8s: memory %q: %v", o.Memory, err)
		}
		res[corev1.ResourceMemory] = q
	}
	args := append([]string{}, o.GlobalArgs...)
	args = append(args, "--threads", strconv.Itoa(threads), "worker", "--work", o.WorkPath, "--unit", "$(JOB_COMPLETION_INDEX)")
	indexed := batchv1.IndexedCompletion
	completions, parallelism := int32(o.Units), int32(par)
	perIndex := int32(o.Retries)
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: map[string]string{"app.kubernetes.io/name": "bnaudit", "bnaudit/study": o.Name}},
		Spec: batchv1.JobSpec{
			CompletionMode:       &indexed,
			Completions:          &completions,
			Parallelism:          &parallelism,
			BackoffLimitPerIndex: &perIndex,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/name": "bnaudit", "bnaudit/study": o.Name}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name:         "worker",
						Image:        o.Image,
						Command:      []string{o.Binary},
						Args:         args,
						Resources:    corev1.ResourceRequirements{Requests: res, Limits: res},
						VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: o.WorkPath}},
					}},
					Volumes: []corev1.Volume{{
						Name: "work",
						VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
							ClaimName: o.WorkClaim,
						}},
					}},
				},
			},
		},
	}, nil
}

// K8sManifest renders the Job as YAML for `kubectl apply -f`.
func K8sManifest(o K8sOptions) ([]byte, error) {
	j, err := K8sJob(o)
	if err != nil {
		return nil, err
	}
	b, err := yaml.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("engine: k8s: %w", err)
	}
	return append([]byte("# Written by bnaudit: one pod per work unit of the study in "+o.WorkPath+".\n"), b...), nil
}
