package trainer

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Shape ops: reshapes, transposes, concatenation and splitting, expansion
// and tiling.

func init() {
	reshapeBack := func(c *gradCtx, dy []string) []string {
		out := make([]string, len(c.e.inputs))
		out[0] = c.b.reshape(dy[0], c.xShape(0))
		return out
	}
	register("Reshape", opInfo{arity: arBinary, infer: inferReshape, grad: reshapeBack})
	register("Flatten", opInfo{arity: arUnary, infer: inferFlatten, grad: reshapeBack})
	register("Squeeze", opInfo{arity: arAxes, infer: inferSqueeze, grad: reshapeBack})
	register("Unsqueeze", opInfo{arity: arBinary, infer: inferUnsqueeze, grad: reshapeBack})
	register("Transpose", opInfo{arity: arUnary, infer: inferTranspose, grad: func(c *gradCtx, dy []string) []string {
		perm := c.attrInts("perm")
		r := len(c.xShape(0))
		if perm == nil {
			for i := r - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		inv := make([]int64, r)
		for i, p := range perm {
			inv[p] = int64(i)
		}
		return []string{c.b.op("Transpose", []string{dy[0]}, aInts("perm", inv))}
	}})
	register("Concat", opInfo{arity: arVariadic, infer: inferConcat, grad: gradConcat})
	register("Split", opInfo{arity: arity{1, 2, 1, -1}, infer: inferSplit, grad: gradSplit})
	register("Expand", opInfo{arity: arBinary, infer: inferExpand, grad: func(c *gradCtx, dy []string) []string {
		return []string{c.b.sumTo(dy[0], c.xShape(0)), ""}
	}})
	register("Tile", opInfo{arity: arBinary, infer: inferTile, grad: gradTile})
}

func numel(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

func axesFrom(from, to int) []int64 {
	var a []int64
	for i := from; i < to; i++ {
		a = append(a, int64(i))
	}
	return a
}

func (c *gradCtx) concatAxis() int64 {
	a := c.attrInt("axis", 0)
	if a < 0 {
		a += int64(len(c.xShape(0)))
	}
	return a
}

// splitOp emits a Split into pieces of the given sizes along axis.
func (b *builder) split(x string, axis int64, sizes []int64) []string {
	if len(sizes) == 1 {
		return []string{x}
	}
	if b.opset >= 13 {
		return b.emit("Split", []string{x, b.constI64(sizes, false)}, len(sizes), aInt("axis", axis))
	}
	return b.emit("Split", []string{x}, len(sizes), aInt("axis", axis), aInts("split", sizes))
}

func gradConcat(c *gradCtx, dy []string) []string {
	axis := c.concatAxis()
	sizes := make([]int64, len(c.e.inputs))
	for k := range sizes {
		sizes[k] = c.xShape(k)[axis]
	}
	parts := c.b.split(dy[0], axis, sizes)
	for k := range parts {
		if !c.want(k) {
			parts[k] = ""
		}
	}
	return parts
}

// zerosLike emits zeros of a static shape.
func (b *builder) zeros(shape []int64) string {
	return b.op("ConstantOfShape", []string{b.constI64(shape, false)},
		&onnxpb.AttributeProto{Name: "value", T: onnxio.FloatTensor("", []int64{1}, []float32{0}), Type: onnxpb.AttributeProto_TENSOR})
}

func gradSplit(c *gradCtx, dy []string) []string {
	b := c.b
	axis := c.concatAxis()
	parts := make([]string, len(c.e.outputs))
	for k := range parts {
		parts[k] = dy[k]
		if parts[k] == "" {
			parts[k] = b.zeros(c.yShape(k))
		}
	}
	out := make([]string, len(c.e.inputs))
	if len(parts) == 1 {
		out[0] = parts[0]
	} else {
		out[0] = b.op("Concat", parts, aInt("axis", axis))
	}
	return out
}

func gradTile(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	reps := b.val(c.x(1)).ints
	// View dy as [r0, d0, r1, d1, …] and sum over the repeat axes.
	var view, axes []int64
	for i, d := range xs {
		view = append(view, reps[i], d)
		axes = append(axes, int64(2*i))
	}
	g := b.reshape(dy[0], view)
	g = b.reduceSum(g, axes, false)
	return []string{b.reshape(g, xs), ""}
}

func inferUnsqueeze(c *inferCtx) ([]*value, error) {
	x := c.in[0]
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
	x := c.in[0]
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
	first := c.in[0]
	axis := normAxis(c.attrInt("axis", 0), len(first.shape))
	shape := append([]int64{}, first.shape...)
	if axis < 0 || axis >= len(shape) {
		return nil, fmt.Errorf("axis out of range")
	}
	shape[axis] = 0
	allInts := true
	var ints []int64
	for k := range c.in {
		v := c.in[k]
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
	x := c.in[0]
	var target []int64
	var err error
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
	x := c.in[0]
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
	x := c.in[0]
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
	out := &value{shape: shape, dtype: x.dtype}
	if x.ints != nil { // fold: output axis i is input axis perm[i]
		out.ints = make([]int64, len(x.ints))
		oc, ic := make([]int64, len(shape)), make([]int64, len(shape))
		for i := range out.ints {
			unravel(int64(i), shape, oc)
			for k, p := range perm {
				ic[p] = oc[k]
			}
			out.ints[i] = x.ints[ravel(ic, x.shape)]
		}
	}
	return []*value{out}, nil
}

func inferSplit(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	axis := normAxis(c.attrInt("axis", 0), len(x.shape))
	if axis < 0 || axis >= len(x.shape) {
		return nil, fmt.Errorf("axis out of range")
	}
	n := len(c.node.GetOutput())
	var split []int64
	var err error
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
	x := c.in[0]
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
	x := c.in[0]
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
