package trainer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// Finite-difference checks of every gradient rule: each case is a small
// graph; the analytic gradient of L = Σ w ⊙ out (w fixed random) from the
// rule, run on ONNX Runtime, is compared with central differences of L,
// also run on ONNX Runtime.

func requireORT(t testing.TB) {
	t.Helper()
	err := ort.Init("")
	switch {
	case err == nil:
	case errors.Is(err, ort.ErrNoLibrary) && os.Getenv("BNAUDIT_REQUIRE_ORT") == "":
		t.Skipf("needs the ONNX Runtime library: run scripts/install-ort.sh or set %s (%v)", ort.LibraryEnv, err)
	default:
		t.Fatal(err)
	}
}

type gcInput struct {
	name  string
	shape []int64
	// ints, when set, makes an int64 input with these values (not differentiated).
	ints []int64
	// lo, hi bound the uniform random values; avoid puts them at least this
	// far from these points (to stay off kinks).
	lo, hi float64
	avoid  []float64
	// constant inputs are baked into the graph and not differentiated.
	constant bool
	vals     []float32
}

type gradCase struct {
	name   string
	opset  int64
	inputs []gcInput
	nodes  []*onnxpb.NodeProto
	output string
	// h is the finite-difference step, tol the relative tolerance
	// (|analytic − numeric| ≤ tol·max|numeric| over the checked coordinates).
	h, tol float64
	// ops whose rules the case exercises (for the coverage test).
	covers []string
}

func nd(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: op + "_" + outs[0], OpType: op, Input: ins, Output: outs, Attribute: attrs}
}

func aStr(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, S: []byte(v), Type: onnxpb.AttributeProto_STRING}
}

func (c *gcInput) values(r *rand.Rand) []float32 {
	if c.vals != nil {
		return c.vals
	}
	n := numel(c.shape)
	lo, hi := c.lo, c.hi
	if lo == 0 && hi == 0 {
		lo, hi = -1, 1
	}
	out := make([]float32, n)
	for i := range out {
	retry:
		v := lo + (hi-lo)*r.Float64()
		for _, a := range c.avoid {
			if math.Abs(v-a) < 0.05 {
				goto retry
			}
		}
		out[i] = float32(v)
	}
	return out
}

// buildCase returns the gradient graph (outputs: L and each input's
// adjoint) and the forward graph (output: L), with the input values.
func buildCase(t *testing.T, c gradCase, r *rand.Rand) (grad, fwd []byte, vals map[string][]float32, diff []string) {
	t.Helper()
	vals = map[string][]float32{}
	build := func(withGrad bool) (out []byte, err error) {
		defer finishBuild(&onnxio.Model{Name: c.name}, &err)
		b := newBuilder(c.opset, nil)
		var inputs []string
		for _, in := range c.inputs {
			switch {
			case in.ints != nil:
				b.addInit(onnxio.Int64Tensor(in.name, in.shape, in.ints))
			case in.constant:
				b.addInit(onnxio.FloatTensor(in.name, in.shape, vals[in.name]))
			default:
				b.declare(in.name, &value{shape: in.shape, dtype: onnxio.TypeFloat})
				inputs = append(inputs, in.name)
			}
		}
		var tape []*tapeEntry
		for _, n := range c.nodes {
			cp := &onnxpb.NodeProto{Name: n.Name, OpType: n.OpType, Input: n.Input, Output: n.Output, Attribute: n.Attribute}
			b.addNode(cp)
			tape = append(tape, nodeEntry(cp))
		}
		w := make([]float32, numel(b.shape(c.output)))
		wr := rand.New(rand.NewPCG(7, 7))
		for i := range w {
			w[i] = float32(wr.Float64()*2 - 1)
		}
		wName := b.constF32(b.shape(c.output), w)
		l := b.reduceSum(b.op("Mul", []string{c.output, wName}), axesFrom(0, len(b.shape(c.output))), false)
		if len(b.shape(c.output)) == 0 {
			l = b.op("Mul", []string{c.output, wName})
		}
		b.emitNamed("Identity", "L_out", []string{l}, []string{"L"})
		outs := []string{"L"}
		if withGrad {
			gs := b.backward(tape, c.output, wName, inputs)
			for _, in := range inputs {
				if gs[in] == "" {
					failf("no gradient for %s", in)
				}
				b.emitNamed("Identity", "grad_out_"+in, []string{gs[in]}, []string{"grad_" + in})
				outs = append(outs, "grad_"+in)
			}
		}
		gp := b.graph(c.name, inputs, outs)
		m := &onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: c.opset}}, Graph: gp}}
		return m.Marshal()
	}
	for _, in := range c.inputs {
		if in.ints == nil {
			vals[in.name] = (&in).values(r)
			if !in.constant {
				diff = append(diff, in.name)
			}
		}
	}
	var err error
	if grad, err = build(true); err != nil {
		t.Fatalf("building the gradient graph: %v", err)
	}
	if fwd, err = build(false); err != nil {
		t.Fatal(err)
	}
	return grad, fwd, vals, diff
}

func runCase(t *testing.T, model []byte, c gradCase, vals map[string][]float32, diff []string) map[string]*ort.Tensor {
	t.Helper()
	s, err := ort.NewSessionAuto(model, ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := map[string]*ort.Tensor{}
	for _, x := range c.inputs {
		if x.ints == nil && !x.constant {
			in[x.name] = ort.Float32Tensor(x.shape, vals[x.name])
		}
	}
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkGradCase(t *testing.T, c gradCase) {
	r := rand.New(rand.NewPCG(1, uint64(len(c.name))))
	gradModel, fwdModel, vals, diff := buildCase(t, c, r)
	analytic := runCase(t, gradModel, c, vals, diff)
	s, err := ort.NewSessionAuto(fwdModel, ort.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shapes := map[string][]int64{}
	for _, x := range c.inputs {
		shapes[x.name] = x.shape
	}
	evalL := func() float64 {
		in := map[string]*ort.Tensor{}
		for _, name := range diff {
			in[name] = ort.Float32Tensor(shapes[name], vals[name])
		}
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		return float64(out["L"].Float32[0])
	}
	h := c.h
	if h == 0 {
		h = 1e-2
	}
	tol := c.tol
	if tol == 0 {
		tol = 2e-3
	}
	for _, name := range diff {
		g := analytic["grad_"+name].Float32
		idx := make([]int, len(vals[name]))
		for i := range idx {
			idx[i] = i
		}
		if len(idx) > 40 {
			r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			idx = idx[:40]
		}
		num := make([]float64, len(idx))
		scale := 1e-3
		for k, i := range idx {
			v := vals[name][i]
			vals[name][i] = v + float32(h)
			lp := evalL()
			vals[name][i] = v - float32(h)
			lm := evalL()
			vals[name][i] = v
			num[k] = (lp - lm) / (2 * h)
			scale = math.Max(scale, math.Abs(num[k]))
		}
		worst := 0.0
		for k, i := range idx {
			worst = math.Max(worst, math.Abs(float64(g[i])-num[k])/scale)
		}
		if worst > tol {
			for k, i := range idx[:min(5, len(idx))] {
				t.Logf("%s[%d]: analytic %.6g numeric %.6g", name, i, g[i], num[k])
			}
			t.Errorf("d/d%s: worst relative error %.3g > %.3g", name, worst, tol)
		}
	}
}

func x(name string, shape ...int64) gcInput { return gcInput{name: name, shape: shape} }

func xr(name string, lo, hi float64, shape ...int64) gcInput {
	return gcInput{name: name, shape: shape, lo: lo, hi: hi}
}

func xi(name string, shape []int64, ints ...int64) gcInput {
	return gcInput{name: name, shape: shape, ints: ints}
}

func xc(name string, vals []float32, shape ...int64) gcInput {
	return gcInput{name: name, shape: shape, vals: vals, constant: true}
}

func avoid(in gcInput, pts ...float64) gcInput { in.avoid = pts; return in }

func gradCases() []gradCase {
	un := func(op string, lo, hi float64, avoidPts []float64, attrs ...*onnxpb.AttributeProto) gradCase {
		in := xr("x", lo, hi, 2, 3, 4)
		in.avoid = avoidPts
		return gradCase{name: op, opset: 17, inputs: []gcInput{in}, nodes: []*onnxpb.NodeProto{nd(op, []string{"x"}, []string{"y"}, attrs...)}, output: "y", covers: []string{op}}
	}
	bin := func(op string, sa, sb []int64, lo, hi float64) gradCase {
		return gradCase{name: op + fmt.Sprint(sa, sb), opset: 17, inputs: []gcInput{xr("a", lo, hi, sa...), xr("b", lo, hi, sb...)},
			nodes: []*onnxpb.NodeProto{nd(op, []string{"a", "b"}, []string{"y"})}, output: "y", covers: []string{op}}
	}
	cases := []gradCase{
		un("Identity", -1, 1, nil),
		un("Relu", -1, 1, []float64{0}),
		un("LeakyRelu", -1, 1, []float64{0}, aFloat("alpha", 0.1)),
		un("Sigmoid", -3, 3, nil),
		un("Tanh", -2, 2, nil),
		un("Erf", -2, 2, nil),
		un("Exp", -1, 1, nil),
		un("Log", 0.5, 2, nil),
		un("Sqrt", 0.5, 2, nil),
		un("Reciprocal", 0.5, 2, nil),
		un("Neg", -1, 1, nil),
		un("Abs", -1, 1, []float64{0}),
		un("HardSigmoid", -4, 4, []float64{-2.5, 2.5}),
		un("HardSwish", -4, 4, []float64{-3, 3}),
		un("Softmax", -2, 2, nil, aInt("axis", 1)),
		un("LogSoftmax", -2, 2, nil, aInt("axis", -1)),
		{name: "Clip", opset: 17, inputs: []gcInput{avoid(xr("x", -2, 2, 3, 5), -1, 1), xc("lo", []float32{-1}), xc("hi", []float32{1})},
			nodes: []*onnxpb.NodeProto{nd("Clip", []string{"x", "lo", "hi"}, []string{"y"})}, output: "y", covers: []string{"Clip"}},
		bin("Add", []int64{2, 3, 4}, []int64{3, 1}, -1, 1),
		bin("Sub", []int64{2, 3}, []int64{2, 3}, -1, 1),
		bin("Mul", []int64{4, 1, 3}, []int64{2, 3}, -1, 1),
		bin("Div", []int64{2, 3}, []int64{3}, 0.5, 2),
		bin("Pow", []int64{2, 3}, []int64{2, 3}, 0.5, 1.5),
		bin("Max", []int64{3, 4}, []int64{3, 4}, -1, 1),
		bin("Min", []int64{3, 4}, []int64{4}, -1, 1),
		{name: "Sum", opset: 17, inputs: []gcInput{x("a", 2, 3), x("b", 3), x("c", 2, 3)},
			nodes: []*onnxpb.NodeProto{nd("Sum", []string{"a", "b", "c"}, []string{"y"})}, output: "y", covers: []string{"Sum"}},
		{name: "Where", opset: 17, inputs: []gcInput{x("a", 2, 3), x("b", 3), xc("z", []float32{0.5, -0.5, 0.1, -0.1, 0.7, 0}, 2, 3)},
			nodes:  []*onnxpb.NodeProto{nd("Greater", []string{"z", "b"}, []string{"cond"}), nd("Where", []string{"cond", "a", "b"}, []string{"y"})},
			output: "y", covers: []string{"Where", "Greater"}},
		{name: "Cast", opset: 17, inputs: []gcInput{x("x", 2, 3)},
			nodes: []*onnxpb.NodeProto{nd("Cast", []string{"x"}, []string{"y"}, aInt("to", 1))}, output: "y", covers: []string{"Cast"}},
		{name: "Gemm", opset: 17, inputs: []gcInput{x("a", 3, 4), x("b", 5, 4), x("c", 5)},
			nodes: []*onnxpb.NodeProto{nd("Gemm", []string{"a", "b", "c"}, []string{"y"}, aInt("transB", 1), aFloat("alpha", 0.5), aFloat("beta", 2))}, output: "y", covers: []string{"Gemm"}},
		{name: "GemmTransA", opset: 17, inputs: []gcInput{x("a", 4, 3), x("b", 4, 5), x("c", 1, 5)},
			nodes: []*onnxpb.NodeProto{nd("Gemm", []string{"a", "b", "c"}, []string{"y"}, aInt("transA", 1))}, output: "y", covers: []string{"Gemm"}},
		{name: "MatMul", opset: 17, inputs: []gcInput{x("a", 2, 3, 4), x("b", 4, 5)},
			nodes: []*onnxpb.NodeProto{nd("MatMul", []string{"a", "b"}, []string{"y"})}, output: "y", covers: []string{"MatMul"}},
		{name: "MatMulVec", opset: 17, inputs: []gcInput{x("a", 4), x("b", 2, 4, 3)},
			nodes: []*onnxpb.NodeProto{nd("MatMul", []string{"a", "b"}, []string{"y"})}, output: "y", covers: []string{"MatMul"}},
		{name: "Reshape", opset: 17, inputs: []gcInput{x("x", 2, 3, 4), xi("s", []int64{2}, 4, -1)},
			nodes: []*onnxpb.NodeProto{nd("Reshape", []string{"x", "s"}, []string{"y"})}, output: "y", covers: []string{"Reshape"}},
		{name: "Flatten", opset: 17, inputs: []gcInput{x("x", 2, 3, 4)},
			nodes: []*onnxpb.NodeProto{nd("Flatten", []string{"x"}, []string{"y"}, aInt("axis", 2))}, output: "y", covers: []string{"Flatten"}},
		{name: "SqueezeUnsqueeze", opset: 17, inputs: []gcInput{x("x", 2, 1, 4), xi("ax", []int64{1}, 1), xi("ax2", []int64{1}, 0)},
			nodes: []*onnxpb.NodeProto{nd("Squeeze", []string{"x", "ax"}, []string{"s"}), nd("Unsqueeze", []string{"s", "ax2"}, []string{"y"})}, output: "y", covers: []string{"Squeeze", "Unsqueeze"}},
		{name: "Transpose", opset: 17, inputs: []gcInput{x("x", 2, 3, 4)},
			nodes: []*onnxpb.NodeProto{nd("Transpose", []string{"x"}, []string{"y"}, aInts("perm", []int64{2, 0, 1}))}, output: "y", covers: []string{"Transpose"}},
		{name: "Concat", opset: 17, inputs: []gcInput{x("a", 2, 3), x("b", 2, 2)},
			nodes: []*onnxpb.NodeProto{nd("Concat", []string{"a", "b"}, []string{"y"}, aInt("axis", 1))}, output: "y", covers: []string{"Concat"}},
		{name: "Split", opset: 17, inputs: []gcInput{x("x", 2, 6), xi("sp", []int64{2}, 2, 4)},
			nodes: []*onnxpb.NodeProto{nd("Split", []string{"x", "sp"}, []string{"p", "q"}, aInt("axis", 1)), nd("Mul", []string{"q", "q"}, []string{"y"})}, output: "y", covers: []string{"Split"}},
		{name: "Slice", opset: 17, inputs: []gcInput{x("x", 3, 6), xi("st", []int64{2}, 1, -5), xi("en", []int64{2}, 3, -1), xi("ax", []int64{2}, 0, 1)},
			nodes: []*onnxpb.NodeProto{nd("Slice", []string{"x", "st", "en", "ax"}, []string{"y"})}, output: "y", covers: []string{"Slice"}},
		{name: "GatherScalar", opset: 17, inputs: []gcInput{x("x", 3, 4), xi("i", []int64{}, 2)},
			nodes: []*onnxpb.NodeProto{nd("Gather", []string{"x", "i"}, []string{"y"}, aInt("axis", 1))}, output: "y", covers: []string{"Gather"}},
		{name: "GatherVector", opset: 17, inputs: []gcInput{x("x", 3, 4), xi("i", []int64{3}, 2, 0, 2)},
			nodes: []*onnxpb.NodeProto{nd("Gather", []string{"x", "i"}, []string{"y"}, aInt("axis", 1))}, output: "y", covers: []string{"Gather"}},
		{name: "Expand", opset: 17, inputs: []gcInput{x("x", 3, 1), xi("s", []int64{3}, 2, 3, 4)},
			nodes: []*onnxpb.NodeProto{nd("Expand", []string{"x", "s"}, []string{"y"})}, output: "y", covers: []string{"Expand"}},
		{name: "Tile", opset: 17, inputs: []gcInput{x("x", 2, 3), xi("r", []int64{2}, 2, 3)},
			nodes: []*onnxpb.NodeProto{nd("Tile", []string{"x", "r"}, []string{"y"})}, output: "y", covers: []string{"Tile"}},
		{name: "Pad", opset: 17, inputs: []gcInput{x("x", 2, 3), xi("p", []int64{4}, 1, 0, 2, 3)},
			nodes: []*onnxpb.NodeProto{nd("Pad", []string{"x", "p"}, []string{"y"})}, output: "y", covers: []string{"Pad"}},
		{name: "ReduceMean13", opset: 13, inputs: []gcInput{x("x", 2, 3, 4)},
			nodes: []*onnxpb.NodeProto{nd("ReduceMean", []string{"x"}, []string{"y"}, aInts("axes", []int64{0, 2}), aInt("keepdims", 0))}, output: "y", covers: []string{"ReduceMean"}},
		{name: "ReduceSum", opset: 17, inputs: []gcInput{x("x", 2, 3, 4), xi("ax", []int64{1}, -1)},
			nodes: []*onnxpb.NodeProto{nd("ReduceSum", []string{"x", "ax"}, []string{"y"})}, output: "y", covers: []string{"ReduceSum"}},
		{name: "ReduceSumSquare", opset: 17, inputs: []gcInput{x("x", 2, 3)},
			nodes: []*onnxpb.NodeProto{nd("ReduceSumSquare", []string{"x"}, []string{"y"}, aInts("axes", []int64{1}))}, output: "y", covers: []string{"ReduceSumSquare"}},
		{name: "ReduceMax", opset: 17, inputs: []gcInput{x("x", 2, 5)},
			nodes: []*onnxpb.NodeProto{nd("ReduceMax", []string{"x"}, []string{"y"}, aInts("axes", []int64{1}), aInt("keepdims", 0))}, output: "y", covers: []string{"ReduceMax"}},
		{name: "GlobalAveragePool", opset: 17, inputs: []gcInput{x("x", 2, 3, 4, 5)},
			nodes: []*onnxpb.NodeProto{nd("GlobalAveragePool", []string{"x"}, []string{"y"})}, output: "y", covers: []string{"GlobalAveragePool"}},
		{name: "GlobalMaxPool", opset: 17, inputs: []gcInput{x("x", 2, 3, 3, 3)},
			nodes: []*onnxpb.NodeProto{nd("GlobalMaxPool", []string{"x"}, []string{"y"})}, output: "y", covers: []string{"GlobalMaxPool"}},
		{name: "MaxPool", opset: 17, inputs: []gcInput{x("x", 2, 3, 6, 7)},
			nodes:  []*onnxpb.NodeProto{nd("MaxPool", []string{"x"}, []string{"y", "idx"}, aInts("kernel_shape", []int64{3, 3}), aInts("strides", []int64{2, 2}), aInts("pads", []int64{1, 1, 1, 1}), aInt("ceil_mode", 1))},
			output: "y", h: 1e-3, covers: []string{"MaxPool"}},
		{name: "AveragePoolExcludePad", opset: 17, inputs: []gcInput{x("x", 2, 2, 6, 7)},
			nodes:  []*onnxpb.NodeProto{nd("AveragePool", []string{"x"}, []string{"y"}, aInts("kernel_shape", []int64{3, 2}), aInts("strides", []int64{2, 2}), aInts("pads", []int64{1, 0, 1, 1}), aInt("ceil_mode", 1))},
			output: "y", covers: []string{"AveragePool"}},
		{name: "AveragePoolIncludePad", opset: 17, inputs: []gcInput{x("x", 1, 2, 5, 5)},
			nodes:  []*onnxpb.NodeProto{nd("AveragePool", []string{"x"}, []string{"y"}, aInts("kernel_shape", []int64{3, 3}), aInts("strides", []int64{2, 2}), aInts("pads", []int64{1, 1, 1, 1}), aInt("count_include_pad", 1))},
			output: "y", covers: []string{"AveragePool"}},
		{name: "Conv", opset: 17, inputs: []gcInput{x("x", 2, 3, 7, 6), x("w", 4, 3, 3, 3), x("b", 4)},
			nodes:  []*onnxpb.NodeProto{nd("Conv", []string{"x", "w", "b"}, []string{"y"}, aInts("pads", []int64{1, 1, 1, 1}), aInts("strides", []int64{2, 1}))},
			output: "y", covers: []string{"Conv"}},
		{name: "ConvDilatedNoPad", opset: 17, inputs: []gcInput{x("x", 2, 2, 8, 8), x("w", 3, 2, 3, 2)},
			nodes:  []*onnxpb.NodeProto{nd("Conv", []string{"x", "w"}, []string{"y"}, aInts("dilations", []int64{2, 1}), aInts("strides", []int64{2, 3}))},
			output: "y", covers: []string{"Conv"}},
		{name: "ConvGrouped", opset: 17, inputs: []gcInput{x("x", 2, 4, 5, 5), x("w", 6, 2, 3, 3)},
			nodes:  []*onnxpb.NodeProto{nd("Conv", []string{"x", "w"}, []string{"y"}, aInt("group", 2), aInts("pads", []int64{1, 1, 1, 1}))},
			output: "y", covers: []string{"Conv"}},
		{name: "ConvDepthwise", opset: 17, inputs: []gcInput{x("x", 2, 3, 6, 6), x("w", 3, 1, 3, 3), x("b", 3)},
			nodes:  []*onnxpb.NodeProto{nd("Conv", []string{"x", "w", "b"}, []string{"y"}, aInt("group", 3), aInts("pads", []int64{1, 1, 1, 1}), aInts("strides", []int64{2, 2}))},
			output: "y", covers: []string{"Conv"}},
		{name: "Conv1x1", opset: 17, inputs: []gcInput{x("x", 2, 3, 4, 4), x("w", 5, 3, 1, 1)},
			nodes: []*onnxpb.NodeProto{nd("Conv", []string{"x", "w"}, []string{"y"})}, output: "y", covers: []string{"Conv"}},
		{name: "BatchNormInference", opset: 17, inputs: []gcInput{x("x", 2, 3, 2, 2), x("s", 3), x("b", 3), xc("m", []float32{0.1, -0.2, 0.3}, 3), xc("v", []float32{0.5, 1.5, 2}, 3)},
			nodes: []*onnxpb.NodeProto{nd("BatchNormalization", []string{"x", "s", "b", "m", "v"}, []string{"y"})}, output: "y", covers: []string{"BatchNormalization"}},
		{name: "LayerNorm", opset: 17, inputs: []gcInput{x("x", 2, 3, 4), x("s", 4), x("b", 4)},
			nodes: []*onnxpb.NodeProto{nd("LayerNormalization", []string{"x", "s", "b"}, []string{"y"}, aInt("axis", -1))}, output: "y", covers: []string{"LayerNormalization"}},
		{name: "InstanceNorm", opset: 17, inputs: []gcInput{x("x", 2, 3, 3, 4), x("s", 3), x("b", 3)},
			nodes: []*onnxpb.NodeProto{nd("InstanceNormalization", []string{"x", "s", "b"}, []string{"y"}, aFloat("epsilon", 1e-3))}, output: "y", covers: []string{"InstanceNormalization"}},
	}
	return append(cases, extraGradCases...)
}

func TestGradientRulesFiniteDifferences(t *testing.T) {
	requireORT(t)
	for _, c := range gradCases() {
		t.Run(c.name, func(t *testing.T) { checkGradCase(t, c) })
	}
}

// TestEveryAcceptedOpHasARule: an op with a shape rule is either
// differentiable with a registered rule, or marked as carrying no gradient,
// or marked as emitted only by the builders (and then refused in models);
// and every registered gradient rule is exercised by a finite-difference
// case or says why it has none (composites are checked by their own tests).
func TestEveryAcceptedOpHasARule(t *testing.T) {
	var bad, mixed []string
	for op, info := range opRegistry {
		if info.infer == nil {
			continue
		}
		if !info.trainable() && !info.builderOnly {
			bad = append(bad, op)
		}
		if info.builderOnly && (info.grad != nil || info.noGrad) {
			mixed = append(mixed, op)
		}
	}
	sort.Strings(bad)
	sort.Strings(mixed)
	if len(bad) > 0 {
		t.Fatalf("ops with a shape rule but neither a gradient rule nor noGrad nor builderOnly: %v", bad)
	}
	if len(mixed) > 0 {
		t.Fatalf("ops marked builderOnly that models could use (a gradient rule or noGrad): %v", mixed)
	}
	covered := map[string]bool{}
	for _, c := range gradCases() {
		for _, op := range c.covers {
			covered[op] = true
		}
	}
	for op, info := range opRegistry {
		switch {
		case info.grad != nil && !covered[op] && info.noFDCase == "":
			t.Errorf("gradient rule %s has no finite-difference case", op)
		case info.noFDCase != "" && (info.grad == nil || covered[op]):
			t.Errorf("op %s says why it has no finite-difference case (%s), but it has a gradient rule: %v, a case: %v", op, info.noFDCase, info.grad != nil, covered[op])
		}
	}
}

func init() {
	// Tiled max pooling (kernel = stride) takes the scatter-free path; the odd
	// size leaves a remainder row and column that get no gradient.
	extraGradCases = append(extraGradCases,
		gradCase{name: "MaxPoolTiled", opset: 17, inputs: []gcInput{x("x", 2, 3, 7, 9)},
			nodes:  []*onnxpb.NodeProto{nd("MaxPool", []string{"x"}, []string{"y", "idx"}, aInts("kernel_shape", []int64{2, 3}), aInts("strides", []int64{2, 3}))},
			output: "y", h: 1e-3, covers: []string{"MaxPool"}})
}

var extraGradCases []gradCase

func init() {
	// ResNeXt's grouped 3×3 convolutions: many groups of several channels.
	extraGradCases = append(extraGradCases,
		gradCase{name: "ConvManyGroups", opset: 17, inputs: []gcInput{x("x", 2, 64, 8, 8), x("w", 64, 2, 3, 3)},
			nodes:  []*onnxpb.NodeProto{nd("Conv", []string{"x", "w"}, []string{"y"}, aInt("group", 32), aInts("pads", []int64{1, 1, 1, 1}))},
			output: "y", covers: []string{"Conv"}},
		gradCase{name: "ConvManyGroupsStride2", opset: 17, inputs: []gcInput{x("x", 2, 64, 8, 8), x("w", 64, 2, 3, 3)},
			nodes:  []*onnxpb.NodeProto{nd("Conv", []string{"x", "w"}, []string{"y"}, aInt("group", 32), aInts("pads", []int64{1, 1, 1, 1}), aInts("strides", []int64{2, 2}))},
			output: "y", covers: []string{"Conv"}})
}
