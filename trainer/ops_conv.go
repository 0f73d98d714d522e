package trainer

import (
	"fmt"
	"math"
)

// Convolutions, and the windows they share with the pooling ops.
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
	register("Conv", opInfo{arity: arity{2, 3, 1, 1}, infer: inferConv, perSample: psConv, weight: true, grad: gradConv})
	// Only the builders emit ConvTranspose (Conv's input gradient).
	register("ConvTranspose", opInfo{arity: arity{2, 3, 1, 1}, infer: inferConvTranspose, weight: true, builderOnly: true})
}

// convKernel is a Conv entry's kernel: its kernel_shape, or the spatial
// shape of its weight.
func (c *gradCtx) convKernel() []int64 {
	if k := c.attrInts("kernel_shape"); k != nil {
		return k
	}
	return c.xShape(1)[2:]
}

// window is the window of a Conv or pooling entry with the given kernel
// over its input, as its shape rule reads it.
func (c *gradCtx) window(kernel []int64) spatial {
	w, err := c.b.inferCtxOf(c.e.node).window(c.xShape(0)[2:], kernel)
	if err != nil {
		failf("%s %q: %v", c.e.op, c.e.node.GetName(), err)
	}
	return w
}

func gradConv(c *gradCtx, dy []string) []string {
	b := c.b
	xs, ws := c.xShape(0), c.xShape(1)
	if len(xs) != 4 {
		failf("Conv %q on a %d-D input: bnaudit differentiates 2-D convolutions", c.e.node.GetName(), len(xs))
	}
	w := c.window(c.convKernel())
	checkTaps(c.e.node.GetName(), ws)
	g := c.attrInt("group", 1)
	ys := c.yShape(0)
	out := make([]string, len(c.e.inputs))
	if c.want(0) {
		start := len(b.nodes)
		if x := convInputGradStride1(b, dy[0], c.x(1), ws, w, g); x != "" {
			out[0] = x
		} else {
			outPad := make([]int64, 2)
			for i := 0; i < 2; i++ {
				full := w.strides[i]*(ys[i+2]-1) + (w.kernel[i]-1)*w.dilations[i] + 1 - w.pads[i] - w.pads[i+2]
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
		b.dxs = append(b.dxs, dxRecord{convGrad: convGrad{dy: dy[0], out: out[0], xs: xs, ws: ws, ys: ys, w: w, group: g, nodes: emitted(b, start)}, wname: c.x(1)})
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
	b.dws = append(b.dws, dwRecord{convGrad: convGrad{dy: dy, out: out, xs: xs, ws: ws, ys: b.shape(dy), w: w, group: g, nodes: emitted(b, start)}, x: x})
	return out
}

// emitted is the set of outputs of the nodes b emitted since start.
func emitted(b *builder, start int) map[string]bool {
	out := map[string]bool{}
	for _, n := range b.nodes[start:] {
		for _, o := range n.GetOutput() {
			out[o] = true
		}
	}
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

// spatial describes a Conv/Pool node's window over the spatial axes.
type spatial struct {
	kernel, strides, dilations, pads []int64 // pads: begins then ends
}

func (c *inferCtx) window(in []int64, kernel []int64) (spatial, error) {
	n := len(in)
	w := spatial{kernel: kernel, strides: c.attrInts("strides"), dilations: c.attrInts("dilations"), pads: c.attrInts("pads")}
	if w.strides == nil {
		w.strides = ones(n)
	}
	if w.dilations == nil {
		w.dilations = ones(n)
	}
	if len(kernel) != n || len(w.strides) != n || len(w.dilations) != n {
		return w, fmt.Errorf("window attributes do not match %d spatial axes", n)
	}
	pad := c.node.GetAttribute()
	autoPad := "NOTSET"
	for _, a := range pad {
		if a.GetName() == "auto_pad" {
			autoPad = string(a.GetS())
		}
	}
	switch autoPad {
	case "NOTSET", "":
		if w.pads == nil {
			w.pads = make([]int64, 2*n)
		}
	case "VALID":
		w.pads = make([]int64, 2*n)
	case "SAME_UPPER", "SAME_LOWER":
		w.pads = make([]int64, 2*n)
		for i := 0; i < n; i++ {
			out := (in[i] + w.strides[i] - 1) / w.strides[i]
			total := max(0, (out-1)*w.strides[i]+(kernel[i]-1)*w.dilations[i]+1-in[i])
			if autoPad == "SAME_UPPER" {
				w.pads[i], w.pads[i+n] = total/2, total-total/2
			} else {
				w.pads[i], w.pads[i+n] = total-total/2, total/2
			}
		}
	default:
		return w, fmt.Errorf("auto_pad %q", autoPad)
	}
	if len(w.pads) != 2*n {
		return w, fmt.Errorf("pads %v for %d spatial axes", w.pads, n)
	}
	// Bounded so that the window arithmetic cannot overflow.
	for i := 0; i < n; i++ {
		if !inRange(w.kernel[i], 1) || !inRange(w.strides[i], 1) || !inRange(w.dilations[i], 1) || !inRange(w.pads[i], 0) || !inRange(w.pads[i+n], 0) {
			return w, fmt.Errorf("window kernel %v, strides %v, dilations %v, pads %v out of range", w.kernel, w.strides, w.dilations, w.pads)
		}
		if eff := (w.kernel[i]-1)*w.dilations[i] + 1; eff > in[i]+w.pads[i]+w.pads[i+n] {
			return w, fmt.Errorf("window of %d along axis %d is larger than the padded input (%d)", eff, i+2, in[i]+w.pads[i]+w.pads[i+n])
		}
	}
	return w, nil
}

// windowMax bounds kernel sizes, strides, dilations and pads.
const windowMax = 1 << 30

func inRange(v, lo int64) bool { return v >= lo && v <= windowMax }

func ones(n int) []int64 {
	o := make([]int64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// outSize is the output length of one spatial axis.
func (w spatial) outSize(i int, in int64, ceil bool) int64 {
	n := len(w.kernel)
	eff := (w.kernel[i]-1)*w.dilations[i] + 1
	span := in + w.pads[i] + w.pads[i+n] - eff
	if ceil {
		o := (span+w.strides[i]-1)/w.strides[i] + 1
		// PyTorch/ONNX: the last window must start inside the input or left padding.
		if (o-1)*w.strides[i] >= in+w.pads[i] {
			o--
		}
		return o
	}
	return span/w.strides[i] + 1
}

func inferConv(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	wt := c.in[1]
	if len(x.shape) < 3 || len(wt.shape) != len(x.shape) {
		return nil, fmt.Errorf("Conv of %v with weight %v", x.shape, wt.shape)
	}
	kernel := c.attrInts("kernel_shape")
	if kernel == nil {
		kernel = wt.shape[2:]
	}
	if !equalShape(kernel, wt.shape[2:]) {
		return nil, fmt.Errorf("kernel_shape %v differs from the weight's %v", kernel, wt.shape)
	}
	w, err := c.window(x.shape[2:], kernel)
	if err != nil {
		return nil, err
	}
	g := c.attrInt("group", 1)
	if g < 1 || x.shape[1] != wt.shape[1]*g || wt.shape[0]%g != 0 {
		return nil, fmt.Errorf("Conv input has %d channels, weight %v with group %d", x.shape[1], wt.shape, g)
	}
	if len(c.in) > 2 && c.in[2] != nil && !equalShape(c.in[2].shape, wt.shape[:1]) {
		return nil, fmt.Errorf("Conv bias of shape %v for %d output channels", c.in[2].shape, wt.shape[0])
	}
	shape := []int64{x.shape[0], wt.shape[0]}
	for i, d := range x.shape[2:] {
		shape = append(shape, w.outSize(i, d, false))
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}

func inferConvTranspose(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	wt := c.in[1]
	if len(x.shape) < 3 || len(wt.shape) != len(x.shape) {
		return nil, fmt.Errorf("ConvTranspose of %v with weight %v", x.shape, wt.shape)
	}
	n := len(x.shape) - 2
	kernel := c.attrInts("kernel_shape")
	if kernel == nil {
		kernel = wt.shape[2:]
	}
	strides, dil, pads, outPad := c.attrInts("strides"), c.attrInts("dilations"), c.attrInts("pads"), c.attrInts("output_padding")
	if strides == nil {
		strides = ones(n)
	}
	if dil == nil {
		dil = ones(n)
	}
	if pads == nil {
		pads = make([]int64, 2*n)
	}
	if outPad == nil {
		outPad = make([]int64, n)
	}
	g := c.attrInt("group", 1)
	shape := []int64{x.shape[0], wt.shape[1] * g}
	if os := c.attrInts("output_shape"); os != nil {
		return []*value{{shape: append(shape, os...), dtype: x.dtype}}, nil
	}
	for i := 0; i < n; i++ {
		shape = append(shape, strides[i]*(x.shape[i+2]-1)+outPad[i]+(kernel[i]-1)*dil[i]+1-pads[i]-pads[i+n])
	}
	return []*value{{shape: shape, dtype: x.dtype}}, nil
}
