package trainer

// Reverse-mode automatic differentiation over ONNX graphs.
//
// Glossary
//
//   - tape: the forward computation as a list of entries in execution order.
//     An entry is one ONNX node, or a composite (several forward nodes that
//     are differentiated as one unit, such as BatchNorm with batch
//     statistics or softmax cross-entropy, whose closed-form backward is
//     cheaper and more exact than differentiating their parts).
//   - adjoint of a value v: ∂L/∂v, the gradient of the scalar loss L with
//     respect to v, with v's shape.
//   - VJP (vector–Jacobian product): what a gradient rule computes: given the
//     adjoints of an entry's outputs, the adjoints of its inputs.
//   - root: the value the backward pass starts from (the loss), with adjoint 1
//     (or a given seed).
//
// The backward pass walks the tape in reverse. For each entry some of whose
// outputs have an adjoint and some of whose inputs need one, it calls the
// entry's rule from the op registry (ops.go). Adjoints that meet at one
// value are summed.
// Entries off the path from the parameters to the root emit nothing.

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// tapeEntry is one differentiable unit of the forward computation.
type tapeEntry struct {
	// op is the registry key: an ONNX op type, or a composite's name.
	op string
	// node carries the attributes (and, for ONNX ops, the node itself).
	node    *onnxpb.NodeProto
	inputs  []string
	outputs []string
	// saved names values a composite's backward reads (e.g. "xhat").
	saved map[string]string
}

// gradCtx is what a gradient rule sees.
type gradCtx struct {
	b     *builder
	e     *tapeEntry
	needs []bool // needs[k]: input k wants an adjoint
}

func (c *gradCtx) x(k int) string { return c.e.inputs[k] }
func (c *gradCtx) y(k int) string { return c.e.outputs[k] }

// hasX reports whether optional input k is present.
func (c *gradCtx) hasX(k int) bool      { return k < len(c.e.inputs) && c.e.inputs[k] != "" }
func (c *gradCtx) xShape(k int) []int64 { return c.b.shape(c.x(k)) }
func (c *gradCtx) yShape(k int) []int64 { return c.b.shape(c.y(k)) }
func (c *gradCtx) attrInt(name string, def int64) int64 {
	return onnxio.AttrInt(c.e.node, name, def)
}
func (c *gradCtx) attrFloat(name string, def float32) float32 {
	return onnxio.AttrFloat(c.e.node, name, def)
}
func (c *gradCtx) attrInts(name string) []int64 { return onnxio.AttrInts(c.e.node, name) }

// want reports whether input k needs an adjoint.
func (c *gradCtx) want(k int) bool { return k < len(c.needs) && c.needs[k] }

// gradRule computes input adjoints from output adjoints (an op's grad in
// the registry, ops.go). dy[k] is "" when output k has none (it is treated
// as zero). The result has one entry per input; "" means no adjoint (not
// needed, or not differentiable).
type gradRule func(c *gradCtx, dy []string) []string

// isFloat reports whether a value carries gradients at all.
func isFloat(v *value) bool {
	switch v.dtype {
	case onnxio.TypeFloat, onnxio.TypeDouble, onnxio.TypeFloat16:
		return true
	}
	return false
}

// backward emits the gradient graph of root with respect to wrt and returns
// the adjoint value of each wrt name ("" for one the root does not depend on).
// seed is the root's adjoint (a value of the root's shape); "" means 1.
func (b *builder) backward(tape []*tapeEntry, root, seed string, wrt []string) map[string]string {
	// Forward pass over the tape: which values depend on a wrt value.
	depends := map[string]bool{}
	for _, w := range wrt {
		depends[w] = true
	}
	for _, e := range tape {
		if opOf(e.op).noGrad {
			continue
		}
		any := false
		for _, in := range e.inputs {
			if depends[in] {
				any = true
			}
		}
		if any {
			for _, o := range e.outputs {
				if o != "" && isFloat(b.val(o)) {
					depends[o] = true
				}
			}
		}
	}
	if !depends[root] {
		failf("the loss does not depend on any parameter")
	}
	// Contributions to each adjoint, summed when first read.
	parts := map[string][]string{}
	saved := b.scope
	defer func() { b.scope = saved }()
	if seed == "" {
		b.scope = "grad"
		seed = b.op("ConstantOfShape", []string{b.constI64(b.shape(root), false)},
			&onnxpb.AttributeProto{Name: "value", T: onnxio.FloatTensor("", []int64{1}, []float32{1}), Type: onnxpb.AttributeProto_TENSOR})
		if len(b.shape(root)) == 0 {
			seed = b.scalar(1)
		}
	}
	parts[root] = []string{seed}
	adjoint := func(v string) string {
		p := parts[v]
		switch len(p) {
		case 0:
			return ""
		case 1:
			return p[0]
		}
		b.scope = "grad/" + v
		s := b.op("Sum", p)
		parts[v] = []string{s}
		return s
	}
	for i := len(tape) - 1; i >= 0; i-- {
		e := tape[i]
		if opOf(e.op).noGrad {
			continue
		}
		dy := make([]string, len(e.outputs))
		anyOut := false
		for k, o := range e.outputs {
			if o != "" {
				dy[k] = adjoint(o)
				anyOut = anyOut || dy[k] != ""
			}
		}
		needs := make([]bool, len(e.inputs))
		anyIn := false
		for k, in := range e.inputs {
			needs[k] = in != "" && depends[in]
			anyIn = anyIn || needs[k]
		}
		if !anyOut || !anyIn {
			continue
		}
		rule := opOf(e.op).grad
		if rule == nil {
			failf("no gradient rule for op %s (node %q)", e.op, e.node.GetName())
		}
		b.scope = "grad/" + e.node.GetName()
		if b.hook != nil {
			b.hook(e, dy, needs)
		}
		dx := rule(&gradCtx{b: b, e: e, needs: needs}, dy)
		if len(dx) != len(e.inputs) {
			failf("gradient rule of %s (node %q) returned %d adjoints for %d inputs", e.op, e.node.GetName(), len(dx), len(e.inputs))
		}
		for k, g := range dx {
			if g == "" || !needs[k] {
				continue
			}
			want, got := b.shape(e.inputs[k]), b.shape(g)
			if !equalShape(want, got) {
				failf("gradient rule of %s (node %q): adjoint of input %d (%q) has shape %v, the input has %v", e.op, e.node.GetName(), k, e.inputs[k], got, want)
			}
			parts[e.inputs[k]] = append(parts[e.inputs[k]], g)
		}
	}
	out := map[string]string{}
	for _, w := range wrt {
		out[w] = adjoint(w)
	}
	return out
}

// nodeEntry wraps an ONNX node as a tape entry.
func nodeEntry(n *onnxpb.NodeProto) *tapeEntry {
	return &tapeEntry{op: n.GetOpType(), node: n, inputs: n.GetInput(), outputs: n.GetOutput()}
}

func (e *tapeEntry) String() string { return fmt.Sprintf("%s(%q)", e.op, e.node.GetName()) }
