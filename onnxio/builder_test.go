package onnxio

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Small helpers to write test graphs by hand.

func vi(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		if d < 0 {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}})
		} else {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: TypeFloat, Shape: shape}}}}
}

func node(op, name string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: op, Name: name, Input: ins, Output: outs, Attribute: attrs}
}

func attrI(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, I: v, Type: onnxpb.AttributeProto_INT}
}

func attrF(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, F: v, Type: onnxpb.AttributeProto_FLOAT}
}

func model(opset int64, g *onnxpb.GraphProto) *Model {
	return &Model{Name: "test.onnx", limits: DefaultLimits(), Proto: &onnxpb.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: opset}},
		Graph:       g,
	}}
}

// gemmBN is x[N,2] → Gemm(W[2,2] transB=1, b) → BN → y.
func gemmBN() *Model {
	g := &onnxpb.GraphProto{
		Name:   "gemm_bn",
		Input:  []*onnxpb.ValueInfoProto{vi("x", -1, 2)},
		Output: []*onnxpb.ValueInfoProto{vi("y", -1, 2)},
		Initializer: []*onnxpb.TensorProto{
			FloatTensor("fc.weight", []int64{2, 2}, []float32{1, 2, 3, 4}),
			FloatTensor("fc.bias", []int64{2}, []float32{1, -1}),
			FloatTensor("bn.weight", []int64{2}, []float32{2, 1}),
			FloatTensor("bn.bias", []int64{2}, []float32{0.5, -1}),
			FloatTensor("bn.running_mean", []int64{2}, []float32{1, 0}),
			FloatTensor("bn.running_var", []int64{2}, []float32{3, 8}),
		},
		Node: []*onnxpb.NodeProto{
			node("Gemm", "fc", []string{"x", "fc.weight", "fc.bias"}, []string{"h"}, attrI("transB", 1)),
			node("BatchNormalization", "bn", []string{"h", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}, []string{"y"}, attrF("epsilon", 1)),
		},
	}
	return model(14, g)
}

// convBNRelu is x[N,1,4,4] → Conv(2 out, 3×3, pad 1, no bias) → BN → Relu → y.
func convBNRelu() *Model {
	w := make([]float32, 2*1*3*3)
	for i := range w {
		w[i] = float32(i%5) - 2
	}
	g := &onnxpb.GraphProto{
		Name:   "conv_bn",
		Input:  []*onnxpb.ValueInfoProto{vi("x", -1, 1, 4, 4)},
		Output: []*onnxpb.ValueInfoProto{vi("y", -1, 2, 4, 4)},
		Initializer: []*onnxpb.TensorProto{
			FloatTensor("conv1.weight", []int64{2, 1, 3, 3}, w),
			FloatTensor("bn1.weight", []int64{2}, []float32{1.5, 0.5}),
			FloatTensor("bn1.bias", []int64{2}, []float32{0.1, -0.2}),
			FloatTensor("bn1.running_mean", []int64{2}, []float32{0.3, -0.4}),
			FloatTensor("bn1.running_var", []int64{2}, []float32{2, 0.5}),
		},
		Node: []*onnxpb.NodeProto{
			node("Conv", "conv1", []string{"x", "conv1.weight"}, []string{"c1"}, &onnxpb.AttributeProto{Name: "pads", Ints: []int64{1, 1, 1, 1}, Type: onnxpb.AttributeProto_INTS}),
			node("BatchNormalization", "bn1", []string{"c1", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"}, []string{"b1"}),
			node("Relu", "relu1", []string{"b1"}, []string{"y"}),
		},
	}
	return model(14, g)
}

func mustValid(t *testing.T, m *Model) {
	t.Helper()
	if err := m.Validate(); err != nil {
		t.Fatalf("model should be valid: %v", err)
	}
}

func mustBytes(t *testing.T, m *Model) []byte {
	t.Helper()
	b, err := proto.Marshal(m.Proto)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
