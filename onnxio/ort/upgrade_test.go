package ort

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// These tests check onnxio.Upgrade op by op: a small model of an old opset
// and its upgrade (to opset 13 and to 17) run on ONNX Runtime with the same
// inputs must give the same outputs. ONNX Runtime running the original
// model is the reference; for opset 6, whose ops ONNX Runtime no longer
// runs, the reference is the op's definition computed here by hand.

// upTol is the float32 tolerance: max |a−b| ≤ upTol·max(1, max |reference|).
const upTol = 1e-6

func upVI(name string, elem int32, dims ...int64) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: elem}
	if dims != nil {
		sh := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		tt.Shape = sh
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
}

// fvi declares a float value; no dims leaves its shape undeclared.
func fvi(name string, dims ...int64) *onnxpb.ValueInfoProto {
	return upVI(name, onnxio.TypeFloat, dims...)
}

func upNode(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: op + "_" + outs[0], OpType: op, Input: ins, Output: outs, Attribute: attrs}
}

func aI(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, I: v, Type: onnxpb.AttributeProto_INT}
}

func aF(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, F: v, Type: onnxpb.AttributeProto_FLOAT}
}

func aInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Ints: v, Type: onnxpb.AttributeProto_INTS}
}

func aFloats(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Floats: v, Type: onnxpb.AttributeProto_FLOATS}
}

func aS(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, S: []byte(v), Type: onnxpb.AttributeProto_STRING}
}

// wave returns n deterministic values in about [−2.5, 2.5] with no two
// equal, so that max, top-k and argmax have one answer.
func wave(n int, phase float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*math.Sin(float64(i)*0.91+phase) + 0.013*float64(i%37))
	}
	return v
}

// oldModel encodes and decodes a graph at an opset, so that Validate runs
// on it as on a loaded file.
func oldModel(t *testing.T, opset int64, g *onnxpb.GraphProto) *onnxio.Model {
	t.Helper()
	raw, err := (&onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: 3, ProducerName: "test",
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: opset}}, Graph: g}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxio.Decode(raw, "", onnxio.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runOutputs runs a model on ORT and returns every output.
func runOutputs(t *testing.T, m *onnxio.Model, inputs map[string]*Tensor) map[string]*Tensor {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSessionAuto(b, SessionOptions{Threads: 1})
	if err != nil {
		t.Fatalf("%s (opset %d): %v", m.Name, m.Opset(""), err)
	}
	defer s.Close()
	out, err := s.Run(inputs)
	if err != nil {
		t.Fatalf("%s (opset %d): %v", m.Name, m.Opset(""), err)
	}
	return out
}

// compareOutputs requires got to hold the outputs of want, with equal
// shapes, equal integers and booleans, and floats within upTol.
func compareOutputs(t *testing.T, want, got map[string]*Tensor) {
	t.Helper()
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(got) != len(want) {
		t.Errorf("%d outputs, want %d", len(got), len(want))
	}
	for _, name := range names {
		w, g := want[name], got[name]
		if g == nil {
			t.Errorf("output %q missing", name)
			continue
		}
		if !slices.Equal(w.Shape, g.Shape) {
			t.Errorf("output %q: shape %v, want %v", name, g.Shape, w.Shape)
			continue
		}
		switch {
		case w.Float32 != nil:
			if g.Float32 == nil {
				t.Errorf("output %q is not float", name)
				continue
			}
			worst, scale := 0.0, 1.0
			for i, x := range w.Float32 {
				worst = math.Max(worst, math.Abs(float64(x)-float64(g.Float32[i])))
				if math.IsNaN(float64(g.Float32[i])) != math.IsNaN(float64(x)) {
					worst = math.Inf(1)
				}
				scale = math.Max(scale, math.Abs(float64(x)))
			}
			if worst > upTol*scale {
				t.Errorf("output %q: max |diff| %.3g over scale %.3g (want ≤ %.0e relative)\nwant %v\ngot  %v", name, worst, scale, upTol, head(w.Float32), head(g.Float32))
			}
		case w.Int64 != nil:
			if !slices.Equal(w.Int64, g.Int64) {
				t.Errorf("output %q: %v, want %v", name, g.Int64, w.Int64)
			}
		case w.Bool != nil:
			if !slices.Equal(w.Bool, g.Bool) {
				t.Errorf("output %q: %v, want %v", name, g.Bool, w.Bool)
			}
		}
	}
}

func head(v []float32) []float32 { return v[:min(len(v), 8)] }

// upgradeCase is one small model of an old opset.
type upgradeCase struct {
	name  string
	opset int64
	graph func() *onnxpb.GraphProto
	// inputs feeds the graph's inputs (by name) from their declared shapes.
	inputs map[string]*Tensor
	// want, for opset 6, is the reference computed by hand; nil: ONNX
	// Runtime running the original.
	want func(in map[string]*Tensor) map[string]*Tensor
	// rewritten is the op types the upgrade to 17 must rewrite.
	rewritten []string
}

// x is a float input of the given shape filled with wave values.
func x(shape ...int64) *Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return Float32Tensor(shape, wave(int(n), float64(len(shape))))
}

// single is a graph of one input "x", given nodes, initializers and outputs.
func single(in *onnxpb.ValueInfoProto, outs []*onnxpb.ValueInfoProto, inits []*onnxpb.TensorProto, nodes ...*onnxpb.NodeProto) func() *onnxpb.GraphProto {
	return func() *onnxpb.GraphProto {
		return &onnxpb.GraphProto{Name: "g", Input: []*onnxpb.ValueInfoProto{in}, Output: outs, Initializer: inits, Node: nodes}
	}
}

func bnInits(c int) []*onnxpb.TensorProto {
	ch := func(base, step float32) []float32 {
		v := make([]float32, c)
		for i := range v {
			v[i] = base + step*float32(i)
		}
		return v
	}
	return []*onnxpb.TensorProto{
		onnxio.FloatTensor("scale", []int64{int64(c)}, ch(0.8, 0.3)),
		onnxio.FloatTensor("bias", []int64{int64(c)}, ch(-0.1, 0.15)),
		onnxio.FloatTensor("mean", []int64{int64(c)}, ch(0.2, -0.25)),
		onnxio.FloatTensor("var", []int64{int64(c)}, ch(0.5, 0.7)),
	}
}

var bnIns = []string{"x", "scale", "bias", "mean", "var"}

func upgradeCases() []upgradeCase {
	const intMax = math.MaxInt64
	return []upgradeCase{
		{name: "BatchNormalization-7 inference, spatial=1", opset: 7,
			graph: single(fvi("x", 2, 3, 4, 5), []*onnxpb.ValueInfoProto{fvi("y", 2, 3, 4, 5)}, bnInits(3),
				upNode("BatchNormalization", bnIns, []string{"y"}, aF("epsilon", 1e-3), aI("spatial", 1))),
			inputs: map[string]*Tensor{"x": x(2, 3, 4, 5)}, rewritten: []string{"BatchNormalization"}},
		{name: "BatchNormalization-9 training, five outputs", opset: 9,
			graph: single(fvi("x", 4, 3, 2, 2), []*onnxpb.ValueInfoProto{fvi("y", 4, 3, 2, 2), fvi("rm", 3), fvi("rv", 3)}, bnInits(3),
				upNode("BatchNormalization", bnIns, []string{"y", "rm", "rv", "sm", "sv"}, aF("epsilon", 1e-5), aF("momentum", 0.8))),
			inputs: map[string]*Tensor{"x": x(4, 3, 2, 2)}, rewritten: []string{"BatchNormalization"}},
		{name: "Dropout-7 ratio attribute, mask unread", opset: 7,
			graph: single(fvi("x", 3, 4), []*onnxpb.ValueInfoProto{fvi("y", 3, 4)}, nil,
				upNode("Dropout", []string{"x"}, []string{"y", "mask"}, aF("ratio", 0.3))),
			inputs: map[string]*Tensor{"x": x(3, 4)}, rewritten: []string{"Dropout"}},
		{name: "Dropout-10 boolean mask unread", opset: 10,
			graph: single(fvi("x", 3, 4), []*onnxpb.ValueInfoProto{fvi("y", 3, 4)}, nil,
				upNode("Dropout", []string{"x"}, []string{"y", "mask"}, aF("ratio", 0.6))),
			inputs: map[string]*Tensor{"x": x(3, 4)}, rewritten: []string{"Dropout"}},
		{name: "Squeeze and Unsqueeze-11 axes attributes", opset: 11,
			graph: single(fvi("x", 2, 1, 3), []*onnxpb.ValueInfoProto{fvi("y", 1, 2, 3, 1)}, nil,
				upNode("Squeeze", []string{"x"}, []string{"s"}, aInts("axes", -2)),
				upNode("Unsqueeze", []string{"s"}, []string{"y"}, aInts("axes", 0, 3))),
			inputs: map[string]*Tensor{"x": x(2, 1, 3)}, rewritten: []string{"Squeeze", "Unsqueeze"}},
		{name: "Squeeze-9 without axes", opset: 9,
			graph: single(fvi("x", 2, 1, 3, 1), []*onnxpb.ValueInfoProto{fvi("y", 2, 3)}, nil,
				upNode("Squeeze", []string{"x"}, []string{"y"})),
			inputs: map[string]*Tensor{"x": x(2, 1, 3, 1)}},
		{name: "ReduceSum-11 axes attribute and none", opset: 11,
			graph: single(fvi("x", 2, 3, 4), []*onnxpb.ValueInfoProto{fvi("y1", 2, 4), fvi("y2", 1, 1, 1)}, nil,
				upNode("ReduceSum", []string{"x"}, []string{"y1"}, aInts("axes", 1), aI("keepdims", 0)),
				upNode("ReduceSum", []string{"x"}, []string{"y2"})),
			inputs: map[string]*Tensor{"x": x(2, 3, 4)}, rewritten: []string{"ReduceSum"}},
		{name: "Clip-9 min and max attributes", opset: 9,
			graph: single(fvi("x", 3, 5), []*onnxpb.ValueInfoProto{fvi("y1", 3, 5), fvi("y2", 3, 5), fvi("y3", 3, 5)}, nil,
				upNode("Clip", []string{"x"}, []string{"y1"}, aF("min", -0.5), aF("max", 0.7)),
				upNode("Clip", []string{"x"}, []string{"y2"}, aF("min", 0)),
				upNode("Clip", []string{"x"}, []string{"y3"}, aF("max", 1.25))),
			inputs: map[string]*Tensor{"x": x(3, 5)}, rewritten: []string{"Clip"}},
		{name: "Pad-9 constant, reflect and edge", opset: 9,
			graph: single(fvi("x", 1, 2, 3, 3), []*onnxpb.ValueInfoProto{fvi("y1", 1, 2, 6, 6), fvi("y2", 1, 2, 5, 5), fvi("y3", 1, 2, 4, 5)}, nil,
				upNode("Pad", []string{"x"}, []string{"y1"}, aInts("pads", 0, 0, 1, 2, 0, 0, 2, 1), aF("value", 1.5)),
				upNode("Pad", []string{"x"}, []string{"y2"}, aS("mode", "reflect"), aInts("pads", 0, 0, 1, 1, 0, 0, 1, 1)),
				upNode("Pad", []string{"x"}, []string{"y3"}, aS("mode", "edge"), aInts("pads", 0, 0, 0, 2, 0, 0, 1, 0))),
			inputs: map[string]*Tensor{"x": x(1, 2, 3, 3)}, rewritten: []string{"Pad"}},
		{name: "Softmax and LogSoftmax-9 on a middle axis", opset: 9,
			graph: single(fvi("x", 2, 3, 2, 2), []*onnxpb.ValueInfoProto{fvi("y1", 2, 3, 2, 2), fvi("y2", 2, 3, 2, 2), fvi("y3", 2, 3, 2, 2)}, nil,
				upNode("Softmax", []string{"x"}, []string{"y1"}, aI("axis", 1)),
				upNode("LogSoftmax", []string{"x"}, []string{"y2"}, aI("axis", 2)),
				upNode("Softmax", []string{"x"}, []string{"y3"}, aI("axis", 0))),
			inputs: map[string]*Tensor{"x": x(2, 3, 2, 2)}, rewritten: []string{"LogSoftmax", "Softmax"}},
		{name: "Softmax-9 default axis on an undeclared rank", opset: 9,
			graph: single(fvi("x", 2, 3, 4), []*onnxpb.ValueInfoProto{fvi("y")}, nil,
				upNode("Relu", []string{"x"}, []string{"r"}),
				upNode("Softmax", []string{"r"}, []string{"y"})),
			inputs: map[string]*Tensor{"x": x(2, 3, 4)}, rewritten: []string{"Softmax"}},
		{name: "LogSoftmax-11 last axis, Hardmax-11 middle axis", opset: 11,
			graph: single(fvi("x", 2, 3, 4), []*onnxpb.ValueInfoProto{fvi("y1", 2, 3, 4), fvi("y2", 2, 3, 4)}, nil,
				upNode("LogSoftmax", []string{"x"}, []string{"y1"}, aI("axis", -1)),
				upNode("Hardmax", []string{"x"}, []string{"y2"}, aI("axis", 1))),
			inputs: map[string]*Tensor{"x": x(2, 3, 4)}, rewritten: []string{"Hardmax", "LogSoftmax"}},
		{name: "Softmax-9 after Gemm (rank 2, default axis)", opset: 9,
			graph: single(fvi("x", 2, 3), []*onnxpb.ValueInfoProto{fvi("y")}, []*onnxpb.TensorProto{onnxio.FloatTensor("w", []int64{3, 4}, wave(12, 3)), onnxio.FloatTensor("b", []int64{4}, wave(4, 5))},
				upNode("Gemm", []string{"x", "w", "b"}, []string{"h"}),
				upNode("Softmax", []string{"h"}, []string{"y"})),
			inputs: map[string]*Tensor{"x": x(2, 3)}, rewritten: []string{"Softmax"}},
		{name: "Split-9 split attribute and equal parts", opset: 9,
			graph: single(fvi("x", 2, 6), []*onnxpb.ValueInfoProto{fvi("a", 2, 2), fvi("b", 2, 4), fvi("c", 1, 6), fvi("d", 1, 6)}, nil,
				upNode("Split", []string{"x"}, []string{"a", "b"}, aI("axis", 1), aInts("split", 2, 4)),
				upNode("Split", []string{"x"}, []string{"c", "d"}, aI("axis", 0))),
			inputs: map[string]*Tensor{"x": x(2, 6)}, rewritten: []string{"Split"}},
		{name: "Slice-9 attributes with negative and huge bounds", opset: 9,
			graph: single(fvi("x", 3, 4, 5), []*onnxpb.ValueInfoProto{fvi("y", 2, 4, 2)}, nil,
				upNode("Slice", []string{"x"}, []string{"y"}, aInts("starts", 1, -3), aInts("ends", intMax, -1), aInts("axes", 0, 2))),
			inputs: map[string]*Tensor{"x": x(3, 4, 5)}, rewritten: []string{"Slice"}},
		{name: "TopK-9 k attribute", opset: 9,
			graph: single(fvi("x", 3, 5), []*onnxpb.ValueInfoProto{fvi("v", 3, 2), upVI("i", onnxio.TypeInt64, 3, 2)}, nil,
				upNode("TopK", []string{"x"}, []string{"v", "i"}, aI("k", 2), aI("axis", 1))),
			inputs: map[string]*Tensor{"x": x(3, 5)}, rewritten: []string{"TopK"}},
		{name: "Upsample-7 nearest, scales attribute", opset: 7,
			graph: single(fvi("x", 1, 1, 2, 3), []*onnxpb.ValueInfoProto{fvi("y", 1, 1, 4, 9)}, nil,
				upNode("Upsample", []string{"x"}, []string{"y"}, aFloats("scales", 1, 1, 2, 3))),
			inputs: map[string]*Tensor{"x": x(1, 1, 2, 3)}, rewritten: []string{"Upsample"}},
		{name: "Upsample-9 linear, scales input", opset: 9,
			graph: single(fvi("x", 1, 2, 3, 3), []*onnxpb.ValueInfoProto{fvi("y", 1, 2, 6, 6)}, []*onnxpb.TensorProto{onnxio.FloatTensor("scales", []int64{4}, []float32{1, 1, 2, 2})},
				upNode("Upsample", []string{"x", "scales"}, []string{"y"}, aS("mode", "linear"))),
			inputs: map[string]*Tensor{"x": x(1, 2, 3, 3)}, rewritten: []string{"Upsample"}},
		{name: "Resize-10 nearest and linear", opset: 10,
			graph: single(fvi("x", 1, 1, 3, 3), []*onnxpb.ValueInfoProto{fvi("y1", 1, 1, 4, 6), fvi("y2", 1, 1, 4, 6)}, []*onnxpb.TensorProto{onnxio.FloatTensor("scales", []int64{4}, []float32{1, 1, 1.5, 2})},
				upNode("Resize", []string{"x", "scales"}, []string{"y1"}),
				upNode("Resize", []string{"x", "scales"}, []string{"y2"}, aS("mode", "linear"))),
			inputs: map[string]*Tensor{"x": x(1, 1, 3, 3)}, rewritten: []string{"Resize"}},
		{name: "Scatter-9", opset: 9,
			graph: single(fvi("x", 3, 3), []*onnxpb.ValueInfoProto{fvi("y", 3, 3)}, []*onnxpb.TensorProto{
				onnxio.Int64Tensor("idx", []int64{2, 3}, []int64{1, 0, 2, 0, 2, 1}), onnxio.FloatTensor("upd", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})},
				upNode("Scatter", []string{"x", "idx", "upd"}, []string{"y"}, aI("axis", 0))),
			inputs: map[string]*Tensor{"x": x(3, 3)}, rewritten: []string{"Scatter"}},
		{name: "unchanged ops of opset 9", opset: 9,
			graph: single(fvi("x", 2, 1, 4, 4), []*onnxpb.ValueInfoProto{fvi("y", 2, 3)}, []*onnxpb.TensorProto{
				onnxio.FloatTensor("w", []int64{2, 1, 3, 3}, wave(18, 1)), onnxio.FloatTensor("fc", []int64{3, 8}, wave(24, 2)), onnxio.FloatTensor("fcb", []int64{3}, []float32{0.1, -0.2, 0.3})},
				upNode("Conv", []string{"x", "w"}, []string{"c"}, aInts("pads", 1, 1, 1, 1)),
				upNode("Relu", []string{"c"}, []string{"r"}),
				upNode("MaxPool", []string{"r"}, []string{"p"}, aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)),
				upNode("Flatten", []string{"p"}, []string{"f"}),
				upNode("Gemm", []string{"f", "fc", "fcb"}, []string{"y"}, aI("transB", 1))),
			inputs: map[string]*Tensor{"x": x(2, 1, 4, 4)}},
		{name: "Add-6 broadcast along axis 1, Mul-6 numpy-aligned", opset: 6,
			graph: single(fvi("x", 2, 3, 4), []*onnxpb.ValueInfoProto{fvi("y1", 2, 3, 4), fvi("y2", 2, 3, 4)}, []*onnxpb.TensorProto{
				onnxio.FloatTensor("b", []int64{3}, []float32{10, 20, 30}), onnxio.FloatTensor("c", []int64{4}, []float32{1, -1, 2, -2})},
				upNode("Add", []string{"x", "b"}, []string{"y1"}, aI("broadcast", 1), aI("axis", 1)),
				upNode("Mul", []string{"x", "c"}, []string{"y2"}, aI("broadcast", 1))),
			inputs: map[string]*Tensor{"x": x(2, 3, 4)}, rewritten: []string{"Add", "Mul"},
			want: func(in map[string]*Tensor) map[string]*Tensor {
				v := in["x"].Float32
				y1, y2 := make([]float32, 24), make([]float32, 24)
				for i := range v {
					y1[i] = v[i] + []float32{10, 20, 30}[(i/4)%3]
					y2[i] = v[i] * []float32{1, -1, 2, -2}[i%4]
				}
				return map[string]*Tensor{"y1": Float32Tensor([]int64{2, 3, 4}, y1), "y2": Float32Tensor([]int64{2, 3, 4}, y2)}
			}},
		{name: "PRelu-6 slope per channel", opset: 6,
			graph: single(fvi("x", 2, 3, 2, 2), []*onnxpb.ValueInfoProto{fvi("y", 2, 3, 2, 2)}, []*onnxpb.TensorProto{
				onnxio.FloatTensor("slope", []int64{3}, []float32{0.1, -0.5, 2})},
				upNode("PRelu", []string{"x", "slope"}, []string{"y"})),
			inputs: map[string]*Tensor{"x": x(2, 3, 2, 2)}, rewritten: []string{"PRelu"},
			want: func(in map[string]*Tensor) map[string]*Tensor {
				v := in["x"].Float32
				y := make([]float32, len(v))
				for i, a := range v {
					y[i] = a
					if a < 0 {
						y[i] = a * []float32{0.1, -0.5, 2}[(i/4)%3]
					}
				}
				return map[string]*Tensor{"y": Float32Tensor([]int64{2, 3, 2, 2}, y)}
			}},
		{name: "BatchNormalization-6 is_test=1, Gemm-6 broadcast", opset: 6,
			graph: single(fvi("x", 2, 3), []*onnxpb.ValueInfoProto{fvi("y", 2, 2)}, append(bnInits(3),
				onnxio.FloatTensor("w", []int64{3, 2}, []float32{1, 2, -1, 0.5, 0, 3}), onnxio.FloatTensor("c", []int64{2}, []float32{0.25, -4})),
				upNode("BatchNormalization", bnIns, []string{"b"}, aF("epsilon", 1e-3), aI("is_test", 1), aI("spatial", 1)),
				upNode("Gemm", []string{"b", "w", "c"}, []string{"y"}, aI("broadcast", 1), aF("beta", 2))),
			inputs: map[string]*Tensor{"x": x(2, 3)}, rewritten: []string{"BatchNormalization", "Gemm"},
			want: func(in map[string]*Tensor) map[string]*Tensor {
				v := in["x"].Float32
				scale, bias, mean, vr := []float64{0.8, 1.1, 1.4}, []float64{-0.1, 0.05, 0.2}, []float64{0.2, -0.05, -0.3}, []float64{0.5, 1.2, 1.9}
				w, c := [][]float64{{1, 2}, {-1, 0.5}, {0, 3}}, []float64{0.25, -4}
				y := make([]float32, 4)
				for i := 0; i < 2; i++ {
					for j := 0; j < 2; j++ {
						s := 2 * c[j]
						for k := 0; k < 3; k++ {
							b := scale[k]*(float64(v[3*i+k])-mean[k])/math.Sqrt(vr[k]+1e-3) + bias[k]
							s += b * w[k][j]
						}
						y[2*i+j] = float32(s)
					}
				}
				return map[string]*Tensor{"y": Float32Tensor([]int64{2, 2}, y)}
			}},
		{name: "Softmax-6 on axis 1 of rank 3 (2-D coercion)", opset: 6,
			graph: single(fvi("x", 2, 3, 2), []*onnxpb.ValueInfoProto{fvi("y", 2, 3, 2)}, nil,
				upNode("Softmax", []string{"x"}, []string{"y"}, aI("axis", 1))),
			inputs: map[string]*Tensor{"x": x(2, 3, 2)}, rewritten: []string{"Softmax"},
			want: func(in map[string]*Tensor) map[string]*Tensor {
				// Each sample's six values form one row of the 2-D coercion.
				v := in["x"].Float32
				y := make([]float32, len(v))
				for s := 0; s < 2; s++ {
					row := v[6*s : 6*s+6]
					sum := 0.0
					for _, a := range row {
						sum += math.Exp(float64(a))
					}
					for k, a := range row {
						y[6*s+k] = float32(math.Exp(float64(a)) / sum)
					}
				}
				return map[string]*Tensor{"y": Float32Tensor([]int64{2, 3, 2}, y)}
			}},
	}
}

func TestUpgradeOpsOnORT(t *testing.T) {
	requireORT(t)
	for _, c := range upgradeCases() {
		t.Run(c.name, func(t *testing.T) {
			m := oldModel(t, c.opset, c.graph())
			var want map[string]*Tensor
			if c.want != nil {
				want = c.want(c.inputs)
			} else {
				want = runOutputs(t, m, c.inputs)
			}
			for _, to := range []int64{13, 17} {
				up, rep, err := onnxio.Upgrade(m, to)
				if err != nil {
					t.Fatalf("to %d: %v", to, err)
				}
				if up.Opset("") != to || !rep.Upgraded() {
					t.Fatalf("to %d: opset %d, report %v", to, up.Opset(""), rep)
				}
				t.Run(fmt.Sprint("to ", to), func(t *testing.T) {
					compareOutputs(t, want, runOutputs(t, up, c.inputs))
				})
				if to == 17 {
					var got []string
					for op := range rep.Rewritten {
						got = append(got, op)
					}
					sort.Strings(got)
					if !slices.Equal(got, c.rewritten) {
						t.Errorf("rewrote %v, want %v (%s)", got, c.rewritten, rep)
					}
				}
			}
		})
	}
}

// TestUpgradeCasesCatchWrongRewrites is the tests' own check: the same
// comparison, run on a deliberately wrong rewrite, must fail.
func TestUpgradeCasesCatchWrongRewrites(t *testing.T) {
	requireORT(t)
	m := oldModel(t, 9, single(fvi("x", 2, 3, 2, 2), []*onnxpb.ValueInfoProto{fvi("y", 2, 3, 2, 2)}, nil,
		upNode("Softmax", []string{"x"}, []string{"y"}, aI("axis", 1)))())
	in := map[string]*Tensor{"x": x(2, 3, 2, 2)}
	want := runOutputs(t, m, in)
	// The tempting wrong upgrade: keep the node and only bump the opset,
	// which turns the 2-D softmax into one over axis 1 alone.
	naive := m.Clone()
	naive.Proto.OpsetImport[0].Version = 13
	got := runOutputs(t, naive, in)
	ft := &testing.T{}
	compareOutputs(ft, want, got)
	if !ft.Failed() {
		t.Fatal("compareOutputs accepted a Softmax whose meaning changed")
	}
	if !strings.Contains(fmt.Sprint(want["y"].Float32[:3]), ".") {
		t.Fatal("reference outputs look empty")
	}
}
