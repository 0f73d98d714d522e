package onnxio

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// The numbers an upgraded model computes are checked on ONNX Runtime
// (onnxio/ort/upgrade_test.go); these tests check what ORT cannot see:
// refusals, the values written into new inputs, what the rewrite keeps and
// drops, and that the input model is left alone.

func attrS(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, S: []byte(v), Type: onnxpb.AttributeProto_STRING}
}

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Ints: v, Type: onnxpb.AttributeProto_INTS}
}

// oldCNN is x[N,1,4,4] → Conv → BN (opset 9 training form: five outputs)
// → Relu → Flatten → Dropout (ratio 0.3, mask) → Softmax → y, at opset 9.
func oldCNN() *Model {
	m := convBNRelu()
	m.Proto.OpsetImport[0].Version = 9
	g := m.Graph()
	bn := g.Node[1]
	bn.Output = []string{"b1", "bn1.mean_out", "bn1.var_out", "bn1.saved_mean", "bn1.saved_var"}
	g.Node[2].Output = []string{"r"}
	g.Node = append(g.Node,
		node("Flatten", "flat", []string{"r"}, []string{"f"}),
		node("Dropout", "drop", []string{"f"}, []string{"d", "drop.mask"}, attrF("ratio", 0.3)),
		node("Softmax", "softmax", []string{"d"}, []string{"y"}))
	g.Output = []*onnxpb.ValueInfoProto{vi("y", -1, 32)}
	g.ValueInfo = []*onnxpb.ValueInfoProto{vi("drop.mask", -1, 32), vi("bn1.saved_mean", 2)}
	return m
}

func nodeByOp(t *testing.T, m *Model, op string) *onnxpb.NodeProto {
	t.Helper()
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == op {
			return n
		}
	}
	t.Fatalf("no %s node", op)
	return nil
}

func initializer(m *Model, name string) *onnxpb.TensorProto {
	for _, t := range m.Graph().GetInitializer() {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

func TestUpgradeRewritesAndKeeps(t *testing.T) {
	m := oldCNN()
	before := proto.Clone(m.Proto)
	up, rep, err := Upgrade(m, 17)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(before, m.Proto) {
		t.Fatal("Upgrade modified its input")
	}
	if up.Opset("") != 17 || up.Proto.GetIrVersion() != 8 {
		t.Errorf("opset %d, IR %d; want 17 and 8", up.Opset(""), up.Proto.GetIrVersion())
	}
	if v, _ := up.Metadata(MetaUpgradedFrom); v != "9" {
		t.Errorf("metadata %s = %q, want 9", MetaUpgradedFrom, v)
	}
	bn := nodeByOp(t, up, "BatchNormalization")
	if got := bn.GetOutput(); !slices.Equal(got, []string{"b1", "bn1.mean_out", "bn1.var_out"}) || AttrInt(bn, "training_mode", 0) != 1 {
		t.Errorf("BN outputs %v, training_mode %d; want the running statistics kept, the saved ones dropped, training_mode 1", got, AttrInt(bn, "training_mode", 0))
	}
	d := nodeByOp(t, up, "Dropout")
	if len(d.GetOutput()) != 1 || len(d.GetInput()) != 2 || Attr(d, "ratio") != nil {
		t.Fatalf("Dropout %v → %v with attributes %v; want data and ratio in, one output", d.GetInput(), d.GetOutput(), d.GetAttribute())
	}
	ratio := initializer(up, d.GetInput()[1])
	if v, err := up.Floats(ratio); err != nil || len(v) != 1 || v[0] != 0.3 || len(ratio.GetDims()) != 0 {
		t.Errorf("ratio input %v (dims %v, err %v), want the scalar 0.3", v, ratio.GetDims(), err)
	}
	for _, vi := range up.Graph().GetValueInfo() {
		if vi.GetName() == "drop.mask" || vi.GetName() == "bn1.saved_mean" {
			t.Errorf("value_info of the dropped output %q is still there", vi.GetName())
		}
	}
	// Rank 2 (Flatten's output) with the default axis 1: the last axis,
	// so only the axis is written.
	sm := nodeByOp(t, up, "Softmax")
	if AttrInt(sm, "axis", -1) != 1 || len(up.Graph().GetNode()) != len(m.Graph().GetNode()) {
		t.Errorf("Softmax axis %d, %d nodes; want axis 1 and no node added", AttrInt(sm, "axis", -1), len(up.Graph().GetNode()))
	}
	want := map[string]int{"BatchNormalization": 1, "Dropout": 1, "Softmax": 1}
	if len(rep.Rewritten) != len(want) || rep.Kept != 3 || rep.Added != 0 {
		t.Errorf("report %+v, want rewritten %v and 3 kept", rep, want)
	}
	for op, k := range want {
		if rep.Rewritten[op] != k {
			t.Errorf("report rewrote %s ×%d, want %d", op, rep.Rewritten[op], k)
		}
	}
	if s := rep.String(); s != "upgraded from opset 9 to 17: rewrote BatchNormalization ×1, Dropout ×1, Softmax ×1; 3 nodes unchanged" {
		t.Errorf("report %q", s)
	}
	// At opset 13 BN-9's training form (five outputs) is still current.
	up13, _, err := Upgrade(m, 13)
	if err != nil {
		t.Fatal(err)
	}
	if bn := nodeByOp(t, up13, "BatchNormalization"); len(bn.GetOutput()) != 5 || Attr(bn, "training_mode") != nil {
		t.Errorf("opset 13: BN outputs %v; want the five of BN-9", bn.GetOutput())
	}
}

func TestUpgradeNewInputsHoldTheAttributes(t *testing.T) {
	g := &onnxpb.GraphProto{
		Name:   "attrs",
		Input:  []*onnxpb.ValueInfoProto{vi("x", 2, 1, 3, 4)},
		Output: []*onnxpb.ValueInfoProto{vi("c"), vi("p"), vi("s1"), vi("u"), vi("r")},
		Node: []*onnxpb.NodeProto{
			node("Clip", "clip", []string{"x"}, []string{"c"}, attrF("min", -1.5), attrF("max", 2.5)),
			node("Pad", "pad", []string{"x"}, []string{"p"}, attrInts("pads", 0, 0, 1, 2, 0, 0, 3, 4), attrF("value", 0.5), attrS("mode", "constant")),
			node("Split", "split", []string{"x"}, []string{"s1", "s2"}, attrI("axis", 3), attrInts("split", 1, 3)),
			node("Squeeze", "sq", []string{"x"}, []string{"q"}, attrInts("axes", 1)),
			node("Unsqueeze", "unsq", []string{"q"}, []string{"u"}, attrInts("axes", 0, -1)),
			node("ReduceSum", "rs", []string{"x"}, []string{"r"}, attrInts("axes", 2, 3), attrI("keepdims", 0)),
			node("Slice", "slice", []string{"x"}, []string{"sl"}, attrInts("starts", 1), attrInts("ends", -1), attrInts("axes", 3)),
			node("TopK", "topk", []string{"sl"}, []string{"tv", "ti"}, attrI("k", 2)),
		},
	}
	g.Output = append(g.Output, vi("s2"), vi("tv"))
	m := model(9, g)
	mustValid(t, m)
	up, _, err := Upgrade(m, 13)
	if err != nil {
		t.Fatal(err)
	}
	ints := func(n *onnxpb.NodeProto, k int) []int64 {
		t.Helper()
		v, err := up.Int64s(initializer(up, n.GetInput()[k]))
		if err != nil {
			t.Fatalf("%s input %d: %v", n.GetName(), k, err)
		}
		return v
	}
	floats := func(n *onnxpb.NodeProto, k int) []float32 {
		t.Helper()
		v, err := up.Floats(initializer(up, n.GetInput()[k]))
		if err != nil {
			t.Fatalf("%s input %d: %v", n.GetName(), k, err)
		}
		return v
	}
	byName := map[string]*onnxpb.NodeProto{}
	for _, n := range up.Graph().GetNode() {
		byName[n.GetName()] = n
		if len(n.GetAttribute()) > 0 && n.GetOpType() != "Split" && n.GetOpType() != "Pad" && n.GetOpType() != "ReduceSum" && n.GetOpType() != "TopK" {
			t.Errorf("%s kept attributes %v", n.GetName(), n.GetAttribute())
		}
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"Clip min", floats(byName["clip"], 1), []float32{-1.5}},
		{"Clip max", floats(byName["clip"], 2), []float32{2.5}},
		{"Pad pads", ints(byName["pad"], 1), []int64{0, 0, 1, 2, 0, 0, 3, 4}},
		{"Pad value", floats(byName["pad"], 2), []float32{0.5}},
		{"Pad mode", string(Attr(byName["pad"], "mode").GetS()), "constant"},
		{"Split split", ints(byName["split"], 1), []int64{1, 3}},
		{"Split axis", AttrInt(byName["split"], "axis", 0), int64(3)},
		{"Squeeze axes", ints(byName["sq"], 1), []int64{1}},
		{"Unsqueeze axes", ints(byName["unsq"], 1), []int64{0, -1}},
		{"ReduceSum axes", ints(byName["rs"], 1), []int64{2, 3}},
		{"ReduceSum keepdims", AttrInt(byName["rs"], "keepdims", 1), int64(0)},
		{"Slice starts", ints(byName["slice"], 1), []int64{1}},
		{"Slice ends", ints(byName["slice"], 2), []int64{-1}},
		{"Slice axes", ints(byName["slice"], 3), []int64{3}},
		{"TopK k", ints(byName["topk"], 1), []int64{2}},
	}
	for _, c := range checks {
		if !equalAny(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if len(byName["pad"].GetInput()) != 3 || Attr(byName["pad"], "pads") != nil || Attr(byName["split"], "split") != nil {
		t.Error("Pad or Split kept an attribute that became an input")
	}
}

func equalAny(a, b any) bool {
	switch x := a.(type) {
	case []float32:
		return slices.Equal(x, b.([]float32))
	case []int64:
		return slices.Equal(x, b.([]int64))
	}
	return a == b
}

func TestUpgradeRefuses(t *testing.T) {
	bnNode := func(attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return node("BatchNormalization", "bn1", []string{"c1", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"}, []string{"b1"}, attrs...)
	}
	edit := func(opset int64, f func(g *onnxpb.GraphProto)) *Model {
		m := convBNRelu()
		m.Proto.OpsetImport[0].Version = opset
		f(m.Graph())
		return m
	}
	cases := []struct {
		name string
		m    *Model
		to   int64
		want string // in the message, besides the op and opset
	}{
		{"opset 5", edit(5, func(g *onnxpb.GraphProto) {}), 13, "opset 5; bnaudit upgrades models of opset 6 or later"},
		{"non-spatial BN", edit(7, func(g *onnxpb.GraphProto) { g.Node[1] = bnNode(attrI("spatial", 0)) }), 13, "op BatchNormalization from opset 7 (non-spatial"},
		{"saved_mean read", edit(9, func(g *onnxpb.GraphProto) {
			g.Node[1].Output = []string{"b1", "m", "v", "sm", "sv"}
			g.Output = append(g.Output, vi("sm", 2))
		}), 17, "op BatchNormalization from opset 9 (its output 3"},
		{"Dropout mask read", edit(9, func(g *onnxpb.GraphProto) {
			g.Node[2] = node("Dropout", "drop", []string{"b1"}, []string{"y", "mask"})
			g.Output = append(g.Output, vi("mask", -1, 2, 4, 4))
		}), 13, "op Dropout from opset 9 (its mask output is read"},
		{"GRU of opset 6", edit(6, func(g *onnxpb.GraphProto) {
			g.Node[2] = node("GRU", "gru", []string{"b1", "bn1.weight", "bn1.bias"}, []string{"y"}, attrI("hidden_size", 2))
		}), 13, "op GRU from opset 6 (its output_sequence"},
		{"ConvTranspose SAME_UPPER", edit(9, func(g *onnxpb.GraphProto) {
			g.Node[2] = node("ConvTranspose", "up", []string{"b1", "conv1.weight"}, []string{"y"}, attrS("auto_pad", "SAME_UPPER"))
		}), 13, "op ConvTranspose from opset 9 (auto_pad SAME_UPPER"},
		{"Resize tf_half_pixel_for_nn", edit(11, func(g *onnxpb.GraphProto) {
			g.Initializer = append(g.Initializer, FloatTensor("roi", []int64{0}, nil), FloatTensor("scales", []int64{4}, []float32{1, 1, 2, 2}))
			g.Node[2] = node("Resize", "rs", []string{"b1", "roi", "scales"}, []string{"y"}, attrS("coordinate_transformation_mode", "tf_half_pixel_for_nn"))
		}), 13, "op Resize from opset 11 (coordinate_transformation_mode tf_half_pixel_for_nn"},
		{"Upsample of opset 1", edit(6, func(g *onnxpb.GraphProto) {
			g.Node[2] = node("Upsample", "up", []string{"b1"}, []string{"y"}, attrF("height_scale", 2), attrF("width_scale", 2))
		}), 13, "op Upsample from opset 6 (the experimental Upsample of opset 1"},
		{"a subgraph", edit(9, func(g *onnxpb.GraphProto) {
			body := &onnxpb.GraphProto{Name: "then", Output: []*onnxpb.ValueInfoProto{vi("b1")}}
			g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: "cond", DataType: TypeBool, Int32Data: []int32{1}})
			g.Node[2] = node("If", "if", []string{"cond"}, []string{"y"}, &onnxpb.AttributeProto{Name: "then_branch", G: body, Type: onnxpb.AttributeProto_GRAPH},
				&onnxpb.AttributeProto{Name: "else_branch", G: body, Type: onnxpb.AttributeProto_GRAPH})
		}), 13, "op If from opset 9 (it holds subgraphs"},
		{"Clip of an unknown type", edit(9, func(g *onnxpb.GraphProto) {
			g.Node[2] = node("Custom", "custom", []string{"b1"}, []string{"c"})
			g.Node[2].Domain = "example.com"
			g.Node = append(g.Node, node("Clip", "clip", []string{"c"}, []string{"y"}, attrF("min", 0)))
		}), 13, "op Clip from opset 9 (its min must take the element type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "Clip of an unknown type" {
				c.m.Proto.OpsetImport = append(c.m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: "example.com", Version: 1})
			}
			mustValid(t, c.m)
			_, _, err := Upgrade(c.m, c.to)
			if err == nil {
				t.Fatal("upgraded; want a refusal")
			}
			msg := err.Error()
			if !errors.Is(err, ErrCannotUpgrade) || strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) || !strings.Contains(msg, "opset_version ≥ 13") {
				t.Fatalf("error %q; want one line wrapping ErrCannotUpgrade, with %q and the re-export advice", msg, c.want)
			}
		})
	}
}

func TestUpgradeTargetsAndNewModels(t *testing.T) {
	for _, to := range []int64{12, 18} {
		if _, _, err := Upgrade(oldCNN(), to); err == nil || !strings.Contains(err.Error(), "opset 13 to 17") {
			t.Errorf("target %d: error %v, want the range", to, err)
		}
	}
	m := convBNRelu() // opset 14
	up, rep, err := Upgrade(m, 13)
	if err != nil || rep.Upgraded() || !proto.Equal(up.Proto, m.Proto) || up == m {
		t.Fatalf("an opset-14 model: err %v, report %v; want an equal copy, not upgraded", err, rep)
	}
	if s := rep.String(); s != "opset 14, not upgraded" {
		t.Errorf("report %q", s)
	}
}

// TestUpgradeNamesAreFresh: the names a rewrite adds collide with nothing.
func TestUpgradeNamesAreFresh(t *testing.T) {
	g := &onnxpb.GraphProto{
		Name:   "names",
		Input:  []*onnxpb.ValueInfoProto{vi("x", 2, 3, 4)},
		Output: []*onnxpb.ValueInfoProto{vi("y", 2, 3, 4)},
		// Initializers already named like the rewrite's first choices.
		Initializer: []*onnxpb.TensorProto{FloatTensor("sm/flat", []int64{1}, []float32{1}), FloatTensor("sm/shape", []int64{1}, []float32{2})},
		Node: []*onnxpb.NodeProto{
			node("Add", "sm/flatten", []string{"x", "sm/flat"}, []string{"a"}),
			node("Mul", "mul", []string{"a", "sm/shape"}, []string{"b"}),
			node("Softmax", "sm", []string{"b"}, []string{"y"}, attrI("axis", 1)),
		},
	}
	up, rep, err := Upgrade(model(9, g), 13)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 3 {
		t.Fatalf("added %d nodes, want Flatten, Shape and Reshape", rep.Added)
	}
	seen := map[string]bool{}
	for _, n := range up.Graph().GetNode() {
		if seen[n.GetName()] {
			t.Errorf("node name %q twice", n.GetName())
		}
		seen[n.GetName()] = true
	}
}

func TestFloatToHalf(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {0.5, 0x3800}, {65504, 0x7bff}, {1e6, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.9604645e-8, 0x0001}, {6.1035156e-5, 0x0400},
		{0.1, 0x2e66}, {1.0009766, 0x3c01}, {1.00048828125, 0x3c00}, // a tie rounds to even
	} {
		if got := floatToHalf(c.f); got != c.h {
			t.Errorf("floatToHalf(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	for h := uint16(0); h < 0x7c00; h += 7 {
		if got := floatToHalf(halfToFloat(h)); got != h {
			t.Fatalf("round trip of %#04x gives %#04x", h, got)
		}
	}
}

// TestInspectSaysUpgrade: inspect tells a user of an old-opset model
// whether bnaudit trains it through an upgraded copy (and what it
// rewrites) or cannot, naming the opset; a current model gets no such line.
func TestInspectSaysUpgrade(t *testing.T) {
	line := func(m *Model) string {
		t.Helper()
		s, err := Inspect(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range s.Warnings {
			if strings.Contains(w, "upgrade") {
				return w
			}
		}
		return ""
	}
	old, err := Load("../testdata/models/old_cnn.op9.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if w := line(old); !strings.Contains(w, "opset 9") || !strings.Contains(w, "BatchNormalization ×2") || strings.Contains(w, "cannot") {
		t.Errorf("opset-9 model: %q", w)
	}
	old.Proto.OpsetImport[0].Version = 5 // before MinUpgradeSource
	if w := line(old); !strings.Contains(w, "opset 5") || !strings.Contains(w, "cannot upgrade") {
		t.Errorf("opset-5 model: %q", w)
	}
	cur, err := Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if w := line(cur); w != "" {
		t.Errorf("opset-%d model warned %q", cur.Opset(""), w)
	}
}
