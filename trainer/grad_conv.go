package trainer

import "math"

// Gradient rules of Conv (and the pooling ops, which share its windows).
//
// Conv, 2-D, weights [Cout, Cin/G, kh, kw]:
//   - dX = ConvTranspose(dY, W) with the same strides, pads, dilations and
//     groups, and output_padding that restores the input size (docs/FACTS.md:
//     W's layout needs no flip).
//   - dW by im2col: the k·k strided slices of the padded input are stacked
//     into columns [G, Cin/G·k·k, N·Ho·Wo] and multiplied with dY viewed as
//     [G, Cout/G, N·Ho·Wo]. docs/FACTS.md measured this form at 18 ms against 46
//     ms for the Conv form on SmallCNN's conv2 (batch 128, 2 threads).
//   - dB = ΣdY over batch and space.

func init() {
	register("Conv", gradConv)
}

func gradConv(c *gradCtx, dy []string) []string {
	b := c.b
	xs, ws := c.xShape(0), c.xShape(1)
	if len(xs) != 4 {
		failf("Conv %q on a %d-D input: bnaudit differentiates 2-D convolutions", c.e.node.GetName(), len(xs))
	}
	ctx := &inferCtx{node: c.e.node, opset: b.opset}
	kernel := c.attrInts("kernel_shape")
	if kernel == nil {
		kernel = ws[2:]
	}
	w, err := ctx.window(xs[2:], kernel)
	if err != nil {
		failf("Conv %q: %v", c.e.node.GetName(), err)
	}
	checkTaps(c.e.node.GetName(), ws)
	g := c.attrInt("group", 1)
	ys := c.yShape(0)
	out := make([]string, len(c.e.inputs))
	if c.want(0) {
		if x := convInputGradStride1(b, dy[0], c.x(1), ws, w, g); x != "" {
			out[0] = x
		} else {
			outPad := make([]int64, 2)
			for i := 0; i < 2; i++ {
				full := w.strides[i]*(ys[i+2]-1) + (kernel[i]-1)*w.dilations[i] + 1 - w.pads[i] - w.pads[i+2]
				outPad[i] = xs[i+2] - full
			}
			attrs := []*attrT{aInts("strides", w.strides), aInts("pads", w.pads), aInts("dilations", w.dilations), aInt("group", g)}
			if outPad[0] != 0 || outPad[1] != 0 {
				if outPad[0] < 0 || outPad[1] < 0 || outPad[0] >= max(w.strides[0], w.dilations[0]) || outPad[1] >= max(w.strides[1], w.dilations[1]) {
					failf("Conv %q: cannot restore input size %v from output %v", c.e.node.GetName(), xs, ys)
				}
				attrs = append(attrs, aInts("output_padding", outPad))
			}
			out[0] = b.op("ConvTranspose", []string{dy[0], c.x(1)}, attrs...)
		}
	}
	if c.want(1) {
		out[1] = convWeightGrad(b, c.x(0), dy[0], xs, ws, w, g)
	}
	if c.hasX(2) && c.want(2) {
		out[2] = b.reduceSum(dy[0], []int64{0, 2, 3}, false)
	}
	return out
}

// convInputGradStride1 writes the input gradient of a stride-1 convolution
// as a convolution of dY with the kernel flipped in space and transposed in
// channels, padded by d·(k−1) − p: measured 7.1 ms against 16.6 ms for
// ConvTranspose (BENCHMARKS.md). It returns "" where that form does not
// apply (strides above 1, or pads larger than the dilated kernel).
func convInputGradStride1(b *builder, dy, wname string, ws []int64, w spatial, g int64) string {
	pads := make([]int64, 4)
	for i := 0; i < 2; i++ {
		if w.strides[i] != 1 {
			return ""
		}
		span := w.dilations[i] * (ws[i+2] - 1)
		pads[i], pads[i+2] = span-w.pads[i], span-w.pads[i+2]
		if pads[i] < 0 || pads[i+2] < 0 {
			return ""
		}
	}
	cout, cig, kh, kw := ws[0], ws[1], ws[2], ws[3]
	cog := cout / g
	wt := b.reshape(wname, []int64{g, cog, cig, kh, kw})
	wt = b.op("Transpose", []string{wt}, aInts("perm", []int64{0, 2, 1, 3, 4}))
	wt = b.reshape(wt, []int64{g * cig, cog, kh, kw})
	wt = b.op("Slice", []string{wt, b.constI64([]int64{-1, -1}, false), b.constI64([]int64{math.MinInt64, math.MinInt64}, false),
		b.constI64([]int64{2, 3}, false), b.constI64([]int64{-1, -1}, false)})
	return b.op("Conv", []string{dy, wt}, aInts("pads", pads), aInts("dilations", w.dilations), aInt("group", g))
}

// convWeightGrad computes dW as a sum over kernel offsets: for offset
// (i, j), dW[:, :, i, j] = dY · X_ijᵀ, where X_ij is the input window at
// that offset, seen channel-major as [Cin, N·Ho·Wo]. Transposing X once
// (and dY once) keeps the k·k-times larger im2col columns from ever being
// materialized or transposed; the measured costs are in BENCHMARKS.md.
func convWeightGrad(b *builder, x, dy string, xs, ws []int64, w spatial, g int64) string {
	start := len(b.nodes)
	out := convWeightGradPlain(b, x, dy, xs, ws, w, g)
	rec := dwRecord{x: x, dy: dy, out: out, xs: xs, ws: ws, ys: b.shape(dy), w: w, group: g, nodes: map[string]bool{}}
	for _, n := range b.nodes[start:] {
		for _, o := range n.GetOutput() {
			rec.nodes[o] = true
		}
	}
	b.dws = append(b.dws, rec)
	return out
}

func convWeightGradPlain(b *builder, x, dy string, xs, ws []int64, w spatial, g int64) string {
	if g == 1 && xs[1] == 1 {
		return convWeightGradOneChannel(b, x, dy, xs, ws, w)
	}
	n, cin := xs[0], xs[1]
	cout, kh, kw := ws[0], ws[2], ws[3]
	ys := b.shape(dy)
	ho, wo := ys[2], ys[3]
	cig, cog := cin/g, cout/g
	m := n * ho * wo
	xt := b.op("Transpose", []string{x}, aInts("perm", []int64{1, 0, 2, 3})) // [Cin, N, H, W]
	xp := b.pad(xt, []int64{0, 0, w.pads[0], w.pads[1], 0, 0, w.pads[2], w.pads[3]})
	dt := b.op("Transpose", []string{dy}, aInts("perm", []int64{1, 0, 2, 3})) // [Cout, N, Ho, Wo]
	var d string
	if g == 1 {
		d = b.reshape(dt, []int64{cout, m})
	} else {
		// [G, Cog, M] → [G, M, Cog], shared by every offset
		d = transposeLast(b, b.reshape(dt, []int64{g, cog, m}))
	}
	var parts []string
	for i := int64(0); i < kh; i++ {
		for j := int64(0); j < kw; j++ {
			win := convWindow(b, xp, i, j, w, ho, wo)
			var p string
			if g == 1 {
				p = b.op("Gemm", []string{d, b.reshape(win, []int64{cin, m})}, aInt("transB", 1)) // [Cout, Cin]
			} else {
				p = b.op("MatMul", []string{b.reshape(win, []int64{g, cig, m}), d}) // [G, Cig, Cog]
			}
			parts = append(parts, b.unsqueeze(p, []int64{int64(len(b.shape(p)))}))
		}
	}
	dw := parts[0]
	if len(parts) > 1 {
		dw = b.op("Concat", parts, aInt("axis", -1))
	}
	if g == 1 {
		return b.reshape(dw, ws) // [Cout, Cin, k] → [Cout, Cin, kh, kw]
	}
	dw = b.op("Transpose", []string{dw}, aInts("perm", []int64{0, 2, 1, 3})) // [G, Cog, Cig, k]
	return b.reshape(dw, ws)
}

// convWeightGradOneChannel is the weight gradient of a convolution with one
// input channel (a first layer on grayscale images). There the per-offset
// products over the channel-major views have a single column and K = N·H·W,
// which MLAS runs on one thread (4 ms for 9 offsets of the fixtures' conv1
// at batch 128, BENCHMARKS.md). Instead the k·k windows, each [N, Ho·Wo, 1],
// are stacked into [N, Ho·Wo, k·k] (the data is one channel: cheap), and
// one product batched over the samples gives [N, Cout, k·k], summed over
// the samples.
func convWeightGradOneChannel(b *builder, x, dy string, xs, ws []int64, w spatial) string {
	n := xs[0]
	cout, kh, kw := ws[0], ws[2], ws[3]
	ys := b.shape(dy)
	ho, wo := ys[2], ys[3]
	xp := b.pad(x, []int64{0, 0, w.pads[0], w.pads[1], 0, 0, w.pads[2], w.pads[3]})
	var cols []string
	for i := int64(0); i < kh; i++ {
		for j := int64(0); j < kw; j++ {
			win := convWindow(b, xp, i, j, w, ho, wo)
			cols = append(cols, b.reshape(win, []int64{n, ho * wo, 1}))
		}
	}
	c := cols[0]
	if len(cols) > 1 {
		c = b.op("Concat", cols, aInt("axis", 2)) // [N, Ho·Wo, k·k]
	}
	p := b.op("MatMul", []string{b.reshape(dy, []int64{n, cout, ho * wo}), c}) // [N, Cout, k·k]
	return b.reshape(b.reduceSum(p, []int64{0}, false), ws)
}

// convWindow is the input window that kernel offset (i, j) of a convolution
// with output size ho × wo sees, from the padded input xp (axes 2 and 3
// spatial): a strided Slice, or xp itself where the window is all of it.
func convWindow(b *builder, xp string, i, j int64, w spatial, ho, wo int64) string {
	xsp := b.shape(xp)
	h0, w0 := i*w.dilations[0], j*w.dilations[1]
	if h0 == 0 && w0 == 0 && w.strides[0] == 1 && w.strides[1] == 1 && xsp[2] == ho && xsp[3] == wo {
		return xp
	}
	return b.op("Slice", []string{xp,
		b.constI64([]int64{h0, w0}, false),
		b.constI64([]int64{h0 + w.strides[0]*(ho-1) + 1, w0 + w.strides[1]*(wo-1) + 1}, false),
		b.constI64([]int64{2, 3}, false),
		b.constI64([]int64{w.strides[0], w.strides[1]}, false)})
}
