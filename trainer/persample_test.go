package trainer

import (
	"context"
	"math"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// gradNormRun computes per-sample squared norms (total and per parameter)
// with the graphs of BuildGradNorms: one run in eval mode, one run per
// sample (seed = eᵢ) in in-batch mode.
func gradNormRun(t *testing.T, m *onnxio.Model, mode GradNormMode, x []float32, y []int64) (total []float64, per map[string][]float64) {
	t.Helper()
	n := len(y)
	g, err := BuildGradNorms(m, n, mode)
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.Model.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSessionAuto(b, ort.SessionOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ix, _ := onnxio.NewIndex(m)
	in := map[string]*ort.Tensor{
		g.Input:    ort.Float32Tensor(g.Shapes[g.Input], x),
		NameLabels: ort.Int64Tensor([]int64{int64(n)}, y),
	}
	for _, p := range append(append([]string{}, g.Params...), g.Stats...) {
		v, err := m.Floats(ix.Initializers[p])
		if err != nil {
			t.Fatal(err)
		}
		in[p] = ort.Float32Tensor(g.Shapes[p], v)
	}
	per = map[string][]float64{}
	total = make([]float64, n)
	if mode == GradNormEval {
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out[NameGradSqNorm].Float32 {
			total[i] = float64(v)
		}
		for _, p := range g.Params {
			for _, v := range out[PrefixGradSqNorm+p].Float32 {
				per[p] = append(per[p], float64(v))
			}
		}
		return total, per
	}
	for i := 0; i < n; i++ {
		seed := make([]float32, n)
		seed[i] = 1
		in[NameSeed] = ort.Float32Tensor([]int64{int64(n)}, seed)
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		total[i] = float64(out[NameGradSqNorm].Float32[0])
		for _, p := range g.Params {
			per[p] = append(per[p], float64(out[PrefixGradSqNorm+p].Float32[0]))
		}
	}
	return total, per
}

// TestPerSampleGradNormsMatchPyTorch compares both kinds of per-sample
// gradient norms with PyTorch's (float64, per sample by autograd).
func TestPerSampleGradNormsMatchPyTorch(t *testing.T) {
	requireORT(t)
	for _, name := range []string{"mlp_bn", "small_cnn", "small_resnet"} {
		ref := loadTorchRef(t, name)
		m := loadFixture(t, ref.Model)
		x := ref.get(t, "input")
		for _, mode := range []GradNormMode{GradNormEval, GradNormInBatch} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				total, per := gradNormRun(t, m, mode, x, ref.Labels)
				want := ref.get(t, "psgn_"+string(mode)+"/total")
				worst := 0.0
				for i := range want {
					d := math.Abs(math.Sqrt(total[i])-float64(want[i])) / float64(want[i])
					worst = math.Max(worst, d)
				}
				if worst > 1e-4 {
					t.Errorf("total norm: worst relative error %.3g (ours %v, PyTorch %v)", worst, math.Sqrt(total[0]), want[0])
				}
				maxTensor := 0.0
				for p := range per {
					for _, v := range ref.get(t, "psgn_"+string(mode)+"/"+p) {
						maxTensor = math.Max(maxTensor, float64(v))
					}
				}
				for p, got := range per {
					w := ref.get(t, "psgn_"+string(mode)+"/"+p)
					for i := range w {
						// Tensors whose gradient is zero in exact arithmetic are judged
						// against the largest per-tensor norm. Bias and BN-shift norms are
						// float32 sums over every position (784 per channel here) of
						// adjoints of both signs, whose cancellation costs about 1e-4:
						// per-tensor norms get 5e-4, the total 1e-4.
						d := math.Abs(math.Sqrt(got[i])-float64(w[i])) / math.Max(float64(w[i]), 1e-3*maxTensor)
						if d > 5e-4 {
							t.Errorf("%s sample %d: %v vs PyTorch %v", p, i, math.Sqrt(got[i]), w[i])
							break
						}
					}
				}
				t.Logf("total norms: worst relative error %.2g; sample 0: %.6g (PyTorch %.6g)", worst, math.Sqrt(total[0]), want[0])
			})
		}
	}
}

// TestGradNormsCoincideWithoutBN is docs/METHODS.md's self-check: without BN the
// eval-mode and in-batch per-sample gradients are the same quantity.
func TestGradNormsCoincideWithoutBN(t *testing.T) {
	requireORT(t)
	m := loadFixture(t, "mlp.preserve.onnx")
	x, y := mnistBatch(t, 8)
	ev, _ := gradNormRun(t, m, GradNormEval, x, y)
	ib, _ := gradNormRun(t, m, GradNormInBatch, x, y)
	for i := range ev {
		// two float32 computations of one quantity (‖a‖²‖δ‖² against a
		// materialized gradient)
		if d := math.Abs(ev[i]-ib[i]) / ev[i]; d > 1e-4 {
			t.Fatalf("sample %d: eval %v, in-batch %v", i, ev[i], ib[i])
		}
	}
	// With BN they differ (the batch coupling).
	mb := loadFixture(t, "small_cnn.training.onnx")
	ev, _ = gradNormRun(t, mb, GradNormEval, x, y)
	ib, _ = gradNormRun(t, mb, GradNormInBatch, x, y)
	if math.Abs(ev[0]-ib[0])/ev[0] < 1e-3 {
		t.Fatalf("with BN, eval %v and in-batch %v should differ", ev[0], ib[0])
	}
}

// TestGradNormsRunnerMatchesPyTorch: the GradNorms runner (batches of 5 and
// a remainder of 3 in eval mode; one batch of 8 in-batch) gives PyTorch's
// per-sample norms of the reference step.
func TestGradNormsRunnerMatchesPyTorch(t *testing.T) {
	requireORT(t)
	ref := loadTorchRef(t, "small_cnn")
	m := loadFixture(t, ref.Model)
	x := ref.get(t, "input")
	d, err := dataset.FromFloat32("ref", []int64{1, 28, 28}, x, ref.Labels)
	if err != nil {
		t.Fatal(err)
	}
	for mode, batch := range map[GradNormMode]int{GradNormEval: 5, GradNormInBatch: 8} {
		got, err := GradNorms(context.Background(), m, d, mode, batch, ort.SessionOptions{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		want := ref.get(t, "psgn_"+string(mode)+"/total")
		for i := range want {
			if d := math.Abs(got[i]-float64(want[i])) / float64(want[i]); d > 1e-4 {
				t.Fatalf("%s sample %d: %v vs PyTorch %v", mode, i, got[i], want[i])
			}
		}
	}
}
