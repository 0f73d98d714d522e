package onnxio

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// MetaFrozenBN is the metadata_props key under which ablation records the
// BatchNormalization nodes that must use their running statistics in
// training too (mode freeze). Its value is a JSON array of node names. The
// trainer reads it.
const MetaFrozenBN = "bnaudit.frozen_batchnorms"

// MetaAblation records what ablations produced a model (a JSON array of
// {"mode", "layers"} objects, oldest first).
const MetaAblation = "bnaudit.ablations"

// Source says where one of a BatchNormalization node's inputs comes from.
type Source struct {
	Name string `json:"name"`
	// Kind is "initializer", "input" (a graph input), "node" (computed) or
	// "missing".
	Kind string `json:"kind"`
}

// BatchNorm describes one BatchNormalization node.
type BatchNorm struct {
	// Index is the node's position among the model's BN nodes, in graph order.
	Index     int    `json:"index"`
	Name      string `json:"name"`
	NodeIndex int    `json:"node_index"`
	Input     string `json:"input"`
	Output    string `json:"output"`
	// Channels is the number of normalized channels, or -1 when no input
	// declares it.
	Channels     int64   `json:"channels"`
	Epsilon      float32 `json:"epsilon"`
	Momentum     float32 `json:"momentum"`
	TrainingMode bool    `json:"training_mode"`
	// Frozen is true when an earlier `freeze` ablation marked this node.
	Frozen bool   `json:"frozen"`
	Scale  Source `json:"scale"`
	Bias   Source `json:"bias"`
	Mean   Source `json:"mean"`
	Var    Source `json:"var"`
	// Producer is the node that computes the BN's input ("" for a graph input).
	Producer string `json:"producer"`
	// ProducerKind is Conv, ConvTranspose, Gemm, MatMul, other or input.
	ProducerKind string `json:"producer_kind"`
	// ProducerOp is the producer's op type.
	ProducerOp string `json:"producer_op"`
	Foldable   bool   `json:"foldable"`
	// FoldNote says why the node cannot be folded (empty when it can).
	FoldNote string `json:"fold_note,omitempty"`
}

// NoBatchNormAdvice explains a model without BatchNormalization nodes.
const NoBatchNormAdvice = "no BatchNormalization node found. If this model came from PyTorch, note that torch.onnx.export of a model in eval mode folds BatchNorm into the preceding Conv by default; export with training=torch.onnx.TrainingMode.PRESERVE (or TRAINING) to keep the BN layers"

// FindBatchNorms lists every BatchNormalization node of the main graph in
// graph order, with what bnaudit needs to know to ablate it.
func FindBatchNorms(m *Model) ([]BatchNorm, error) {
	ix, err := NewIndex(m)
	if err != nil {
		return nil, clean(err)
	}
	return findBatchNorms(m, ix), nil
}

func findBatchNorms(m *Model, ix *Index) []BatchNorm {
	frozen := frozenSet(m)
	out := []BatchNorm{}
	for i := range ix.Graph.GetNode() {
		n := ix.Node(i)
		if !isBN(n) {
			continue
		}
		bn := BatchNorm{
			Index:        len(out),
			Name:         n.GetName(),
			NodeIndex:    i,
			Channels:     -1,
			Epsilon:      AttrFloat(n, "epsilon", 1e-5),
			Momentum:     AttrFloat(n, "momentum", 0.9),
			TrainingMode: AttrInt(n, "training_mode", 0) != 0,
			Frozen:       frozen[n.GetName()],
		}
		in := n.GetInput()
		get := func(k int) string {
			if k < len(in) {
				return in[k]
			}
			return ""
		}
		bn.Input = get(0)
		if len(n.GetOutput()) > 0 {
			bn.Output = n.GetOutput()[0]
		}
		bn.Scale = sourceOf(ix, get(1))
		bn.Bias = sourceOf(ix, get(2))
		bn.Mean = sourceOf(ix, get(3))
		bn.Var = sourceOf(ix, get(4))
		for _, s := range []Source{bn.Scale, bn.Bias, bn.Mean, bn.Var} {
			if d, ok := ix.Shape(s.Name); ok && len(d) == 1 && d[0] >= 0 {
				bn.Channels = d[0]
				break
			}
		}
		if bn.Channels < 0 {
			if d, ok := ix.Shape(bn.Input); ok && len(d) >= 2 && d[1] >= 0 {
				bn.Channels = d[1]
			}
		}
		if p := ix.ProducerOf(bn.Input); p != nil {
			bn.Producer = p.GetName()
			bn.ProducerOp = p.GetOpType()
			switch p.GetOpType() {
			case "Conv", "ConvTranspose", "Gemm", "MatMul":
				bn.ProducerKind = p.GetOpType()
			default:
				bn.ProducerKind = "other"
			}
		} else {
			bn.ProducerKind = "input"
		}
		if _, err := planFold(m, ix, i); err != nil {
			bn.FoldNote = err.Error()
		} else {
			bn.Foldable = true
		}
		out = append(out, bn)
	}
	return out
}

func isBN(n *onnxpb.NodeProto) bool {
	d := n.GetDomain()
	return n.GetOpType() == "BatchNormalization" && (d == "" || d == "ai.onnx")
}

func sourceOf(ix *Index, name string) Source {
	switch {
	case name == "":
		return Source{Kind: "missing"}
	case ix.Initializers[name] != nil:
		return Source{Name: name, Kind: "initializer"}
	case ix.Inputs[name] != nil:
		return Source{Name: name, Kind: "input"}
	default:
		return Source{Name: name, Kind: "node"}
	}
}

func frozenSet(m *Model) map[string]bool {
	s := map[string]bool{}
	if v, ok := m.Metadata(MetaFrozenBN); ok {
		var names []string
		if json.Unmarshal([]byte(v), &names) == nil {
			for _, n := range names {
				s[n] = true
			}
		}
	}
	return s
}

// FrozenBatchNorms returns the names of BN nodes a freeze ablation marked.
func FrozenBatchNorms(m *Model) []string {
	s := frozenSet(m)
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SelectBatchNorms picks BN nodes by name or by index ("0", "2", …). An empty
// selection picks all. Unknown names or indices are an error that lists the
// valid ones.
func SelectBatchNorms(bns []BatchNorm, sel []string) ([]BatchNorm, error) {
	if len(sel) == 0 {
		return bns, nil
	}
	out := []BatchNorm{}
	picked := map[int]bool{}
	for _, s := range sel {
		s = strings.TrimSpace(s)
		found := -1
		for _, b := range bns {
			if b.Name == s && s != "" {
				found = b.Index
				break
			}
		}
		if found < 0 {
			if k, err := strconv.Atoi(s); err == nil && k >= 0 && k < len(bns) {
				found = k
			}
		}
		if found < 0 {
			names := make([]string, 0, len(bns))
			for _, b := range bns {
				names = append(names, fmt.Sprintf("%d=%s", b.Index, b.Name))
			}
			return nil, fmt.Errorf("onnxio: no BatchNormalization layer %q (the model has %d: %s)", s, len(bns), strings.Join(names, ", "))
		}
		if !picked[found] {
			picked[found] = true
			out = append(out, bns[found])
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out, nil
}
