package study

import (
	"fmt"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// The quantile-regression attack's regression model (docs/METHODS.md,
// "Quantile-regression MIA"): an ONNX model written here, trained from
// scratch by the trainer with its Gaussian NLL loss. Its output is
// [N, 2K], one pair (μ, log σ) per class of the audited model; a sample's
// label chooses its pair (the paper's released code offers the same
// label-dependent head), so that the predicted distribution of the hinge
// score is that of the sample with its own label.
//
// For images (C×H×W with H, W ≥ 8) it is a small CNN, because the score
// depends on what the image shows: two blocks of 3×3 convolution (16 and
// 32 channels, padding 1), ReLU and 2×2 max-pooling, then the 32 feature
// maps flattened when they have at most 64 positions (7×7 for 28×28
// inputs) or averaged over positions otherwise (global average pooling,
// so that large images do not make a large model), a hidden layer of 64
// units with ReLU and the 2K outputs. Other inputs get an MLP: flatten,
// two hidden layers of 64 units with ReLU, the 2K outputs. No
// normalization layer: the regression's own batch statistics would be
// one more thing to explain. The weights are zeros here; training starts
// from the trainer's seeded PyTorch-style initialization.

const (
	qmiaConv1, qmiaConv2 = 16, 32
	qmiaHidden           = 64
	// qmiaMaxFlatten is the most positions the last feature maps are
	// flattened at; beyond it they are averaged.
	qmiaMaxFlatten = 64
)

// qmiaRegressor returns the regression model for samples of the given
// shape and pairs (μ, log σ) per sample, and a one-line description of
// its architecture for the report.
func qmiaRegressor(sample []int64, pairs int) (*onnxio.Model, string, error) {
	if len(sample) == 0 || pairs < 1 {
		return nil, "", fmt.Errorf("study: a regression model needs a sample shape and at least one output pair, not %v and %d: %w", sample, pairs, audit.ErrInvalidInput)
	}
	for _, d := range sample {
		if d <= 0 {
			return nil, "", fmt.Errorf("study: a regression model needs a fixed sample shape, not %v: %w", sample, audit.ErrInvalidInput)
		}
	}
	g := &qmiaGraph{gp: &onnxpb.GraphProto{Name: "qmia_regressor"}}
	out := int64(2 * pairs)
	x := "input"
	var desc string
	if len(sample) == 3 && sample[1] >= 8 && sample[2] >= 8 {
		c, h, w := sample[0], sample[1], sample[2]
		x = g.convBlock("conv1", x, c, qmiaConv1)
		x = g.convBlock("conv2", x, qmiaConv1, qmiaConv2)
		h, w = h/2/2, w/2/2
		features := qmiaConv2 * h * w
		pool := fmt.Sprintf("flatten %d×%d×%d", qmiaConv2, h, w)
		if h*w > qmiaMaxFlatten {
			x = g.node("GlobalAveragePool", "pool", []string{x})
			features, pool = qmiaConv2, fmt.Sprintf("global average pool over %d×%d", h, w)
		}
		x = g.node("Flatten", "flatten", []string{x}, qmiaAttr("axis", 1))
		x = g.dense("fc1", x, features, qmiaHidden, true)
		x = g.dense("fc2", x, qmiaHidden, out, false)
		desc = fmt.Sprintf("CNN: conv3×3(%d)-ReLU-maxpool2, conv3×3(%d)-ReLU-maxpool2, %s, linear(%d)-ReLU, linear(%d)", qmiaConv1, qmiaConv2, pool, qmiaHidden, out)
	} else {
		d := int64(1)
		for _, s := range sample {
			d *= s
		}
		x = g.node("Flatten", "flatten", []string{x}, qmiaAttr("axis", 1))
		x = g.dense("fc1", x, d, qmiaHidden, true)
		x = g.dense("fc2", x, qmiaHidden, qmiaHidden, true)
		x = g.dense("fc3", x, qmiaHidden, out, false)
		desc = fmt.Sprintf("MLP: linear(%d)-ReLU, linear(%d)-ReLU, linear(%d)", qmiaHidden, qmiaHidden, out)
	}
	g.gp.Input = []*onnxpb.ValueInfoProto{qmiaValueInfo("input", append([]int64{-1}, sample...))}
	g.gp.Output = []*onnxpb.ValueInfoProto{qmiaValueInfo(x, []int64{-1, out})}
	m := &onnxio.Model{Name: "qmia_regressor.onnx", Proto: &onnxpb.ModelProto{IrVersion: 8, ProducerName: "bnaudit",
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, Graph: g.gp}}
	return m, desc, nil
}

// qmiaGraph accumulates the regression model's nodes and initializers.
type qmiaGraph struct{ gp *onnxpb.GraphProto }

// node appends one node named name whose single output is name's value.
func (g *qmiaGraph) node(op, name string, in []string, attrs ...*onnxpb.AttributeProto) string {
	g.gp.Node = append(g.gp.Node, &onnxpb.NodeProto{Name: name, OpType: op, Input: in, Output: []string{name}, Attribute: attrs})
	return name
}

// zeros adds an initializer of the given shape, all zeros.
func (g *qmiaGraph) zeros(name string, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	g.gp.Initializer = append(g.gp.Initializer, onnxio.FloatTensor(name, dims, make([]float32, n)))
	return name
}

// convBlock is conv 3×3 (padding 1) → ReLU → max-pool 2×2.
func (g *qmiaGraph) convBlock(name, x string, in, out int64) string {
	w, b := g.zeros(name+".weight", out, in, 3, 3), g.zeros(name+".bias", out)
	x = g.node("Conv", name, []string{x, w, b}, qmiaAttrs("kernel_shape", 3, 3), qmiaAttrs("pads", 1, 1, 1, 1))
	x = g.node("Relu", name+".relu", []string{x})
	return g.node("MaxPool", name+".pool", []string{x}, qmiaAttrs("kernel_shape", 2, 2), qmiaAttrs("strides", 2, 2))
}

// dense is a linear layer (Gemm, weight [out, in]), ReLU after it when
// asked.
func (g *qmiaGraph) dense(name, x string, in, out int64, relu bool) string {
	w, b := g.zeros(name+".weight", out, in), g.zeros(name+".bias", out)
	x = g.node("Gemm", name, []string{x, w, b}, qmiaAttr("transB", 1))
	if relu {
		x = g.node("Relu", name+".relu", []string{x})
	}
	return x
}

func qmiaAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, I: v, Type: onnxpb.AttributeProto_INT}
}

func qmiaAttrs(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Ints: v, Type: onnxpb.AttributeProto_INTS}
}

// qmiaValueInfo declares a float tensor; a dimension of −1 is the batch.
func qmiaValueInfo(name string, dims []int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
		if d < 0 {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: onnxio.TypeFloat, Shape: shape}}}}
}
