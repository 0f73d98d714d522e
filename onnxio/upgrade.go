package onnxio

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Upgrading a model to a newer opset.
//
// ONNX versions each operator separately: a model of opset N runs, for each
// op, the newest definition whose since_version is at most N. Upgrade
// rewrites a model of an old opset into one of opset 13 or later that
// computes the same function. A node whose definition did not change
// between the two versions, or changed only by accepting more types or
// optional inputs and attributes whose defaults keep the old behaviour, is
// carried over as it is; a node whose signature or semantics changed is
// rewritten by a rule written from the operator changelog
// (upgrade_rules.go); a node of any other changed op is refused with
// ErrCannotUpgrade.

// The opsets Upgrade reads and writes.
const (
	// MinUpgradeSource is the oldest opset Upgrade converts: opset 6 is the
	// first without the consumed_inputs attributes of opset 1.
	MinUpgradeSource = 6
	// MinUpgradeTarget is the oldest opset Upgrade writes: the first where
	// Softmax works on one axis and axes, splits and clip bounds are inputs.
	MinUpgradeTarget = 13
	// MaxUpgradeTarget is the newest opset Upgrade writes, the newest in its
	// table of operator versions.
	MaxUpgradeTarget = 17
)

// MetaUpgradedFrom is the metadata key under which Upgrade records the
// opset a model had before.
const MetaUpgradedFrom = "bnaudit.upgraded_from_opset"

// ErrCannotUpgrade: the model uses an op whose definition changed between
// its opset and the target in a way Upgrade does not convert, or an opset
// Upgrade does not read.
var ErrCannotUpgrade = errors.New("cannot upgrade the opset")

// UpgradeReport says what Upgrade did.
type UpgradeReport struct {
	// From and To are the model's default-domain opset before and after
	// (equal when nothing was done).
	From, To int64
	// Rewritten counts the rewritten nodes by op type.
	Rewritten map[string]int
	// Added is the number of nodes the rewrites inserted (Unsqueeze,
	// Flatten, Shape, Reshape).
	Added int
	// Kept is the number of nodes carried over unchanged.
	Kept int
}

// Upgraded reports whether the opset changed.
func (r *UpgradeReport) Upgraded() bool { return r != nil && r.To > r.From }

// String summarizes the report on one line.
func (r *UpgradeReport) String() string {
	if !r.Upgraded() {
		return fmt.Sprintf("opset %d, not upgraded", r.From)
	}
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(r.Rewritten)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", op, r.Rewritten[op]))
	}
	rewrote := "no node rewritten"
	if len(parts) > 0 {
		rewrote = "rewrote " + strings.Join(parts, ", ")
	}
	if r.Added > 0 {
		rewrote += fmt.Sprintf(" (%d nodes added)", r.Added)
	}
	return fmt.Sprintf("upgraded from opset %d to %d: %s; %d nodes unchanged", r.From, r.To, rewrote, r.Kept)
}

// Upgrade returns a copy of m rewritten to opset to (MinUpgradeTarget to
// MaxUpgradeTarget) with the same outputs for the same inputs, and a report
// of what changed. A model already at opset to or later comes back as an
// unchanged copy. The input model is never modified; the result is
// validated before it is returned.
//
// What is converted, from the operator changelog: BatchNormalization
// (is_test and spatial dropped, training outputs saved_mean and saved_var
// dropped, training_mode written from opset 14 on), Dropout (ratio
// attribute to input, mask output dropped, is_test dropped),
// Squeeze/Unsqueeze/ReduceSum axes, Split split, Slice
// starts/ends/axes, TopK k, Clip min/max and Pad pads/value attributes to
// inputs, Softmax/LogSoftmax/Hardmax (which before opset 13 worked on the
// input flattened to 2-D at axis: written as Flatten, the op on the last
// axis and Reshape back, unless axis is the last one), Upsample and
// Resize-10 to Resize, Scatter to ScatterElements, the broadcast
// attributes of opset 6 (with an Unsqueeze where broadcast axis is not
// numpy's), and PRelu's per-channel slope of opset 6. Ops whose changes
// only widened types or added inputs and attributes with old defaults keep
// their node. Any other changed op (RNN, GRU and LSTM of opset 6, Scan of
// opset 8, ConvTranspose with auto_pad SAME_* before opset 11, Resize with
// tf_half_pixel_for_nn, non-spatial BatchNormalization, nodes holding
// subgraphs, model-local functions) is refused with one line that names
// the node, the op and the opset, wrapping ErrCannotUpgrade.
func Upgrade(m *Model, to int64) (*Model, *UpgradeReport, error) {
	out, rep, err := upgrade(m, to)
	return out, rep, clean(err)
}

func upgrade(m *Model, to int64) (*Model, *UpgradeReport, error) {
	if to < MinUpgradeTarget || to > MaxUpgradeTarget {
		return nil, nil, fmt.Errorf("onnxio: bnaudit upgrades models to opset %d to %d, not %d", MinUpgradeTarget, MaxUpgradeTarget, to)
	}
	from := m.Opset("")
	rep := &UpgradeReport{From: from, To: from, Rewritten: map[string]int{}}
	if from >= to {
		return m.Clone(), rep, nil
	}
	advice := fmt.Sprintf("re-export the model with opset_version ≥ %d", MinUpgradeTarget)
	if from == 0 {
		return nil, nil, fmt.Errorf("onnxio: %s imports no opset of the default ONNX domain; bnaudit cannot upgrade it: %w", m.Name, ErrCannotUpgrade)
	}
	if from < MinUpgradeSource {
		return nil, nil, fmt.Errorf("onnxio: %s has opset %d; bnaudit upgrades models of opset %d or later; %s: %w", m.Name, from, MinUpgradeSource, advice, ErrCannotUpgrade)
	}
	if len(m.Proto.GetFunctions()) > 0 {
		return nil, nil, fmt.Errorf("onnxio: %s defines %d model-local functions, which bnaudit cannot upgrade from opset %d; %s: %w", m.Name, len(m.Proto.GetFunctions()), from, advice, ErrCannotUpgrade)
	}
	out := m.Clone()
	ix, err := NewIndex(out)
	if err != nil {
		return nil, nil, err
	}
	u := &upgrader{m: out, ix: ix, from: from, to: to, names: usedNames(out), rep: rep, advice: advice,
		meta: map[string]valueMeta{}, dropped: map[string]bool{}}
	u.inferMeta()
	g := out.Graph()
	var nodes []*onnxpb.NodeProto
	for i, n := range g.GetNode() {
		repl, err := u.node(i, n)
		if err != nil {
			return nil, nil, err
		}
		nodes = append(nodes, repl...)
	}
	g.Node = nodes
	g.Initializer = append(g.Initializer, u.inits...)
	if len(u.dropped) > 0 {
		vis := g.ValueInfo[:0]
		for _, vi := range g.ValueInfo {
			if !u.dropped[vi.GetName()] {
				vis = append(vis, vi)
			}
		}
		g.ValueInfo = vis
	}
	for _, o := range out.Proto.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			o.Version = to
		}
	}
	// The IR version that first carries the target opset (IR 7: opsets
	// 12–14; IR 8: 15–18).
	ir := int64(7)
	if to >= 15 {
		ir = 8
	}
	out.Proto.IrVersion = max(out.Proto.GetIrVersion(), ir)
	out.SetMetadata(MetaUpgradedFrom, fmt.Sprint(from))
	rep.To = to
	if err := out.Validate(); err != nil {
		return nil, nil, fmt.Errorf("onnxio: %s: the upgrade to opset %d wrote an invalid model (%v); %s: %w", m.Name, to, err, advice, ErrCannotUpgrade)
	}
	return out, rep, nil
}

// upgrader holds one upgrade's state: the copy being rewritten, an index
// of it as it was, what is known of its values, and the initializers the
// rules add.
type upgrader struct {
	m        *Model
	ix       *Index
	from, to int64
	names    nameSet
	rep      *UpgradeReport
	advice   string
	// meta is the rank and element type known for each value
	// (upgrade_meta.go).
	meta  map[string]valueMeta
	inits []*onnxpb.TensorProto
	// dropped holds outputs the rewrites removed, whose value_info goes.
	dropped map[string]bool
}

// node returns what replaces node n (number i): itself when its op did not
// change, a rule's rewrite, or an error.
func (u *upgrader) node(i int, n *onnxpb.NodeProto) ([]*onnxpb.NodeProto, error) {
	if hasSubgraph(n) {
		return nil, u.refuse(n, "it holds subgraphs, whose nodes bnaudit does not upgrade")
	}
	if d := n.GetDomain(); d != "" && d != "ai.onnx" {
		u.rep.Kept++ // another domain keeps its own opset
		return []*onnxpb.NodeProto{n}, nil
	}
	op := n.GetOpType()
	vFrom, vTo := sinceVersion(op, u.from), sinceVersion(op, u.to)
	if vFrom == 0 {
		return nil, fmt.Errorf("onnxio: %s: node %q (#%d) uses op %s, which opset %d does not define: %w", u.m.Name, n.GetName(), i, CleanMessage(op), u.from, ErrInvalidModel)
	}
	if vFrom == vTo && !deprecated(op, vTo) {
		u.rep.Kept++
		return []*onnxpb.NodeProto{n}, nil
	}
	rule := upgradeRules[op]
	if rule == nil { // every change between the two versions keeps old models' meaning
		u.rep.Kept++
		return []*onnxpb.NodeProto{n}, nil
	}
	// Every op with a rule has a first input and a first output, which
	// the rules read without checking.
	if len(n.GetInput()) == 0 || n.GetInput()[0] == "" || len(n.GetOutput()) == 0 || n.GetOutput()[0] == "" {
		return nil, fmt.Errorf("onnxio: %s: node %q (#%d) %s has no first input or no first output: %w", u.m.Name, CleanMessage(n.GetName()), i, op, ErrInvalidModel)
	}
	out, err := rule(u, n, vFrom)
	if err != nil {
		return nil, err
	}
	if out == nil { // the rule found nothing to change
		u.rep.Kept++
		return []*onnxpb.NodeProto{n}, nil
	}
	u.rep.Rewritten[op]++
	u.rep.Added += len(out) - 1
	return out, nil
}

// refuse is the one-line error for a node Upgrade cannot convert.
func (u *upgrader) refuse(n *onnxpb.NodeProto, format string, args ...any) error {
	return fmt.Errorf("onnxio: %s: node %q: bnaudit cannot upgrade op %s from opset %d (%s); %s: %w",
		u.m.Name, CleanMessage(n.GetName()), CleanMessage(n.GetOpType()), u.from, fmt.Sprintf(format, args...), u.advice, ErrCannotUpgrade)
}

func hasSubgraph(n *onnxpb.NodeProto) bool {
	for _, a := range n.GetAttribute() {
		if a.GetG() != nil || len(a.GetGraphs()) > 0 {
			return true
		}
	}
	return false
}

// base is the stem of the names a rule creates for node n.
func base(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	for _, o := range n.GetOutput() {
		if o != "" {
			return o
		}
	}
	return n.GetOpType()
}

// read reports whether a value is read by a node or is a graph output.
func (u *upgrader) read(name string) bool {
	return name != "" && (len(u.ix.Consumers[name]) > 0 || u.ix.Outputs[name])
}

// constInts adds an INT64 initializer named after node n and returns its name.
func (u *upgrader) constInts(n *onnxpb.NodeProto, what string, dims []int64, vals []int64) string {
	name := u.names.unique(base(n) + "/" + what)
	u.inits = append(u.inits, Int64Tensor(name, dims, vals))
	return name
}

// constFloats adds a FLOAT initializer named after node n and returns its name.
func (u *upgrader) constFloats(n *onnxpb.NodeProto, what string, dims []int64, vals []float32) string {
	name := u.names.unique(base(n) + "/" + what)
	u.inits = append(u.inits, FloatTensor(name, dims, vals))
	return name
}

// constScalar adds a 0-d initializer of element type dt (float, double or
// float16) holding v, for inputs that must match a data input's type.
func (u *upgrader) constScalar(n *onnxpb.NodeProto, what string, dt int32, v float32) (string, error) {
	name := u.names.unique(base(n) + "/" + what)
	switch dt {
	case TypeFloat:
		u.inits = append(u.inits, FloatTensor(name, nil, []float32{v}))
	case TypeDouble:
		u.inits = append(u.inits, &onnxpb.TensorProto{Name: name, DataType: TypeDouble, DoubleData: []float64{float64(v)}})
	case TypeFloat16:
		u.inits = append(u.inits, &onnxpb.TensorProto{Name: name, DataType: TypeFloat16, Int32Data: []int32{int32(floatToHalf(v))}})
	default:
		return "", u.refuse(n, "its %s must take the element type of its input, which bnaudit cannot tell (%s)", what, typeName(dt))
	}
	return name, nil
}

// emit builds a new node named after n.
func (u *upgrader) emit(n *onnxpb.NodeProto, op, what string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: u.names.unique(base(n) + "/" + what), OpType: op, Input: ins, Output: outs, Attribute: attrs}
}

// fresh returns a new value name derived from node n.
func (u *upgrader) fresh(n *onnxpb.NodeProto, what string) string {
	return u.names.unique(base(n) + "/" + what)
}

func typeName(dt int32) string {
	if dt == 0 {
		return "unknown type"
	}
	return strings.ToLower(onnxpb.TensorProto_DataType(dt).String())
}
