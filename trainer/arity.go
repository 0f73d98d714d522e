package trainer

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// arity is how many inputs and outputs an op has in the ONNX operator spec
// (opset 13 and later, the versions the trainer accepts, merged: the widest
// range any of them allows). maxIn or maxOut −1 means variadic. The first
// minIn inputs are required; a variadic op's inputs are all required.
type arity struct {
	minIn, maxIn, minOut, maxOut int
}

var (
	arUnary    = arity{1, 1, 1, 1}
	arBinary   = arity{2, 2, 1, 1}
	arTernary  = arity{3, 3, 1, 1}
	arVariadic = arity{1, -1, 1, 1}
	// arAxes: one input and an optional axes input (Reduce*, Squeeze).
	arAxes = arity{1, 2, 1, 1}
)

// known reports whether a is an op's arity (every op has an output; the
// zero arity is that of an op bnaudit does not know).
func (a arity) known() bool { return a.maxOut != 0 }

// required is how many leading inputs of a node with n inputs must be
// present.
func (a arity) required(n int) int {
	if a.maxIn < 0 {
		return max(a.minIn, n)
	}
	return a.minIn
}

// maxTaps bounds the kernel taps (kh·kw) of a differentiated Conv: its
// weight gradient emits nodes per tap. Real kernels have a few hundred at
// most.
const maxTaps = 1 << 12

// maxConstElems bounds the constants a gradient rule writes whose size
// follows the model's shapes (AveragePool's window counts and kernel).
const maxConstElems = 1 << 24

// span writes an arity range as the error messages show it.
func span(lo, hi int) string {
	switch {
	case hi < 0:
		return fmt.Sprintf("%d or more", lo)
	case lo == hi:
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// checkArity reports a node (number i of model m) whose inputs or outputs
// break its op's ONNX arity: too few or too many, a required input left
// empty, or no first output. The graph builders index inputs and outputs by
// position and rely on this check.
func checkArity(m *onnxio.Model, i int, n *onnxpb.NodeProto) error {
	a := opOf(n.GetOpType()).arity
	if !a.known() {
		return fmt.Errorf("trainer: %s: node %q (#%d) uses op %s, whose arity bnaudit does not know: %w", m.Name, n.GetName(), i, n.GetOpType(), ErrUnsupported)
	}
	in, out := n.GetInput(), n.GetOutput()
	if len(in) < a.minIn || (a.maxIn >= 0 && len(in) > a.maxIn) {
		return fmt.Errorf("trainer: %s: node %q (#%d) %s has %d inputs; ONNX defines %s: %w", m.Name, n.GetName(), i, n.GetOpType(), len(in), span(a.minIn, a.maxIn), onnxio.ErrInvalidModel)
	}
	if len(out) < a.minOut || (a.maxOut >= 0 && len(out) > a.maxOut) {
		return fmt.Errorf("trainer: %s: node %q (#%d) %s has %d outputs; ONNX defines %s: %w", m.Name, n.GetName(), i, n.GetOpType(), len(out), span(a.minOut, a.maxOut), onnxio.ErrInvalidModel)
	}
	for k := 0; k < a.required(len(in)); k++ {
		if in[k] == "" {
			return fmt.Errorf("trainer: %s: node %q (#%d) %s: required input %d is empty: %w", m.Name, n.GetName(), i, n.GetOpType(), k, onnxio.ErrInvalidModel)
		}
	}
	if out[0] == "" {
		return fmt.Errorf("trainer: %s: node %q (#%d) %s: its first output is empty: %w", m.Name, n.GetName(), i, n.GetOpType(), onnxio.ErrInvalidModel)
	}
	if a.maxOut < 0 { // variadic outputs are all required
		for k, o := range out {
			if o == "" {
				return fmt.Errorf("trainer: %s: node %q (#%d) %s: output %d is empty: %w", m.Name, n.GetName(), i, n.GetOpType(), k, onnxio.ErrInvalidModel)
			}
		}
	}
	return nil
}
