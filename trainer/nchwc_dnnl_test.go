package trainer

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// TestDNNLGradsMatchGraphs runs whole training steps of the fixtures with
// the convolution gradients computed by the oneDNN custom ops and by ORT
// graphs (both NCHWc); the forward outputs must agree to 1e-5, every
// gradient and update to 1e-4 of its scale.
func TestDNNLGradsMatchGraphs(t *testing.T) {
	requireORT(t)
	lib := testDNNLLibrary(t)
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
				nw, nd, nb := countOps(dm, "ConvWeightGradBlocked"), countOps(dm, "ConvDataGradBlocked"), countOps(dm, "BatchNormGradBlocked")
				if nw == 0 || nb == 0 || nd == 0 && f == "small_resnet.training.onnx" || opts.CustomOpsLibrary != lib {
					t.Fatalf("batch %d: the oneDNN form has %d ConvWeightGradBlocked, %d ConvDataGradBlocked and %d BatchNormGradBlocked nodes and library %q", batch, nw, nd, nb, opts.CustomOpsLibrary)
				} else if batch == 8 {
					t.Logf("%d weight gradients, %d input gradients and %d BatchNorm backward passes by oneDNN", nw, nd, nb)
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
				t.Errorf("the oneDNN gradients differ from the graphs' at %d of 3 batches:\n%s", len(failed), strings.Join(failed, "\n"))
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
	notes := twoSessionNotes(t, g)
	if !strings.Contains(notes[0], "refused the oneDNN backward kernels") || strings.Contains(notes[0], "blocked-layout") || notes[1] != "" {
		t.Fatalf("fallback notes %q", notes)
	}
	if mm, _ := sessionSetup(g, ort.SessionOptions{}); countOps(mm, "ConvWeightGradBlocked") != 0 || countOps(mm, "ReorderInput") == 0 {
		t.Fatal("after the failure the session model should be the NCHWc form without oneDNN")
	}
}

// TestDNNLAbsentNote: without the library (and not turned off) the first
// session that would use it says once that the weight gradients run as
// standard graphs; later sessions say nothing more.
func TestDNNLAbsentNote(t *testing.T) {
	requireORT(t)
	if ort.NCHWcBlock() == 0 {
		t.Skip("this ONNX Runtime library has no NCHWc kernels on this CPU")
	}
	savedEnv, savedOff := dnnlEnv, dnnlOff
	t.Cleanup(func() { dnnlEnv, dnnlOff = savedEnv, savedOff; dnnlAbsentSaid.Store(false) })
	dnnlEnv, dnnlOff = func() string { return "" }, func() bool { return false }
	dnnlAbsentSaid.Store(false)
	g, err := BuildStep(loadFixture(t, "small_resnet.training.onnx"), StepConfig{Batch: 8, Optimizer: SGD(0.9, 5e-4, false)})
	if err != nil {
		t.Fatal(err)
	}
	notes := twoSessionNotes(t, g)
	if !strings.Contains(notes[0], "not installed") || strings.Contains(notes[1], "not installed") {
		t.Errorf("notes %q: want the not-installed note on the first session only", notes)
	}
	// turned off: no note
	dnnlOff = func() bool { return true }
	dnnlAbsentSaid.Store(false)
	s, err := openSession(g, ort.SessionOptions{Threads: 1}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if strings.Contains(s.fallback, "not installed") {
		t.Errorf("with %s=off the session still says %q", DNNLEnv, s.fallback)
	}
}

// TestDNNLThreadsAttribute: the session's thread count reaches the op (it
// sizes oneDNN's OpenMP team); without one the attribute is left out.
func TestDNNLThreadsAttribute(t *testing.T) {
	r := convGrad{ws: []int64{16, 16, 3, 3}, w: spatial{strides: []int64{1, 1}, pads: []int64{1, 1, 1, 1}}}
	has := func(a []*onnxpb.AttributeProto) int64 {
		for _, x := range a {
			if x.GetName() == "threads" {
				return x.GetI()
			}
		}
		return -1
	}
	if got := has(dnnlAttrs(r, 1)); got != 1 {
		t.Errorf("threads 1: attribute %d", got)
	}
	if got := has(dnnlAttrs(r, 0)); got != -1 {
		t.Errorf("threads 0: attribute %d, want none", got)
	}
}

// TestDNNLSameOnAnyThreads: through the oneDNN backward kernels a model
// trains to the same bytes on one thread and on two, as it does through
// ORT's graphs, so that a cluster work unit run with other --threads gives
// the same result.
func TestDNNLSameOnAnyThreads(t *testing.T) {
	requireORT(t)
	lib := testDNNLLibrary(t)
	saved := dnnlEnv
	t.Cleanup(func() { dnnlEnv = saved })
	dnnlEnv = func() string { return lib }
	var out [2][]byte
	for i, threads := range []int{1, 2} {
		res, err := Train(t.Context(), Config{Model: loadFixture(t, "small_resnet.training.onnx"), Init: InitScratch, Train: fashion(t, "train", 128),
			Epochs: 1, Batch: 32, Optimizer: SGD(0.9, 5e-4, false), LR: 0.02, Seed: 3, Session: ort.SessionOptions{Threads: threads}})
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = res.Model.Bytes(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Error("the model trained on 1 and on 2 threads differs")
	}
}

// testDNNLLibrary is the library the oneDNN tests use: BNAUDIT_DNNL's, or
// the installed one; without one they skip, or fail under
// BNAUDIT_REQUIRE_DNNL=1 (scripts/test.sh sets it when the library built).
func testDNNLLibrary(t *testing.T) string {
	t.Helper()
	lib, _ := ort.ResolveDNNL(os.Getenv(DNNLEnv))
	if lib == "" {
		lib, _ = ort.ResolveDNNL("on")
	}
	if lib == "" {
		msg := fmt.Sprintf("the oneDNN library is not installed: scripts/build-dnnl.sh builds it into %s (or point %s at one)", DNNLDefaultPath(), DNNLEnv)
		if os.Getenv("BNAUDIT_REQUIRE_DNNL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return lib
}

// twoSessionNotes opens two sessions of g one after the other (batch 8, one
// thread) and returns their fallback notes.
func twoSessionNotes(t *testing.T, g *Graph) []string {
	t.Helper()
	var notes []string
	for range 2 {
		s, err := openSession(g, ort.SessionOptions{Threads: 1}, 8)
		if err != nil {
			t.Fatal(err)
		}
		notes = append(notes, s.fallback)
		s.close()
	}
	return notes
}
