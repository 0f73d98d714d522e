package trainer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// TestDNNLWeightGradsMatchGraphs runs whole training steps of the fixtures
// with the weight gradients computed by the oneDNN custom op and by ORT
// graphs (both NCHWc); the forward outputs must agree to 1e-5, every
// gradient and update to 1e-4 of its scale.
func TestDNNLWeightGradsMatchGraphs(t *testing.T) {
	requireORT(t)
	lib := dnnlEnv()
	if lib == "" {
		t.Skipf("%s is unset: build trainer/dnnl (see its README) and point %s at libbnaudit_dnnl.so to run this test", DNNLEnv, DNNLEnv)
	}
	if ort.NCHWcBlock() == 0 {
		t.Skip("this ONNX Runtime library has no NCHWc kernels on this CPU")
	}
	for _, f := range []string{"small_cnn.training.onnx", "small_resnet.training.onnx"} {
		t.Run(f, func(t *testing.T) {
			m := loadFixture(t, f)
			var failed []string
			for _, batch := range []int{8, 32, 64} {
				g, err := BuildStep(m, StepConfig{Batch: batch, Optimizer: SGD(0.9, 5e-4, false), WithGrads: true})
				if err != nil {
					t.Fatal(err)
				}
				dm, opts := sessionSetupWith(g, ort.SessionOptions{Threads: 2}, lib)
				if n := countOps(dm, "ConvWeightGradBlocked"); n == 0 || opts.CustomOpsLibrary != lib {
					t.Fatalf("batch %d: the oneDNN form has %d ConvWeightGradBlocked nodes and library %q", batch, n, opts.CustomOpsLibrary)
				} else if batch == 8 {
					t.Logf("%d weight gradients by oneDNN", n)
				}
				ref := newStepRunnerWith(t, g, m, "")
				defer ref.s.Close()
				dn := newStepRunnerWith(t, g, m, lib)
				defer dn.s.Close()
				dn.values = ref.values
				if msg := compareSteps(t, g, ref, dn, batch); msg != "" {
					failed = append(failed, fmt.Sprintf("batch %d: %s", batch, msg))
				}
			}
			if len(failed) > 1 {
				t.Errorf("the oneDNN weight gradients differ from the graphs' at %d of 3 batches:\n%s", len(failed), strings.Join(failed, "\n"))
			} else if len(failed) == 1 {
				t.Logf("one batch differs, as a ReLU kink flip would: %s", failed[0])
			}
		})
	}
}

// TestDNNLFallback: a library ORT cannot load makes the session run the
// NCHWc graphs, says so in its fallback note once, and later sessions do not
// try the library again.
func TestDNNLFallback(t *testing.T) {
	requireORT(t)
	if ort.NCHWcBlock() == 0 {
		t.Skip("this ONNX Runtime library has no NCHWc kernels on this CPU")
	}
	saved := dnnlEnv
	t.Cleanup(func() { dnnlEnv = saved; dnnlFailed.Store(false) })
	dnnlEnv = func() string { return t.TempDir() + "/missing.so" }
	dnnlFailed.Store(false)
	m := loadFixture(t, "small_resnet.training.onnx")
	g, err := BuildStep(m, StepConfig{Batch: 8, Optimizer: SGD(0.9, 5e-4, false)})
	if err != nil {
		t.Fatal(err)
	}
	notes := []string{}
	for range 2 {
		s, err := openSession(g, ort.SessionOptions{Threads: 1}, 8)
		if err != nil {
			t.Fatal(err)
		}
		notes = append(notes, s.fallback)
		s.close()
	}
	if !strings.Contains(notes[0], "refused the oneDNN weight gradients") || strings.Contains(notes[0], "blocked-layout") || notes[1] != "" {
		t.Fatalf("fallback notes %q", notes)
	}
	if mm, _ := sessionSetup(g, ort.SessionOptions{}); countOps(mm, "ConvWeightGradBlocked") != 0 || countOps(mm, "ReorderInput") == 0 {
		t.Fatal("after the failure the session model should be the NCHWc form without oneDNN")
	}
}
