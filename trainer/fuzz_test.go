package trainer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// fuzzFixtures are the committed models the other trainer tests build
// graphs from; they seed FuzzBuildStep together with two tiny hand-written
// models whose few bytes the fuzzer can mutate more effectively.
var fuzzFixtures = []string{"mlp.preserve.onnx", "small_cnn.training.onnx", "small_resnet.training.onnx", "small_resnet.preserve.onnx", "old_cnn.op9.training.onnx"}

func fvi(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		if d < 0 {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}})
		} else {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: onnxio.TypeFloat, Shape: shape}}}}
}

func fuzzModel(name string, opset int64, g *onnxpb.GraphProto) *onnxio.Model {
	return &onnxio.Model{Name: name, Proto: &onnxpb.ModelProto{IrVersion: 8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: opset}}, Graph: g}}
}

func ramp(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(i%7-3)
	}
	return v
}

// tinyCNN: x[N,1,6,6] → Conv 3×3 → BatchNorm → Relu → MaxPool 2 → Dropout
// → Flatten → Gemm → y[N,3].
func tinyCNN() *onnxio.Model {
	return fuzzModel("tiny_cnn.onnx", 17, &onnxpb.GraphProto{
		Name:   "tiny_cnn",
		Input:  []*onnxpb.ValueInfoProto{fvi("x", -1, 1, 6, 6)},
		Output: []*onnxpb.ValueInfoProto{fvi("y", -1, 3)},
		Initializer: []*onnxpb.TensorProto{
			onnxio.FloatTensor("conv.w", []int64{2, 1, 3, 3}, ramp(18, 0.1)),
			onnxio.FloatTensor("conv.b", []int64{2}, []float32{0.1, -0.1}),
			onnxio.FloatTensor("bn.w", []int64{2}, []float32{1, 0.5}),
			onnxio.FloatTensor("bn.b", []int64{2}, []float32{0, 0.2}),
			onnxio.FloatTensor("bn.mean", []int64{2}, []float32{0, 0.1}),
			onnxio.FloatTensor("bn.var", []int64{2}, []float32{1, 2}),
			onnxio.FloatTensor("fc.w", []int64{3, 18}, ramp(54, 0.05)),
			onnxio.FloatTensor("fc.b", []int64{3}, []float32{0, 0.1, 0.2}),
		},
		Node: []*onnxpb.NodeProto{
			nd("Conv", []string{"x", "conv.w", "conv.b"}, []string{"c"}, aInts("pads", []int64{1, 1, 1, 1}), aInts("kernel_shape", []int64{3, 3})),
			nd("BatchNormalization", []string{"c", "bn.w", "bn.b", "bn.mean", "bn.var"}, []string{"n"}, aFloat("momentum", 0.9)),
			nd("Relu", []string{"n"}, []string{"r"}),
			nd("MaxPool", []string{"r"}, []string{"p"}, aInts("kernel_shape", []int64{2, 2}), aInts("strides", []int64{2, 2})),
			nd("Dropout", []string{"p"}, []string{"d"}, aFloat("ratio", 0.25)),
			nd("Flatten", []string{"d"}, []string{"f"}, aInt("axis", 1)),
			nd("Gemm", []string{"f", "fc.w", "fc.b"}, []string{"y"}, aInt("transB", 1)),
		},
	})
}

// tinyShapes: x[N,4] through MatMul, Add, Reshape, Transpose,
// LayerNormalization, Slice, Pad, Split, Mul, Concat, Sigmoid, ReduceMean,
// Unsqueeze, Squeeze, Clip and Gemm to y[N,3]: the shape rules with constant
// inputs.
func tinyShapes() *onnxio.Model {
	i64 := func(name string, v ...int64) *onnxpb.TensorProto {
		return onnxio.Int64Tensor(name, []int64{int64(len(v))}, v)
	}
	return fuzzModel("tiny_shapes.onnx", 17, &onnxpb.GraphProto{
		Name:   "tiny_shapes",
		Input:  []*onnxpb.ValueInfoProto{fvi("x", -1, 4)},
		Output: []*onnxpb.ValueInfoProto{fvi("y", -1, 3)},
		Initializer: []*onnxpb.TensorProto{
			onnxio.FloatTensor("w1", []int64{4, 6}, ramp(24, 0.1)),
			onnxio.FloatTensor("b1", []int64{6}, ramp(6, 0.01)),
			i64("shape", 0, 2, 3),
			onnxio.FloatTensor("ln.g", []int64{2}, []float32{1, 0.5}),
			onnxio.FloatTensor("ln.b", []int64{2}, []float32{0, 0.1}),
			i64("starts", 0), i64("ends", 2), i64("axes", 1),
			i64("pads", 0, 0, 1, 0, 0, 0),
			i64("split", 1, 1),
			i64("ax1", 1),
			onnxio.FloatTensor("lo", []int64{}, []float32{-2}),
			onnxio.FloatTensor("hi", []int64{}, []float32{2}),
			onnxio.FloatTensor("w2", []int64{3, 3}, ramp(9, 0.2)),
			onnxio.FloatTensor("b2", []int64{3}, []float32{0, 0, 0.1}),
		},
		Node: []*onnxpb.NodeProto{
			nd("MatMul", []string{"x", "w1"}, []string{"h1"}),
			nd("Add", []string{"h1", "b1"}, []string{"h2"}),
			nd("Reshape", []string{"h2", "shape"}, []string{"h3"}),
			nd("Transpose", []string{"h3"}, []string{"h4"}, aInts("perm", []int64{0, 2, 1})),
			nd("LayerNormalization", []string{"h4", "ln.g", "ln.b"}, []string{"h5"}, aInt("axis", -1)),
			nd("Slice", []string{"h5", "starts", "ends", "axes"}, []string{"h6"}),
			nd("Pad", []string{"h6", "pads"}, []string{"h7"}),
			nd("Split", []string{"h7", "split"}, []string{"s1", "s2"}, aInt("axis", 1)),
			nd("Mul", []string{"s1", "s2"}, []string{"m"}),
			nd("Concat", []string{"m", "s1"}, []string{"c"}, aInt("axis", 1)),
			nd("Sigmoid", []string{"c"}, []string{"sg"}),
			nd("ReduceMean", []string{"sg"}, []string{"e"}, aInts("axes", []int64{1}), aInt("keepdims", 0)),
			nd("Unsqueeze", []string{"e", "ax1"}, []string{"u"}),
			nd("Squeeze", []string{"u", "ax1"}, []string{"e2"}),
			nd("Clip", []string{"e2", "lo", "hi"}, []string{"cl"}),
			nd("Gemm", []string{"cl", "w2", "b2"}, []string{"y"}, aInt("transB", 1)),
		},
	})
}

// buildAll builds every graph bnaudit makes from a model: the training step
// (both optimizers, with gradients), the evaluation graph and both
// gradient-norm graphs. It returns the errors; nothing here needs ORT.
func buildAll(m *onnxio.Model, batch int) []error {
	var errs []error
	_, err := BuildStep(m, StepConfig{Batch: batch, Optimizer: SGD(0.9, 1e-4, true), LabelSmoothing: 0.1})
	errs = append(errs, err)
	if err == nil {
		_, err = BuildStep(m, StepConfig{Batch: batch, Optimizer: AdamW(0.01), WithGrads: true})
		errs = append(errs, err)
	}
	_, err = BuildEval(m, batch)
	errs = append(errs, err)
	for _, mode := range []GradNormMode{GradNormEval, GradNormInBatch} {
		_, err = BuildGradNorms(m, batch, mode)
		errs = append(errs, err)
	}
	return errs
}

// fuzzSeeds returns the seed models: the two tiny ones, and the fixtures with
// every initializer over 256 bytes moved to an external file in dir, so that
// the seeds hold the graphs in a few kilobytes (the fuzzer mutates, and
// minimizes what it finds in, the bytes it is given, which the weights would
// otherwise dominate).
func fuzzSeeds(tb testing.TB, dir string) []*onnxio.Model {
	seeds := []*onnxio.Model{tinyCNN(), tinyShapes()}
	for fi, name := range fuzzFixtures {
		m := loadFixture(tb, name).Clone()
		for ti, t := range m.Graph().GetInitializer() {
			if len(t.GetRawData()) <= 256 {
				continue
			}
			loc := fmt.Sprintf("%d.%d", fi, ti)
			if err := os.WriteFile(filepath.Join(dir, loc), t.GetRawData(), 0o644); err != nil {
				tb.Fatal(err)
			}
			t.RawData = nil
			t.DataLocation = onnxpb.TensorProto_EXTERNAL
			t.ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: loc}}
		}
		seeds = append(seeds, m)
	}
	return seeds
}

// FuzzBuildStep feeds arbitrary bytes to onnxio.Decode and, when they
// decode, to every graph builder of the trainer. Nothing may panic, and
// every error must be one line. It needs no ONNX Runtime: building a graph
// is pure Go.
func FuzzBuildStep(f *testing.F) {
	dir := f.TempDir()
	for _, m := range fuzzSeeds(f, dir) {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := onnxio.Limits{MaxFileBytes: 1 << 20, MaxTensorBytes: 1 << 20, MaxNodes: 1000}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnxio.Decode(data, dir, lim)
		if err != nil {
			return // onnxio's FuzzLoad covers decoding
		}
		for _, err := range buildAll(m, 2) {
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
		}
	})
}

// TestFuzzSeedsBuild: the seeds are valid models the trainer builds every
// graph for, so that the fuzzer starts from working inputs.
func TestFuzzSeedsBuild(t *testing.T) {
	dir := t.TempDir()
	for _, m := range fuzzSeeds(t, dir) {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 64<<10 {
			t.Errorf("%s: seed of %d bytes; keep seeds small", m.Name, len(b))
		}
		d, err := onnxio.Decode(b, dir, onnxio.DefaultLimits())
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		for _, err := range buildAll(d, 2) {
			if err != nil {
				t.Errorf("%s: %v", m.Name, err)
			}
		}
	}
}
