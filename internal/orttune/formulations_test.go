// Package orttune measures how fast ONNX Runtime runs alternative ONNX
// formulations of the same computation, so that the trainer's gradient rules
// can be chosen by measurement (BENCHMARKS.md records the figures), and
// profiles a whole training step by op. It has no code outside its tests:
//
//	go test -run '^$' -bench . ./internal/orttune/
//	BNAUDIT_PROFILE_MODEL=small_cnn.training.onnx go test -run TestProfile -v ./internal/orttune/
package orttune

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

func vi(name string, dims ...int64) *onnxpb.ValueInfoProto {
	sh := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: 1, Shape: sh}}}}
}

// bench runs a graph on x, d ([128, 32, 28, 28], the SmallCNN's conv2
// activations at batch 128) and reports milliseconds per run.
func bench(b *testing.B, name string, nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto) {
	shape := []int64{128, 32, 28, 28}
	benchInputs(b, name, nodes, inits, []*onnxpb.ValueInfoProto{vi("x", shape...), vi("d", shape...)}, shape)
}

// benchInputs runs a graph with the given inputs (filled with a fixed
// pattern) and one output y of shape out, and reports milliseconds per run.
func benchInputs(b *testing.B, name string, nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto, ins []*onnxpb.ValueInfoProto, out []int64) {
	b.Run(name, func(b *testing.B) {
		g := &onnxpb.GraphProto{Name: "g", Node: nodes, Initializer: inits, Input: ins, Output: []*onnxpb.ValueInfoProto{vi("y", out...)}}
		data := make([][]float32, len(ins))
		for k, in := range ins {
			data[k] = make([]float32, numel(dimsOf(in)))
			for i := range data[k] {
				data[k][i] = float32(i%17) - 8
			}
		}
		benchModel(b, g, data, out)
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/run")
	})
}

// benchModel opens graph g (opset 17) on 2 threads through onnxio/ort, with
// one input per entry of data (shaped as g declares it) and one output of
// shape out, runs it once to warm up and then b.N times, timed.
func benchModel(b *testing.B, g *onnxpb.GraphProto, data [][]float32, out []int64) {
	b.Helper()
	raw, err := proto.Marshal(&onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, Graph: g})
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	var ins []*ort.Value
	for i, in := range g.GetInput() {
		v, err := ort.NewFloat32(dimsOf(in), data[i])
		if err != nil {
			b.Fatal(err)
		}
		defer v.Destroy()
		names = append(names, in.GetName())
		ins = append(ins, v)
	}
	s, err := ort.NewSession(raw, names, []string{g.GetOutput()[0].GetName()}, ort.SessionOptions{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	y, err := ort.NewFloat32(out, make([]float32, numel(out)))
	if err != nil {
		b.Fatal(err)
	}
	defer y.Destroy()
	outs := []*ort.Value{y}
	if err := s.RunValues(context.Background(), ins, outs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.RunValues(context.Background(), ins, outs); err != nil {
			b.Fatal(err)
		}
	}
}

// dimsOf returns the fixed dimensions vi declares.
func dimsOf(vi *onnxpb.ValueInfoProto) []int64 {
	var out []int64
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		out = append(out, d.GetDimValue())
	}
	return out
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func n(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: op, Input: ins, Output: outs, Attribute: attrs}
}

// BenchmarkFormulations compares ways of writing per-channel affine maps
// (BatchNorm's forward and backward) and ReLU's backward.
func BenchmarkFormulations(t *testing.B) {
	requireORT(t)
	c := make([]float32, 32)
	for i := range c {
		c[i] = 1.5
	}
	s4 := onnxio.FloatTensor("s4", []int64{1, 32, 1, 1}, c)
	s1 := onnxio.FloatTensor("s1", []int64{32}, c)
	z1 := onnxio.FloatTensor("z1", []int64{32}, make([]float32, 32))
	o1 := onnxio.FloatTensor("o1", []int64{32}, c)
	w := onnxio.FloatTensor("w", []int64{32, 1, 1, 1}, c)
	zero := onnxio.FloatTensor("zero", []int64{}, []float32{0})
	af := func(name string, v float32) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: name, F: v, Type: onnxpb.AttributeProto_FLOAT}
	}
	ai := func(name string, v int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: name, I: v, Type: onnxpb.AttributeProto_INT}
	}
	bench(t, "copy (Identity)", []*onnxpb.NodeProto{n("Identity", []string{"x"}, []string{"y"})}, nil)
	bench(t, "Mul same shape", []*onnxpb.NodeProto{n("Mul", []string{"x", "d"}, []string{"y"})}, nil)
	bench(t, "Mul [1,C,1,1]", []*onnxpb.NodeProto{n("Mul", []string{"x", "s4"}, []string{"y"})}, []*onnxpb.TensorProto{s4})
	bench(t, "Mul+Add [1,C,1,1]", []*onnxpb.NodeProto{n("Mul", []string{"x", "s4"}, []string{"t"}), n("Add", []string{"t", "s4"}, []string{"y"})}, []*onnxpb.TensorProto{s4})
	bench(t, "BN inference", []*onnxpb.NodeProto{n("BatchNormalization", []string{"x", "s1", "z1", "z1", "o1"}, []string{"y"}, af("epsilon", 0))}, []*onnxpb.TensorProto{s1, z1, o1})
	bench(t, "Conv 1x1 depthwise", []*onnxpb.NodeProto{n("Conv", []string{"x", "w", "z1"}, []string{"y"}, ai("group", 32))}, []*onnxpb.TensorProto{w, z1})
	bench(t, "relu bwd Where", []*onnxpb.NodeProto{n("Greater", []string{"x", "zero"}, []string{"m"}), n("Where", []string{"m", "d", "zero"}, []string{"y"})}, []*onnxpb.TensorProto{zero})
	bench(t, "relu bwd Sign Mul", []*onnxpb.NodeProto{n("Sign", []string{"x"}, []string{"m"}), n("Mul", []string{"m", "d"}, []string{"y"})}, nil)
	bench(t, "relu bwd Greater Cast Mul", []*onnxpb.NodeProto{n("Greater", []string{"x", "zero"}, []string{"m"}), n("Cast", []string{"m"}, []string{"mf"}, ai("to", 1)), n("Mul", []string{"mf", "d"}, []string{"y"})}, []*onnxpb.TensorProto{zero})
	bench(t, "relu bwd Relu-trick", []*onnxpb.NodeProto{n("Relu", []string{"x"}, []string{"r"}), n("Div", []string{"r", "x"}, []string{"m"}), n("Mul", []string{"m", "d"}, []string{"y"})}, nil)
	bench(t, "ReduceSum axes 0,2,3", []*onnxpb.NodeProto{n("ReduceSum", []string{"x", "ax"}, []string{"r"}, ai("keepdims", 1)), n("Mul", []string{"x", "r"}, []string{"y"})}, []*onnxpb.TensorProto{onnxio.Int64Tensor("ax", []int64{3}, []int64{0, 2, 3})})
}

// benchIO is bench with one input x of shape in and an output of shape out.
func benchIO(b *testing.B, name string, nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto, in, out []int64) {
	benchInputs(b, name, nodes, inits, []*onnxpb.ValueInfoProto{vi("x", in...)}, out)
}

// BenchmarkConvBackward compares ways of computing a 3×3, stride-1, pad-1
// convolution's input gradient (16 → 16 channels at 28×28, batch 128, the
// small ResNet's layer1) and of padding its input.
func BenchmarkConvBackward(t *testing.B) {
	requireORT(t)
	w := make([]float32, 16*16*9)
	for i := range w {
		w[i] = float32(i%7) * 0.1
	}
	wt := onnxio.FloatTensor("w", []int64{16, 16, 3, 3}, w)
	ai := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: name, Ints: v, Type: onnxpb.AttributeProto_INTS}
	}
	shape := []int64{128, 16, 28, 28}
	benchIO(t, "ConvTranspose", []*onnxpb.NodeProto{n("ConvTranspose", []string{"x", "w"}, []string{"y"}, ai("pads", 1, 1, 1, 1))}, []*onnxpb.TensorProto{wt}, shape, shape)
	benchIO(t, "Conv with flipped weights", []*onnxpb.NodeProto{n("Conv", []string{"x", "w"}, []string{"y"}, ai("pads", 1, 1, 1, 1))}, []*onnxpb.TensorProto{wt}, shape, shape)
	benchIO(t, "Pad 1", []*onnxpb.NodeProto{n("Pad", []string{"x", "p"}, []string{"y"})},
		[]*onnxpb.TensorProto{onnxio.Int64Tensor("p", []int64{8}, []int64{0, 0, 1, 1, 0, 0, 1, 1})}, shape, []int64{128, 16, 30, 30})
	benchIO(t, "Transpose 1023", []*onnxpb.NodeProto{n("Transpose", []string{"x"}, []string{"y"}, ai("perm", 1, 0, 2, 3))}, nil, shape, []int64{16, 128, 28, 28})
	benchIO(t, "Expand GAP backward", []*onnxpb.NodeProto{n("Expand", []string{"x", "s"}, []string{"y"})},
		[]*onnxpb.TensorProto{onnxio.Int64Tensor("s", []int64{4}, []int64{128, 32, 14, 14})}, []int64{128, 32, 1, 1}, []int64{128, 32, 14, 14})
}

// BenchmarkConvWeightGrad compares weight-gradient forms for the small
// CNN's conv2 (x [128,16,28,28], dY [128,32,28,28], 3×3, pad 1): the
// per-offset products bnaudit uses, and the "Conv form" (a convolution of the
// channel-major input with the channel-major dY as kernel).
//
// Caution: dY is a constant here, so ORT pre-packs it as a convolution
// weight once, which flatters the Conv form (12 ms here); inside a step
// graph dY changes every run, and switching the step to the Conv form made
// the small CNN's step slower (66 → 94 ms, BENCHMARKS.md). Decide by the
// end-to-end step benchmark.
func BenchmarkConvWeightGrad(t *testing.B) {
	requireORT(t)
	ai := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: name, Ints: v, Type: onnxpb.AttributeProto_INTS}
	}
	// dY is a constant here; x is the input.
	dy := make([]float32, 128*32*784)
	for i := range dy {
		dy[i] = float32(i%11) * 0.01
	}
	dyT := onnxio.FloatTensor("dy", []int64{128, 32, 28, 28}, dy)
	in, out := []int64{128, 16, 28, 28}, []int64{32, 16, 3, 3}
	// Conv form: Conv(xᵀ [16,128,28,28], dyᵀ [32,128,28,28], pads 1) → [16, 32, 3, 3] → transpose.
	benchIO(t, "Conv form", []*onnxpb.NodeProto{
		n("Transpose", []string{"x"}, []string{"xt"}, ai("perm", 1, 0, 2, 3)),
		n("Transpose", []string{"dy"}, []string{"dyt"}, ai("perm", 1, 0, 2, 3)),
		n("Conv", []string{"xt", "dyt"}, []string{"c"}, ai("pads", 1, 1, 1, 1)),
		n("Transpose", []string{"c"}, []string{"y"}, ai("perm", 1, 0, 2, 3)),
	}, []*onnxpb.TensorProto{dyT}, in, out)
	// Per-offset products, as trainer/ops_conv.go writes them.
	nodes := []*onnxpb.NodeProto{
		n("Transpose", []string{"x"}, []string{"xt"}, ai("perm", 1, 0, 2, 3)),
		n("Pad", []string{"xt", "pads"}, []string{"xp"}),
		n("Transpose", []string{"dy"}, []string{"dyt"}, ai("perm", 1, 0, 2, 3)),
		n("Reshape", []string{"dyt", "s32"}, []string{"d"}),
	}
	inits := []*onnxpb.TensorProto{dyT, onnxio.Int64Tensor("pads", []int64{8}, []int64{0, 0, 1, 1, 0, 0, 1, 1}),
		onnxio.Int64Tensor("s32", []int64{2}, []int64{32, -1}), onnxio.Int64Tensor("s16", []int64{2}, []int64{16, -1}),
		onnxio.Int64Tensor("ax", []int64{2}, []int64{2, 3}), onnxio.Int64Tensor("one", []int64{1}, []int64{2}),
		onnxio.Int64Tensor("os", []int64{4}, []int64{32, 16, 3, 3})}
	var parts []string
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			st := fmt.Sprintf("st%d%d", i, j)
			en := fmt.Sprintf("en%d%d", i, j)
			inits = append(inits, onnxio.Int64Tensor(st, []int64{2}, []int64{int64(i), int64(j)}), onnxio.Int64Tensor(en, []int64{2}, []int64{int64(i + 28), int64(j + 28)}))
			w := fmt.Sprintf("w%d%d", i, j)
			nodes = append(nodes,
				n("Slice", []string{"xp", st, en, "ax"}, []string{w}),
				n("Reshape", []string{w, "s16"}, []string{w + "r"}),
				n("Gemm", []string{"d", w + "r"}, []string{w + "g"}, &onnxpb.AttributeProto{Name: "transB", I: 1, Type: onnxpb.AttributeProto_INT}),
				n("Unsqueeze", []string{w + "g", "one"}, []string{w + "u"}))
			parts = append(parts, w+"u")
		}
	}
	nodes = append(nodes, n("Concat", parts, []string{"cat"}, &onnxpb.AttributeProto{Name: "axis", I: 2, Type: onnxpb.AttributeProto_INT}),
		n("Reshape", []string{"cat", "os"}, []string{"y"}))
	benchIO(t, "per-offset products", nodes, inits, in, out)

	// One product over the columns of all offsets, concatenated on axis 0.
	nodes2 := nodes[:4:4]
	var cols []string
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			w := fmt.Sprintf("w%d%d", i, j)
			nodes2 = append(nodes2, n("Slice", []string{"xp", fmt.Sprintf("st%d%d", i, j), fmt.Sprintf("en%d%d", i, j), "ax"}, []string{w}))
			cols = append(cols, w)
		}
	}
	inits2 := append(inits, onnxio.Int64Tensor("s144", []int64{2}, []int64{144, -1}), onnxio.Int64Tensor("s5", []int64{4}, []int64{32, 3, 3, 16}))
	nodes2 = append(nodes2, n("Concat", cols, []string{"cat"}, &onnxpb.AttributeProto{Name: "axis", I: 0, Type: onnxpb.AttributeProto_INT}),
		n("Reshape", []string{"cat", "s144"}, []string{"cols"}),
		n("Gemm", []string{"d", "cols"}, []string{"g"}, &onnxpb.AttributeProto{Name: "transB", I: 1, Type: onnxpb.AttributeProto_INT}),
		n("Reshape", []string{"g", "s5"}, []string{"g4"}),
		n("Transpose", []string{"g4"}, []string{"y"}, ai("perm", 0, 3, 1, 2)))
	benchIO(t, "one product over concatenated columns", nodes2, inits2, in, out)
}

// BenchmarkGEMMPeak measures ONNX Runtime's (MLAS's) float32 matrix product
// of two 1024×1024 matrices on 2 threads, the practical arithmetic ceiling
// of these cores that BENCHMARKS.md compares training steps with.
func BenchmarkGEMMPeak(b *testing.B) {
	requireORT(b)
	const n = 1024
	w := make([]float32, n*n)
	for i := range w {
		w[i] = float32(i%13) * 0.01
	}
	b.Run("MatMul 1024", func(b *testing.B) {
		g := &onnxpb.GraphProto{Name: "g", Node: []*onnxpb.NodeProto{{OpType: "MatMul", Input: []string{"x", "y"}, Output: []string{"z"}}},
			Input:  []*onnxpb.ValueInfoProto{vi("x", n, n), vi("y", n, n)},
			Output: []*onnxpb.ValueInfoProto{vi("z", n, n)}}
		benchModel(b, g, [][]float32{w, w}, []int64{n, n})
		b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
