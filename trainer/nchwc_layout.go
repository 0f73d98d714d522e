package trainer

import (
	"slices"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// Keeping activations in the blocked layout between convolutions.
//
// After blockedConvs, every convolution reorders its input into the NCHWc
// layout and its output back, and BatchNorm, ReLU and the residual adds in
// between run on the plain layout: four reorders per convolution in a step,
// 8% of the small ResNet's. blockedLayout moves the ops between
// convolutions into the blocked layout instead, so that a reorder is left
// only where the chain meets an op that needs the plain layout (pooling, a
// flatten, a loss). An activation [N, C, H, W] in the blocked layout is a
// tensor of the same shape whose memory is [N, C/B, H, W, B]; elementwise
// ops between such tensors need no change, and ops that involve the channel
// axis run on the 5-D view:
//
//   - elementwise ops whose activation operands all have the output's shape,
//     with scalar operands; Mul, Add and Sub of an activation and a
//     per-channel [1, C, 1, 1] operand (a depthwise 1×1 NCHWc convolution);
//   - ReduceSum and ReduceMean over the axes other than the channel
//     ({0, 2, 3}, giving [C] or [1, C, 1, 1] in the plain order);
//   - BatchNormalization in inference mode (a per-channel affine map: the
//     same depthwise convolution).
//
// A plain operand of such an op is reordered in (once); a tensor needed in
// the plain layout by another op is reordered out (once); nodes whose
// results no longer reach a graph output are dropped. Which elementwise ops
// may move is each op's layout in the op registry (ops.go).

// blockedLayout returns m with the ops between blocked convolutions moved
// into the blocked layout (see above) and how many ops were moved. vals has
// the builder's values (shapes and types); tensors it does not know stay
// plain.
func blockedLayout(m *onnxio.Model, vals map[string]*value, block int64) (*onnxio.Model, int) {
	out := m.Clone()
	g := out.Graph()
	rw := newBlockRewriter(g, block)
	shape := func(x string) []int64 {
		if v := vals[x]; v != nil {
			return v.shape
		}
		return nil
	}
	dtype := func(x string) int32 {
		if v := vals[x]; v != nil {
			return v.dtype
		}
		return 0
	}
	// The reorders take float tensors; others (ReLU's masks) go through a Cast.
	viaFloat := func(x string, t int32, reorder func(string) string) string {
		if t == onnxio.TypeFloat {
			return reorder(x)
		}
		f := rw.node("Cast", "", x+"/f", []string{x}, aInt("to", int64(onnxio.TypeFloat)))
		return rw.node("Cast", "", x+"/t", []string{reorder(f)}, aInt("to", int64(t)))
	}
	consts := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		consts[t.GetName()] = t
	}
	activation := func(x string) bool {
		s := shape(x)
		return len(s) == 4 && s[1]%block == 0
	}
	blk := map[string]string{}   // plain name → its blocked form
	plain := map[string]string{} // plain name → a name holding it in the plain layout, where it has to be recomputed
	reorderedOut := map[string]bool{}
	moved := 0
	// plainOf gives x in the plain layout for an op that needs it.
	plainOf := func(x string) string {
		b, ok := blk[x]
		if !ok || reorderedOut[x] {
			return x
		}
		if p, ok := plain[x]; ok {
			return p
		}
		p := viaFloat(b, dtype(x), func(v string) string {
			return rw.node("ReorderOutput", ort.NCHWcDomain, x+"/plain", []string{v}, aInt("channels", shape(x)[1]))
		})
		plain[x] = p
		return p
	}
	// blockedOf gives an activation x in the blocked layout, reordering it in
	// if it has no blocked form yet.
	blockedOf := func(x string) string {
		if b, ok := blk[x]; ok {
			return b
		}
		b := viaFloat(x, dtype(x), func(v string) string {
			return rw.node("ReorderInput", ort.NCHWcDomain, x+"/nchwc", []string{v})
		})
		blk[x] = b
		return b
	}
	view5 := func(x string, s []int64) string {
		return rw.node("Reshape", "", x+"/5d", []string{x, rw.ints(s[0], s[1]/block, s[2], s[3], block)})
	}

	for _, n := range g.GetNode() {
		op := n.GetOpType()
		switch {
		case n.GetDomain() == ort.NCHWcDomain && op == "ReorderOutput":
			blk[n.GetOutput()[0]] = n.GetInput()[0]
			reorderedOut[n.GetOutput()[0]] = true
			rw.nodes = append(rw.nodes, n)
			continue
		case n.GetDomain() == ort.NCHWcDomain && op == "ReorderInput":
			x := n.GetInput()[0]
			if b, ok := blk[x]; ok {
				rw.alias(n.GetOutput()[0], b)
				continue
			}
			blk[x] = n.GetOutput()[0]
			rw.nodes = append(rw.nodes, n)
			continue
		}
		ins := rw.renamed(n.GetInput())
		if n.GetDomain() != "" || len(n.GetOutput()) != 1 {
			rw.keep(n, ins, plainOf)
			continue
		}
		y := n.GetOutput()[0]
		anyBlocked := false
		for _, x := range ins {
			if _, ok := blk[x]; ok {
				anyBlocked = true
			}
		}
		if !anyBlocked {
			rw.keep(n, ins, plainOf)
			continue
		}
		ys := shape(y)
		switch {
		case opOf(op).layout == layoutUnary && len(ins) == 1 && activation(y):
			b := rw.node(op, "", y+"/blk", []string{blk[ins[0]]}, n.GetAttribute()...)
			blk[y] = b
			moved++
			continue
		case opOf(op).layout == layoutBinary && activation(y):
			kinds, ok := operandKinds(ins, ys, shape)
			if !ok {
				break
			}
			if !slices.Contains(kinds, 'C') {
				args := make([]string, len(ins))
				for i, x := range ins {
					args[i] = x
					if kinds[i] == 'A' {
						args[i] = blockedOf(x)
					}
				}
				blk[y] = rw.node(op, "", y+"/blk", args, n.GetAttribute()...)
				moved++
				continue
			}
			// x·k, x + t, x − t with a per-channel k or t: a depthwise 1×1
			// NCHWc convolution (broadcasting a [1, C/B, 1, 1, B] operand
			// over the 5-D view ran at a third of the speed: BENCHMARKS.md)
			x, v := 0, 1
			if (op == "Mul" || op == "Add") && len(kinds) == 2 && kinds[0] == 'C' {
				x, v = 1, 0
			}
			if len(ins) != 2 || kinds[x] != 'A' || kinds[v] != 'C' || (op != "Mul" && op != "Add" && op != "Sub") {
				break
			}
			c := ys[1]
			vec := rw.node("Reshape", "", y+"/vec", []string{ins[v], rw.ints(c)})
			var k, t string
			switch op {
			case "Mul":
				k = vec
			case "Add":
				t = vec
			case "Sub":
				t = rw.node("Neg", "", y+"/neg", []string{vec})
			}
			blk[y] = rw.channelConv(blockedOf(ins[x]), k, t, c, y)
			moved++
			continue
		case (op == "ReduceSum" || op == "ReduceMean") && activation(ins[0]):
			axes, keep, ok := reduceAxes(n, ins, consts)
			if !ok || !slices.Equal(axes, []int64{0, 2, 3}) {
				break
			}
			// Over the width, the height, then the batch: one reduction over
			// (0, 2, 3) of the 5-D view rounds worse (the logits of the
			// small CNN moved by 1.3e-5 against PyTorch's float64), and so
			// did one over the whole plane on 224×224 planes (vgg11_bn's
			// first BN weight 4.5e-3 from PyTorch's float64, 1.7e-3 plain).
			xs := shape(ins[0])
			v := view5(blk[ins[0]], xs)
			reduce := func(x string, axes ...int64) string {
				if op == "ReduceSum" && len(ins) > 1 {
					return rw.node(op, "", y+"/blk", []string{x, rw.ints(axes...)}, aInt("keepdims", 0))
				}
				return rw.node(op, "", y+"/blk", []string{x}, aInts("axes", axes), aInt("keepdims", 0))
			}
			r := reduce(reduce(reduce(v, 3), 2), 0)
			target := []int64{xs[1]}
			if keep {
				target = []int64{1, xs[1], 1, 1}
			}
			rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(y + "/blk/Reshape"), OpType: "Reshape",
				Input: []string{r, rw.ints(target...)}, Output: []string{y}})
			moved++
			continue
		case op == "BatchNormalization" && len(ins) == 5 && activation(y) && !trainingMode(n):
			// y = (x − mean)·scale/√(var + ε) + bias, per channel
			c := ys[1]
			eps := float32(1e-5)
			for _, a := range n.GetAttribute() {
				if a.GetName() == "epsilon" {
					eps = a.GetF()
				}
			}
			epsName := rw.fresh("nchwc/eps")
			g.Initializer = append(g.Initializer, onnxio.FloatTensor(epsName, []int64{}, []float32{eps}))
			k := rw.node("Div", "", y+"/k", []string{ins[1], rw.node("Sqrt", "", y+"/sd", []string{rw.node("Add", "", y+"/ve", []string{ins[4], epsName})})})
			t := rw.node("Sub", "", y+"/t", []string{ins[2], rw.node("Mul", "", y+"/mk", []string{ins[3], k})})
			blk[y] = rw.channelConv(blockedOf(ins[0]), k, t, c, y)
			moved++
			continue
		}
		rw.keep(n, ins, plainOf)
	}
	if moved == 0 {
		return m, 0
	}
	// graph outputs computed in the blocked layout only
	for _, o := range g.GetOutput() {
		name := o.GetName()
		if _, ok := blk[name]; !ok || reorderedOut[name] {
			continue
		}
		rw.nodes = append(rw.nodes, &onnxpb.NodeProto{Name: rw.fresh(name + "/Identity"), OpType: "Identity", Input: []string{plainOf(name)}, Output: []string{name}})
	}
	g.Node = liveNodes(rw.nodes, g.GetOutput())
	return out, moved
}

// operandKinds classifies an elementwise op's operands against its output
// shape ys: 'A' an activation of that shape (blocked, or plain to be
// reordered in), 'C' per-channel [1, C, 1, 1], 'S' a scalar or all-ones
// shape. Anything else (broadcasting over the batch or space, an unknown
// shape) makes the op stay plain.
func operandKinds(ins []string, ys []int64, shape func(string) []int64) ([]byte, bool) {
	kinds := make([]byte, len(ins))
	for i, x := range ins {
		s := shape(x)
		switch {
		case x == "":
			return nil, false
		case slices.Equal(s, ys):
			kinds[i] = 'A'
		case s != nil && numel(s) == 1 && len(s) <= 4:
			kinds[i] = 'S'
		case len(s) == 4 && s[0] == 1 && s[1] == ys[1] && s[2] == 1 && s[3] == 1:
			kinds[i] = 'C'
		default:
			return nil, false
		}
	}
	return kinds, true
}

// reduceAxes reads a reduction's axes (attribute, or constant second input)
// and keepdims.
func reduceAxes(n *onnxpb.NodeProto, ins []string, consts map[string]*onnxpb.TensorProto) (axes []int64, keep, ok bool) {
	keep = true
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "keepdims":
			keep = a.GetI() != 0
		case "axes":
			axes = a.GetInts()
		case "noop_with_empty_axes":
			if a.GetI() != 0 {
				return nil, false, false
			}
		}
	}
	if len(ins) > 1 && ins[1] != "" {
		t, isConst := consts[ins[1]]
		if !isConst {
			return nil, false, false
		}
		v, err := (&onnxio.Model{}).Int64s(t)
		if err != nil {
			return nil, false, false
		}
		axes = v
	}
	axes = slices.Clone(axes)
	for i, a := range axes {
		if a < 0 {
			axes[i] = a + 4
		}
	}
	slices.Sort(axes)
	return axes, keep, len(axes) > 0
}

func trainingMode(n *onnxpb.NodeProto) bool {
	for _, a := range n.GetAttribute() {
		if a.GetName() == "training_mode" && a.GetI() != 0 {
			return true
		}
	}
	return len(n.GetOutput()) > 1
}

// liveNodes keeps, in order, the nodes whose outputs reach a graph output.
func liveNodes(nodes []*onnxpb.NodeProto, outputs []*onnxpb.ValueInfoProto) []*onnxpb.NodeProto {
	need := map[string]bool{}
	for _, o := range outputs {
		need[o.GetName()] = true
	}
	live := make([]bool, len(nodes))
	for i := len(nodes) - 1; i >= 0; i-- {
		for _, o := range nodes[i].GetOutput() {
			if need[o] {
				live[i] = true
			}
		}
		if live[i] {
			for _, in := range nodes[i].GetInput() {
				need[in] = true
			}
		}
	}
	var out []*onnxpb.NodeProto
	for i, n := range nodes {
		if live[i] {
			out = append(out, n)
		}
	}
	return out
}

// channelConv computes x·k + t per channel on a blocked activation x ([C]
// vectors k and t; "" for 1 and 0) as a depthwise 1×1 NCHWc convolution,
// whose filter layout for one tap is the plain channel order.
func (rw *blockRewriter) channelConv(x, k, t string, c int64, hint string) string {
	if k == "" {
		name := rw.fresh("nchwc/ones")
		rw.g.Initializer = append(rw.g.Initializer, onnxio.FloatTensor(name, []int64{c, 1, 1, 1}, onesF(int(c))))
		k = name
	} else {
		k = rw.node("Reshape", "", hint+"/w", []string{k, rw.ints(c, 1, 1, 1)})
	}
	ins := []string{x, k}
	if t != "" {
		ins = append(ins, t)
	}
	return rw.node("Conv", ort.NCHWcDomain, hint+"/blk", ins, aInts("kernel_shape", []int64{1, 1}), aInt("group", c))
}
