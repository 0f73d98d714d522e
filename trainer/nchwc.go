package trainer

import (
	"fmt"
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
// operators. blockedLayout (nchwc_layout.go) then keeps the activations
// between convolutions in the blocked layout. The session options choose
// (ort.SessionOptions.NCHWc): ort.NCHWcOff turns both off, ort.NCHWcConv
// the second.

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

// convGrad is a convolution gradient as gradConv emitted it: the output
// gradient, the result, the convolution's shapes (input, weight, output)
// and attributes, and the outputs of the nodes that compute it (which a
// rewrite replaces).
type convGrad struct {
	dy, out    string
	xs, ws, ys []int64
	w          spatial
	group      int64
	nodes      map[string]bool
}

// dwRecord is a weight gradient (convWeightGrad) and its input operand.
type dwRecord struct {
	convGrad
	x string
}

// dwBlockedEligible reports whether a weight gradient can be computed from
// blocked operands: one group, no dilation, channel counts multiples of the
// block, and a per-sample product [N, O, C, k] no larger than twice the
// input (it is summed over the batch; for wide layers on small planes the
// plain product over the whole batch is leaner).
func dwBlockedEligible(r dwRecord, block int64) bool {
	if r.group != 1 || len(r.xs) != 4 || len(r.ws) != 4 || len(r.ys) != 4 {
		return false
	}
	for _, d := range r.w.dilations {
		if d != 1 {
			return false
		}
	}
	o, c, k := r.ws[0], r.ws[1], r.ws[2]*r.ws[3]
	if o%block != 0 || c%block != 0 {
		return false
	}
	return o*k <= 2*r.xs[2]*r.xs[3]
}

// blockedConvs returns a copy of m in which every eligible Conv (see
// blockedEligible) runs in ORT's NCHWc layout with block size block, every
// eligible weight gradient (dwBlockedEligible) is computed from the blocked
// tensors, and how many of each were rewritten. A tensor reordered for
// several consumers is reordered once.
func blockedConvs(m *onnxio.Model, shapes map[string]convShape, dws []dwRecord, block int64) (*onnxio.Model, int, int) {
	return blockedConvsWith(m, shapes, dws, nil, nil, block, false, 0)
}

// blockedConvsWith is blockedConvs that, with dnnl, computes the weight
// gradients oneDNN can take (dwDNNLEligible) with one
// bnaudit.dnnl::ConvWeightGradBlocked node each (trainer/dnnl) instead, and
// the input gradients of dxs it can take (dxDNNLEligible) with one
// bnaudit.dnnl::ConvDataGradBlocked node each, and BatchNorm's backward
// passes of bns (bnDNNLEligible) with one bnaudit.dnnl::BatchNormGradBlocked
// node each.
func blockedConvsWith(m *onnxio.Model, shapes map[string]convShape, dws []dwRecord, dxs []dxRecord, bns []bnRecord, block int64, dnnl bool, threads int) (*onnxio.Model, int, int) {
	out := m.Clone()
	g := out.Graph()
	rw := newBlockRewriter(g, block)
	rw.dnnl, rw.dnnlThreads = dnnl, threads
	// weight gradients to replace, by the name of their result; every node
	// they emitted, by output
	gradAt := map[string]dwRecord{}
	dataAt := map[string]dxRecord{}
	bnAt := map[string]bnRecord{}
	drop := map[string]bool{}
	if out.Opset("") >= 13 && dnnl && dnnlBN() {
		for _, r := range bns {
			if bnDNNLEligible(r, block) {
				bnAt[r.first] = r
				for o := range r.nodes {
					drop[o] = true
				}
			}
		}
	}
	if out.Opset("") >= 13 && dnnl {
		for _, r := range dxs {
			if dxDNNLEligible(r, block) {
				dataAt[r.out] = r
				for o := range r.nodes {
					drop[o] = true
				}
			}
		}
	}
	if out.Opset("") >= 13 {
		for _, r := range dws {
			if dwBlockedEligible(r, block) || dnnl && dwDNNLEligible(r, block) {
				gradAt[r.out] = r
				for o := range r.nodes {
					drop[o] = true
				}
			}
		}
	}
	convs, grads := 0, 0
	for _, n := range g.GetNode() {
		if r, ok := gradAt[firstOutput(n)]; ok {
			rw.weightGrad(r)
			grads++
			continue
		}
		if r, ok := dataAt[firstOutput(n)]; ok {
			rw.dnnlDataGrad(r)
			convs++
			continue
		}
		if r, ok := bnAt[firstOutput(n)]; ok {
			rw.dnnlBNGrad(r)
			grads++
			continue
		}
		if drop[firstOutput(n)] {
			continue
		}
		s, ok := shapes[firstOutput(n)]
		if !ok || n.GetOpType() != "Conv" || n.GetDomain() != "" || !blockedEligible(n, s, block) {
			rw.nodes = append(rw.nodes, n)
			continue
		}
		rw.conv(n, s)
		convs++
	}
	if convs+grads == 0 {
		return m, 0, 0
	}
	g.Node = rw.nodes
	out.Proto.OpsetImport = append(out.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: ort.NCHWcDomain, Version: 1})
	if rw.dnnlNodes > 0 {
		out.Proto.OpsetImport = append(out.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: dnnlDomain, Version: 1})
	}
	return out, convs, grads
}

type blockRewriter struct {
	g           *onnxpb.GraphProto
	block       int64
	nodes       []*onnxpb.NodeProto
	used        map[string]bool
	reordered   map[string]string // tensor → its blocked form
	weights     map[string]string // weight → its OIHWBiBo form
	ren         map[string]string // a dropped node's output → what replaces it
	dnnl        bool              // weight gradients by oneDNN (dnnlWeightGrad)
	dnnlNodes   int               // how many it emitted
	dnnlThreads int               // their OpenMP threads (0: the default)
}

// newBlockRewriter starts a rewrite of g, with every name g uses taken.
func newBlockRewriter(g *onnxpb.GraphProto, block int64) *blockRewriter {
	rw := &blockRewriter{g: g, block: block, used: map[string]bool{}, reordered: map[string]string{}, weights: map[string]string{}, ren: map[string]string{}}
	for _, n := range g.GetNode() {
		for _, v := range append(append([]string{}, n.GetInput()...), n.GetOutput()...) {
			rw.used[v] = true
		}
	}
	for _, t := range g.GetInitializer() {
		rw.used[t.GetName()] = true
	}
	for _, v := range g.GetInput() {
		rw.used[v.GetName()] = true
	}
	return rw
}

// alias makes later uses of name read target instead.
func (rw *blockRewriter) alias(name, target string) { rw.ren[name] = target }

func (rw *blockRewriter) renamed(ins []string) []string {
	out := make([]string, len(ins))
	for i, x := range ins {
		if r, ok := rw.ren[x]; ok {
			x = r
		}
		out[i] = x
	}
	return out
}

// keep appends n with its inputs renamed and mapped through plainOf.
func (rw *blockRewriter) keep(n *onnxpb.NodeProto, ins []string, plainOf func(string) string) {
	c := &onnxpb.NodeProto{Name: n.GetName(), OpType: n.GetOpType(), Domain: n.GetDomain(), Output: n.GetOutput(), Attribute: n.GetAttribute(), DocString: n.GetDocString()}
	for _, x := range ins {
		if x != "" {
			x = plainOf(x)
		}
		c.Input = append(c.Input, x)
	}
	rw.nodes = append(rw.nodes, c)
}

func (rw *blockRewriter) fresh(base string) string {
	name := base
	for k := 1; rw.used[name]; k++ {
		name = fmt.Sprintf("%s_%d", base, k)
	}
	rw.used[name] = true
	return name
}

func (rw *blockRewriter) ints(dims ...int64) string {
	name := rw.fresh("nchwc/ints")
	rw.g.Initializer = append(rw.g.Initializer, onnxio.Int64Tensor(name, []int64{int64(len(dims))}, dims))
	return name
}

// node appends a node and returns its (fresh) output.
func (rw *blockRewriter) node(op, domain, hint string, ins []string, attrs ...*onnxpb.AttributeProto) string {
	y := rw.fresh(hint)
	rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(hint + "/" + op), OpType: op, Domain: domain, Input: ins, Output: []string{y}, Attribute: attrs})
	return y
}

// blocked returns x in the NCHWc layout, reordering it at its first use.
func (rw *blockRewriter) blocked(x string) string {
	if xr, ok := rw.reordered[x]; ok {
		return xr
	}
	xr := rw.node("ReorderInput", ort.NCHWcDomain, x+"/nchwc", []string{x})
	rw.reordered[x] = xr
	return xr
}

func (rw *blockRewriter) conv(n *onnxpb.NodeProto, s convShape) {
	b := rw.block
	w := n.GetInput()[1]
	wr, ok := rw.weights[w]
	if !ok {
		o, i, kh, kw := s.w[0], s.w[1], s.w[2], s.w[3]
		w6 := rw.node("Reshape", "", w+"/nchwc/6d", []string{w, rw.ints(o/b, b, i/b, b, kh, kw)})
		// [O/B, Bo, I/B, Bi, kh, kw] → [O/B, I/B, kh, kw, Bi, Bo]
		wt := rw.node("Transpose", "", w+"/nchwc/t", []string{w6}, aInts("perm", []int64{0, 2, 4, 5, 3, 1}))
		wr = rw.node("Reshape", "", w+"/nchwc", []string{wt, rw.ints(o, i, kh, kw)})
		rw.weights[w] = wr
	}
	ins := []string{rw.blocked(n.GetInput()[0]), wr}
	if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		ins = append(ins, n.GetInput()[2])
	}
	attrs := []*onnxpb.AttributeProto{}
	hasKernel := false
	for _, a := range n.GetAttribute() {
		hasKernel = hasKernel || a.GetName() == "kernel_shape"
		attrs = append(attrs, a)
	}
	if !hasKernel {
		attrs = append(attrs, aInts("kernel_shape", s.w[2:]))
	}
	yr := rw.node("Conv", ort.NCHWcDomain, firstOutput(n)+"/nchwc", ins, attrs...)
	rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(firstOutput(n) + "/nchwc/ReorderOutput"), OpType: "ReorderOutput", Domain: ort.NCHWcDomain,
		Input: []string{yr}, Output: []string{firstOutput(n)}, Attribute: []*onnxpb.AttributeProto{aInt("channels", s.w[0])}})
}

// weightGrad computes dW[o, c, i, j] = Σ_{n,h,w} dY[n, o, h, w]·X[n, c, h·s+i−p, w·s+j−p]
// from the blocked input and output gradient, viewed as [N, C/B, H, W, B]:
// per kernel offset, a window of the padded input [N, 1, C/B, Ho·Wo, B] is
// multiplied by dY transposed to [N, O/B, 1, B, Ho·Wo] (batched over the
// samples and the channel blocks, broadcast), the products are summed over
// the samples, and the blocks put back in [O, C, kh, kw] order. Each window
// is one Gather on the flattened padded plane (items of B contiguous values;
// ORT runs Gather on all threads, Slice on one), and dY is transposed once
// per layer (ORT folds the transpose into the products). One Gather of all
// k windows feeding one wider product per sample was slower and took 40%
// more memory (BENCHMARKS.md).
func (rw *blockRewriter) weightGrad(r dwRecord) {
	if rw.dnnl && dwDNNLEligible(r, rw.block) {
		rw.dnnlWeightGrad(r)
		return
	}
	b := rw.block
	n, c, h, w := r.xs[0], r.xs[1], r.xs[2], r.xs[3]
	o, kh, kw := r.ws[0], r.ws[2], r.ws[3]
	ho, wo := r.ys[2], r.ys[3]
	cb, ob := c/b, o/b
	hint := r.out + "/nchwc"
	x5 := rw.node("Reshape", "", hint+"/x5", []string{rw.blocked(r.x), rw.ints(n, cb, h, w, b)})
	p := r.w.pads
	if p[0] != 0 || p[1] != 0 || p[2] != 0 || p[3] != 0 {
		x5 = rw.node("Pad", "", hint+"/xpad", []string{x5, rw.ints(0, 0, p[0], p[1], 0, 0, 0, p[2], p[3], 0)})
	}
	hp, wp := h+p[0]+p[2], w+p[1]+p[3]
	flat := rw.node("Reshape", "", hint+"/xflat", []string{x5, rw.ints(n, cb, hp*wp, b)})
	d := rw.node("Reshape", "", hint+"/dy5", []string{rw.blocked(r.dy), rw.ints(n, ob, 1, ho*wo, b)})
	d = rw.node("Transpose", "", hint+"/dyT", []string{d}, aInts("perm", []int64{0, 1, 2, 4, 3}))
	st := r.w.strides
	var parts []string
	for i := int64(0); i < kh; i++ {
		for j := int64(0); j < kw; j++ {
			idx := make([]int64, 0, ho*wo)
			for a := int64(0); a < ho; a++ {
				for c := int64(0); c < wo; c++ {
					idx = append(idx, (i+st[0]*a)*wp+j+st[1]*c)
				}
			}
			win := rw.node("Gather", "", hint+"/win", []string{flat, rw.ints(idx...)}, aInt("axis", 2))
			win = rw.node("Reshape", "", hint+"/win5", []string{win, rw.ints(n, 1, cb, ho*wo, b)})
			prod := rw.node("MatMul", "", hint+"/prod", []string{d, win}) // [N, O/B, C/B, Bo, Bc]
			parts = append(parts, rw.node("Unsqueeze", "", hint+"/prod6", []string{prod, rw.ints(5)}))
		}
	}
	all := parts[0]
	if len(parts) > 1 {
		all = rw.node("Concat", "", hint+"/cat", parts, aInt("axis", 5)) // [N, O/B, C/B, Bo, Bc, k]
	}
	sum := rw.node("ReduceSum", "", hint+"/sum", []string{all, rw.ints(0)}, aInt("keepdims", 0))
	t := rw.node("Transpose", "", hint+"/oc", []string{sum}, aInts("perm", []int64{0, 2, 1, 3, 4})) // [O/B, Bo, C/B, Bc, k]
	rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(hint + "/Reshape"), OpType: "Reshape",
		Input: []string{t, rw.ints(r.ws...)}, Output: []string{r.out}})
}

func firstOutput(n *onnxpb.NodeProto) string {
	if len(n.GetOutput()) == 0 {
		return ""
	}
	return n.GetOutput()[0]
}

// SessionModel is the model bnaudit's own sessions run for g with opts:
// g.Model, or on the CPU, where ORT has NCHWc kernels, its blocked-layout
// form as opts.NCHWc chooses (ort.NCHWcAll: convolutions, weight gradients
// and the activations between them; ort.NCHWcConv: the convolutions and
// weight gradients only; ort.NCHWcOff: none; see above). Profilers and
// benchmarks that want to see what the trainer runs should load this. Should
// ONNX Runtime refuse the blocked form, the trainer runs g.Model and reports
// it (Result.Fallbacks, Outputs.Fallbacks).
func SessionModel(g *Graph, opts ort.SessionOptions) *onnxio.Model { return sessionModel(g, opts) }

func sessionModel(g *Graph, opts ort.SessionOptions) *onnxio.Model {
	m, _ := sessionSetup(g, opts)
	return m
}

// sessionModelWith is sessionModel with the oneDNN backward kernels
// (nchwc_dnnl.go) on or off.
func sessionModelWith(g *Graph, opts ort.SessionOptions, dnnl bool) *onnxio.Model {
	mode := opts.NCHWc
	if d := strings.ToLower(opts.Device); (d != "" && d != "cpu") || len(g.convs) == 0 || mode == ort.NCHWcOff {
		return g.Model
	}
	block := ort.NCHWcBlock()
	if block < 2 {
		return g.Model
	}
	m, _, _ := blockedConvsWith(g.Model, g.convs, g.dws, g.dxs, g.bns, int64(block), dnnl, dnnlThreads)
	if m != g.Model && mode == ort.NCHWcAll {
		m, _ = blockedLayout(m, g.vals, int64(block))
	}
	return m
}
