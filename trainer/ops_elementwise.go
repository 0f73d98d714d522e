package trainer

import (
	"math"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Elementwise ops: activations, arithmetic with broadcasting, comparisons
// and logic, Where, Cast, Dropout, Softmax and LogSoftmax.

func init() {
	register("Identity", opInfo{arity: arUnary, infer: inferIdentity, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string { return []string{dy[0]} }})
	register("Relu", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		// dy·[y > 0]; Greater+Cast+Mul measured 2.4 ms on [128,32,28,28]
		// against 4.2 ms for Where and 5.0 ms for Sign+Mul (BENCHMARKS.md).
		mask := c.b.op("Cast", []string{c.b.op("Greater", []string{c.y(0), c.b.scalar(0)})}, aInt("to", int64(onnxpb.TensorProto_FLOAT)))
		return []string{c.b.op("Mul", []string{dy[0], mask})}
	}})
	register("LeakyRelu", opInfo{arity: arUnary, infer: inferSame, grad: func(c *gradCtx, dy []string) []string {
		alpha := c.attrFloat("alpha", 0.01)
		pos := c.b.op("Greater", []string{c.x(0), c.b.scalar(0)})
		return []string{c.b.op("Where", []string{pos, dy[0], c.b.op("Mul", []string{dy[0], c.b.scalar(alpha)})})}
	}})
	register("Sigmoid", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		one := b.op("Sub", []string{b.scalar(1), c.y(0)})
		return []string{b.op("Mul", []string{dy[0], b.op("Mul", []string{c.y(0), one})})}
	}})
	register("Tanh", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		d := b.op("Sub", []string{b.scalar(1), b.op("Mul", []string{c.y(0), c.y(0)})})
		return []string{b.op("Mul", []string{dy[0], d})}
	}})
	register("Erf", opInfo{arity: arUnary, infer: inferSame, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		sq := b.op("Mul", []string{c.x(0), c.x(0)})
		e := b.op("Exp", []string{b.op("Neg", []string{sq})})
		return []string{b.op("Mul", []string{dy[0], b.op("Mul", []string{e, b.scalar(float32(2 / math.Sqrt(math.Pi)))})})}
	}})
	register("Exp", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		return []string{c.b.op("Mul", []string{dy[0], c.y(0)})}
	}})
	register("Log", opInfo{arity: arUnary, infer: inferSame, grad: func(c *gradCtx, dy []string) []string {
		return []string{c.b.op("Div", []string{dy[0], c.x(0)})}
	}})
	register("Sqrt", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		return []string{b.op("Div", []string{b.op("Mul", []string{dy[0], b.scalar(0.5)}), c.y(0)})}
	}})
	register("Reciprocal", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		return []string{b.op("Neg", []string{b.op("Mul", []string{dy[0], b.op("Mul", []string{c.y(0), c.y(0)})})})}
	}})
	register("Neg", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string { return []string{c.b.op("Neg", []string{dy[0]})} }})
	register("Abs", opInfo{arity: arUnary, infer: inferSame, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		return []string{c.b.op("Mul", []string{dy[0], c.b.op("Sign", []string{c.x(0)})})}
	}})
	register("Clip", opInfo{arity: arity{1, 3, 1, 1}, infer: inferSame, grad: gradClip})
	register("HardSigmoid", opInfo{arity: arUnary, infer: inferSame, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		alpha, beta := c.attrFloat("alpha", 0.2), c.attrFloat("beta", 0.5)
		// y = clamp(αx+β, 0, 1): slope α strictly inside (0, 1).
		z := b.op("Add", []string{b.op("Mul", []string{c.x(0), b.scalar(alpha)}), b.scalar(beta)})
		inside := b.op("And", []string{b.op("Greater", []string{z, b.scalar(0)}), b.op("Less", []string{z, b.scalar(1)})})
		return []string{b.op("Where", []string{inside, b.op("Mul", []string{dy[0], b.scalar(alpha)}), b.scalar(0)})}
	}})
	register("HardSwish", opInfo{arity: arUnary, infer: inferSame, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		x := c.x(0)
		// y = x·clamp(x/6 + 1/2, 0, 1): 0 below −3, 1 above 3, x/3 + 1/2 between
		// (PyTorch's hardswish_backward uses the same closed intervals).
		mid := b.op("Add", []string{b.op("Mul", []string{x, b.scalar(1.0 / 3)}), b.scalar(0.5)})
		slope := b.op("Where", []string{b.op("Less", []string{x, b.scalar(-3)}), b.scalar(0),
			b.op("Where", []string{b.op("Greater", []string{x, b.scalar(3)}), b.scalar(1), mid})})
		return []string{b.op("Mul", []string{dy[0], slope})}
	}})
	register("Add", opInfo{arity: arBinary, infer: inferBroadcast, layout: layoutBinary, perSample: psElementwise, grad: func(c *gradCtx, dy []string) []string {
		return []string{c.sumToX(0, dy[0]), c.sumToX(1, dy[0])}
	}})
	register("Sum", opInfo{arity: arVariadic, infer: inferBroadcast, layout: layoutBinary, grad: func(c *gradCtx, dy []string) []string {
		out := make([]string, len(c.e.inputs))
		for k := range out {
			out[k] = c.sumToX(k, dy[0])
		}
		return out
	}})
	register("Sub", opInfo{arity: arBinary, infer: inferBroadcast, layout: layoutBinary, perSample: psElementwise, grad: func(c *gradCtx, dy []string) []string {
		var db string
		if c.want(1) {
			db = c.sumToX(1, c.b.op("Neg", []string{dy[0]}))
		}
		return []string{c.sumToX(0, dy[0]), db}
	}})
	register("Mul", opInfo{arity: arBinary, infer: inferBroadcast, layout: layoutBinary, perSample: psElementwise, grad: func(c *gradCtx, dy []string) []string {
		var da, db string
		if c.want(0) {
			da = c.sumToX(0, c.b.op("Mul", []string{dy[0], c.x(1)}))
		}
		if c.want(1) {
			db = c.sumToX(1, c.b.op("Mul", []string{dy[0], c.x(0)}))
		}
		return []string{da, db}
	}})
	register("Div", opInfo{arity: arBinary, infer: inferBroadcast, layout: layoutBinary, grad: func(c *gradCtx, dy []string) []string {
		var da, db string
		if c.want(0) {
			da = c.sumToX(0, c.b.op("Div", []string{dy[0], c.x(1)}))
		}
		if c.want(1) {
			// d(a/b)/db = −y/b
			t := c.b.op("Div", []string{c.b.op("Mul", []string{dy[0], c.y(0)}), c.x(1)})
			db = c.sumToX(1, c.b.op("Neg", []string{t}))
		}
		return []string{da, db}
	}})
	register("Pow", opInfo{arity: arBinary, infer: inferBroadcast, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		var da, dp string
		if c.want(0) {
			// p·x^(p−1) = p·y/x would divide by zero at x = 0; use x^(p−1).
			pm1 := b.op("Sub", []string{c.x(1), b.scalar(1)})
			d := b.op("Mul", []string{c.x(1), b.op("Pow", []string{c.x(0), pm1})})
			da = c.sumToX(0, b.op("Mul", []string{dy[0], d}))
		}
		if c.want(1) {
			dp = c.sumToX(1, b.op("Mul", []string{dy[0], b.op("Mul", []string{c.y(0), b.op("Log", []string{c.x(0)})})}))
		}
		return []string{da, dp}
	}})
	maxMin := func(cmp string) gradRule {
		return func(c *gradCtx, dy []string) []string {
			if len(c.e.inputs) != 2 {
				failf("%s with %d inputs has no gradient rule (two are supported)", c.e.op, len(c.e.inputs))
			}
			b := c.b
			// Ties go to the first input, as PyTorch's maximum/minimum split them evenly; the
			// difference only matters on a measure-zero set.
			first := b.op("Not", []string{b.op(cmp, []string{c.x(1), c.x(0)})})
			zero := b.scalar(0)
			return []string{
				c.sumToX(0, b.op("Where", []string{first, dy[0], zero})),
				c.sumToX(1, b.op("Where", []string{first, zero, dy[0]})),
			}
		}
	}
	register("Max", opInfo{arity: arVariadic, infer: inferBroadcast, layout: layoutBinary, grad: maxMin("Greater")})
	register("Min", opInfo{arity: arVariadic, infer: inferBroadcast, layout: layoutBinary, grad: maxMin("Less")})
	register("Where", opInfo{arity: arTernary, infer: inferWhere, layout: layoutBinary, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		zero := b.scalar(0)
		var dx, dyy string
		if c.want(1) {
			dx = c.sumToX(1, b.op("Where", []string{c.x(0), dy[0], zero}))
		}
		if c.want(2) {
			dyy = c.sumToX(2, b.op("Where", []string{c.x(0), zero, dy[0]}))
		}
		return []string{"", dx, dyy}
	}})
	register("Cast", opInfo{arity: arUnary, infer: inferCast, layout: layoutUnary, grad: func(c *gradCtx, dy []string) []string {
		if !isFloat(c.b.val(c.x(0))) {
			return []string{""}
		}
		return []string{c.b.op("Cast", []string{dy[0]}, aInt("to", int64(c.b.val(c.x(0)).dtype)))}
	}})
	register("Dropout", opInfo{arity: arity{1, 3, 1, 2}, infer: inferDropout, noFDCase: "its random mask has no finite differences; the step builder rewrites it (a mask input, or the identity)", grad: gradDropout})
	register("Softmax", opInfo{arity: arUnary, infer: inferSame, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		return c.softmaxLike(func(y, g string, axis int64) string {
			s := b.reduceSum(b.op("Mul", []string{g, y}), []int64{axis}, true)
			return b.op("Mul", []string{y, b.op("Sub", []string{g, s})})
		}, dy[0])
	}})
	register("LogSoftmax", opInfo{arity: arUnary, infer: inferSame, grad: func(c *gradCtx, dy []string) []string {
		b := c.b
		return c.softmaxLike(func(y, g string, axis int64) string {
			s := b.reduceSum(g, []int64{axis}, true)
			return b.op("Sub", []string{g, b.op("Mul", []string{b.op("Exp", []string{y}), s})})
		}, dy[0])
	}})
	// Ops whose outputs carry no gradient.
	register("Not", opInfo{arity: arUnary, infer: inferSame, noGrad: true, layout: layoutUnary})
	for _, op := range []string{"Sign", "Floor", "Ceil"} {
		register(op, opInfo{arity: arUnary, infer: inferSame, noGrad: true})
	}
	for _, op := range []string{"Equal", "Greater", "Less"} {
		register(op, opInfo{arity: arBinary, infer: inferCompare, noGrad: true, layout: layoutBinary})
	}
	for _, op := range []string{"GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor"} {
		register(op, opInfo{arity: arBinary, infer: inferCompare, noGrad: true})
	}
	// Ops only the builders emit.
	for _, op := range []string{"Elu", "Selu", "Softplus", "Cos", "Sin"} {
		register(op, opInfo{arity: arUnary, infer: inferSame, builderOnly: true})
	}
	register("Mean", opInfo{arity: arVariadic, infer: inferBroadcast, builderOnly: true})
}

// sumToX reduces a broadcast adjoint to the shape of input k ("" when input
// k needs no adjoint).
func (c *gradCtx) sumToX(k int, g string) string {
	if !c.want(k) {
		return ""
	}
	return c.b.sumTo(g, c.xShape(k))
}

// softmaxLike applies the backward of Softmax/LogSoftmax along their axis.
// Before opset 13 both work on the input coerced to 2-D at axis.
func (c *gradCtx) softmaxLike(f func(y, g string, axis int64) string, g string) []string {
	b := c.b
	shape := c.yShape(0)
	r := int64(len(shape))
	if b.opset >= 13 {
		axis := c.attrInt("axis", -1)
		if axis < 0 {
			axis += r
		}
		return []string{f(c.y(0), g, axis)}
	}
	axis := c.attrInt("axis", 1)
	if axis < 0 {
		axis += r
	}
	rows, cols := int64(1), int64(1)
	for i, d := range shape {
		if int64(i) < axis {
			rows *= d
		} else {
			cols *= d
		}
	}
	y2 := b.reshape(c.y(0), []int64{rows, cols})
	g2 := b.reshape(g, []int64{rows, cols})
	return []string{b.reshape(f(y2, g2, 1), shape)}
}

func gradClip(c *gradCtx, dy []string) []string {
	b := c.b
	x := c.x(0)
	var lo, hi string
	if b.opset >= 11 {
		if c.hasX(1) {
			lo = c.x(1)
		}
		if c.hasX(2) {
			hi = c.x(2)
		}
	} else {
		if a := onnxio.Attr(c.e.node, "min"); a != nil {
			lo = b.scalar(a.GetF())
		}
		if a := onnxio.Attr(c.e.node, "max"); a != nil {
			hi = b.scalar(a.GetF())
		}
	}
	// Pass the gradient where min < x < max: PyTorch's hardtanh/ReLU6
	// backward, which torch exports as Clip. The bounds matter: at random
	// initialization a BN channel whose input is constant outputs exactly
	// its bias, 0, and ReLU6 passes no gradient there (MobileNetV2 showed
	// it). torch.clamp's backward would pass it; ReLU6 is the common case.
	var mask string
	if lo != "" {
		mask = b.op("Greater", []string{x, lo})
	}
	if hi != "" {
		m := b.op("Less", []string{x, hi})
		if mask == "" {
			mask = m
		} else {
			mask = b.op("And", []string{mask, m})
		}
	}
	out := make([]string, len(c.e.inputs))
	if mask == "" {
		out[0] = dy[0]
	} else {
		out[0] = b.op("Where", []string{mask, dy[0], b.scalar(0)})
	}
	return out
}

// gradDropout: in training the forward node has a mask output (the step
// builder adds it), and dx = dy·mask/(1−ratio); in inference it is identity.
func gradDropout(c *gradCtx, dy []string) []string {
	b := c.b
	out := make([]string, len(c.e.inputs))
	if len(c.e.outputs) < 2 || c.e.outputs[1] == "" {
		out[0] = dy[0]
		return out
	}
	ratio := float64(c.attrFloat("ratio", 0.5))
	if c.hasX(1) {
		v := b.val(c.x(1))
		if len(v.floats) != 1 {
			failf("Dropout %q: its ratio must be a constant scalar", c.e.node.GetName())
		}
		ratio = v.floats[0]
	}
	if b.opset >= 12 && !(c.hasX(2) && len(b.val(c.x(2)).ints) == 1 && b.val(c.x(2)).ints[0] != 0) {
		out[0] = dy[0] // not in training mode: identity
		return out
	}
	if ratio >= 1 {
		out[0] = b.op("Mul", []string{dy[0], b.scalar(0)})
		return out
	}
	mask := b.op("Cast", []string{c.y(1)}, aInt("to", int64(onnxpb.TensorProto_FLOAT)))
	out[0] = b.op("Mul", []string{dy[0], b.op("Mul", []string{mask, b.scalar(float32(1 / (1 - ratio)))})})
	return out
}

func inferIdentity(c *inferCtx) ([]*value, error) { return []*value{c.in[0]}, nil }

func inferDropout(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	return []*value{{shape: x.shape, dtype: x.dtype}, {shape: x.shape, dtype: onnxio.TypeBool}}, nil
}

// inferBroadcast is the shape rule of arithmetic with numpy broadcasting.
func inferBroadcast(c *inferCtx) ([]*value, error) { return broadcastInfer(c, 0) }

// inferCompare is the shape rule of comparisons and logic: broadcasting,
// with a bool result.
func inferCompare(c *inferCtx) ([]*value, error) { return broadcastInfer(c, onnxio.TypeBool) }

// broadcastAll is the shape that values of shapes vs broadcast to.
func broadcastAll(vs []*value) ([]int64, error) {
	shape := []int64{}
	for _, v := range vs {
		var err error
		if shape, err = broadcastShape(shape, v.shape); err != nil {
			return nil, err
		}
	}
	return shape, nil
}

func broadcastInfer(c *inferCtx, outType int32) ([]*value, error) {
	op := c.node.GetOpType()
	shape, err := broadcastAll(c.in)
	if err != nil {
		return nil, err
	}
	dtype := outType
	for _, v := range c.in {
		if dtype == 0 { // the first known input type
			dtype = v.dtype
		}
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

func inferWhere(c *inferCtx) ([]*value, error) {
	shape, err := broadcastAll(c.in)
	if err != nil {
		return nil, err
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

func inferCast(c *inferCtx) ([]*value, error) {
	x := c.in[0]
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
