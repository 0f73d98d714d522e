package trainer

import (
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Gradient rules of shape and data-movement ops, and of reductions.

func init() {
	reshapeBack := func(c *gradCtx, dy []string) []string {
		out := make([]string, len(c.e.inputs))
		out[0] = c.b.reshape(dy[0], c.xShape(0))
		return out
	}
	for _, op := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze"} {
		register(op, reshapeBack)
	}
	register("Transpose", func(c *gradCtx, dy []string) []string {
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
	})
	register("Concat", gradConcat)
	register("Split", gradSplit)
	register("Slice", gradSlice)
	register("Gather", gradGather)
	register("Expand", func(c *gradCtx, dy []string) []string {
		return []string{c.b.sumTo(dy[0], c.xShape(0)), ""}
	})
	register("Tile", gradTile)
	register("Pad", gradPad)
	register("ReduceSum", func(c *gradCtx, dy []string) []string { return c.reduceBack(dy[0], 1) })
	register("ReduceMean", func(c *gradCtx, dy []string) []string {
		in, out := c.xShape(0), c.yShape(0)
		n := float32(numel(in)) / float32(max(1, numel(out)))
		return c.reduceBack(dy[0], 1/n)
	})
	register("ReduceSumSquare", func(c *gradCtx, dy []string) []string {
		g := c.reduceBack(dy[0], 2)
		g[0] = c.b.op("Mul", []string{g[0], c.x(0)})
		return g
	})
	register("GlobalAveragePool", func(c *gradCtx, dy []string) []string {
		b := c.b
		xs := c.xShape(0)
		hw := numel(xs[2:])
		e := b.op("Expand", []string{dy[0], b.constI64(xs, false)})
		return []string{b.op("Mul", []string{e, b.scalar(1 / float32(hw))})}
	})
	maxLike := func(c *gradCtx, dy []string) []string {
		// The gradient goes to the positions equal to the maximum (split
		// evenly among ties, as PyTorch's amax does).
		b := c.b
		xs := c.xShape(0)
		y := c.y(0)
		yk := y
		if c.e.op != "GlobalMaxPool" && c.attrInt("keepdims", 1) == 0 {
			yk = b.reshape(y, c.keptShape())
		}
		mask := b.op("Cast", []string{b.op("Equal", []string{c.x(0), yk})}, aInt("to", int64(onnxpb.TensorProto_FLOAT)))
		g := dy[0]
		if c.e.op != "GlobalMaxPool" && c.attrInt("keepdims", 1) == 0 {
			g = b.reshape(g, c.keptShape())
		}
		cnt := b.reduceSum(mask, c.reducedAxes(), true)
		if c.e.op == "GlobalMaxPool" {
			cnt = b.reduceSum(mask, axesFrom(2, len(xs)), true)
		}
		share := b.op("Div", []string{g, cnt})
		out := make([]string, len(c.e.inputs))
		out[0] = b.op("Mul", []string{mask, share})
		return out
	}
	register("ReduceMax", maxLike)
	register("GlobalMaxPool", maxLike)
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

// reducedAxes returns the axes a Reduce* entry reduced (normalized).
func (c *gradCtx) reducedAxes() []int64 {
	r := len(c.xShape(0))
	var axes []int64
	if a := onnxio.Attr(c.e.node, "axes"); a != nil {
		axes = a.GetInts()
	} else if c.hasX(1) {
		axes = c.b.val(c.x(1)).ints
	}
	if len(axes) == 0 {
		return axesFrom(0, r)
	}
	out := make([]int64, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += int64(r)
		}
		out[i] = a
	}
	return out
}

// keptShape is the input shape with the reduced axes set to 1.
func (c *gradCtx) keptShape() []int64 {
	s := append([]int64{}, c.xShape(0)...)
	for _, a := range c.reducedAxes() {
		s[a] = 1
	}
	return s
}

// reduceBack broadcasts the adjoint of a sum-like reduction back to the
// input, times scale.
func (c *gradCtx) reduceBack(g string, scale float32) []string {
	b := c.b
	g = b.reshape(g, c.keptShape())
	e := b.op("Expand", []string{g, b.constI64(c.xShape(0), false)})
	if scale != 1 {
		e = b.op("Mul", []string{e, b.scalar(scale)})
	}
	out := make([]string, len(c.e.inputs))
	out[0] = e
	return out
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

// gradSlice pads the adjoint back with zeros (steps of 1), or scatters it
// (other steps).
func gradSlice(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	ctx := &inferCtx{node: c.e.node, opset: b.opset}
	for _, in := range c.e.inputs {
		if in == "" {
			ctx.in = append(ctx.in, nil)
		} else {
			ctx.in = append(ctx.in, b.val(in))
		}
	}
	ps, err := ctx.sliceParams(xs)
	if err != nil {
		failf("Slice %q: %v", c.e.node.GetName(), err)
	}
	r := len(xs)
	pads := make([]int64, 2*r)
	for ax, p := range ps {
		if p.step != 1 {
			failf("Slice %q with step %d: only step 1 is differentiable in bnaudit", c.e.node.GetName(), p.step)
		}
		n := sliceLen(p)
		pads[ax] = p.start
		pads[ax+r] = xs[ax] - p.start - n
	}
	out := make([]string, len(c.e.inputs))
	out[0] = b.pad(dy[0], pads)
	return out
}

// pad zero-pads x (pads: begins then ends).
func (b *builder) pad(x string, pads []int64) string {
	zero := true
	for _, p := range pads {
		if p != 0 {
			zero = false
		}
	}
	if zero {
		return x
	}
	if b.opset >= 11 {
		return b.op("Pad", []string{x, b.constI64(pads, false)})
	}
	return b.op("Pad", []string{x}, aInts("pads", pads))
}

// slice takes x[starts:ends] on the given axes (steps 1).
func (b *builder) slice(x string, axes, starts, ends []int64) string {
	if b.opset >= 10 {
		return b.op("Slice", []string{x, b.constI64(starts, false), b.constI64(ends, false), b.constI64(axes, false)})
	}
	return b.op("Slice", []string{x}, aInts("starts", starts), aInts("ends", ends), aInts("axes", axes))
}

// gradGather scatters the adjoint back to the gathered positions, adding
// where an index repeats.
func gradGather(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	axis := c.attrInt("axis", 0)
	if axis < 0 {
		axis += int64(len(xs))
	}
	idx := b.val(c.x(1))
	out := make([]string, 2)
	if idx.ints != nil && len(idx.shape) == 0 {
		// A scalar index: the adjoint is dy with the axis put back, zero-padded.
		i := idx.ints[0]
		if i < 0 {
			i += xs[axis]
		}
		g := b.unsqueeze(dy[0], []int64{axis})
		pads := make([]int64, 2*len(xs))
		pads[axis] = i
		pads[int64(len(xs))+axis] = xs[axis] - i - 1
		out[0] = b.pad(g, pads)
		return out
	}
	if len(idx.shape) != 1 {
		failf("Gather %q of float data with a %d-D index is not differentiable in bnaudit", c.e.node.GetName(), len(idx.shape))
	}
	if b.opset < 16 {
		failf("Gather %q needs opset 16 (ScatterElements with reduction) to be differentiated", c.e.node.GetName())
	}
	ds := c.yShape(0)
	bshape := make([]int64, len(ds))
	for i := range bshape {
		bshape[i] = 1
	}
	bshape[axis] = ds[axis]
	ind := b.reshape(c.x(1), bshape)
	ind = b.op("Expand", []string{ind, b.constI64(ds, false)})
	z := b.zeros(xs)
	out[0] = b.op("ScatterElements", []string{z, ind, dy[0]}, aInt("axis", axis),
		&onnxpb.AttributeProto{Name: "reduction", S: []byte("add"), Type: onnxpb.AttributeProto_STRING})
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

func gradPad(c *gradCtx, dy []string) []string {
	b := c.b
	mode := "constant"
	if a := onnxio.Attr(c.e.node, "mode"); a != nil {
		mode = string(a.GetS())
	}
	if mode != "constant" {
		failf("Pad %q in mode %q is not differentiable in bnaudit", c.e.node.GetName(), mode)
	}
	xs := c.xShape(0)
	r := len(xs)
	ctx := &inferCtx{node: c.e.node, opset: b.opset}
	for _, in := range c.e.inputs {
		if in == "" {
			ctx.in = append(ctx.in, nil)
		} else {
			ctx.in = append(ctx.in, b.val(in))
		}
	}
	pads, err := ctx.padsOf()
	if err != nil || len(pads) != 2*r {
		failf("Pad %q: pads must be constant over all axes", c.e.node.GetName())
	}
	var axes, starts, ends []int64
	for i := 0; i < r; i++ {
		if pads[i] < 0 || pads[i+r] < 0 {
			failf("Pad %q with negative pads is not differentiable in bnaudit", c.e.node.GetName())
		}
		if pads[i] != 0 || pads[i+r] != 0 {
			axes = append(axes, int64(i))
			starts = append(starts, pads[i])
			ends = append(ends, pads[i]+xs[i])
		}
	}
	out := make([]string, len(c.e.inputs))
	out[0] = dy[0]
	if len(axes) > 0 {
		out[0] = b.slice(dy[0], axes, starts, ends)
	}
	return out
}
