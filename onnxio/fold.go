package onnxio

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// foldPlan is everything fold needs, gathered and checked before any edit.
type foldPlan struct {
	bnIdx, prodIdx int
	bn, prod       *onnxpb.NodeProto
	// per-channel BN factors: y = s·x + t, s = γ/√(σ²+ε), t = β − μ·s
	s, t []float64
	w    *onnxpb.TensorProto
	wv   []float32
	// bias of the producer (nil when it has none), broadcast to [C]
	b []float64
	// biasName is the producer's bias initializer ("" when none)
	biasName string
}

// planFold checks that the BN at node index i can be folded into the node
// producing its input and reads the numbers it needs. Its error says why not.
func planFold(m *Model, ix *Index, i int) (*foldPlan, error) {
	bn := ix.Node(i)
	in := bn.GetInput()
	if out := bn.GetOutput(); len(in) != 5 || len(out) == 0 || len(out) > bnOutputs(m.Opset("")) || out[0] == "" {
		return nil, fmt.Errorf("it has %d inputs and %d outputs; ONNX defines 5 inputs and 1 to %d outputs at opset %d", len(in), len(out), bnOutputs(m.Opset("")), m.Opset(""))
	}
	x := in[0]
	pi, ok := ix.Producer[x]
	if !ok {
		return nil, errors.New("its input is a graph input, not the output of a Conv, ConvTranspose, Gemm or MatMul")
	}
	p := ix.Node(pi)
	if d := p.GetDomain(); d != "" && d != "ai.onnx" {
		return nil, fmt.Errorf("its input comes from %s of domain %s", p.GetOpType(), d)
	}
	switch p.GetOpType() {
	case "Conv", "ConvTranspose", "Gemm", "MatMul":
	default:
		return nil, fmt.Errorf("its input comes from a %s node, not from a Conv, ConvTranspose, Gemm or MatMul", p.GetOpType())
	}
	if len(p.GetOutput()) != 1 || p.GetOutput()[0] != x {
		return nil, fmt.Errorf("%s %q has %d outputs; bnaudit folds into a node whose only output is the BN's input", p.GetOpType(), p.GetName(), len(p.GetOutput()))
	}
	if len(ix.Consumers[x]) != 1 || ix.Outputs[x] {
		return nil, fmt.Errorf("the output of %s %q is also read elsewhere, so changing its weights would change other layers", p.GetOpType(), p.GetName())
	}
	for _, o := range bn.GetOutput()[1:] {
		if o != "" && (len(ix.Consumers[o]) > 0 || ix.Outputs[o]) {
			return nil, fmt.Errorf("its running-statistics output %q is read by the graph", o)
		}
	}
	params := make([][]float32, 4)
	for k := 0; k < 4; k++ {
		t := ix.Initializers[in[k+1]]
		if t == nil {
			return nil, fmt.Errorf("its %s %q is not an initializer (a graph input or computed value cannot be folded)", bnInputNames[k], in[k+1])
		}
		v, err := m.Floats(t)
		if err != nil {
			return nil, err
		}
		params[k] = v
	}
	c := len(params[0])
	for k := 1; k < 4; k++ {
		if len(params[k]) != c {
			return nil, fmt.Errorf("its scale has %d values but its %s has %d", c, bnInputNames[k], len(params[k]))
		}
	}
	eps := float64(AttrFloat(bn, "epsilon", 1e-5))
	plan := &foldPlan{bnIdx: i, prodIdx: pi, bn: bn, prod: p, s: make([]float64, c), t: make([]float64, c)}
	for j := 0; j < c; j++ {
		v := float64(params[3][j]) + eps
		if v <= 0 {
			return nil, fmt.Errorf("its running variance + epsilon is %g at channel %d", v, j)
		}
		plan.s[j] = float64(params[0][j]) / math.Sqrt(v)
		plan.t[j] = float64(params[1][j]) - float64(params[2][j])*plan.s[j]
	}
	pin := p.GetInput()
	if len(pin) < 2 {
		return nil, fmt.Errorf("%s %q has no weight input", p.GetOpType(), p.GetName())
	}
	w := ix.Initializers[pin[1]]
	if w == nil {
		return nil, fmt.Errorf("the weight %q of %s %q is not an initializer", pin[1], p.GetOpType(), p.GetName())
	}
	if w.GetDataType() != TypeFloat {
		return nil, fmt.Errorf("the weight %q of %s %q is %s, bnaudit folds float32 weights only", pin[1], p.GetOpType(), p.GetName(), onnxpb.TensorProto_DataType(w.GetDataType()))
	}
	wv, err := m.Floats(w)
	if err != nil {
		return nil, err
	}
	plan.w, plan.wv = w, wv
	dims := w.GetDims()
	var outCh int64
	switch p.GetOpType() {
	case "Conv":
		if len(dims) < 3 {
			return nil, fmt.Errorf("Conv weight %q has shape %v", w.GetName(), dims)
		}
		outCh = dims[0]
	case "ConvTranspose":
		if len(dims) < 3 {
			return nil, fmt.Errorf("ConvTranspose weight %q has shape %v", w.GetName(), dims)
		}
		outCh = dims[1] * AttrInt(p, "group", 1)
	case "Gemm":
		if len(dims) != 2 {
			return nil, fmt.Errorf("Gemm weight %q has shape %v", w.GetName(), dims)
		}
		if AttrInt(p, "transB", 0) != 0 {
			outCh = dims[0]
		} else {
			outCh = dims[1]
		}
	case "MatMul":
		if len(dims) != 2 {
			return nil, fmt.Errorf("MatMul weight %q has shape %v; only a 2-D weight can be folded", w.GetName(), dims)
		}
		if r := ix.Rank(pin[0]); r != 2 {
			return nil, fmt.Errorf("MatMul %q reads a value of unknown or non-2-D rank, so its last axis may not be BN's channel axis", p.GetName())
		}
		outCh = dims[1]
	}
	if outCh != int64(c) {
		return nil, fmt.Errorf("%s %q has %d output channels but the BN normalizes %d", p.GetOpType(), p.GetName(), outCh, c)
	}
	// The producer's bias, broadcast to [C].
	biasIn := 2
	if p.GetOpType() == "MatMul" {
		biasIn = -1
	}
	if biasIn > 0 && len(pin) > biasIn && pin[biasIn] != "" {
		bt := ix.Initializers[pin[biasIn]]
		if bt == nil {
			return nil, fmt.Errorf("the bias %q of %s %q is not an initializer", pin[biasIn], p.GetOpType(), p.GetName())
		}
		bv, err := m.Floats(bt)
		if err != nil {
			return nil, err
		}
		bd := bt.GetDims()
		plan.b = make([]float64, c)
		switch {
		case len(bv) == c && (len(bd) == 1 || (len(bd) == 2 && bd[0] == 1)):
			for j := range plan.b {
				plan.b[j] = float64(bv[j])
			}
		case len(bv) == 1:
			for j := range plan.b {
				plan.b[j] = float64(bv[0])
			}
		default:
			return nil, fmt.Errorf("the bias %q of %s %q has shape %v, which is not per output channel", pin[biasIn], p.GetOpType(), p.GetName(), bd)
		}
		if p.GetOpType() == "Gemm" {
			beta := float64(AttrFloat(p, "beta", 1))
			for j := range plan.b {
				plan.b[j] *= beta
			}
		}
		plan.biasName = pin[biasIn]
	}
	return plan, nil
}

var bnInputNames = [4]string{"scale", "bias", "running mean", "running variance"}

// applyFold rewrites the producer's weight and bias and removes the BN.
func (e *editor) applyFold(pl *foldPlan) error {
	p, bn := pl.prod, pl.bn
	dims := pl.w.GetDims()
	c := len(pl.s)
	nw := make([]float32, len(pl.wv))
	switch p.GetOpType() {
	case "Conv":
		per := len(pl.wv) / c
		for j := 0; j < c; j++ {
			for k := 0; k < per; k++ {
				nw[j*per+k] = float32(float64(pl.wv[j*per+k]) * pl.s[j])
			}
		}
	case "ConvTranspose":
		// weight [Cin, Cout/G, k...]: output channel of W[ci, j] is g·(Cout/G)+j
		g := AttrInt(p, "group", 1)
		cin, coutG := dims[0], dims[1]
		per := int64(len(pl.wv)) / (cin * coutG)
		for ci := int64(0); ci < cin; ci++ {
			grp := ci / (cin / g)
			for j := int64(0); j < coutG; j++ {
				o := grp*coutG + j
				base := (ci*coutG + j) * per
				for k := int64(0); k < per; k++ {
					nw[base+k] = float32(float64(pl.wv[base+k]) * pl.s[o])
				}
			}
		}
	case "Gemm", "MatMul":
		rows, cols := dims[0], dims[1]
		transB := p.GetOpType() == "Gemm" && AttrInt(p, "transB", 0) != 0
		for r := int64(0); r < rows; r++ {
			for q := int64(0); q < cols; q++ {
				ch := q
				if transB {
					ch = r
				}
				nw[r*cols+q] = float32(float64(pl.wv[r*cols+q]) * pl.s[ch])
			}
		}
	}
	nb := make([]float32, c)
	for j := 0; j < c; j++ {
		b := 0.0
		if pl.b != nil {
			b = pl.b[j]
		}
		nb[j] = float32(b*pl.s[j] + pl.t[j])
	}
	// Weight: keep the parameter's name unless another node shares it.
	wName := pl.w.GetName()
	if len(e.ix.Consumers[wName]) > 1 {
		wName = e.names.unique(wName + "/folded")
		p.Input[1] = wName
		e.addInit(FloatTensor(wName, dims, nw))
		e.maybeUnused[pl.w.GetName()] = true
	} else {
		setFloatData(pl.w, dims, nw)
	}
	// Bias: likewise, or a new one named after the weight (conv1.weight → conv1.bias).
	var bName string
	if pl.biasName != "" && len(e.ix.Consumers[pl.biasName]) == 1 {
		bName = pl.biasName
		setFloatData(e.ix.Initializers[bName], []int64{int64(c)}, nb)
	} else {
		base := pl.w.GetName() + "/folded_bias"
		if strings.HasSuffix(pl.w.GetName(), ".weight") {
			base = strings.TrimSuffix(pl.w.GetName(), ".weight") + ".bias"
		}
		bName = e.names.unique(base)
		e.addInit(FloatTensor(bName, []int64{int64(c)}, nb))
		if pl.biasName != "" {
			e.maybeUnused[pl.biasName] = true
		}
	}
	y := bn.GetOutput()[0]
	x := p.GetOutput()[0]
	switch p.GetOpType() {
	case "Conv", "ConvTranspose":
		for len(p.Input) < 3 {
			p.Input = append(p.Input, "")
		}
		p.Input[2] = bName
		p.Output[0] = y
	case "Gemm":
		for len(p.Input) < 3 {
			p.Input = append(p.Input, "")
		}
		p.Input[2] = bName
		SetAttrFloat(p, "beta", 1)
		p.Output[0] = y
	case "MatMul":
		add := &onnxpb.NodeProto{
			Name:   e.names.unique(bn.GetName() + "/folded"),
			OpType: "Add",
			Input:  []string{x, bName},
			Output: []string{y},
		}
		e.after(pl.prodIdx, add)
	}
	if p.GetOpType() != "MatMul" {
		e.dropValueInfo(x)
	}
	e.forgetInputs(bn)
	e.drop[pl.bnIdx] = true
	return nil
}
