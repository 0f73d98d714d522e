package trainer

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// The Gaussian NLL loss (ops_loss.go): its values against scipy, its
// gradient against central differences (alone, and inside a whole training
// step), and a regression fitted through Train.

// gaussCase is the case of trainer/testdata/gaussnll_ref.py: 4 samples,
// K = 3 pairs (μ, r) each.
var (
	gaussPred = []float32{
		0.5, -0.3, 1.2, 0.4, -0.7, 0.1,
		-1.0, 0.2, 0.3, -0.5, 2.0, 0.8,
		0.0, 0.0, 1.5, -1.2, 0.6, 0.3,
		2.2, 0.9, -0.4, 0.05, 0.7, -0.6,
	}
	gaussLabels  = []int64{2, 0, 1, 2}
	gaussTargets = []float32{0.3, -2.5, 4.0, 0.0}
)

// gaussGraph builds a graph from a prediction input "pred" [4, 6] through
// the loss, with L = a·mean + Σ_i c_i·ℓ_i as output "L" (both of the
// composite's outputs carry an adjoint), the per-sample losses as "per",
// and, when withGrad, dL/dpred as "grad".
func gaussGraph(t *testing.T, withGrad bool) []byte {
	t.Helper()
	var out []byte
	err := func() (err error) {
		defer finishBuild(&onnxio.Model{Name: "gauss"}, &err)
		b := newBuilder(17, nil)
		b.declare("pred", &value{shape: []int64{4, 6}, dtype: onnxio.TypeFloat})
		b.addInit(onnxio.Int64Tensor("labels", []int64{4}, gaussLabels))
		b.addInit(onnxio.FloatTensor("targets", []int64{4}, gaussTargets))
		tape := []*tapeEntry{b.emitGaussianNLL("pred", "labels", "targets", "mean", "per")}
		c := b.constF32([]int64{4}, []float32{0.7, -1.3, 0.4, 2.1})
		nodes := []*onnxpb.NodeProto{
			nd("Mul", []string{"mean", b.scalar(1.7)}, []string{"am"}),
			nd("Mul", []string{"per", c}, []string{"cp"}),
			nd("ReduceSum", []string{"cp", b.constI64([]int64{0}, false)}, []string{"sum"}, aInt("keepdims", 0)),
			nd("Add", []string{"am", "sum"}, []string{"L"}),
		}
		for _, n := range nodes {
			b.addNode(n)
			tape = append(tape, nodeEntry(n))
		}
		outs := []string{"L", "per"}
		if withGrad {
			g := b.backward(tape, "L", "", []string{"pred"})
			b.emitNamed("Identity", "grad_out", []string{g["pred"]}, []string{"grad"})
			outs = append(outs, "grad")
		}
		m := &onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, Graph: b.graph("gauss", []string{"pred"}, outs)}}
		out, err = m.Marshal()
		return err
	}()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGaussianNLLMatchesScipy: the per-sample losses are
// −scipy.stats.norm.logpdf(t; μ, exp(r)) of each sample's labelled pair.
func TestGaussianNLLMatchesScipy(t *testing.T) {
	requireORT(t)
	s, err := ort.NewSessionAuto(gaussGraph(t, false), ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(map[string]*ort.Tensor{"pred": ort.Float32Tensor([]int64{4, 6}, gaussPred)})
	if err != nil {
		t.Fatal(err)
	}
	// trainer/testdata/gaussnll_ref.py
	want := []float64{1.42830391, 1.873048585, 34.16636472, 1.132367179}
	for i, w := range want {
		if got := float64(out["per"].Float32[i]); math.Abs(got-w) > 1e-5*math.Max(1, math.Abs(w)) {
			t.Errorf("sample %d: loss %.8g, scipy %.8g", i, got, w)
		}
	}
}

// TestGaussianNLLFiniteDifferences: dL/dpred from the gradient rule against
// central differences of L, over every entry of the prediction (the pairs
// a label does not choose must get exactly zero).
func TestGaussianNLLFiniteDifferences(t *testing.T) {
	requireORT(t)
	gs, err := ort.NewSessionAuto(gaussGraph(t, true), ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer gs.Close()
	fs, err := ort.NewSessionAuto(gaussGraph(t, false), ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	run := func(s *ort.Session, p []float32) map[string]*ort.Tensor {
		out, err := s.Run(map[string]*ort.Tensor{"pred": ort.Float32Tensor([]int64{4, 6}, p)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	grad := run(gs, gaussPred)["grad"].Float32
	p := append([]float32{}, gaussPred...)
	num := centralDiff(p, 1e-3, func() float64 { return float64(run(fs, p)["L"].Float32[0]) })
	for i := range p {
		chosen := i/2%3 == int(gaussLabels[i/6])
		if !chosen && grad[i] != 0 {
			t.Errorf("pred[%d] is in a pair its label does not choose, yet has gradient %g", i, grad[i])
		}
	}
	if worst := worstScaledErr(grad, num, 1e-3); worst > 2e-3 {
		for i := range p {
			t.Logf("pred[%d]: analytic %.6g numeric %.6g", i, grad[i], num[i])
		}
		t.Fatalf("worst relative error %.3g > 2e-3", worst)
	}
}

// regressionMLP: x[N,3] → Gemm(3→8) → Tanh → Gemm(8→2K) → y[N,2K].
func regressionMLP(k int64) *onnxio.Model {
	r := rand.New(rand.NewPCG(5, 6))
	vals := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(s * (2*r.Float64() - 1))
		}
		return v
	}
	return fuzzModel("regression_mlp.onnx", 17, &onnxpb.GraphProto{
		Name:   "regression_mlp",
		Input:  []*onnxpb.ValueInfoProto{fvi("x", -1, 3)},
		Output: []*onnxpb.ValueInfoProto{fvi("y", -1, 2*k)},
		Initializer: []*onnxpb.TensorProto{
			onnxio.FloatTensor("fc1.w", []int64{8, 3}, vals(24, 0.6)),
			onnxio.FloatTensor("fc1.b", []int64{8}, vals(8, 0.1)),
			onnxio.FloatTensor("fc2.w", []int64{2 * k, 8}, vals(int(16*k), 0.4)),
			onnxio.FloatTensor("fc2.b", []int64{2 * k}, vals(int(2*k), 0.1)),
		},
		Node: []*onnxpb.NodeProto{
			nd("Gemm", []string{"x", "fc1.w", "fc1.b"}, []string{"h"}, aInt("transB", 1)),
			nd("Tanh", []string{"h"}, []string{"a"}),
			nd("Gemm", []string{"a", "fc2.w", "fc2.b"}, []string{"y"}, aInt("transB", 1)),
		},
	})
}

// TestGaussianNLLStepFiniteDifferences: a whole training step with the
// Gaussian NLL (targets fed as the "targets" input) gives every
// parameter's gradient as central differences of its own loss output.
func TestGaussianNLLStepFiniteDifferences(t *testing.T) {
	requireORT(t)
	m := regressionMLP(2)
	g, err := BuildStep(m, StepConfig{Batch: 5, Optimizer: SGD(0, 0, false), Loss: LossGaussianNLL, WithGrads: true})
	if err != nil {
		t.Fatal(err)
	}
	if g.Shapes[NameTargets] == nil || !contains(inputNames(g.Model), NameTargets) {
		t.Fatalf("the step graph has no %q input", NameTargets)
	}
	raw, err := g.Model.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSessionAuto(raw, ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ix, _ := onnxio.NewIndex(m)
	params := map[string][]float32{}
	for _, p := range g.Params {
		params[p], _ = m.Floats(ix.Initializers[p])
	}
	x := []float32{0.1, -0.5, 0.9, 1.2, 0.3, -0.2, -0.7, 0.8, 0.4, 0.0, -1.1, 0.6, 0.5, 0.5, -0.5}
	labels := []int64{0, 1, 1, 0, 1}
	targets := []float32{0.4, -1.5, 2.0, 0.1, -0.3}
	run := func() map[string]*ort.Tensor {
		in := map[string]*ort.Tensor{
			"x": ort.Float32Tensor([]int64{5, 3}, x), NameLabels: ort.Int64Tensor([]int64{5}, labels),
			NameTargets: ort.Float32Tensor([]int64{5}, targets),
			NameLR:      ort.Float32Tensor(nil, []float32{0}), NameStep: ort.Float32Tensor(nil, []float32{0}),
		}
		for p, v := range params {
			in[p] = ort.Float32Tensor(g.Shapes[p], v)
		}
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	base := run()
	for _, p := range g.Params {
		grad := base[p+SuffixGrad].Float32
		num := centralDiff(params[p], 1e-3, func() float64 { return float64(run()[NameLoss].Float32[0]) })
		if worst := worstScaledErr(grad, num, 1e-3); worst > 5e-3 {
			t.Errorf("%s: worst relative error %.3g > 5e-3 (analytic %v, numeric %v)", p, worst, grad[:min(4, len(grad))], num[:min(4, len(num))])
		}
	}
}

func inputNames(m *onnxio.Model) []string {
	var out []string
	for _, in := range m.Graph().GetInput() {
		out = append(out, in.GetName())
	}
	return out
}

// TestTrainGaussianNLL: Train fits a heteroscedastic Gaussian regression
// with the labels choosing the pair: t = 1.5·x₀ ± 1 (label 1: +1, label 0:
// −1) + σ(x)·ε with σ(x) = 0.3·exp(0.8·x₁), ε standard normal. The
// fitted μ and σ on fresh points are close to the generating ones, and the
// same seed gives the same model.
func TestTrainGaussianNLL(t *testing.T) {
	requireORT(t)
	const n = 2000
	r := rand.New(rand.NewPCG(11, 12))
	truth := func(x []float32, y int64) (mu, sigma float64) {
		mu = 1.5 * float64(x[0])
		if y == 1 {
			mu++
		} else {
			mu--
		}
		return mu, 0.3 * math.Exp(0.8*float64(x[1]))
	}
	sample := func(n int) ([]float32, []int64) {
		x := make([]float32, 3*n)
		y := make([]int64, n)
		for i := range y {
			for j := 0; j < 3; j++ {
				x[3*i+j] = float32(2*r.Float64() - 1)
			}
			y[i] = int64(r.IntN(2))
		}
		return x, y
	}
	x, y := sample(n)
	targets := make([]float32, n)
	for i := range targets {
		mu, sigma := truth(x[3*i:3*i+3], y[i])
		targets[i] = float32(mu + sigma*r.NormFloat64())
	}
	train, err := dataset.FromFloat32("synthetic", []int64{3}, x, y)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Model: regressionMLP(2), Init: InitScratch, Train: train, Epochs: 40, Batch: 64, Optimizer: AdamW(0),
		LR: 0.01, Schedule: Cosine, Seed: 3, Loss: LossGaussianNLL, Targets: targets, Session: ort.SessionOptions{Threads: 1}}
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if last := res.Epochs[len(res.Epochs)-1]; last.TrainAcc != 0 {
		t.Errorf("a regression reports training accuracy %v, want 0", last.TrainAcc)
	}
	tx, ty := sample(500)
	test, err := dataset.FromFloat32("fresh", []int64{3}, tx, ty)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Evaluate(context.Background(), res.Model, test, 100, ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var muErr, logSigmaErr float64
	for i := 0; i < test.Len(); i++ {
		mu, sigma := truth(tx[3*i:3*i+3], ty[i])
		pair := out.Logits[4*i+2*int(ty[i]):]
		muErr += math.Abs(float64(pair[0])-mu) / float64(test.Len())
		logSigmaErr += math.Abs(float64(pair[1])-math.Log(sigma)) / float64(test.Len())
	}
	t.Logf("mean |μ − true μ| %.3f, mean |log σ − true log σ| %.3f (σ from 0.13 to 0.67)", muErr, logSigmaErr)
	if muErr > 0.1 || logSigmaErr > 0.15 {
		t.Errorf("the fitted Gaussian is far from the generating one: mean |Δμ| %.3f (want ≤ 0.1), mean |Δ log σ| %.3f (want ≤ 0.15)", muErr, logSigmaErr)
	}
	again, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := res.Model.Bytes()
	b, _ := again.Model.Bytes()
	if string(a) != string(b) {
		t.Error("the same seed trained a different regression")
	}
}

// TestGaussianNLLConfigChecked: a regression run refuses targets that do
// not match the data, non-finite targets, a test set, a training-accuracy
// target and augmentation, each with one line; targets without the loss
// are refused too.
func TestGaussianNLLConfigChecked(t *testing.T) {
	train, err := dataset.FromFloat32("d", []int64{3}, make([]float32, 12), []int64{0, 1, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	ok := Config{Model: regressionMLP(2), Train: train, Epochs: 1, Batch: 2, Optimizer: SGD(0, 0, false), LR: 0.1,
		Loss: LossGaussianNLL, Targets: []float32{1, 2, 3, 4}}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"short targets", func(c *Config) { c.Targets = c.Targets[:3] }, "3 targets for 4 training samples"},
		{"NaN target", func(c *Config) { c.Targets = []float32{1, float32(math.NaN()), 3, 4} }, "target 1 is NaN"},
		{"test set", func(c *Config) { c.Test = train }, "takes none"},
		{"stop at accuracy", func(c *Config) { c.StopAtTrainAcc = 0.9 }, "no training accuracy"},
		{"augmentation", func(c *Config) { c.Augment.Flip = true }, "augmentation"},
		{"targets without the loss", func(c *Config) { c.Loss = "" }, "targets are the Gaussian NLL's"},
		{"unknown loss", func(c *Config) { c.Loss = "hinge" }, `unknown loss "hinge"`},
	} {
		cfg := ok
		c.edit(&cfg)
		_, err := Train(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line with %q", c.name, err, c.want)
		}
	}
	// An output that is not pairs of (μ, r).
	if _, err := BuildStep(regressionMLP(1).Clone(), StepConfig{Batch: 2, Optimizer: SGD(0, 0, false), Loss: LossGaussianNLL}); err != nil {
		t.Errorf("K = 1: %v", err)
	}
	if _, err := BuildStep(tinyCNN(), StepConfig{Batch: 2, Optimizer: SGD(0, 0, false), Loss: LossGaussianNLL}); err == nil || !strings.Contains(err.Error(), "[batch, 2·K]") {
		t.Errorf("an output of 3 columns: error %v, want one naming [batch, 2·K]", err)
	}
}

// centralDiff is the central finite difference (L(p+h) − L(p−h))/2h of loss
// with respect to each element of p, which it perturbs in place and
// restores.
func centralDiff(p []float32, h float32, loss func() float64) []float64 {
	num := make([]float64, len(p))
	for i := range p {
		v := p[i]
		p[i] = v + h
		lp := loss()
		p[i] = v - h
		lm := loss()
		p[i] = v
		num[i] = (lp - lm) / (2 * float64(h))
	}
	return num
}

// worstScaledErr is max |grad − num| over the largest |num| (at least
// floor).
func worstScaledErr(grad []float32, num []float64, floor float64) float64 {
	scale := floor
	for _, v := range num {
		scale = math.Max(scale, math.Abs(v))
	}
	worst := 0.0
	for i := range num {
		worst = math.Max(worst, math.Abs(float64(grad[i])-num[i])/scale)
	}
	return worst
}
