package onnxio

import (
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Index is a read-only view of the main graph that answers the questions
// transforms ask: who produces a value, who reads it, is it an initializer,
// what shape do we know for it. Build it once per model state; a transform
// that changes the graph builds a new one.
type Index struct {
	Graph *onnxpb.GraphProto
	// Producer maps a value name to the index of the node that outputs it.
	Producer map[string]int
	// Consumers maps a value name to the indices of the nodes that read it
	// (a node reading a value twice appears once).
	Consumers map[string][]int
	// Initializers maps a name to its initializer tensor.
	Initializers map[string]*onnxpb.TensorProto
	// Inputs maps the names of graph inputs that are not initializers.
	Inputs map[string]*onnxpb.ValueInfoProto
	// Outputs is the set of graph output names.
	Outputs map[string]bool
	// ValueInfo maps names to their declared type and shape, from the graph's
	// inputs, outputs and value_info.
	ValueInfo map[string]*onnxpb.ValueInfoProto
	// Order is a topological order of node indices.
	Order []int
	// Opsets maps each imported domain ("" for the default) to its version.
	Opsets map[string]int64
}

// NewIndex indexes the main graph of a model. The model must be valid (see
// Validate); NewIndex only fails on a cycle.
func NewIndex(m *Model) (*Index, error) {
	g := m.Graph()
	ix := &Index{
		Graph:        g,
		Producer:     map[string]int{},
		Consumers:    map[string][]int{},
		Initializers: map[string]*onnxpb.TensorProto{},
		Inputs:       map[string]*onnxpb.ValueInfoProto{},
		Outputs:      map[string]bool{},
		ValueInfo:    map[string]*onnxpb.ValueInfoProto{},
		Opsets:       map[string]int64{},
	}
	for _, o := range m.Proto.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		ix.Opsets[d] = o.GetVersion()
	}
	for _, t := range g.GetInitializer() {
		ix.Initializers[t.GetName()] = t
	}
	for _, in := range g.GetInput() {
		ix.ValueInfo[in.GetName()] = in
		if _, isInit := ix.Initializers[in.GetName()]; !isInit {
			ix.Inputs[in.GetName()] = in
		}
	}
	for _, vi := range g.GetValueInfo() {
		ix.ValueInfo[vi.GetName()] = vi
	}
	for _, o := range g.GetOutput() {
		ix.Outputs[o.GetName()] = true
		ix.ValueInfo[o.GetName()] = o
	}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				ix.Producer[o] = i
			}
		}
		seen := map[string]bool{}
		for _, in := range n.GetInput() {
			if in != "" && !seen[in] {
				seen[in] = true
				ix.Consumers[in] = append(ix.Consumers[in], i)
			}
		}
		for _, in := range subgraphReads(n) {
			if !seen[in] {
				seen[in] = true
				ix.Consumers[in] = append(ix.Consumers[in], i)
			}
		}
	}
	order, err := topoOrder(g, nil)
	if err != nil {
		return nil, invalidf("%v", err)
	}
	ix.Order = order
	return ix, nil
}

// Node returns the node at index i.
func (ix *Index) Node(i int) *onnxpb.NodeProto { return ix.Graph.GetNode()[i] }

// ProducerOf returns the node producing a value, or nil for graph inputs,
// initializers and unknown names.
func (ix *Index) ProducerOf(name string) *onnxpb.NodeProto {
	if i, ok := ix.Producer[name]; ok {
		return ix.Node(i)
	}
	return nil
}

// Shape returns the declared shape of a value: a dimension is -1 when it is
// symbolic or unknown. ok is false when nothing declares the value's shape.
func (ix *Index) Shape(name string) (dims []int64, ok bool) {
	if t, isInit := ix.Initializers[name]; isInit {
		return append([]int64(nil), t.GetDims()...), true
	}
	vi := ix.ValueInfo[name]
	tt := vi.GetType().GetTensorType()
	if tt == nil || tt.GetShape() == nil {
		return nil, false
	}
	for _, d := range tt.GetShape().GetDim() {
		if v, isVal := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); isVal {
			dims = append(dims, v.DimValue)
		} else {
			dims = append(dims, -1)
		}
	}
	return dims, true
}

// Rank returns the declared rank of a value, or -1 when unknown. Values that
// come out of Flatten and Gemm are rank 2 by definition.
func (ix *Index) Rank(name string) int {
	if d, ok := ix.Shape(name); ok {
		return len(d)
	}
	if p := ix.ProducerOf(name); p != nil {
		switch p.GetOpType() {
		case "Flatten", "Gemm":
			return 2
		}
	}
	return -1
}

// OpCounts counts the nodes of the main graph by op type (with the domain
// prefixed for non-default domains).
func (ix *Index) OpCounts() map[string]int {
	c := map[string]int{}
	for _, n := range ix.Graph.GetNode() {
		k := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			k = d + "." + k
		}
		c[k]++
	}
	return c
}

// Attr returns a node's attribute by name, or nil.
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrInt returns an integer attribute or def when it is absent.
func AttrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := Attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// AttrFloat returns a float attribute or def when it is absent.
func AttrFloat(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := Attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// AttrInts returns an ints attribute or nil.
func AttrInts(n *onnxpb.NodeProto, name string) []int64 {
	if a := Attr(n, name); a != nil {
		return a.GetInts()
	}
	return nil
}

// SetAttrInt sets (or adds) an integer attribute.
func SetAttrInt(n *onnxpb.NodeProto, name string, v int64) {
	if a := Attr(n, name); a != nil {
		a.I = v
		a.Type = onnxpb.AttributeProto_INT
		return
	}
	n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: name, I: v, Type: onnxpb.AttributeProto_INT})
}

// SetAttrFloat sets (or adds) a float attribute.
func SetAttrFloat(n *onnxpb.NodeProto, name string, v float32) {
	if a := Attr(n, name); a != nil {
		a.F = v
		a.Type = onnxpb.AttributeProto_FLOAT
		return
	}
	n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: name, F: v, Type: onnxpb.AttributeProto_FLOAT})
}

// DeleteAttr removes an attribute if present.
func DeleteAttr(n *onnxpb.NodeProto, name string) {
	out := n.Attribute[:0]
	for _, a := range n.Attribute {
		if a.GetName() != name {
			out = append(out, a)
		}
	}
	n.Attribute = out
}
