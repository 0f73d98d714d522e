package trainer

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// buildError is how graph-building code fails: builders panic with it, and
// the public entry points recover it into an ordinary error (the usual Go
// shape for graph builders: panic while building a graph, errors elsewhere).
type buildError struct{ err error }

// attrT shortens the attribute type in rule code.
type attrT = onnxpb.AttributeProto

func failf(format string, args ...any) {
	panic(buildError{fmt.Errorf(format, args...)})
}

// finishBuild is the deferred end of every public graph builder: a
// buildError panic becomes *err, and an error that does not yet say so
// names the model and wraps ErrUnsupported, on one line.
func finishBuild(m *onnxio.Model, err *error) {
	absorbBuildPanic(recover(), err)
	if e := *err; e != nil && !errors.Is(e, ErrUnsupported) && !strings.HasPrefix(e.Error(), "trainer: ") {
		*err = fmt.Errorf("trainer: %s: %s: %w", m.Name, onnxio.CleanMessage(e.Error()), ErrUnsupported)
	}
}

func absorbBuildPanic(r any, err *error) {
	if r == nil {
		return
	}
	be, ok := r.(buildError)
	if !ok {
		panic(r)
	}
	*err = be.err
}

// checkTaps refuses a Conv kernel (weight shape ws) with more taps than
// the weight-gradient formulation emits nodes for.
func checkTaps(name string, ws []int64) {
	if ws[2]*ws[3] > maxTaps {
		failf("Conv %q: kernel %v has more than %d taps, more than bnaudit differentiates", name, ws[2:], maxTaps)
	}
}

// builder emits the nodes of a new ONNX graph and knows the static shape and
// type of every value in it.
type builder struct {
	opset int64
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
	vals  map[string]*value
	used  map[string]bool
	// scope prefixes the names of the nodes and values emitted next, so that
	// a gradient reads as "grad//conv1/Conv/…".
	scope  string
	consts map[string]string // dedup key -> initializer name
	// model resolves constant tensors (external data included).
	model *onnxio.Model
	// hook, when set, sees every tape entry the backward pass differentiates,
	// with its output adjoints, before its rule runs.
	hook func(e *tapeEntry, dy []string, needs []bool)
	// dws records the convolution weight gradients emitted, for the CPU
	// session's blocked-layout rewrite (nchwc.go).
	dws []dwRecord
	// dxs records the convolution input gradients emitted, for the same
	// rewrite with oneDNN (nchwc_dnnl.go).
	dxs []dxRecord
	// bns records BatchNorm's backward with batch statistics (gradBNTrain),
	// for the same rewrite with oneDNN.
	bns []bnRecord
}

func newBuilder(opset int64, model *onnxio.Model) *builder {
	return &builder{opset: opset, vals: map[string]*value{}, used: map[string]bool{}, consts: map[string]string{}, model: model}
}

// fresh returns a new unique name built from the scope and a hint.
func (b *builder) fresh(hint string) string {
	base := hint
	if b.scope != "" {
		base = b.scope + "/" + hint
	}
	name := base
	for k := 1; b.used[name]; k++ {
		name = fmt.Sprintf("%s_%d", base, k)
	}
	b.used[name] = true
	return name
}

// declare registers a value that comes from outside the builder (a graph
// input or an initializer copied from the model).
func (b *builder) declare(name string, v *value) {
	b.vals[name] = v
	b.used[name] = true
}

func (b *builder) val(name string) *value {
	v, ok := b.vals[name]
	if !ok {
		failf("value %q is not known", name)
	}
	return v
}

func (b *builder) shape(name string) []int64 { return b.val(name).shape }

// attribute helpers for emitted nodes
func aInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, I: v, Type: onnxpb.AttributeProto_INT}
}
func aInts(name string, v []int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Ints: append([]int64{}, v...), Type: onnxpb.AttributeProto_INTS}
}
func aFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, F: v, Type: onnxpb.AttributeProto_FLOAT}
}

// emit adds a node with nOut outputs and infers their shapes.
func (b *builder) emit(op string, ins []string, nOut int, attrs ...*onnxpb.AttributeProto) []string {
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = b.fresh(op)
	}
	b.emitNamed(op, b.fresh(op+"_node"), ins, outs, attrs...)
	return outs
}

// emitNamed adds a node whose output names are given, and infers them.
func (b *builder) emitNamed(op, name string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{Name: name, OpType: op, Input: ins, Output: outs, Attribute: attrs}
	b.addNode(n)
	return n
}

// addNode appends an existing node and infers the shapes of its outputs.
func (b *builder) addNode(n *onnxpb.NodeProto) {
	op := opOf(n.GetOpType())
	if op.infer == nil || (n.GetDomain() != "" && n.GetDomain() != "ai.onnx") {
		failf("op %s (node %q) is not supported by bnaudit's trainer", qualified(n), n.GetName())
	}
	outs, err := b.inferCtxOf(n).infer(op)
	if err != nil {
		failf("node %q (%s): %v", n.GetName(), n.GetOpType(), err)
	}
	if len(outs) < countNonEmpty(n.GetOutput()) {
		failf("node %q (%s): shape rule gave %d outputs for %d", n.GetName(), n.GetOpType(), len(outs), len(n.GetOutput()))
	}
	for i, o := range n.GetOutput() {
		if o == "" {
			continue
		}
		if i >= len(outs) {
			failf("node %q (%s): no shape for output %d", n.GetName(), n.GetOpType(), i)
		}
		if err := checkShape(outs[i].shape); err != nil {
			failf("node %q (%s): output %d: %v", n.GetName(), n.GetOpType(), i, err)
		}
		b.vals[o] = outs[i]
		b.used[o] = true
	}
	b.used[n.GetName()] = true
	b.nodes = append(b.nodes, n)
}

func countNonEmpty(s []string) int {
	c := 0
	for _, x := range s {
		if x != "" {
			c++
		}
	}
	return c
}

func qualified(n *onnxpb.NodeProto) string {
	if d := n.GetDomain(); d != "" && d != "ai.onnx" {
		return d + "." + n.GetOpType()
	}
	return n.GetOpType()
}

// op emits a single-output node.
func (b *builder) op(op string, ins []string, attrs ...*onnxpb.AttributeProto) string {
	return b.emit(op, ins, 1, attrs...)[0]
}

// constValue reads a tensor attribute or initializer into a value (content
// kept for small integer and float tensors).
func (b *builder) constValue(t *onnxpb.TensorProto) (*value, error) {
	v := &value{shape: append([]int64{}, t.GetDims()...), dtype: t.GetDataType()}
	if n := v.size(); n <= maxFoldElems {
		m := b.model
		if m == nil {
			m = &onnxio.Model{}
		}
		switch {
		case isIntType(t.GetDataType()) && t.GetDataType() != onnxio.TypeBool && t.GetDataType() != onnxio.TypeUint8 && t.GetDataType() != onnxio.TypeInt8:
			ints, err := m.Int64s(t)
			if err != nil {
				return nil, err
			}
			v.ints = ints
		case t.GetDataType() == onnxio.TypeBool:
			raw := t.GetRawData()
			if len(raw) == int(n) {
				v.ints = make([]int64, n)
				for i, x := range raw {
					v.ints[i] = int64(x)
				}
			} else if len(t.GetInt32Data()) == int(n) {
				v.ints = make([]int64, n)
				for i, x := range t.GetInt32Data() {
					v.ints[i] = int64(x)
				}
			}
		case t.GetDataType() == onnxio.TypeFloat || t.GetDataType() == onnxio.TypeDouble || t.GetDataType() == onnxio.TypeFloat16:
			fs, err := m.Floats(t)
			if err != nil {
				return nil, err
			}
			v.floats = make([]float64, len(fs))
			for i, f := range fs {
				v.floats[i] = float64(f)
			}
		}
	}
	return v, nil
}

// addInit adds an initializer and declares its value.
func (b *builder) addInit(t *onnxpb.TensorProto) string {
	v, err := b.constValue(t)
	if err != nil {
		failf("initializer %q: %v", t.GetName(), err)
	}
	b.inits = append(b.inits, t)
	b.declare(t.GetName(), v)
	return t.GetName()
}

// constI64 returns an int64 initializer with these values (shape [len], or
// a scalar when scalar is true), shared between identical requests.
func (b *builder) constI64(vals []int64, scalar bool) string {
	key := fmt.Sprintf("i64:%v:%v", scalar, vals)
	if n, ok := b.consts[key]; ok {
		return n
	}
	dims := []int64{int64(len(vals))}
	if scalar {
		dims = []int64{}
	}
	name := b.freshConst("const_i64")
	b.addInit(onnxio.Int64Tensor(name, dims, vals))
	b.consts[key] = name
	return name
}

// constF32 returns a float initializer with the given shape and values.
func (b *builder) constF32(dims []int64, vals []float32) string {
	var sb strings.Builder
	for _, v := range vals {
		fmt.Fprintf(&sb, "%x,", math.Float32bits(v))
	}
	key := fmt.Sprintf("f32:%v:%s", dims, sb.String())
	if n, ok := b.consts[key]; ok {
		return n
	}
	name := b.freshConst("const_f32")
	b.addInit(onnxio.FloatTensor(name, dims, vals))
	b.consts[key] = name
	return name
}

// scalar is a 0-d float constant.
func (b *builder) scalar(v float32) string { return b.constF32([]int64{}, []float32{v}) }

func (b *builder) freshConst(hint string) string {
	saved := b.scope
	b.scope = "const"
	defer func() { b.scope = saved }()
	return b.fresh(hint)
}

// reshape emits a Reshape to a static shape (no-op when already there).
func (b *builder) reshape(x string, shape []int64) string {
	if equalShape(b.shape(x), shape) {
		return x
	}
	return b.op("Reshape", []string{x, b.constI64(shape, false)})
}

// reduceSum sums x over axes (keepdims as given), in the form the opset takes.
func (b *builder) reduceSum(x string, axes []int64, keep bool) string {
	if len(axes) == 0 {
		return x
	}
	k := int64(0)
	if keep {
		k = 1
	}
	if b.opset >= 13 {
		return b.op("ReduceSum", []string{x, b.constI64(axes, false)}, aInt("keepdims", k))
	}
	return b.op("ReduceSum", []string{x}, aInts("axes", axes), aInt("keepdims", k))
}

// reduceMean averages x over axes (keepdims as given).
func (b *builder) reduceMean(x string, axes []int64, keep bool) string {
	k := int64(0)
	if keep {
		k = 1
	}
	if b.opset >= 18 {
		return b.op("ReduceMean", []string{x, b.constI64(axes, false)}, aInt("keepdims", k))
	}
	return b.op("ReduceMean", []string{x}, aInts("axes", axes), aInt("keepdims", k))
}

// unsqueeze inserts axes of size 1.
func (b *builder) unsqueeze(x string, axes []int64) string {
	if b.opset >= 13 {
		return b.op("Unsqueeze", []string{x, b.constI64(axes, false)})
	}
	return b.op("Unsqueeze", []string{x}, aInts("axes", axes))
}

// sumTo reduces a broadcast result dy back to shape (the gradient of a
// broadcasting input): sum over the leading extra axes and over axes where
// shape has 1 and dy does not, then reshape.
func (b *builder) sumTo(dy string, shape []int64) string {
	ds := b.shape(dy)
	if equalShape(ds, shape) {
		return dy
	}
	var axes []int64
	lead := len(ds) - len(shape)
	for i := range ds {
		if i < lead {
			axes = append(axes, int64(i))
		} else if shape[i-lead] == 1 && ds[i] != 1 {
			axes = append(axes, int64(i))
		}
	}
	return b.reshape(b.reduceSum(dy, axes, true), shape)
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// graph assembles the built nodes into a GraphProto with the given inputs
// and outputs (their types and shapes come from what the builder inferred).
func (b *builder) graph(name string, inputs, outputs []string) *onnxpb.GraphProto {
	g := &onnxpb.GraphProto{Name: name, Node: b.nodes, Initializer: b.inits}
	for _, in := range inputs {
		g.Input = append(g.Input, b.valueInfo(in))
	}
	for _, out := range outputs {
		g.Output = append(g.Output, b.valueInfo(out))
	}
	return g
}

func (b *builder) valueInfo(name string) *onnxpb.ValueInfoProto {
	v := b.val(name)
	sh := &onnxpb.TensorShapeProto{}
	for _, d := range v.shape {
		sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: v.dtype, Shape: sh}}}}
}
