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
	arVariadic = arity{1, -1, 1, 1}
)

// opArity has one entry per op the trainer accepts (a test checks that).
var opArity = map[string]arity{
	"Abs": arUnary, "Ceil": arUnary, "Erf": arUnary, "Exp": arUnary, "Floor": arUnary, "Log": arUnary, "Neg": arUnary,
	"Not": arUnary, "Reciprocal": arUnary, "Relu": arUnary, "Sigmoid": arUnary, "Sign": arUnary, "Sqrt": arUnary,
	"Tanh": arUnary, "HardSigmoid": arUnary, "HardSwish": arUnary, "LeakyRelu": arUnary, "Softmax": arUnary,
	"LogSoftmax": arUnary, "Identity": arUnary, "Cast": arUnary, "Flatten": arUnary, "Transpose": arUnary,
	"Shape": arUnary, "Size": arUnary, "GlobalAveragePool": arUnary, "GlobalMaxPool": arUnary, "ArgMax": arUnary,
	"ArgMin": arUnary, "ConstantOfShape": arUnary, "AveragePool": arUnary,

	"Add": arBinary, "Sub": arBinary, "Mul": arBinary, "Div": arBinary, "Pow": arBinary, "And": arBinary, "Or": arBinary,
	"Xor": arBinary, "Equal": arBinary, "Greater": arBinary, "Less": arBinary, "GreaterOrEqual": arBinary,
	"LessOrEqual": arBinary, "MatMul": arBinary, "Expand": arBinary, "Gather": arBinary, "Reshape": arBinary,
	"Tile": arBinary, "Unsqueeze": arBinary,

	"Max": arVariadic, "Min": arVariadic, "Sum": arVariadic, "Concat": arVariadic,

	"Constant":              {0, 0, 1, 1},
	"Where":                 {3, 3, 1, 1},
	"OneHot":                {3, 3, 1, 1},
	"Range":                 {3, 3, 1, 1},
	"InstanceNormalization": {3, 3, 1, 1},
	"Clip":                  {1, 3, 1, 1},
	"Conv":                  {2, 3, 1, 1},
	"Gemm":                  {2, 3, 1, 1},
	"Pad":                   {2, 4, 1, 1},
	"Slice":                 {3, 5, 1, 1},
	"Squeeze":               {1, 2, 1, 1},
	"ReduceMax":             {1, 2, 1, 1},
	"ReduceMean":            {1, 2, 1, 1},
	"ReduceSum":             {1, 2, 1, 1},
	"ReduceSumSquare":       {1, 2, 1, 1},
	"MaxPool":               {1, 1, 1, 2},
	"Dropout":               {1, 3, 1, 2},
	"Split":                 {1, 2, 1, -1},
	"LayerNormalization":    {2, 3, 1, 3},
	"BatchNormalization":    {5, 5, 1, 3},
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
	a, ok := opArity[n.GetOpType()]
	if !ok {
		return fmt.Errorf("trainer: %s: node %q (#%d) uses op %s, whose arity bnaudit does not know: %w", m.Name, n.GetName(), i, n.GetOpType(), ErrUnsupported)
	}
	in, out := n.GetInput(), n.GetOutput()
	if len(in) < a.minIn || (a.maxIn >= 0 && len(in) > a.maxIn) {
		return fmt.Errorf("trainer: %s: node %q (#%d) %s has %d inputs; ONNX defines %s: %w", m.Name, n.GetName(), i, n.GetOpType(), len(in), span(a.minIn, a.maxIn), onnxio.ErrInvalidModel)
	}
	if len(out) < a.minOut || (a.maxOut >= 0 && len(out) > a.maxOut) {
		return fmt.Errorf("trainer: %s: node %q (#%d) %s has %d outputs; ONNX defines %s: %w", m.Name, n.GetName(), i, n.GetOpType(), len(out), span(a.minOut, a.maxOut), onnxio.ErrInvalidModel)
	}
	required := a.minIn
	if a.maxIn < 0 {
		required = len(in)
	}
	for k := 0; k < required; k++ {
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
