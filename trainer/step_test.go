package trainer

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

const fixtureDir = "../testdata/models"

func loadFixture(t testing.TB, name string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mnistBatch returns the first n committed MNIST images, normalized as the
// fixtures were, and their labels.
func mnistBatch(t testing.TB, n int) ([]float32, []int64) {
	t.Helper()
	img, err := dataset.ReadIDX("../testdata/mnist/t10k-64-images-idx3-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := dataset.ReadIDX("../testdata/mnist/t10k-64-labels-idx1-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, n*784)
	for i := range x {
		x[i] = float32((float64(img.Data[i])/255 - 0.2860) / 0.3530)
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(lab.Data[i])
	}
	return x, y
}

// stepRunner runs a step graph with parameter values it keeps.
type stepRunner struct {
	s      *ort.Session
	g      *Graph
	values map[string][]float32
}

func newStepRunner(t testing.TB, g *Graph, src *onnxio.Model) *stepRunner {
	t.Helper()
	return newStepRunnerWith(t, g, src, dnnlLibrary())
}

// newStepRunnerWith is newStepRunner with the oneDNN library dnnl ("" for none).
func newStepRunnerWith(t testing.TB, g *Graph, src *onnxio.Model, dnnl string) *stepRunner {
	t.Helper()
	// the model the trainer's own sessions run (blocked convolutions on CPUs with NCHWc kernels)
	m, opts := sessionSetupWith(g, ort.SessionOptions{Threads: 2}, dnnl)
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSessionAuto(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &stepRunner{s: s, g: g, values: map[string][]float32{}}
	ix, _ := onnxio.NewIndex(src)
	for _, p := range append(append([]string{}, g.Params...), g.Stats...) {
		v, err := src.Floats(ix.Initializers[p])
		if err != nil {
			t.Fatal(err)
		}
		r.values[p] = v
		for _, sl := range g.Slots {
			if !contains(g.Stats, p) {
				r.values[p+sl] = make([]float32, len(v))
			}
		}
	}
	return r
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (r *stepRunner) run(t testing.TB, x []float32, y []int64, lr, step float32) map[string]*ort.Tensor {
	t.Helper()
	in := map[string]*ort.Tensor{
		r.g.Input:  ort.Float32Tensor(r.g.Shapes[r.g.Input], x),
		NameLabels: ort.Int64Tensor([]int64{int64(len(y))}, y),
		NameLR:     ort.Float32Tensor(nil, []float32{lr}),
		NameStep:   ort.Float32Tensor(nil, []float32{step}),
	}
	for name, v := range r.values {
		in[name] = ort.Float32Tensor(r.g.Shapes[name], v)
	}
	out, err := r.s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStepGradientsFiniteDifferences checks the whole step graph — BatchNorm
// with batch statistics, cross-entropy, every rule on the path — against
// central differences of its own loss output on the fixture models.
func TestStepGradientsFiniteDifferences(t *testing.T) {
	requireORT(t)
	for _, f := range []string{"mlp_bn.training.onnx", "small_cnn.training.onnx", "small_resnet.training.onnx"} {
		t.Run(f, func(t *testing.T) {
			m := loadFixture(t, f)
			g, err := BuildStep(m, StepConfig{Batch: 8, Optimizer: SGD(0, 0, false), WithGrads: true})
			if err != nil {
				t.Fatal(err)
			}
			r := newStepRunner(t, g, m)
			defer r.s.Close()
			x, y := mnistBatch(t, 8)
			base := r.run(t, x, y, 0, 0)
			rng := rand.New(rand.NewPCG(3, 4))
			const h = 1e-3
			for _, p := range g.Params {
				grad := base[p+SuffixGrad].Float32
				vals := r.values[p]
				maxG := 0.0
				for _, v := range grad {
					maxG = math.Max(maxG, math.Abs(float64(v)))
				}
				worst := 0.0
				for k := 0; k < 4; k++ {
					// probe the coordinates with the largest gradients and a random one
					i := rng.IntN(len(vals))
					if k < 2 {
						i = argmaxAbs(grad, k)
					}
					old := vals[i]
					vals[i] = old + h
					lp := float64(r.run(t, x, y, 0, 0)[NameLoss].Float32[0])
					vals[i] = old - h
					lm := float64(r.run(t, x, y, 0, 0)[NameLoss].Float32[0])
					vals[i] = old
					num := (lp - lm) / (2 * h)
					// A float32 loss near 2.4 is rounded to ~3e-7, which a central
					// difference over 2h = 2e-3 turns into ~1.5e-4 of noise: the
					// tolerance is 2% of the largest gradient plus 3× that floor.
					err := math.Abs(num - float64(grad[i]))
					worst = math.Max(worst, err/(2e-2*maxG+5e-4))
				}
				if worst > 1 {
					t.Errorf("%s: error %.3g times the tolerance (max|grad| %.3g)", p, worst, maxG)
				}
			}
		})
	}
}

// argmaxAbs returns the index of the k-th largest |v| (k = 0 or 1).
func argmaxAbs(v []float32, k int) int {
	best, second := 0, 0
	for i := range v {
		a := math.Abs(float64(v[i]))
		if a > math.Abs(float64(v[best])) {
			second, best = best, i
		} else if a > math.Abs(float64(v[second])) || second == best {
			second = i
		}
	}
	if k == 0 {
		return best
	}
	return second
}

// TestUnsupportedOpNamedBeforeTraining: a model with an op the trainer
// cannot differentiate fails at build time with one line naming the op, the
// node and the model.
func TestUnsupportedOpNamedBeforeTraining(t *testing.T) {
	for _, c := range []struct{ op, domain string }{{"Einsum", ""}, {"FusedConv", "com.microsoft"}, {"ConvTranspose", ""}} {
		m := loadFixture(t, "mlp.preserve.onnx").Clone()
		n := m.Graph().Node[1] // the first Gemm
		n.OpType, n.Domain = c.op, c.domain
		_, err := BuildStep(m, StepConfig{Batch: 4, Optimizer: SGD(0.9, 0, false)})
		if err == nil || !errors.Is(err, ErrUnsupported) {
			t.Fatalf("%s: want ErrUnsupported, got %v", c.op, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, c.op) || !strings.Contains(msg, n.GetName()) || !strings.Contains(msg, "mlp.preserve.onnx") || strings.Contains(msg, "\n") {
			t.Fatalf("%s: the error should name op, node and model on one line: %q", c.op, msg)
		}
	}
	// Unsupported by shape: an input with no fixed sample shape.
	m := loadFixture(t, "mlp.preserve.onnx").Clone()
	m.Graph().Input[0].Type.GetTensorType().Shape.Dim[2].Value = nil
	if _, err := BuildStep(m, StepConfig{Batch: 4, Optimizer: SGD(0, 0, false)}); err == nil || !strings.Contains(err.Error(), "unknown dimension") {
		t.Fatalf("want an unknown-dimension error, got %v", err)
	}
}
