package trainer

// Constants and shape computations: Constant, ConstantOfShape, Shape, Size,
// Range and OneHot. Their outputs carry no gradient; inference folds their
// small integer results (the Shape → Gather → Concat → Reshape chains of
// PyTorch exports).

import (
	"fmt"
	"math"

	"github.com/bnaudit/bnaudit/onnxio"
)

func init() {
	register("Constant", opInfo{arity: arity{0, 0, 1, 1}, infer: inferConstant, noGrad: true})
	register("ConstantOfShape", opInfo{arity: arUnary, infer: inferConstantOfShape, noGrad: true})
	register("Shape", opInfo{arity: arUnary, infer: inferShape, noGrad: true})
	register("Size", opInfo{arity: arUnary, infer: inferSize, noGrad: true})
	register("Range", opInfo{arity: arTernary, infer: inferRange, noGrad: true})
	register("OneHot", opInfo{arity: arTernary, infer: inferOneHot, noGrad: true})
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

func inferShape(c *inferCtx) ([]*value, error) {
	x := c.in[0]
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

func inferSize(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	return []*value{{shape: []int64{}, dtype: onnxio.TypeInt64, ints: []int64{x.size()}}}, nil
}

func inferRange(c *inferCtx) ([]*value, error) {
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

func inferOneHot(c *inferCtx) ([]*value, error) {
	idx := c.in[0]
	depth, err := c.intsOf(1)
	if err != nil {
		return nil, err
	}
	if len(depth) != 1 {
		return nil, fmt.Errorf("depth has %d values, not one", len(depth))
	}
	vals := c.in[2]
	axis := normAxis(c.attrInt("axis", -1), len(idx.shape)+1)
	if axis < 0 || axis > len(idx.shape) {
		return nil, fmt.Errorf("axis out of range for indices of shape %v", idx.shape)
	}
	shape := append([]int64(nil), idx.shape[:axis]...)
	shape = append(shape, depth[0])
	shape = append(shape, idx.shape[axis:]...)
	return []*value{{shape: shape, dtype: vals.dtype}}, nil
}
