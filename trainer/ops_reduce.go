package trainer

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Reductions: Reduce*, the global poolings, ArgMax and ArgMin, CumSum.

func init() {
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
	register("ReduceSum", opInfo{arity: arAxes, infer: inferReduce, grad: func(c *gradCtx, dy []string) []string { return c.reduceBack(dy[0], 1) }})
	register("ReduceMean", opInfo{arity: arAxes, infer: inferReduce, grad: func(c *gradCtx, dy []string) []string {
		in, out := c.xShape(0), c.yShape(0)
		n := float32(numel(in)) / float32(max(1, numel(out)))
		return c.reduceBack(dy[0], 1/n)
	}})
	register("ReduceSumSquare", opInfo{arity: arAxes, infer: inferReduce, grad: func(c *gradCtx, dy []string) []string {
		g := c.reduceBack(dy[0], 2)
		g[0] = c.b.op("Mul", []string{g[0], c.x(0)})
		return g
	}})
	register("ReduceMax", opInfo{arity: arAxes, infer: inferReduce, grad: maxLike})
	register("GlobalAveragePool", opInfo{arity: arUnary, infer: inferGlobalPool, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		xs := c.xShape(0)
		hw := numel(xs[2:])
		e := b.op("Expand", []string{dy[0], b.constI64(xs, false)})
		return []string{b.op("Mul", []string{e, b.scalar(1 / float32(hw))})}
	}})
	register("GlobalMaxPool", opInfo{arity: arUnary, infer: inferGlobalPool, grad: maxLike})
	for _, op := range []string{"ArgMax", "ArgMin"} {
		register(op, opInfo{arity: arUnary, infer: inferArgReduce, noGrad: true})
	}
	// Ops only the builders emit.
	for _, op := range []string{"ReduceMin", "ReduceProd", "ReduceL2"} {
		register(op, opInfo{arity: arAxes, infer: inferReduce, builderOnly: true})
	}
	register("CumSum", opInfo{arity: arBinary, infer: inferSame, builderOnly: true})
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
	x := c.in[0]
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
	x := c.in[0]
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

func inferGlobalPool(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	if len(x.shape) < 3 {
		return nil, fmt.Errorf("pooling of rank-%d input", len(x.shape))
	}
	shape := append([]int64{}, x.shape...)
	for i := 2; i < len(shape); i++ {
		shape[i] = 1
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}
