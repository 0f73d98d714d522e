package onnxio

import (
	"fmt"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// invalidf builds an ErrInvalidModel error with a one-line message.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidModel)
}

// Validate checks the structural rules every model must satisfy before
// bnaudit touches it: opsets declared, tensors consistent with their shapes,
// external data confined to the model's folder, every node input defined,
// every node producing an output, no name defined twice, no cycle, every
// graph output produced. Subgraphs (If, Loop, Scan bodies) are checked with
// the names of their enclosing scopes visible.
func (m *Model) Validate() error {
	err := m.validate()
	if err != nil && !strings.HasPrefix(err.Error(), "onnxio: ") {
		err = fmt.Errorf("onnxio: %s: %w", m.Name, err)
	}
	return clean(err)
}

func (m *Model) validate() error {
	if len(m.Proto.GetOpsetImport()) == 0 {
		return invalidf("the model declares no opset_import")
	}
	seen := map[string]bool{}
	for _, o := range m.Proto.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if seen[d] {
			return invalidf("opset for domain %q is declared twice", o.GetDomain())
		}
		seen[d] = true
		if o.GetVersion() <= 0 {
			return invalidf("opset for domain %q has version %d", o.GetDomain(), o.GetVersion())
		}
	}
	if err := m.eachTensor(m.checkTensor); err != nil {
		return err
	}
	nodes := 0
	if err := m.checkGraph(m.Graph(), nil, "graph", &nodes); err != nil {
		return err
	}
	return nil
}

// checkGraph validates one graph; outer holds the names visible from
// enclosing graphs (nil for the main graph).
func (m *Model) checkGraph(g *onnxpb.GraphProto, outer map[string]bool, where string, nodes *int) error {
	*nodes += len(g.GetNode())
	if m.limits.MaxNodes > 0 && *nodes > m.limits.MaxNodes {
		return fmt.Errorf("onnxio: %s: more than %d nodes: %w", m.Name, m.limits.MaxNodes, ErrTooLarge)
	}
	defined := map[string]string{} // name -> what defined it
	define := func(name, what string) error {
		if name == "" {
			return nil
		}
		if prev, ok := defined[name]; ok {
			// An initializer may also be listed as a graph input (IR < 4 style).
			if (prev == "graph input" && what == "initializer") || (prev == "initializer" && what == "graph input") {
				return nil
			}
			return invalidf("%s: name %q is defined twice (by %s and by %s)", where, name, prev, what)
		}
		defined[name] = what
		return nil
	}
	for _, in := range g.GetInput() {
		if in.GetName() == "" {
			return invalidf("%s: a graph input has no name", where)
		}
		if err := define(in.GetName(), "graph input"); err != nil {
			return err
		}
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == "" {
			return invalidf("%s: an initializer has no name", where)
		}
		if err := define(t.GetName(), "initializer"); err != nil {
			return err
		}
	}
	for _, st := range g.GetSparseInitializer() {
		if err := define(st.GetValues().GetName(), "sparse initializer"); err != nil {
			return err
		}
	}
	nodeNames := map[string]bool{}
	for i, n := range g.GetNode() {
		if n.GetOpType() == "" {
			return invalidf("%s: node %d has no op_type", where, i)
		}
		if nm := n.GetName(); nm != "" {
			if nodeNames[nm] {
				return invalidf("%s: two nodes are named %q", where, nm)
			}
			nodeNames[nm] = true
		}
		produces := false
		for _, o := range n.GetOutput() {
			produces = produces || o != ""
		}
		if !produces {
			return invalidf("%s: node %s produces no output", where, nodeLabel(n, i))
		}
		for _, o := range n.GetOutput() {
			if err := define(o, fmt.Sprintf("node %s", nodeLabel(n, i))); err != nil {
				return err
			}
		}
	}
	visible := func(name string) bool { return defined[name] != "" || outer[name] }
	for i, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			if in != "" && !visible(in) {
				return invalidf("%s: node %s reads %q, which no node, input or initializer defines", where, nodeLabel(n, i), in)
			}
		}
		for _, a := range n.GetAttribute() {
			subs := a.GetGraphs()
			if a.GetG() != nil {
				subs = append([]*onnxpb.GraphProto{a.GetG()}, subs...)
			}
			if len(subs) == 0 {
				continue
			}
			scope := make(map[string]bool, len(outer)+len(defined))
			for k := range outer {
				scope[k] = true
			}
			for k := range defined {
				scope[k] = true
			}
			for _, sg := range subs {
				if err := m.checkGraph(sg, scope, fmt.Sprintf("%s/%s.%s", where, nodeLabel(n, i), a.GetName()), nodes); err != nil {
					return err
				}
			}
		}
	}
	for _, o := range g.GetOutput() {
		if o.GetName() == "" {
			return invalidf("%s: a graph output has no name", where)
		}
		if !visible(o.GetName()) {
			return invalidf("%s: graph output %q is not produced by anything", where, o.GetName())
		}
	}
	if _, err := topoOrder(g, outer); err != nil {
		return invalidf("%s: %v", where, err)
	}
	return nil
}

// nodeLabel names a node for messages: its name, or its op type and position.
func nodeLabel(n *onnxpb.NodeProto, i int) string {
	if n.GetName() != "" {
		return fmt.Sprintf("%q (%s)", n.GetName(), n.GetOpType())
	}
	return fmt.Sprintf("#%d (%s)", i, n.GetOpType())
}

// topoOrder returns node indices in an order where every node comes after
// the producers of its inputs (Kahn's algorithm, stable: ties keep file
// order). It fails on a cycle and names a node on it.
func topoOrder(g *onnxpb.GraphProto, outer map[string]bool) ([]int, error) {
	nodes := g.GetNode()
	producer := make(map[string]int, len(nodes))
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o != "" {
				producer[o] = i
			}
		}
	}
	indeg := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i, n := range nodes {
		deps := map[int]bool{}
		for _, in := range n.GetInput() {
			if p, ok := producer[in]; ok && in != "" {
				deps[p] = true
			}
		}
		// Subgraph bodies may read outer values produced by nodes of this graph.
		for _, name := range subgraphReads(n) {
			if p, ok := producer[name]; ok {
				deps[p] = true
			}
		}
		for p := range deps {
			if p == i {
				return nil, fmt.Errorf("node %s reads its own output", nodeLabel(n, i))
			}
			indeg[i]++
			users[p] = append(users[p], i)
		}
	}
	order := make([]int, 0, len(nodes))
	// A simple queue that keeps file order among ready nodes.
	ready := make([]int, 0, len(nodes))
	for i := range nodes {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(order) != len(nodes) {
		for i, d := range indeg {
			if d > 0 {
				return nil, fmt.Errorf("the graph has a cycle through node %s", nodeLabel(nodes[i], i))
			}
		}
	}
	return order, nil
}

// subgraphReads lists the names a node's subgraphs read from outside themselves.
func subgraphReads(n *onnxpb.NodeProto) []string {
	var out []string
	for _, a := range n.GetAttribute() {
		subs := a.GetGraphs()
		if a.GetG() != nil {
			subs = append(subs, a.GetG())
		}
		for _, g := range subs {
			local := map[string]bool{}
			for _, in := range g.GetInput() {
				local[in.GetName()] = true
			}
			for _, t := range g.GetInitializer() {
				local[t.GetName()] = true
			}
			for _, sn := range g.GetNode() {
				for _, o := range sn.GetOutput() {
					local[o] = true
				}
			}
			for _, sn := range g.GetNode() {
				for _, in := range sn.GetInput() {
					if in != "" && !local[in] {
						out = append(out, in)
					}
				}
				out = append(out, subgraphReads(sn)...)
			}
			for _, o := range g.GetOutput() {
				if !local[o.GetName()] {
					out = append(out, o.GetName())
				}
			}
		}
	}
	return out
}

// eachTensor calls fn on every tensor stored in the model: initializers,
// sparse initializers, tensor attributes of nodes, in every graph, subgraph
// and function.
func (m *Model) eachTensor(fn func(t *onnxpb.TensorProto, where string) error) error {
	var walkNodes func(nodes []*onnxpb.NodeProto, where string) error
	var walkGraph func(g *onnxpb.GraphProto, where string) error
	walkAttr := func(a *onnxpb.AttributeProto, where string) error {
		if a.GetT() != nil {
			if err := fn(a.GetT(), where); err != nil {
				return err
			}
		}
		for _, t := range a.GetTensors() {
			if err := fn(t, where); err != nil {
				return err
			}
		}
		for _, st := range append([]*onnxpb.SparseTensorProto{a.GetSparseTensor()}, a.GetSparseTensors()...) {
			if st == nil {
				continue
			}
			for _, t := range []*onnxpb.TensorProto{st.GetValues(), st.GetIndices()} {
				if t != nil {
					if err := fn(t, where); err != nil {
						return err
					}
				}
			}
		}
		if a.GetG() != nil {
			if err := walkGraph(a.GetG(), where+"."+a.GetName()); err != nil {
				return err
			}
		}
		for _, g := range a.GetGraphs() {
			if err := walkGraph(g, where+"."+a.GetName()); err != nil {
				return err
			}
		}
		return nil
	}
	walkNodes = func(nodes []*onnxpb.NodeProto, where string) error {
		for i, n := range nodes {
			for _, a := range n.GetAttribute() {
				if err := walkAttr(a, where+"/"+nodeLabel(n, i)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	walkGraph = func(g *onnxpb.GraphProto, where string) error {
		if g == nil {
			return nil
		}
		for _, t := range g.GetInitializer() {
			if err := fn(t, where); err != nil {
				return err
			}
		}
		for _, st := range g.GetSparseInitializer() {
			for _, t := range []*onnxpb.TensorProto{st.GetValues(), st.GetIndices()} {
				if t != nil {
					if err := fn(t, where); err != nil {
						return err
					}
				}
			}
		}
		return walkNodes(g.GetNode(), where)
	}
	if err := walkGraph(m.Graph(), "graph"); err != nil {
		return err
	}
	for _, f := range m.Proto.GetFunctions() {
		if err := walkNodes(f.GetNode(), "function "+f.GetName()); err != nil {
			return err
		}
	}
	for _, ti := range m.Proto.GetTrainingInfo() {
		if err := walkGraph(ti.GetInitialization(), "training_info"); err != nil {
			return err
		}
		if err := walkGraph(ti.GetAlgorithm(), "training_info"); err != nil {
			return err
		}
	}
	return nil
}
