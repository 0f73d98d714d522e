package onnxio

import (
	"fmt"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// GroupCount is the default number of GroupNorm groups for C channels:
// gcd(32, C), the rule Opacus applies when it replaces BatchNorm.
func GroupCount(c int64) int64 {
	a, b := int64(32), c
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// groupNorm replaces one BN by GroupNorm written with ops that exist from
// opset 6 on, so the model keeps its own opset:
//
//	Y = Reshape(Add(Mul(Reshape(InstanceNorm(Reshape(X, [0,G,-1])), [0,C,-1]), γ), β), Shape(X))
//
// InstanceNormalization over the [N, G, M] view normalizes each group of each
// sample over its channels and positions; γ and β ([C,1]) are the per-channel
// affine. Shapes, ones and zeros are Constant nodes, so that only γ and β
// are initializers (trainable parameters).
func (e *editor) groupNorm(bn BatchNorm, opt AblateOptions) ([]string, error) {
	if op := e.m.Opset(""); op < 6 {
		return nil, fmt.Errorf("onnxio: groupnorm needs opset 6 or later; %s has opset %d", e.m.Name, op)
	}
	c := bn.Channels
	if c <= 0 {
		return nil, fmt.Errorf("onnxio: %s: the number of channels is unknown (its scale is not an initializer with a declared shape); cannot build GroupNorm", bnLabel(bn))
	}
	g := int64(opt.Groups)
	if g == 0 {
		g = GroupCount(c)
	}
	if g < 0 || c%g != 0 {
		return nil, fmt.Errorf("onnxio: %s: %d channels cannot be split into %d groups; pick --groups dividing %d", bnLabel(bn), c, g, c)
	}
	var warnings []string
	if c/g == 1 {
		rank := e.ix.Rank(bn.Input)
		spatialOne := rank == 2
		if d, ok := e.ix.Shape(bn.Input); ok && len(d) > 2 {
			spatialOne = true
			for _, v := range d[2:] {
				if v != 1 {
					spatialOne = false
				}
			}
		}
		if spatialOne {
			warnings = append(warnings, fmt.Sprintf("%s: GroupNorm with %d groups of one channel normalizes a single value per group, so its output is the bias alone and the signal is erased; use fewer groups (--groups)", bnLabel(bn), g))
		} else {
			e.oneChannelGroups = append(e.oneChannelGroups, bnLabel(bn))
		}
	}
	n := e.ix.Node(bn.NodeIndex)
	in := n.GetInput()
	x, y := in[0], n.GetOutput()[0]
	gamma := make([]float32, c)
	beta := make([]float32, c)
	for j := range gamma {
		gamma[j] = 1
	}
	if opt.CopyAffine {
		for k, dst := range [][]float32{gamma, beta} {
			t := e.ix.Initializers[in[1+k]]
			if t == nil {
				return nil, fmt.Errorf("onnxio: %s: --copy-affine needs its scale and bias as initializers", bnLabel(bn))
			}
			v, err := e.m.Floats(t)
			if err != nil {
				return nil, err
			}
			if int64(len(v)) != c {
				return nil, fmt.Errorf("onnxio: %s: its %s has %d values for %d channels", bnLabel(bn), bnInputNames[k], len(v), c)
			}
			copy(dst, v)
		}
	}
	// Parameter names follow the BN's: bn1.weight → bn1.gn.weight.
	prefix := strings.TrimSuffix(in[1], ".weight")
	if prefix == in[1] || prefix == "" {
		prefix = n.GetName()
	}
	gName := e.names.unique(prefix + ".gn.weight")
	bName := e.names.unique(prefix + ".gn.bias")
	e.addInit(FloatTensor(gName, []int64{c, 1}, gamma))
	e.addInit(FloatTensor(bName, []int64{c, 1}, beta))

	base := n.GetName() + "/groupnorm"
	v := func(s string) string { return e.names.unique(base + "/" + s) }
	constant := func(t *onnxpb.TensorProto) *onnxpb.NodeProto {
		out := v(t.Name)
		t.Name = ""
		return &onnxpb.NodeProto{Name: out, OpType: "Constant", Output: []string{out},
			Attribute: []*onnxpb.AttributeProto{{Name: "value", T: t, Type: onnxpb.AttributeProto_TENSOR}}}
	}
	ones := make([]float32, g)
	for j := range ones {
		ones[j] = 1
	}
	cGroup := constant(Int64Tensor("group_shape", []int64{3}, []int64{0, g, -1}))
	cChan := constant(Int64Tensor("channel_shape", []int64{3}, []int64{0, c, -1}))
	cOnes := constant(FloatTensor("ones", []int64{g}, ones))
	cZeros := constant(FloatTensor("zeros", []int64{g}, make([]float32, g)))
	node := func(op string, name string, ins ...string) *onnxpb.NodeProto {
		nm := v(name)
		return &onnxpb.NodeProto{Name: nm, OpType: op, Input: ins, Output: []string{nm}}
	}
	shape := node("Shape", "shape", x)
	grouped := node("Reshape", "group", x, cGroup.Output[0])
	norm := node("InstanceNormalization", "normalize", grouped.Output[0], cOnes.Output[0], cZeros.Output[0])
	SetAttrFloat(norm, "epsilon", bn.Epsilon)
	chans := node("Reshape", "channels", norm.Output[0], cChan.Output[0])
	scaled := node("Mul", "scale", chans.Output[0], gName)
	shifted := node("Add", "shift", scaled.Output[0], bName)
	restore := &onnxpb.NodeProto{Name: v("restore"), OpType: "Reshape", Input: []string{shifted.Output[0], shape.Output[0]}, Output: []string{y}}
	e.after(bn.NodeIndex, cGroup, cChan, cOnes, cZeros, shape, grouped, norm, chans, scaled, shifted, restore)
	e.forgetInputs(n)
	e.drop[bn.NodeIndex] = true
	return warnings, nil
}
