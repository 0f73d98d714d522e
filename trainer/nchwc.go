package trainer

import (
	"fmt"
	"os"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// Blocked-layout convolutions on the CPU.
//
// ONNX Runtime's fastest CPU convolution is MLAS's "NCHWc" kernel, which
// keeps channels in blocks of B (16 with AVX-512, 8 with AVX2) as the
// innermost dimension. ORT's optimizer switches a Conv to it only when the
// weights are constant initializers, and in a step graph they are inputs,
// so every convolution of the step — forward and input gradient — ran on
// the slower im2col path (BENCHMARKS.md: 4.6 against 2.4 ms for a 16→16
// 3×3 convolution of the small ResNet at batch 128). blockedConvs writes the
// blocked form itself: the input is reordered (ReorderInput), the weights
// are rearranged from [O, I, kh, kw] to ORT's OIHWBiBo order by a Reshape
// and a Transpose inside the graph (so they can change every step), and the
// result is reordered back (ReorderOutput).
//
// The rewrite is applied only to the session bnaudit runs on the CPU; the
// graphs it builds and exports (bnaudit train export) keep standard ONNX
// operators. BNAUDIT_NCHWC=0 turns it off.

// convShape is what the rewrite needs to know of a Conv node's operands.
type convShape struct{ x, w []int64 }

// convShapes records the operand shapes of every Conv the builder emitted,
// by the node's output name.
func convShapes(b *builder) map[string]convShape {
	out := map[string]convShape{}
	for _, n := range b.nodes {
		if n.GetOpType() != "Conv" || n.GetDomain() != "" || len(n.GetInput()) < 2 || len(n.GetOutput()) != 1 {
			continue
		}
		out[n.GetOutput()[0]] = convShape{x: b.shape(n.GetInput()[0]), w: b.shape(n.GetInput()[1])}
	}
	return out
}

// blockedEligible reports whether a Conv can run as an NCHWc convolution
// with block size block: 2-D, one group, explicit padding, and input and
// output channels multiples of the block (so no channel padding is needed).
func blockedEligible(n *onnxpb.NodeProto, s convShape, block int64) bool {
	if len(s.x) != 4 || len(s.w) != 4 || s.x[1] != s.w[1] {
		return false
	}
	if s.w[0]%block != 0 || s.w[1]%block != 0 {
		return false
	}
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "group":
			if a.GetI() != 1 {
				return false
			}
		case "auto_pad":
			if p := string(a.GetS()); p != "" && p != "NOTSET" {
				return false
			}
		}
	}
	return true
}

// blockedConvs returns a copy of m in which every eligible Conv (see
// blockedEligible) runs in ORT's NCHWc layout with block size block, and how
// many were rewritten. Reorders of one input or one weight are shared.
func blockedConvs(m *onnxio.Model, shapes map[string]convShape, block int64) (*onnxio.Model, int) {
	out := m.Clone()
	g := out.Graph()
	used := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, v := range append(append([]string{}, n.GetInput()...), n.GetOutput()...) {
			used[v] = true
		}
	}
	for _, t := range g.GetInitializer() {
		used[t.GetName()] = true
	}
	for _, v := range g.GetInput() {
		used[v.GetName()] = true
	}
	fresh := func(base string) string {
		name := base
		for k := 1; used[name]; k++ {
			name = fmt.Sprintf("%s_%d", base, k)
		}
		used[name] = true
		return name
	}
	shapeConst := func(dims ...int64) string {
		name := fresh("nchwc/shape")
		g.Initializer = append(g.Initializer, onnxio.Int64Tensor(name, []int64{int64(len(dims))}, dims))
		return name
	}
	reorderedX := map[string]string{}
	reorderedW := map[string]string{}
	var nodes []*onnxpb.NodeProto
	count := 0
	for _, n := range g.GetNode() {
		s, ok := shapes[firstOutput(n)]
		if !ok || n.GetOpType() != "Conv" || n.GetDomain() != "" || !blockedEligible(n, s, block) {
			nodes = append(nodes, n)
			continue
		}
		count++
		base := n.GetName()
		if base == "" {
			base = firstOutput(n)
		}
		x, w := n.GetInput()[0], n.GetInput()[1]
		xr, ok := reorderedX[x]
		if !ok {
			xr = fresh(x + "/nchwc")
			nodes = append(nodes, &onnxpb.NodeProto{Name: fresh(base + "/nchwc/ReorderInput"), OpType: "ReorderInput", Domain: ort.NCHWcDomain,
				Input: []string{x}, Output: []string{xr}})
			reorderedX[x] = xr
		}
		wr, ok := reorderedW[w]
		if !ok {
			o, i, kh, kw := s.w[0], s.w[1], s.w[2], s.w[3]
			w6, wt := fresh(w+"/nchwc/6d"), fresh(w+"/nchwc/t")
			wr = fresh(w + "/nchwc")
			nodes = append(nodes,
				&onnxpb.NodeProto{Name: fresh(base + "/nchwc/w6"), OpType: "Reshape", Input: []string{w, shapeConst(o/block, block, i/block, block, kh, kw)}, Output: []string{w6}},
				// [O/B, Bo, I/B, Bi, kh, kw] → [O/B, I/B, kh, kw, Bi, Bo]
				&onnxpb.NodeProto{Name: fresh(base + "/nchwc/wt"), OpType: "Transpose", Input: []string{w6}, Output: []string{wt}, Attribute: []*onnxpb.AttributeProto{aInts("perm", []int64{0, 2, 4, 5, 3, 1})}},
				&onnxpb.NodeProto{Name: fresh(base + "/nchwc/w4"), OpType: "Reshape", Input: []string{wt, shapeConst(o, i, kh, kw)}, Output: []string{wr}})
			reorderedW[w] = wr
		}
		ins := []string{xr, wr}
		if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
			ins = append(ins, n.GetInput()[2])
		}
		attrs := []*onnxpb.AttributeProto{}
		hasKernel := false
		for _, a := range n.GetAttribute() {
			if a.GetName() == "kernel_shape" {
				hasKernel = true
			}
			attrs = append(attrs, a)
		}
		if !hasKernel {
			attrs = append(attrs, aInts("kernel_shape", s.w[2:]))
		}
		yr := fresh(firstOutput(n) + "/nchwc")
		nodes = append(nodes,
			&onnxpb.NodeProto{Name: fresh(base + "/nchwc/Conv"), OpType: "Conv", Domain: ort.NCHWcDomain, Input: ins, Output: []string{yr}, Attribute: attrs},
			&onnxpb.NodeProto{Name: fresh(base + "/nchwc/ReorderOutput"), OpType: "ReorderOutput", Domain: ort.NCHWcDomain,
				Input: []string{yr}, Output: []string{firstOutput(n)}, Attribute: []*onnxpb.AttributeProto{aInt("channels", s.w[0])}})
	}
	if count == 0 {
		return m, 0
	}
	g.Node = nodes
	out.Proto.OpsetImport = append(out.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: ort.NCHWcDomain, Version: 1})
	return out, count
}

func firstOutput(n *onnxpb.NodeProto) string {
	if len(n.GetOutput()) == 0 {
		return ""
	}
	return n.GetOutput()[0]
}

// nchwcDisabled reports whether BNAUDIT_NCHWC turns the rewrite off.
func nchwcDisabled() bool {
	v := strings.TrimSpace(os.Getenv("BNAUDIT_NCHWC"))
	return v == "0" || strings.EqualFold(v, "off") || strings.EqualFold(v, "false")
}

// sessionModel is the model a session of g runs with opts: g's own, or on
// the CPU its blocked-convolution form when ORT has NCHWc kernels.
func sessionModel(g *Graph, opts ort.SessionOptions) *onnxio.Model {
	if d := strings.ToLower(opts.Device); (d != "" && d != "cpu") || len(g.convs) == 0 || nchwcDisabled() {
		return g.Model
	}
	block := ort.NCHWcBlock()
	if block < 2 {
		return g.Model
	}
	m, _ := blockedConvs(g.Model, g.convs, int64(block))
	return m
}
