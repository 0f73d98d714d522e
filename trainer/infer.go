package trainer

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Static shape inference. A training step is built for one batch size, so
// every tensor of the forward and backward graphs has a fixed shape; knowing
// it lets gradient rules emit plain Reshape/ReduceSum/Slice nodes with
// constant arguments instead of shape-computing subgraphs. Small integer
// tensors (the Shape → Gather → Concat → Reshape chains of PyTorch exports)
// are also evaluated here, so that the shapes that depend on them are known.
//
// This file holds what the shape rules share; each op's rule is registered
// with the op in its family's ops_*.go file (ops.go).

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

// intsOf returns the known content of input k (for shapes, axes, pads …).
func (c *inferCtx) intsOf(k int) ([]int64, error) {
	if k >= len(c.in) || c.in[k] == nil {
		return nil, fmt.Errorf("input %d is missing", k)
	}
	if c.in[k].ints == nil {
		return nil, fmt.Errorf("input %d must be a constant known when the graph is built", k)
	}
	return c.in[k].ints, nil
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

// inferFn is a shape rule (an op's infer in the registry, ops.go): the
// values of a node's outputs from its inputs and attributes.
type inferFn func(c *inferCtx) ([]*value, error)

// inferCtxOf returns node n as a shape rule sees it, with its inputs' values
// (nil for an absent optional input). Gradient rules use it too, to read a
// node's windows, slices and pads as its shape rule does.
func (b *builder) inferCtxOf(n *onnxpb.NodeProto) *inferCtx {
	c := &inferCtx{node: n, opset: b.opset, consts: b.constValue}
	for _, in := range n.GetInput() {
		if in == "" {
			c.in = append(c.in, nil)
			continue
		}
		c.in = append(c.in, b.val(in))
	}
	return c
}

// infer runs op's shape rule on c after checking that the inputs its arity
// requires are present, so that shape rules read them without checks.
func (c *inferCtx) infer(op opInfo) ([]*value, error) {
	for k := 0; k < op.arity.required(len(c.in)); k++ {
		if k >= len(c.in) || c.in[k] == nil {
			return nil, fmt.Errorf("input %d is missing", k)
		}
	}
	return op.infer(c)
}

// inferSame is the shape rule of ops whose output has their first input's
// shape and type.
func inferSame(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	return []*value{{shape: x.shape, dtype: x.dtype}}, nil
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

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// broadcastIndex maps a flat index of the output shape to the flat index of
// an input of shape in that broadcasts to it.
// unravel writes the coordinates of flat (row-major) index i of shape into
// coord.
func unravel(i int64, shape, coord []int64) {
	for d := len(shape) - 1; d >= 0; d-- {
		coord[d] = i % shape[d]
		i /= shape[d]
	}
}

// ravel is the flat (row-major) index of coord in shape.
func ravel(coord, shape []int64) int64 {
	idx := int64(0)
	for d, c := range coord {
		idx = idx*shape[d] + c
	}
	return idx
}

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

func isIntType(dt int32) bool {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_INT64, onnxpb.TensorProto_INT32, onnxpb.TensorProto_INT16, onnxpb.TensorProto_INT8,
		onnxpb.TensorProto_UINT8, onnxpb.TensorProto_UINT16, onnxpb.TensorProto_UINT32, onnxpb.TensorProto_UINT64, onnxpb.TensorProto_BOOL:
		return true
	}
	return false
}

func one(v *value, err error) ([]*value, error) {
	if err != nil {
		return nil, err
	}
	return []*value{v}, nil
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
