package trainer

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// producer returns the node of m that writes value out.
func producer(t *testing.T, m *onnxio.Model, out string) *onnxpb.NodeProto {
	t.Helper()
	for _, n := range m.Graph().GetNode() {
		for _, o := range n.GetOutput() {
			if o == out {
				return n
			}
		}
	}
	t.Fatalf("%s: no node writes %q", m.Name, out)
	return nil
}

func setInit(m *onnxio.Model, t *onnxpb.TensorProto) {
	for i, old := range m.Graph().GetInitializer() {
		if old.GetName() == t.GetName() {
			m.Graph().Initializer[i] = t
			return
		}
	}
	m.Graph().Initializer = append(m.Graph().Initializer, t)
}

// buildAllNoPanic runs every builder on m and fails the test on a panic or
// on a success; it returns the first error.
func buildAllNoPanic(t *testing.T, m *onnxio.Model) (first error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("a builder panicked: %v", r)
		}
	}()
	for _, err := range buildAll(m, 2) {
		if err == nil {
			t.Fatal("a malformed model built without an error")
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// TestArityCoversEveryAcceptedOp: every op with a shape rule (all that
// planModel accepts among them) has an arity, so that no builder indexes a
// node the check has not seen.
func TestArityCoversEveryAcceptedOp(t *testing.T) {
	var missing []string
	for op, info := range opRegistry {
		if info.infer != nil && !info.arity.known() {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("ops accepted without an arity entry: %v", missing)
	}
}

// TestArityChecked: a node whose inputs or outputs break its op's ONNX
// arity is reported before any graph is built, with one line naming the
// node, its position, the op and what ONNX defines, as ErrInvalidModel.
func TestArityChecked(t *testing.T) {
	// bypass makes the node after the one writing out read that node's input
	// instead, so that a node left without outputs leaves no dangling input.
	bypass := func(t *testing.T, m *onnxio.Model, out, next string) {
		producer(t, m, next).Input[0] = producer(t, m, out).Input[0]
	}
	for _, c := range []struct {
		name, out string // the node, by the value it writes
		edit      func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto)
		want      string
	}{
		{"BN without outputs", "n", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { bypass(t, m, "n", "r"); n.Output = nil },
			`node "BatchNormalization_n" (#1) BatchNormalization has 0 outputs; ONNX defines 1–3`},
		{"BN with four inputs", "n", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { n.Input = n.Input[:4] },
			"BatchNormalization has 4 inputs; ONNX defines 5"},
		{"BN empty output", "n", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) {
			bypass(t, m, "n", "r")
			n.Output = []string{""}
		},
			"BatchNormalization: its first output is empty"},
		{"Dropout without inputs", "d", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { n.Input = nil },
			"Dropout has 0 inputs; ONNX defines 1–3"},
		{"Dropout with three outputs", "d", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { n.Output = append(n.Output, "m", "z") },
			"Dropout has 3 outputs; ONNX defines 1–2"},
		{"MaxPool without outputs", "p", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { bypass(t, m, "p", "d"); n.Output = nil },
			"MaxPool has 0 outputs; ONNX defines 1–2"},
		{"Conv empty weight", "c", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { n.Input[1] = "" },
			"Conv: required input 1 is empty"},
		{"Gemm with one input", "y", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { n.Input = n.Input[:1] },
			"Gemm has 1 inputs; ONNX defines 2–3"},
		{"Relu with two inputs", "r", func(t *testing.T, m *onnxio.Model, n *onnxpb.NodeProto) { n.Input = append(n.Input, "x") },
			"Relu has 2 inputs; ONNX defines 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := tinyCNN()
			c.edit(t, m, producer(t, m, c.out))
			// onnxio rejects a node that produces nothing when it loads a
			// model; the trainer checks models built in memory too.
			if err := m.Validate(); err != nil && !strings.Contains(err.Error(), "produces no output") {
				t.Fatalf("the case should pass onnxio's validation: %v", err)
			}
			err := buildAllNoPanic(t, m)
			if !errors.Is(err, onnxio.ErrInvalidModel) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "trainer: tiny_cnn.onnx: ") {
				t.Fatalf("want ErrInvalidModel with %q, got %v", c.want, err)
			}
		})
	}
	// Variadic inputs are all required.
	m := tinyShapes()
	producer(t, m, "c").Input = []string{"m", ""}
	if err := buildAllNoPanic(t, m); !strings.Contains(err.Error(), "Concat: required input 1 is empty") {
		t.Fatalf("want an empty-input error, got %v", err)
	}
	// Variadic outputs too.
	m = tinyShapes()
	producer(t, m, "s2").Output[1] = ""
	producer(t, m, "m").Input[1] = "s1"
	if err := buildAllNoPanic(t, m); !strings.Contains(err.Error(), "Split: output 1 is empty") {
		t.Fatalf("want an empty-output error, got %v", err)
	}
	// Split without outputs divided by zero in its shape rule.
	m = tinyShapes()
	producer(t, m, "s1").Output = nil
	if err := buildAllNoPanic(t, m); !strings.Contains(err.Error(), "Split has 0 outputs; ONNX defines 1 or more") {
		t.Fatalf("want an output-count error, got %v", err)
	}
}

// TestMalformedAttributesDoNotPanic: attributes and constant inputs that
// used to index out of range or divide by zero while building give one
// clear error line.
func TestMalformedAttributesDoNotPanic(t *testing.T) {
	i64 := func(name string, v ...int64) *onnxpb.TensorProto {
		return onnxio.Int64Tensor(name, []int64{int64(len(v))}, v)
	}
	for _, c := range []struct {
		name string
		m    func(t *testing.T) *onnxio.Model
		want string
	}{
		{"Transpose perm out of range", func(t *testing.T) *onnxio.Model {
			m := tinyShapes()
			onnxio.Attr(producer(t, m, "h4"), "perm").Ints = []int64{0, 2, 5}
			return m
		}, "not a permutation"},
		{"Slice with fewer steps than axes", func(t *testing.T) *onnxio.Model {
			m := tinyShapes()
			setInit(m, i64("starts", 0, 0))
			setInit(m, i64("ends", 2, 1))
			setInit(m, i64("axes", 1, 2))
			setInit(m, i64("steps", 1))
			n := producer(t, m, "h6")
			n.Input = append(n.Input, "steps")
			return m
		}, "differ in length"},
		{"Pad with fewer pads than axes", func(t *testing.T) *onnxio.Model {
			m := tinyShapes()
			m.Proto.OpsetImport[0].Version = 18
			setInit(m, i64("pads", 1))
			setInit(m, i64("pad_axes", 2))
			n := producer(t, m, "h7")
			n.Input = append(n.Input, "", "pad_axes")
			return m
		}, "pads [1] for axes [2]"},
		{"Conv with stride 0", func(t *testing.T) *onnxio.Model {
			m := tinyCNN()
			producer(t, m, "c").Attribute = append(producer(t, m, "c").Attribute, aInts("strides", []int64{0, 0}))
			return m
		}, "out of range"},
		{"MaxPool window larger than its input", func(t *testing.T) *onnxio.Model {
			m := tinyCNN()
			onnxio.Attr(producer(t, m, "p"), "kernel_shape").Ints = []int64{9, 9}
			return m
		}, "larger than the padded input"},
		{"LayerNormalization axis out of range", func(t *testing.T) *onnxio.Model {
			m := tinyShapes()
			onnxio.SetAttrInt(producer(t, m, "h5"), "axis", -5)
			return m
		}, "axis out of range"},
		{"BatchNormalization of a rank-1 input", func(t *testing.T) *onnxio.Model {
			m := tinyCNN()
			producer(t, m, "n").Input[0] = "fc.b"
			return m
		}, "no channel axis"},
		{"Dropout with an empty ratio tensor", func(t *testing.T) *onnxio.Model {
			m := tinyCNN()
			setInit(m, onnxio.FloatTensor("ratio", []int64{0}, nil))
			n := producer(t, m, "d")
			n.Input = append(n.Input, "ratio")
			return m
		}, "constant scalar"},
		{"ConstantOfShape with a negative dimension", func(t *testing.T) *onnxio.Model {
			m := tinyShapes()
			g := m.Graph()
			g.Node = append([]*onnxpb.NodeProto{
				nd("Constant", nil, []string{"neg"}, &onnxpb.AttributeProto{Name: "value_ints", Ints: []int64{-3}, Type: onnxpb.AttributeProto_INTS}),
				nd("ConstantOfShape", []string{"neg"}, []string{"zeros"}),
			}, g.Node...)
			return m
		}, "negative dimension"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := c.m(t)
			if err := m.Validate(); err != nil {
				t.Fatalf("the case should pass onnxio's validation: %v", err)
			}
			err := buildAllNoPanic(t, m)
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "trainer: "+m.Name+": ") || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("want ErrUnsupported naming the model with %q, got %v", c.want, err)
			}
		})
	}
}

// TestMalformedNamesOneLine: control characters in an op type or domain
// stay escaped in the error.
func TestMalformedNamesOneLine(t *testing.T) {
	for _, edit := range []func(n *onnxpb.NodeProto){
		func(n *onnxpb.NodeProto) { n.Domain = "evil\ndomain" },
		func(n *onnxpb.NodeProto) { n.OpType = "Evil\nOp" },
	} {
		m := tinyCNN()
		edit(producer(t, m, "r"))
		if err := buildAllNoPanic(t, m); !strings.Contains(err.Error(), `evil\n`) && !strings.Contains(err.Error(), `Evil\n`) {
			t.Fatalf("want the name escaped, got %q", err)
		}
	}
}

// TestArityMessage checks the range notation of the arity errors.
func TestArityMessage(t *testing.T) {
	for _, c := range []struct {
		lo, hi int
		want   string
	}{{1, 1, "1"}, {1, 3, "1–3"}, {1, -1, "1 or more"}} {
		if got := span(c.lo, c.hi); got != c.want {
			t.Errorf("span(%d, %d) = %q, want %q", c.lo, c.hi, got, c.want)
		}
	}
}
