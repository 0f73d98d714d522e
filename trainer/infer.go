package trainer

import (
	"fmt"
	"math"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Static shape inference. A training step is built for one batch size, so
// every tensor of the forward and backward graphs has a fixed shape; knowing
// it lets gradient rules emit plain Reshape/ReduceSum/Slice nodes with
// constant arguments instead of shape-computing subgraphs. Small integer
// tensors (the Shape → Gather → Concat → Reshape chains of PyTorch exports)
// are also evaluated here, so that the shapes that depend on them are known.

// value is what the builder knows about one tensor.
type value struct {
	shape []int64
	dtype int32
	// ints holds the content of small integer (and bool) tensors whose value
	// is known when the graph is built; nil otherwise.
	ints []int64
	// floats holds the content of small constant float tensors (scalars such
	// as a Clip bound or a Dropout ratio); nil otherwise.
	floats []float64
}

func (v *value) size() int64 {
	n := int64(1)
	for _, d := range v.shape {
		n *= d
	}
	return n
}

// maxFoldElems bounds the size of tensors whose content inference tracks.
const maxFoldElems = 64

// inferCtx is what a shape rule sees: the node and its inputs.
type inferCtx struct {
	node   *onnxpb.NodeProto
	in     []*value // nil for an absent optional input
	opset  int64
	consts func(t *onnxpb.TensorProto) (*value, error)
}

func (c *inferCtx) attrInt(name string, def int64) int64 { return onnxio.AttrInt(c.node, name, def) }
func (c *inferCtx) attrInts(name string) []int64         { return onnxio.AttrInts(c.node, name) }
func (c *inferCtx) attrFloat(name string, def float32) float32 {
	return onnxio.AttrFloat(c.node, name, def)
}

// input returns input k or an error naming the node when it is missing.
func (c *inferCtx) input(k int) (*value, error) {
	if k >= len(c.in) || c.in[k] == nil {
		return nil, fmt.Errorf("input %d is missing", k)
	}
	return c.in[k], nil
}

// intsOf returns the known content of input k (for shapes, axes, pads …).
func (c *inferCtx) intsOf(k int) ([]int64, error) {
	v, err := c.input(k)
	if err != nil {
		return nil, err
	}
	if v.ints == nil {
		return nil, fmt.Errorf("input %d must be a constant known when the graph is built", k)
	}
	return v.ints, nil
}

type inferFn func(c *inferCtx) ([]*value, error)

var inferRules = map[string]inferFn{}

func init() {
	same := func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		return []*value{{shape: x.shape, dtype: x.dtype}}, nil
	}
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs",
		"Sign", "Floor", "Ceil", "HardSigmoid", "HardSwish", "LeakyRelu", "Softmax", "LogSoftmax", "Clip",
		"Elu", "Selu", "Softplus", "Cos", "Sin"} {
		inferRules[op] = same
	}
	inferRules["InstanceNormalization"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		if len(x.shape) < 3 {
			return nil, fmt.Errorf("InstanceNormalization of rank-%d input", len(x.shape))
		}
		if err := checkChannelParams(c, x, 3); err != nil {
			return nil, err
		}
		return []*value{{shape: x.shape, dtype: x.dtype}}, nil
	}
	inferRules["Identity"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		return []*value{x}, nil
	}
	inferRules["Not"] = same
	inferRules["Dropout"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		return []*value{{shape: x.shape, dtype: x.dtype}, {shape: x.shape, dtype: onnxio.TypeBool}}, nil
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"} {
		op := op
		inferRules[op] = func(c *inferCtx) ([]*value, error) { return broadcastInfer(c, op, 0) }
	}
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor"} {
		op := op
		inferRules[op] = func(c *inferCtx) ([]*value, error) { return broadcastInfer(c, op, onnxio.TypeBool) }
	}
	inferRules["Where"] = inferWhere
	inferRules["Cast"] = inferCast
	inferRules["Constant"] = inferConstant
	inferRules["Shape"] = inferShape
	inferRules["Size"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		return []*value{{shape: []int64{}, dtype: onnxio.TypeInt64, ints: []int64{x.size()}}}, nil
	}
	inferRules["ConstantOfShape"] = inferConstantOfShape
	inferRules["Gather"] = inferGather
	inferRules["GatherElements"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		idx, err := c.input(1)
		if err != nil {
			return nil, err
		}
		return []*value{{shape: idx.shape, dtype: x.dtype}}, nil
	}
	inferRules["ScatterElements"] = same
	inferRules["ScatterND"] = same
	inferRules["Unsqueeze"] = inferUnsqueeze
	inferRules["Squeeze"] = inferSqueeze
	inferRules["Concat"] = inferConcat
	inferRules["Reshape"] = inferReshape
	inferRules["Flatten"] = inferFlatten
	inferRules["Transpose"] = inferTranspose
	inferRules["Slice"] = inferSlice
	inferRules["Split"] = inferSplit
	inferRules["Expand"] = inferExpand
	inferRules["Tile"] = inferTile
	inferRules["Pad"] = inferPad
	for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceProd", "ReduceL2"} {
		inferRules[op] = inferReduce
	}
	inferRules["ArgMax"] = inferArgReduce
	inferRules["ArgMin"] = inferArgReduce
	inferRules["MatMul"] = inferMatMul
	inferRules["Gemm"] = inferGemm
	inferRules["Conv"] = inferConv
	inferRules["ConvTranspose"] = inferConvTranspose
	inferRules["MaxPool"] = inferPool
	inferRules["AveragePool"] = inferPool
	inferRules["GlobalAveragePool"] = inferGlobalPool
	inferRules["GlobalMaxPool"] = inferGlobalPool
	inferRules["BatchNormalization"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		if err := checkChannelParams(c, x, 5); err != nil {
			return nil, err
		}
		out := []*value{{shape: x.shape, dtype: x.dtype}}
		if len(c.node.GetOutput()) > 1 && len(x.shape) > 1 {
			st := &value{shape: []int64{x.shape[1]}, dtype: x.dtype}
			out = append(out, st, st)
		}
		return out, nil
	}
	inferRules["LayerNormalization"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		axis := normAxis(c.attrInt("axis", -1), len(x.shape))
		if axis < 0 || axis >= len(x.shape) {
			return nil, fmt.Errorf("axis out of range for shape %v", x.shape)
		}
		for k := 1; k < len(c.in); k++ {
			if p := c.in[k]; p != nil {
				if s, err := broadcastShape(x.shape[axis:], p.shape); err != nil || !equalShape(s, x.shape[axis:]) {
					return nil, fmt.Errorf("input %d of shape %v does not broadcast to the normalized shape %v", k, p.shape, x.shape[axis:])
				}
			}
		}
		stat := append([]int64(nil), x.shape...)
		for i := axis; i < len(stat); i++ {
			stat[i] = 1
		}
		return []*value{{shape: x.shape, dtype: x.dtype}, {shape: stat, dtype: onnxio.TypeFloat}, {shape: stat, dtype: onnxio.TypeFloat}}, nil
	}
	inferRules["OneHot"] = func(c *inferCtx) ([]*value, error) {
		idx, err := c.input(0)
		if err != nil {
			return nil, err
		}
		depth, err := c.intsOf(1)
		if err != nil {
			return nil, err
		}
		if len(depth) != 1 {
			return nil, fmt.Errorf("depth has %d values, not one", len(depth))
		}
		vals, err := c.input(2)
		if err != nil {
			return nil, err
		}
		axis := normAxis(c.attrInt("axis", -1), len(idx.shape)+1)
		if axis < 0 || axis > len(idx.shape) {
			return nil, fmt.Errorf("axis out of range for indices of shape %v", idx.shape)
		}
		shape := append([]int64(nil), idx.shape[:axis]...)
		shape = append(shape, depth[0])
		shape = append(shape, idx.shape[axis:]...)
		return []*value{{shape: shape, dtype: vals.dtype}}, nil
	}
	inferRules["Range"] = func(c *inferCtx) ([]*value, error) {
		var v [3]int64
		for k := 0; k < 3; k++ {
			x, err := c.intsOf(k)
			if err != nil {
				return nil, err
			}
			if len(x) != 1 {
				return nil, fmt.Errorf("input %d has %d values, not one", k, len(x))
			}
			v[k] = x[0]
		}
		if v[2] == 0 {
			return nil, fmt.Errorf("Range with delta 0")
		}
		n := int64(math.Max(0, math.Ceil(float64(v[1]-v[0])/float64(v[2]))))
		out := &value{shape: []int64{n}, dtype: c.in[0].dtype}
		if n <= maxFoldElems {
			for i := int64(0); i < n; i++ {
				out.ints = append(out.ints, v[0]+i*v[2])
			}
		}
		return []*value{out}, nil
	}
	inferRules["CumSum"] = same
	inferRules["MaxUnpool"] = func(c *inferCtx) ([]*value, error) {
		x, err := c.input(0)
		if err != nil {
			return nil, err
		}
		shape, err := c.intsOf(2)
		if err != nil {
			return nil, err
		}
		return []*value{{shape: append([]int64{}, shape...), dtype: x.dtype}}, nil
	}
}

func normAxis(a int64, rank int) int {
	if a < 0 {
		a += int64(rank)
	}
	return int(a)
}

// broadcastShape applies numpy broadcasting to two shapes.
func broadcastShape(a, b []int64) ([]int64, error) {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := 0; i < n; i++ {
		da, db := int64(1), int64(1)
		if k := i - (n - len(a)); k >= 0 {
			da = a[k]
		}
		if k := i - (n - len(b)); k >= 0 {
			db = b[k]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

func broadcastInfer(c *inferCtx, op string, outType int32) ([]*value, error) {
	if len(c.in) == 0 {
		return nil, fmt.Errorf("no inputs")
	}
	shape := []int64{}
	dtype := int32(0)
	for k := range c.in {
		v, err := c.input(k)
		if err != nil {
			return nil, err
		}
		if dtype == 0 {
			dtype = v.dtype
		}
		if shape, err = broadcastShape(shape, v.shape); err != nil {
			return nil, err
		}
	}
	if outType != 0 {
		dtype = outType
	}
	out := &value{shape: shape, dtype: dtype}
	// Fold small integer arithmetic (shape computations).
	if len(c.in) == 2 && c.in[0].ints != nil && c.in[1].ints != nil && out.size() <= maxFoldElems {
		a, b := c.in[0], c.in[1]
		n := out.size()
		vals := make([]int64, n)
		ok := true
		for i := int64(0); i < n; i++ {
			x := a.ints[broadcastIndex(i, shape, a.shape)]
			y := b.ints[broadcastIndex(i, shape, b.shape)]
			switch op {
			case "Add":
				vals[i] = x + y
			case "Sub":
				vals[i] = x - y
			case "Mul":
				vals[i] = x * y
			case "Div":
				if y == 0 {
					ok = false
				} else {
					vals[i] = x / y
				}
			case "Equal":
				vals[i] = b2i(x == y)
			case "Greater":
				vals[i] = b2i(x > y)
			case "Less":
				vals[i] = b2i(x < y)
			case "Max":
				vals[i] = max(x, y)
			case "Min":
				vals[i] = min(x, y)
			default:
				ok = false
			}
		}
		if ok {
			out.ints = vals
		}
	}
	return []*value{out}, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// broadcastIndex maps a flat index of the output shape to the flat index of
// an input of shape in that broadcasts to it.
func broadcastIndex(i int64, out, in []int64) int64 {
	idx := int64(0)
	stride := int64(1)
	for d := len(out) - 1; d >= 0; d-- {
		coord := i % out[d]
		i /= out[d]
		k := d - (len(out) - len(in))
		if k < 0 {
			continue
		}
		if in[k] != 1 {
			idx += coord * stride
		}
		stride *= in[k]
	}
	return idx
}

func inferWhere(c *inferCtx) ([]*value, error) {
	shape := []int64{}
	for k := 0; k < 3; k++ {
		v, err := c.input(k)
		if err != nil {
			return nil, err
		}
		if shape, err = broadcastShape(shape, v.shape); err != nil {
			return nil, err
		}
	}
	out := &value{shape: shape, dtype: c.in[1].dtype}
	cond, x, y := c.in[0], c.in[1], c.in[2]
	if cond.ints != nil && x.ints != nil && y.ints != nil && out.size() <= maxFoldElems {
		for i := int64(0); i < out.size(); i++ {
			if cond.ints[broadcastIndex(i, shape, cond.shape)] != 0 {
				out.ints = append(out.ints, x.ints[broadcastIndex(i, shape, x.shape)])
			} else {
				out.ints = append(out.ints, y.ints[broadcastIndex(i, shape, y.shape)])
			}
		}
	}
	return []*value{out}, nil
}

func isIntType(dt int32) bool {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_INT64, onnxpb.TensorProto_INT32, onnxpb.TensorProto_INT16, onnxpb.TensorProto_INT8,
		onnxpb.TensorProto_UINT8, onnxpb.TensorProto_UINT16, onnxpb.TensorProto_UINT32, onnxpb.TensorProto_UINT64, onnxpb.TensorProto_BOOL:
		return true
	}
	return false
}

func inferCast(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	to := int32(c.attrInt("to", 0))
	out := &value{shape: x.shape, dtype: to}
	switch {
	case x.ints != nil && isIntType(to):
		out.ints = x.ints
		if to == onnxio.TypeBool {
			out.ints = make([]int64, len(x.ints))
			for i, v := range x.ints {
				out.ints[i] = b2i(v != 0)
			}
		}
	case x.ints != nil:
		out.floats = make([]float64, len(x.ints))
		for i, v := range x.ints {
			out.floats[i] = float64(v)
		}
	case x.floats != nil && isIntType(to):
		out.ints = make([]int64, len(x.floats))
		for i, v := range x.floats {
			out.ints[i] = int64(v)
		}
	case x.floats != nil:
		out.floats = x.floats
	}
	return []*value{out}, nil
}

func inferConstant(c *inferCtx) ([]*value, error) {
	for _, a := range c.node.GetAttribute() {
		switch a.GetName() {
		case "value":
			return one(c.consts(a.GetT()))
		case "value_int":
			return []*value{{shape: []int64{}, dtype: onnxio.TypeInt64, ints: []int64{a.GetI()}}}, nil
		case "value_ints":
			return []*value{{shape: []int64{int64(len(a.GetInts()))}, dtype: onnxio.TypeInt64, ints: a.GetInts()}}, nil
		case "value_float":
			return []*value{{shape: []int64{}, dtype: onnxio.TypeFloat, floats: []float64{float64(a.GetF())}}}, nil
		case "value_floats":
			fs := make([]float64, len(a.GetFloats()))
			for i, f := range a.GetFloats() {
				fs[i] = float64(f)
			}
			return []*value{{shape: []int64{int64(len(fs))}, dtype: onnxio.TypeFloat, floats: fs}}, nil
		}
	}
	return nil, fmt.Errorf("Constant without a supported value attribute")
}

func one(v *value, err error) ([]*value, error) {
	if err != nil {
		return nil, err
	}
	return []*value{v}, nil
}

func inferShape(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	r := int64(len(x.shape))
	start, end := c.attrInt("start", 0), c.attrInt("end", r)
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start, end = max(0, min(start, r)), max(0, min(end, r))
	if end < start {
		end = start
	}
	vals := append([]int64{}, x.shape[start:end]...)
	return []*value{{shape: []int64{int64(len(vals))}, dtype: onnxio.TypeInt64, ints: vals}}, nil
}

func inferConstantOfShape(c *inferCtx) ([]*value, error) {
	shape, err := c.intsOf(0)
	if err != nil {
		return nil, err
	}
	if err := checkShape(shape); err != nil {
		return nil, err
	}
	out := &value{shape: append([]int64{}, shape...), dtype: onnxio.TypeFloat}
	fill := 0.0
	if a := onnxio.Attr(c.node, "value"); a != nil && a.GetT() != nil {
		v, err := c.consts(a.GetT())
		if err != nil {
			return nil, err
		}
		out.dtype = v.dtype
		switch {
		case v.ints != nil && len(v.ints) > 0:
			fill = float64(v.ints[0])
		case v.floats != nil && len(v.floats) > 0:
			fill = v.floats[0]
		}
	}
	if n := out.size(); n <= maxFoldElems {
		if isIntType(out.dtype) {
			out.ints = make([]int64, n)
			for i := range out.ints {
				out.ints[i] = int64(fill)
			}
		} else {
			out.floats = make([]float64, n)
			for i := range out.floats {
				out.floats[i] = fill
			}
		}
	}
	return []*value{out}, nil
}

func inferGather(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	idx, err := c.input(1)
	if err != nil {
		return nil, err
	}
	axis := normAxis(c.attrInt("axis", 0), len(x.shape))
	if axis < 0 || axis >= len(x.shape) {
		return nil, fmt.Errorf("axis out of range for shape %v", x.shape)
	}
	shape := append([]int64{}, x.shape[:axis]...)
	shape = append(shape, idx.shape...)
	shape = append(shape, x.shape[axis+1:]...)
	out := &value{shape: shape, dtype: x.dtype}
	for _, i := range idx.ints {
		if i < -x.shape[axis] || i >= x.shape[axis] {
			return nil, fmt.Errorf("index %d out of range for axis of %d", i, x.shape[axis])
		}
	}
	if x.ints != nil && idx.ints != nil && len(x.shape) == 1 {
		for _, i := range idx.ints {
			if i < 0 {
				i += x.shape[0]
			}
			if i < 0 || i >= x.shape[0] {
				return nil, fmt.Errorf("index %d out of range", i)
			}
			out.ints = append(out.ints, x.ints[i])
		}
	}
	return []*value{out}, nil
}

// axesOf reads axes from the attribute (old opsets) or input k (new ones).
func (c *inferCtx) axesOf(k int) ([]int64, bool, error) {
	if a := onnxio.Attr(c.node, "axes"); a != nil {
		return a.GetInts(), true, nil
	}
	if k < len(c.in) && c.in[k] != nil {
		v, err := c.intsOf(k)
		return v, true, err
	}
	return nil, false, nil
}

func inferUnsqueeze(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	axes, _, err := c.axesOf(1)
	if err != nil {
		return nil, err
	}
	r := len(x.shape) + len(axes)
	ins := map[int]bool{}
	for _, a := range axes {
		ax := normAxis(a, r)
		if ax < 0 || ax >= r || ins[ax] {
			return nil, fmt.Errorf("bad axes %v for shape %v", axes, x.shape)
		}
		ins[ax] = true
	}
	shape := make([]int64, 0, r)
	k := 0
	for i := 0; i < r; i++ {
		if ins[i] {
			shape = append(shape, 1)
		} else {
			if k >= len(x.shape) {
				return nil, fmt.Errorf("bad axes %v for shape %v", axes, x.shape)
			}
			shape = append(shape, x.shape[k])
			k++
		}
	}
	return []*value{{shape: shape, dtype: x.dtype, ints: x.ints, floats: x.floats}}, nil
}

func inferSqueeze(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	axes, given, err := c.axesOf(1)
	if err != nil {
		return nil, err
	}
	drop := map[int]bool{}
	if given {
		for _, a := range axes {
			drop[normAxis(a, len(x.shape))] = true
		}
	} else {
		for i, d := range x.shape {
			if d == 1 {
				drop[i] = true
			}
		}
	}
	shape := []int64{}
	for i, d := range x.shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return []*value{{shape: shape, dtype: x.dtype, ints: x.ints, floats: x.floats}}, nil
}

func inferConcat(c *inferCtx) ([]*value, error) {
	first, err := c.input(0)
	if err != nil {
		return nil, err
	}
	axis := normAxis(c.attrInt("axis", 0), len(first.shape))
	shape := append([]int64{}, first.shape...)
	if axis < 0 || axis >= len(shape) {
		return nil, fmt.Errorf("axis out of range")
	}
	shape[axis] = 0
	allInts := true
	var ints []int64
	for k := range c.in {
		v, err := c.input(k)
		if err != nil {
			return nil, err
		}
		if len(v.shape) != len(shape) {
			return nil, fmt.Errorf("inputs of different ranks")
		}
		shape[axis] += v.shape[axis]
		if v.ints == nil {
			allInts = false
		}
		ints = append(ints, v.ints...)
	}
	out := &value{shape: shape, dtype: first.dtype}
	if allInts && len(shape) == 1 {
		out.ints = ints
	}
	return []*value{out}, nil
}

func inferReshape(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	var target []int64
	if a := onnxio.Attr(c.node, "shape"); a != nil {
		target = a.GetInts()
	} else if target, err = c.intsOf(1); err != nil {
		return nil, err
	}
	allowZero := c.attrInt("allowzero", 0) != 0
	shape := make([]int64, len(target))
	known := int64(1)
	infer := -1
	for i, d := range target {
		switch {
		case d == 0 && !allowZero:
			if i >= len(x.shape) {
				return nil, fmt.Errorf("shape %v copies a missing dimension of %v", target, x.shape)
			}
			shape[i] = x.shape[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has two -1", target)
			}
			infer = i
			continue
		case d < 0:
			return nil, fmt.Errorf("bad shape %v", target)
		default:
			shape[i] = d
		}
		known *= shape[i]
	}
	if infer >= 0 {
		if known == 0 || x.size()%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", x.shape, target)
		}
		shape[infer] = x.size() / known
	} else if known != x.size() {
		return nil, fmt.Errorf("cannot reshape %v to %v", x.shape, target)
	}
	return []*value{{shape: shape, dtype: x.dtype, ints: x.ints, floats: x.floats}}, nil
}

func inferFlatten(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	axis := normAxis(c.attrInt("axis", 1), len(x.shape))
	if axis < 0 || axis > len(x.shape) {
		return nil, fmt.Errorf("axis out of range for shape %v", x.shape)
	}
	a, b := int64(1), int64(1)
	for i, d := range x.shape {
		if i < axis {
			a *= d
		} else {
			b *= d
		}
	}
	return []*value{{shape: []int64{a, b}, dtype: x.dtype}}, nil
}

func inferTranspose(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	perm := c.attrInts("perm")
	if perm == nil {
		for i := len(x.shape) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != len(x.shape) {
		return nil, fmt.Errorf("perm %v for shape %v", perm, x.shape)
	}
	shape := make([]int64, len(perm))
	seen := make([]bool, len(perm))
	for i, p := range perm {
		if p < 0 || p >= int64(len(perm)) || seen[p] {
			return nil, fmt.Errorf("perm %v is not a permutation of %d axes", perm, len(perm))
		}
		seen[p] = true
		shape[i] = x.shape[p]
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

// sliceParams resolves a Slice node's starts/ends/axes/steps to per-axis
// (start, end, step) with ONNX's clamping rules.
type sliceAxis struct{ start, end, step int64 }

func (c *inferCtx) sliceParams(shape []int64) (map[int]sliceAxis, error) {
	var starts, ends, axes, steps []int64
	var err error
	if c.opset < 10 {
		starts, ends, axes = c.attrInts("starts"), c.attrInts("ends"), c.attrInts("axes")
	} else {
		if starts, err = c.intsOf(1); err != nil {
			return nil, err
		}
		if ends, err = c.intsOf(2); err != nil {
			return nil, err
		}
		if len(c.in) > 3 && c.in[3] != nil {
			if axes, err = c.intsOf(3); err != nil {
				return nil, err
			}
		}
		if len(c.in) > 4 && c.in[4] != nil {
			if steps, err = c.intsOf(4); err != nil {
				return nil, err
			}
		}
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if len(starts) != len(axes) || len(ends) != len(axes) || (steps != nil && len(steps) != len(axes)) {
		return nil, fmt.Errorf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	out := map[int]sliceAxis{}
	for i, a := range axes {
		ax := normAxis(a, len(shape))
		if ax < 0 || ax >= len(shape) || i >= len(starts) || i >= len(ends) {
			return nil, fmt.Errorf("bad slice axes")
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return nil, fmt.Errorf("slice step 0")
		}
		d := shape[ax]
		s, e := starts[i], ends[i]
		if s < 0 {
			s += d
		}
		if e < 0 {
			e += d
		}
		if step > 0 {
			s, e = max(0, min(s, d)), max(0, min(e, d))
		} else {
			s, e = max(-1, min(s, d-1)), max(-1, min(e, d-1))
		}
		out[ax] = sliceAxis{s, e, step}
	}
	return out, nil
}

func sliceLen(p sliceAxis) int64 {
	if p.step > 0 {
		return max(0, (p.end-p.start+p.step-1)/p.step)
	}
	return max(0, (p.start-p.end-p.step-1)/(-p.step))
}

func inferSlice(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	ps, err := c.sliceParams(x.shape)
	if err != nil {
		return nil, err
	}
	shape := append([]int64{}, x.shape...)
	for ax, p := range ps {
		shape[ax] = sliceLen(p)
	}
	out := &value{shape: shape, dtype: x.dtype}
	if x.ints != nil && len(x.shape) == 1 {
		p, ok := ps[0]
		if !ok {
			p = sliceAxis{0, x.shape[0], 1}
		}
		for i := p.start; (p.step > 0 && i < p.end) || (p.step < 0 && i > p.end); i += p.step {
			out.ints = append(out.ints, x.ints[i])
		}
		if out.ints == nil {
			out.ints = []int64{}
		}
	}
	return []*value{out}, nil
}

func inferSplit(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	axis := normAxis(c.attrInt("axis", 0), len(x.shape))
	if axis < 0 || axis >= len(x.shape) {
		return nil, fmt.Errorf("axis out of range")
	}
	n := len(c.node.GetOutput())
	var split []int64
	if a := onnxio.Attr(c.node, "split"); a != nil {
		split = a.GetInts()
	} else if len(c.in) > 1 && c.in[1] != nil {
		if split, err = c.intsOf(1); err != nil {
			return nil, err
		}
	} else {
		d := x.shape[axis]
		size := (d + int64(n) - 1) / int64(n)
		for i := 0; i < n; i++ {
			split = append(split, min(size, d-int64(i)*size))
		}
	}
	if len(split) != n {
		return nil, fmt.Errorf("split %v for %d outputs", split, n)
	}
	out := make([]*value, n)
	for i, s := range split {
		shape := append([]int64{}, x.shape...)
		shape[axis] = s
		out[i] = &value{shape: shape, dtype: x.dtype}
	}
	return out, nil
}

func inferExpand(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	target, err := c.intsOf(1)
	if err != nil {
		return nil, err
	}
	shape, err := broadcastShape(x.shape, target)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

func inferTile(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	reps, err := c.intsOf(1)
	if err != nil {
		return nil, err
	}
	if len(reps) != len(x.shape) {
		return nil, fmt.Errorf("repeats %v for shape %v", reps, x.shape)
	}
	shape := make([]int64, len(reps))
	for i := range reps {
		shape[i] = x.shape[i] * reps[i]
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

// padsOf reads a Pad node's pads (attribute before opset 11, input after).
func (c *inferCtx) padsOf() ([]int64, error) {
	if c.opset < 11 {
		return c.attrInts("pads"), nil
	}
	return c.intsOf(1)
}

func inferPad(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	pads, err := c.padsOf()
	if err != nil {
		return nil, err
	}
	r := len(x.shape)
	if c.opset >= 18 && len(c.in) > 3 && c.in[3] != nil {
		axes, err := c.intsOf(3)
		if err != nil {
			return nil, err
		}
		if len(pads) != 2*len(axes) {
			return nil, fmt.Errorf("pads %v for axes %v", pads, axes)
		}
		full := make([]int64, 2*r)
		for i, a := range axes {
			ax := normAxis(a, r)
			if ax < 0 || ax >= r {
				return nil, fmt.Errorf("axis %d out of range for rank %d", a, r)
			}
			full[ax], full[ax+r] = pads[i], pads[i+len(axes)]
		}
		pads = full
	}
	if len(pads) != 2*r {
		return nil, fmt.Errorf("pads %v for rank %d", pads, r)
	}
	shape := make([]int64, r)
	for i := range shape {
		shape[i] = x.shape[i] + pads[i] + pads[i+r]
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

// reduceAxes returns the axes a Reduce* node reduces over (all when none).
func (c *inferCtx) reduceAxes(rank int) ([]int, error) {
	axes, given, err := c.axesOf(1)
	if err != nil {
		return nil, err
	}
	if !given || len(axes) == 0 {
		if c.attrInt("noop_with_empty_axes", 0) != 0 && given {
			return nil, nil
		}
		all := make([]int, rank)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := make([]int, len(axes))
	for i, a := range axes {
		out[i] = normAxis(a, rank)
		if out[i] < 0 || out[i] >= rank {
			return nil, fmt.Errorf("axis %d out of range for rank %d", a, rank)
		}
	}
	return out, nil
}

func inferReduce(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	axes, err := c.reduceAxes(len(x.shape))
	if err != nil {
		return nil, err
	}
	keep := c.attrInt("keepdims", 1) != 0
	red := map[int]bool{}
	for _, a := range axes {
		red[a] = true
	}
	shape := []int64{}
	for i, d := range x.shape {
		switch {
		case !red[i]:
			shape = append(shape, d)
		case keep:
			shape = append(shape, 1)
		}
	}
	out := &value{shape: shape, dtype: x.dtype}
	if c.node.GetOpType() == "ReduceProd" && x.ints != nil && len(x.shape) == 1 && len(shape) <= 1 {
		p := int64(1)
		for _, v := range x.ints {
			p *= v
		}
		out.ints = []int64{p}
	}
	return []*value{out}, nil
}

func inferArgReduce(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	axis := normAxis(c.attrInt("axis", 0), len(x.shape))
	keep := c.attrInt("keepdims", 1) != 0
	shape := []int64{}
	for i, d := range x.shape {
		switch {
		case i != axis:
			shape = append(shape, d)
		case keep:
			shape = append(shape, 1)
		}
	}
	return []*value{{shape: shape, dtype: onnxio.TypeInt64}}, nil
}

func inferMatMul(c *inferCtx) ([]*value, error) {
	a, err := c.input(0)
	if err != nil {
		return nil, err
	}
	b, err := c.input(1)
	if err != nil {
		return nil, err
	}
	as, bs := a.shape, b.shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("MatMul of a scalar")
	}
	va, vb := len(as) == 1, len(bs) == 1
	if va {
		as = []int64{1, as[0]}
	}
	if vb {
		bs = []int64{bs[0], 1}
	}
	if as[len(as)-1] != bs[len(bs)-2] {
		return nil, fmt.Errorf("MatMul of %v and %v", a.shape, b.shape)
	}
	batch, err := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	shape := append(batch, as[len(as)-2], bs[len(bs)-1])
	if va {
		shape = append(shape[:len(shape)-2], shape[len(shape)-1])
	}
	if vb {
		shape = shape[:len(shape)-1]
	}
	return []*value{{shape: shape, dtype: a.dtype}}, nil
}

func inferGemm(c *inferCtx) ([]*value, error) {
	a, err := c.input(0)
	if err != nil {
		return nil, err
	}
	b, err := c.input(1)
	if err != nil {
		return nil, err
	}
	if len(a.shape) != 2 || len(b.shape) != 2 {
		return nil, fmt.Errorf("Gemm of %v and %v", a.shape, b.shape)
	}
	m, k := a.shape[0], a.shape[1]
	if c.attrInt("transA", 0) != 0 {
		m, k = k, m
	}
	k2, n := b.shape[0], b.shape[1]
	if c.attrInt("transB", 0) != 0 {
		k2, n = n, k2
	}
	if k != k2 {
		return nil, fmt.Errorf("Gemm inner dimensions %d and %d differ", k, k2)
	}
	if len(c.in) > 2 && c.in[2] != nil {
		if s, err := broadcastShape([]int64{m, n}, c.in[2].shape); err != nil || !equalShape(s, []int64{m, n}) {
			return nil, fmt.Errorf("Gemm bias of shape %v does not broadcast to [%d %d]", c.in[2].shape, m, n)
		}
	}
	return []*value{{shape: []int64{m, n}, dtype: a.dtype}}, nil
}

// spatial describes a Conv/Pool node's window over the spatial axes.
type spatial struct {
	kernel, strides, dilations, pads []int64 // pads: begins then ends
}

func (c *inferCtx) window(in []int64, kernel []int64) (spatial, error) {
	n := len(in)
	w := spatial{kernel: kernel, strides: c.attrInts("strides"), dilations: c.attrInts("dilations"), pads: c.attrInts("pads")}
	if w.strides == nil {
		w.strides = ones(n)
	}
	if w.dilations == nil {
		w.dilations = ones(n)
	}
	if len(kernel) != n || len(w.strides) != n || len(w.dilations) != n {
		return w, fmt.Errorf("window attributes do not match %d spatial axes", n)
	}
	pad := c.node.GetAttribute()
	autoPad := "NOTSET"
	for _, a := range pad {
		if a.GetName() == "auto_pad" {
			autoPad = string(a.GetS())
		}
	}
	switch autoPad {
	case "NOTSET", "":
		if w.pads == nil {
			w.pads = make([]int64, 2*n)
		}
	case "VALID":
		w.pads = make([]int64, 2*n)
	case "SAME_UPPER", "SAME_LOWER":
		w.pads = make([]int64, 2*n)
		for i := 0; i < n; i++ {
			out := (in[i] + w.strides[i] - 1) / w.strides[i]
			total := max(0, (out-1)*w.strides[i]+(kernel[i]-1)*w.dilations[i]+1-in[i])
			if autoPad == "SAME_UPPER" {
				w.pads[i], w.pads[i+n] = total/2, total-total/2
			} else {
				w.pads[i], w.pads[i+n] = total-total/2, total/2
			}
		}
	default:
		return w, fmt.Errorf("auto_pad %q", autoPad)
	}
	if len(w.pads) != 2*n {
		return w, fmt.Errorf("pads %v for %d spatial axes", w.pads, n)
	}
	// Bounded so that the window arithmetic cannot overflow.
	for i := 0; i < n; i++ {
		if !inRange(w.kernel[i], 1) || !inRange(w.strides[i], 1) || !inRange(w.dilations[i], 1) || !inRange(w.pads[i], 0) || !inRange(w.pads[i+n], 0) {
			return w, fmt.Errorf("window kernel %v, strides %v, dilations %v, pads %v out of range", w.kernel, w.strides, w.dilations, w.pads)
		}
		if eff := (w.kernel[i]-1)*w.dilations[i] + 1; eff > in[i]+w.pads[i]+w.pads[i+n] {
			return w, fmt.Errorf("window of %d along axis %d is larger than the padded input (%d)", eff, i+2, in[i]+w.pads[i]+w.pads[i+n])
		}
	}
	return w, nil
}

// windowMax bounds kernel sizes, strides, dilations and pads.
const windowMax = 1 << 30

func inRange(v, lo int64) bool { return v >= lo && v <= windowMax }

func ones(n int) []int64 {
	o := make([]int64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// outSize is the output length of one spatial axis.
func (w spatial) outSize(i int, in int64, ceil bool) int64 {
	n := len(w.kernel)
	eff := (w.kernel[i]-1)*w.dilations[i] + 1
	span := in + w.pads[i] + w.pads[i+n] - eff
	if ceil {
		o := (span+w.strides[i]-1)/w.strides[i] + 1
		// PyTorch/ONNX: the last window must start inside the input or left padding.
		if (o-1)*w.strides[i] >= in+w.pads[i] {
			o--
		}
		return o
	}
	return span/w.strides[i] + 1
}

func inferConv(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	wt, err := c.input(1)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 3 || len(wt.shape) != len(x.shape) {
		return nil, fmt.Errorf("Conv of %v with weight %v", x.shape, wt.shape)
	}
	kernel := c.attrInts("kernel_shape")
	if kernel == nil {
		kernel = wt.shape[2:]
	}
	if !equalShape(kernel, wt.shape[2:]) {
		return nil, fmt.Errorf("kernel_shape %v differs from the weight's %v", kernel, wt.shape)
	}
	w, err := c.window(x.shape[2:], kernel)
	if err != nil {
		return nil, err
	}
	g := c.attrInt("group", 1)
	if g < 1 || x.shape[1] != wt.shape[1]*g || wt.shape[0]%g != 0 {
		return nil, fmt.Errorf("Conv input has %d channels, weight %v with group %d", x.shape[1], wt.shape, g)
	}
	if len(c.in) > 2 && c.in[2] != nil && !equalShape(c.in[2].shape, wt.shape[:1]) {
		return nil, fmt.Errorf("Conv bias of shape %v for %d output channels", c.in[2].shape, wt.shape[0])
	}
	shape := []int64{x.shape[0], wt.shape[0]}
	for i, d := range x.shape[2:] {
		shape = append(shape, w.outSize(i, d, false))
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

func inferConvTranspose(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	wt, err := c.input(1)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 3 || len(wt.shape) != len(x.shape) {
		return nil, fmt.Errorf("ConvTranspose of %v with weight %v", x.shape, wt.shape)
	}
	n := len(x.shape) - 2
	kernel := c.attrInts("kernel_shape")
	if kernel == nil {
		kernel = wt.shape[2:]
	}
	strides, dil, pads, outPad := c.attrInts("strides"), c.attrInts("dilations"), c.attrInts("pads"), c.attrInts("output_padding")
	if strides == nil {
		strides = ones(n)
	}
	if dil == nil {
		dil = ones(n)
	}
	if pads == nil {
		pads = make([]int64, 2*n)
	}
	if outPad == nil {
		outPad = make([]int64, n)
	}
	g := c.attrInt("group", 1)
	shape := []int64{x.shape[0], wt.shape[1] * g}
	if os := c.attrInts("output_shape"); os != nil {
		return []*value{{shape: append(shape, os...), dtype: x.dtype}}, nil
	}
	for i := 0; i < n; i++ {
		shape = append(shape, strides[i]*(x.shape[i+2]-1)+outPad[i]+(kernel[i]-1)*dil[i]+1-pads[i]-pads[i+n])
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

func inferPool(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 3 {
		return nil, fmt.Errorf("pooling of rank-%d input", len(x.shape))
	}
	w, err := c.window(x.shape[2:], c.attrInts("kernel_shape"))
	if err != nil {
		return nil, err
	}
	ceil := c.attrInt("ceil_mode", 0) != 0
	shape := []int64{x.shape[0], x.shape[1]}
	for i, d := range x.shape[2:] {
		shape = append(shape, w.outSize(i, d, ceil))
	}
	out := []*value{{shape: shape, dtype: x.dtype}}
	if len(c.node.GetOutput()) > 1 {
		out = append(out, &value{shape: shape, dtype: onnxio.TypeInt64})
	}
	return out, nil
}

func inferGlobalPool(c *inferCtx) ([]*value, error) {
	x, err := c.input(0)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 3 {
		return nil, fmt.Errorf("pooling of rank-%d input", len(x.shape))
	}
	shape := append([]int64{}, x.shape...)
	for i := 2; i < len(shape); i++ {
		shape[i] = 1
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

// checkChannelParams checks that x has a channel axis (rank 2 or more) and
// that inputs 1 … n−1 of a normalization node are [C] vectors, as the
// gradient rules assume.
func checkChannelParams(c *inferCtx, x *value, n int) error {
	if len(x.shape) < 2 {
		return fmt.Errorf("input of rank %d has no channel axis", len(x.shape))
	}
	for k := 1; k < n && k < len(c.in); k++ {
		if p := c.in[k]; p != nil && !equalShape(p.shape, x.shape[1:2]) {
			return fmt.Errorf("input %d has shape %v; the input has %d channels", k, p.shape, x.shape[1])
		}
	}
	return nil
}

// maxElems bounds the elements of any tensor in a built graph (2³¹, 8 GiB
// of float32): larger ones cannot be trained anyway, and the bound keeps
// element counts far from overflowing.
const maxElems = 1 << 31

// checkShape reports a shape with a negative dimension or too many elements.
func checkShape(shape []int64) error {
	n, err := onnxio.NumElements(shape)
	if err != nil {
		return err
	}
	if n > maxElems {
		return fmt.Errorf("shape %v has %d elements, more than bnaudit builds graphs for (%d)", shape, n, int64(maxElems))
	}
	return nil
}
