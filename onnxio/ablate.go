package onnxio

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Mode is a way of ablating BatchNormalization layers.
type Mode string

// The ablation modes (docs/METHODS.md, "BN ablation modes").
const (
	// ModeFold folds running statistics and affine into the preceding
	// Conv/ConvTranspose/Gemm/MatMul; the inference function is unchanged.
	ModeFold Mode = "fold"
	// ModeRemove replaces BN by the identity.
	ModeRemove Mode = "remove"
	// ModeFreeze makes BN always use its running statistics, in training
	// too; its scale and bias stay trainable.
	ModeFreeze Mode = "freeze"
	// ModeGroupNorm replaces BN by GroupNorm.
	ModeGroupNorm Mode = "groupnorm"
)

// Modes lists the ablation modes in the order the CLI shows them.
var Modes = []Mode{ModeFold, ModeRemove, ModeFreeze, ModeGroupNorm}

// ParseMode turns a user's word into a Mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == strings.ToLower(strings.TrimSpace(s)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("onnxio: unknown ablation mode %q (want one of fold, remove, freeze, groupnorm)", s)
}

// AblateOptions selects the mode and the layers of an ablation.
type AblateOptions struct {
	Mode Mode
	// Layers picks BN nodes by name or index; empty means all.
	Layers []string
	// Groups is the number of groups for ModeGroupNorm; 0 means gcd(32, C).
	Groups int
	// CopyAffine copies BN's scale and bias into the GroupNorm affine
	// (ModeGroupNorm); otherwise they start at 1 and 0.
	CopyAffine bool
}

// Ablation is the result of Ablate: a new model and what changed.
type Ablation struct {
	Model *Model
	// Layers are the names of the BN nodes that were ablated.
	Layers []string
	// Warnings are things the user should know (e.g. a group that
	// normalizes a single value).
	Warnings []string
}

// Ablate returns a new model with the selected BN layers ablated. The input
// model is never modified. The result is validated before it is returned.
func Ablate(m *Model, opt AblateOptions) (*Ablation, error) {
	res, err := ablate(m, opt)
	return res, clean(err)
}

func ablate(m *Model, opt AblateOptions) (*Ablation, error) {
	if _, err := ParseMode(string(opt.Mode)); err != nil {
		return nil, err
	}
	out := m.Clone()
	nameUnnamedBN(out)
	ix, err := NewIndex(out)
	if err != nil {
		return nil, err
	}
	all := findBatchNorms(out, ix)
	if len(all) == 0 {
		return nil, fmt.Errorf("onnxio: %s: %s", m.Name, NoBatchNormAdvice)
	}
	sel, err := SelectBatchNorms(all, opt.Layers)
	if err != nil {
		return nil, err
	}
	e := &editor{m: out, ix: ix, names: usedNames(out), drop: map[int]bool{}, maybeUnused: map[string]bool{}}
	res := &Ablation{Model: out}
	for _, bn := range sel {
		n := ix.Node(bn.NodeIndex)
		if err := checkBNArity(n, out.Opset("")); err != nil {
			return nil, err
		}
		if opt.Mode != ModeFreeze || bn.TrainingMode {
			if err := e.checkStatOutputsUnused(n); err != nil {
				return nil, err
			}
		}
		switch opt.Mode {
		case ModeFold:
			plan, err := planFold(out, ix, bn.NodeIndex)
			if err != nil {
				return nil, fmt.Errorf("onnxio: cannot fold %s: %v; use --mode remove, freeze or groupnorm for this layer, or pick foldable layers with --layers", bnLabel(bn), err)
			}
			if err := e.applyFold(plan); err != nil {
				return nil, err
			}
		case ModeRemove:
			e.remove(bn.NodeIndex)
		case ModeFreeze:
			e.freeze(bn.NodeIndex)
		case ModeGroupNorm:
			w, err := e.groupNorm(bn, opt)
			if err != nil {
				return nil, err
			}
			res.Warnings = append(res.Warnings, w...)
		}
		res.Layers = append(res.Layers, n.GetName())
	}
	e.commit()
	if k := len(e.oneChannelGroups); k > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d layer(s) get one channel per group, where GroupNorm is InstanceNorm; a layer whose spatial size is 1 would normalize a single value and lose its signal (%s)", k, strings.Join(e.oneChannelGroups, ", ")))
	}
	if opt.Mode == ModeFreeze {
		frozen := frozenSet(out)
		for _, l := range res.Layers {
			frozen[l] = true
		}
		names := make([]string, 0, len(frozen))
		for k := range frozen {
			names = append(names, k)
		}
		sort.Strings(names)
		b, _ := json.Marshal(names)
		out.SetMetadata(MetaFrozenBN, string(b))
	}
	recordAblation(out, opt.Mode, res.Layers)
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("onnxio: internal error: %s ablation produced an invalid model: %w", opt.Mode, err)
	}
	return res, nil
}

func bnLabel(bn BatchNorm) string {
	return fmt.Sprintf("BatchNormalization %d (%q)", bn.Index, bn.Name)
}

func recordAblation(m *Model, mode Mode, layers []string) {
	type entry struct {
		Mode   Mode     `json:"mode"`
		Layers []string `json:"layers"`
	}
	var hist []entry
	if v, ok := m.Metadata(MetaAblation); ok {
		_ = json.Unmarshal([]byte(v), &hist)
	}
	hist = append(hist, entry{mode, layers})
	b, _ := json.Marshal(hist)
	m.SetMetadata(MetaAblation, string(b))
}

// nameUnnamedBN gives every unnamed BN node a unique readable name, so that
// layers can be referred to and recorded.
func nameUnnamedBN(m *Model) {
	names := usedNames(m)
	k := 0
	for _, n := range m.Graph().GetNode() {
		if isBN(n) && n.GetName() == "" {
			n.Name = names.unique(fmt.Sprintf("batchnorm_%d", k))
		}
		if isBN(n) {
			k++
		}
	}
}

// nameSet hands out names that no value, node or initializer uses yet.
type nameSet map[string]bool

func usedNames(m *Model) nameSet {
	s := nameSet{}
	g := m.Graph()
	for _, in := range g.GetInput() {
		s[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		s[t.GetName()] = true
	}
	for _, o := range g.GetOutput() {
		s[o.GetName()] = true
	}
	for _, vi := range g.GetValueInfo() {
		s[vi.GetName()] = true
	}
	var walk func(g *onnxpb.GraphProto)
	walk = func(g *onnxpb.GraphProto) {
		for _, n := range g.GetNode() {
			s[n.GetName()] = true
			for _, v := range append(append([]string{}, n.GetInput()...), n.GetOutput()...) {
				s[v] = true
			}
			for _, a := range n.GetAttribute() {
				if a.GetG() != nil {
					walk(a.GetG())
				}
				for _, sg := range a.GetGraphs() {
					walk(sg)
				}
			}
		}
	}
	walk(g)
	return s
}

func (s nameSet) unique(base string) string {
	name := base
	for k := 2; s[name]; k++ {
		name = fmt.Sprintf("%s_%d", base, k)
	}
	s[name] = true
	return name
}

// editor applies node-level edits to a cloned model and rebuilds the node
// list once at the end, so that node indices stay valid while it works.
type editor struct {
	m     *Model
	ix    *Index
	names nameSet
	// drop marks nodes to delete; insertAfter holds new nodes placed right
	// after an existing node, keeping the list topologically ordered.
	drop        map[int]bool
	insertAfter map[int][]*onnxpb.NodeProto
	// maybeUnused holds initializers an edit stopped reading; commit drops
	// those nothing reads any more.
	maybeUnused map[string]bool
	newInits    []*onnxpb.TensorProto
	// oneChannelGroups lists GroupNorm layers with one channel per group
	// whose spatial size is not known here.
	oneChannelGroups []string
}

// bnOutputs is how many outputs a BatchNormalization node may have at an
// opset: before opset 14, Y and four training outputs (running mean and
// variance, saved mean and variance); from opset 14, Y and the two running
// statistics.
func bnOutputs(opset int64) int {
	if opset < 14 {
		return 5
	}
	return 3
}

// checkBNArity refuses BatchNormalization nodes that do not have the five
// inputs and the outputs the operator defines at the model's opset.
func checkBNArity(n *onnxpb.NodeProto, opset int64) error {
	in, out := n.GetInput(), n.GetOutput()
	if len(in) != 5 || len(out) == 0 || len(out) > bnOutputs(opset) || out[0] == "" {
		return fmt.Errorf("onnxio: BatchNormalization %q has %d inputs and %d outputs; ONNX defines 5 inputs and 1 to %d outputs at opset %d: %w", n.GetName(), len(in), len(out), bnOutputs(opset), opset, ErrInvalidModel)
	}
	for k, v := range in {
		if v == "" {
			return fmt.Errorf("onnxio: BatchNormalization %q: input %d is empty: %w", n.GetName(), k, ErrInvalidModel)
		}
	}
	return nil
}

func (e *editor) checkStatOutputsUnused(n *onnxpb.NodeProto) error {
	for _, o := range n.GetOutput()[1:] {
		if o == "" {
			continue
		}
		if len(e.ix.Consumers[o]) > 0 || e.ix.Outputs[o] {
			return fmt.Errorf("onnxio: BatchNormalization %q: its running-statistics output %q is read by the graph; bnaudit cannot ablate a BN whose statistics outputs are used", n.GetName(), o)
		}
	}
	return nil
}

func (e *editor) after(i int, nodes ...*onnxpb.NodeProto) {
	if e.insertAfter == nil {
		e.insertAfter = map[int][]*onnxpb.NodeProto{}
	}
	e.insertAfter[i] = append(e.insertAfter[i], nodes...)
}

func (e *editor) addInit(t *onnxpb.TensorProto) { e.newInits = append(e.newInits, t) }

func (e *editor) forgetInputs(n *onnxpb.NodeProto) {
	for _, in := range n.GetInput()[1:] {
		if e.ix.Initializers[in] != nil {
			e.maybeUnused[in] = true
		}
	}
}

// rename makes every reader of value from read value to instead, in the
// main graph and in subgraphs that see it.
func (e *editor) rename(from, to string) {
	var walk func(nodes []*onnxpb.NodeProto)
	walk = func(nodes []*onnxpb.NodeProto) {
		for _, n := range nodes {
			for k, in := range n.Input {
				if in == from {
					n.Input[k] = to
				}
			}
			for _, a := range n.GetAttribute() {
				subs := a.GetGraphs()
				if a.GetG() != nil {
					subs = append(subs, a.GetG())
				}
				for _, sg := range subs {
					walk(sg.GetNode())
					for _, o := range sg.GetOutput() {
						if o.Name == from {
							o.Name = to
						}
					}
				}
			}
		}
	}
	walk(e.m.Graph().GetNode())
}

// dropValueInfo removes the value_info entry of a value that no longer exists.
func (e *editor) dropValueInfo(name string) {
	g := e.m.Graph()
	out := g.ValueInfo[:0]
	for _, vi := range g.ValueInfo {
		if vi.GetName() != name {
			out = append(out, vi)
		}
	}
	g.ValueInfo = out
}

func (e *editor) remove(i int) {
	n := e.ix.Node(i)
	x, y := n.GetInput()[0], n.GetOutput()[0]
	e.forgetInputs(n)
	if e.ix.Outputs[y] {
		// The BN output is a graph output: keep its name with an Identity.
		id := &onnxpb.NodeProto{Name: e.names.unique(n.GetName() + "/identity"), OpType: "Identity", Input: []string{x}, Output: []string{y}}
		e.after(i, id)
	} else {
		e.rename(y, x)
		e.dropValueInfo(y)
	}
	e.drop[i] = true
}

func (e *editor) freeze(i int) {
	n := e.ix.Node(i)
	DeleteAttr(n, "training_mode")
	n.Output = n.Output[:1]
}

// commit rebuilds the node list and prunes unused initializers.
func (e *editor) commit() {
	g := e.m.Graph()
	var nodes []*onnxpb.NodeProto
	for i, n := range g.GetNode() {
		if !e.drop[i] {
			nodes = append(nodes, n)
		}
		nodes = append(nodes, e.insertAfter[i]...)
	}
	g.Node = nodes
	g.Initializer = append(g.Initializer, e.newInits...)
	if len(e.maybeUnused) == 0 {
		return
	}
	read := map[string]bool{}
	var walk func(nodes []*onnxpb.NodeProto)
	walk = func(nodes []*onnxpb.NodeProto) {
		for _, n := range nodes {
			for _, in := range n.GetInput() {
				read[in] = true
			}
			for _, a := range n.GetAttribute() {
				subs := a.GetGraphs()
				if a.GetG() != nil {
					subs = append(subs, a.GetG())
				}
				for _, sg := range subs {
					walk(sg.GetNode())
					for _, o := range sg.GetOutput() {
						read[o.GetName()] = true
					}
				}
			}
		}
	}
	walk(g.GetNode())
	for _, o := range g.GetOutput() {
		read[o.GetName()] = true
	}
	gone := func(name string) bool { return e.maybeUnused[name] && !read[name] }
	inits := g.Initializer[:0]
	for _, t := range g.Initializer {
		if !gone(t.GetName()) {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	ins := g.Input[:0]
	for _, in := range g.Input {
		if !gone(in.GetName()) {
			ins = append(ins, in)
		}
	}
	g.Input = ins
	vis := g.ValueInfo[:0]
	for _, vi := range g.ValueInfo {
		if !gone(vi.GetName()) {
			vis = append(vis, vi)
		}
	}
	g.ValueInfo = vis
}

// EvalMode returns a copy of the model in inference mode: every
// BatchNormalization uses its running statistics (training_mode 0, one
// output) and every Dropout is an identity (its training_mode input is
// dropped). Statistics outputs that the graph reads are an error.
func EvalMode(m *Model) (*Model, error) {
	out, err := evalMode(m)
	return out, clean(err)
}

func evalMode(m *Model) (*Model, error) {
	out := m.Clone()
	ix, err := NewIndex(out)
	if err != nil {
		return nil, err
	}
	e := &editor{m: out, ix: ix, names: usedNames(out), drop: map[int]bool{}, maybeUnused: map[string]bool{}}
	for i, n := range out.Graph().GetNode() {
		switch {
		case isBN(n):
			if err := checkBNArity(n, out.Opset("")); err != nil {
				return nil, err
			}
			if err := e.checkStatOutputsUnused(n); err != nil {
				return nil, err
			}
			e.freeze(i)
		case n.GetOpType() == "Dropout" && (n.GetDomain() == "" || n.GetDomain() == "ai.onnx"):
			if len(n.Input) > 2 {
				if ix.Initializers[n.Input[2]] != nil {
					e.maybeUnused[n.Input[2]] = true
				}
				n.Input = n.Input[:2]
			}
		}
	}
	e.commit()
	return out, out.Validate()
}
