package trainer

// The op registry: everything the trainer knows about one op, in one place.
//
// Each op family has one file (ops_elementwise.go, ops_shape.go,
// ops_index.go, ops_constant.go, ops_reduce.go, ops_matmul.go, ops_conv.go,
// ops_pool.go, ops_norm.go, ops_loss.go) whose init function registers
// each of its ops once, with its ONNX arity, its shape rule (infer.go
// describes shape inference), its gradient rule (autodiff.go), its
// per-sample rule (persample.go), its behaviour in the NCHWc layout pass
// (nchwc_layout.go), and whether its outputs carry no gradient or its
// inputs hold weights. A test (TestEveryAcceptedOpHasARule) checks that the
// entries are complete.

// opInfo is what the trainer knows about one op type (an ONNX op, or a
// composite's name).
type opInfo struct {
	// arity is the op's ONNX arity (arity.go); every op with a shape rule
	// has one. The builders index inputs and outputs by position and rely
	// on it.
	arity arity
	// infer is the shape rule; nil for composites, which are never nodes of
	// a graph. The inputs below the arity's required count are present when
	// it runs.
	infer inferFn
	// grad is the gradient rule; nil for an op without one.
	grad gradRule
	// noGrad: the op's outputs carry no gradient (integer, boolean or shape
	// results, constants, random masks).
	noGrad bool
	// builderOnly: the op has a shape rule but neither a gradient rule nor
	// noGrad, because the graph builders emit it only inside gradient graphs
	// or shape computations, never on a differentiable path of a forward
	// pass; models that use it are refused.
	builderOnly bool
	// perSample is the eval-mode per-sample gradient-norm rule of an op
	// that holds parameters; nil where bnaudit has none.
	perSample psRule
	// weight: the op takes real parameters even when they hold a single
	// value (a float initializer of one element elsewhere is a constant).
	weight bool
	// layout says how the NCHWc layout pass (nchwc_layout.go) may move the
	// op into the blocked layout.
	layout layoutKind
	// noFDCase says why a gradient rule has no finite-difference case in
	// gradcheck_test.go ("" for the rules that have one).
	noFDCase string
}

// layoutKind is how an op behaves in the NCHWc layout pass.
type layoutKind int

const (
	// layoutPlain: the op needs the plain layout.
	layoutPlain layoutKind = iota
	// layoutUnary: an elementwise op of one activation operand.
	layoutUnary
	// layoutBinary: an elementwise op of several operands.
	layoutBinary
)

// opRegistry is the registry: op type → what the trainer knows about it.
// Filled by the init functions of the ops_*.go files.
var opRegistry = map[string]opInfo{}

// register adds an op; registering one twice is a programming error.
func register(op string, info opInfo) {
	if _, dup := opRegistry[op]; dup {
		panic("trainer: op " + op + " registered twice")
	}
	opRegistry[op] = info
}

// opOf returns what the trainer knows about op (the zero opInfo for an op it
// does not know).
func opOf(op string) opInfo { return opRegistry[op] }

// trainable reports whether models may use the op: it has a shape rule and
// is either differentiable or carries no gradient.
func (i opInfo) trainable() bool { return i.infer != nil && (i.grad != nil || i.noGrad) }
