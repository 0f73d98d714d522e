package trainer

// Indexing ops: Slice, Gather and Pad, and the element gathers and scatters
// the gradient rules emit.

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

func init() {
	register("Slice", opInfo{arity: arity{3, 5, 1, 1}, infer: inferSlice, grad: gradSlice})
	register("Gather", opInfo{arity: arBinary, infer: inferGather, grad: gradGather})
	register("Pad", opInfo{arity: arity{2, 4, 1, 1}, infer: inferPad, grad: gradPad})
	// Ops only the builders emit.
	register("GatherElements", opInfo{arity: arBinary, infer: inferGatherElements, builderOnly: true})
	register("ScatterElements", opInfo{arity: arTernary, infer: inferSame, builderOnly: true})
	register("ScatterND", opInfo{arity: arTernary, infer: inferSame, builderOnly: true})
}

// gradSlice pads the adjoint back with zeros (steps of 1), or scatters it
// (other steps).
func gradSlice(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	ctx := b.inferCtxOf(c.e.node)
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
	ctx := b.inferCtxOf(c.e.node)
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

func inferGather(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	idx := c.in[1]
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
	x := c.in[0]
	ps, err := c.sliceParams(x.shape)
	if err != nil {
		return nil, err
	}
	shape := append([]int64{}, x.shape...)
	for ax, p := range ps {
		shape[ax] = sliceLen(p)
	}
	out := &value{shape: shape, dtype: x.dtype}
	if x.ints != nil {
		// Fold: each output element reads the input at start + k·step on
		// the sliced axes (torch's Pad export of opset 11 reverses a 2-D
		// table of pads this way).
		out.ints = make([]int64, out.size())
		coord := make([]int64, len(shape))
		for i := range out.ints {
			unravel(int64(i), shape, coord)
			for ax, p := range ps {
				coord[ax] = p.start + coord[ax]*p.step
			}
			out.ints[i] = x.ints[ravel(coord, x.shape)]
		}
	}
	return []*value{out}, nil
}

// padsOf reads a Pad node's pads (attribute before opset 11, input after).
func (c *inferCtx) padsOf() ([]int64, error) {
	if c.opset < 11 {
		return c.attrInts("pads"), nil
	}
	return c.intsOf(1)
}

func inferPad(c *inferCtx) ([]*value, error) {
	x := c.in[0]
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

func inferGatherElements(c *inferCtx) ([]*value, error) {
	return []*value{{shape: c.in[1].shape, dtype: c.in[0].dtype}}, nil
}
