package trainer

// Pooling: MaxPool and AveragePool (the global poolings are reductions,
// ops_reduce.go).

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

func init() {
	register("MaxPool", opInfo{arity: arity{1, 1, 1, 2}, infer: inferPool, grad: gradMaxPool})
	register("AveragePool", opInfo{arity: arUnary, infer: inferPool, grad: gradAveragePool})
	// Only the builders emit MaxUnpool.
	register("MaxUnpool", opInfo{arity: arity{2, 3, 1, 1}, infer: inferMaxUnpool, builderOnly: true})
}

// gradMaxPool scatters dY to the argmax positions. ORT's Indices output is
// flattened over N·C·H·W (docs/FACTS.md), so one ScatterElements over the
// flattened input adds each window's gradient where its maximum was.
func gradMaxPool(c *gradCtx, dy []string) []string {
	b := c.b
	if len(c.e.outputs) < 2 || c.e.outputs[1] == "" {
		failf("MaxPool %q: the trainer needs its Indices output", c.e.node.GetName())
	}
	if b.opset < 16 {
		failf("MaxPool %q: differentiating needs opset 16 (ScatterElements with reduction)", c.e.node.GetName())
	}
	xs := c.xShape(0)
	if r := maxPoolTiled(c, dy[0]); r != "" {
		return []string{r}
	}
	total := numel(xs)
	idx := b.reshape(c.y(1), []int64{-1})
	idx = b.reshape(idx, []int64{numel(c.yShape(1))})
	g := b.reshape(dy[0], []int64{numel(c.yShape(0))})
	z := b.zeros([]int64{total})
	s := b.op("ScatterElements", []string{z, idx, g}, aInt("axis", 0),
		&onnxpb.AttributeProto{Name: "reduction", S: []byte("add"), Type: onnxpb.AttributeProto_STRING})
	return []string{b.reshape(s, xs)}
}

// maxPoolTiled handles the common case of windows that tile the input
// (kernel = stride, no padding, no dilation, 2-D) without a scatter: each
// input position belongs to at most one window, so it receives that
// window's gradient exactly when its flat index is the window's Indices
// value. Upsampling and comparing are elementwise, which ORT runs in
// parallel, where ScatterElements with reduction runs on one thread. It
// returns "" when the windows do not tile.
func maxPoolTiled(c *gradCtx, dy string) string {
	b := c.b
	xs, ys := c.xShape(0), c.yShape(0)
	k := c.attrInts("kernel_shape")
	st, pads, dil := c.attrInts("strides"), c.attrInts("pads"), c.attrInts("dilations")
	if len(xs) != 4 || len(k) != 2 || len(st) != 2 || st[0] != k[0] || st[1] != k[1] || c.attrInt("storage_order", 0) != 0 {
		return ""
	}
	for _, p := range pads {
		if p != 0 {
			return ""
		}
	}
	for _, d := range dil {
		if d != 1 {
			return ""
		}
	}
	if auto := c.e.node.GetAttribute(); auto != nil {
		for _, a := range auto {
			if a.GetName() == "auto_pad" && string(a.GetS()) != "NOTSET" && string(a.GetS()) != "VALID" && string(a.GetS()) != "" {
				return ""
			}
		}
	}
	ch, cw := ys[2]*k[0], ys[3]*k[1] // the covered region
	if ch > xs[2] || cw > xs[3] {
		return "" // ceil mode windows that run past the input
	}
	// Windows that tile have distinct argmax positions, so placing each
	// window's gradient at its Indices (MaxUnpool) is the exact scatter.
	return b.op("MaxUnpool", []string{dy, c.y(1), b.constI64(xs, false)}, aInts("kernel_shape", k), aInts("strides", st))
}

// gradAveragePool divides dY by each window's element count and spreads it
// over the window with a depthwise ConvTranspose of ones, then crops the
// padding. Counts follow PyTorch: with count_include_pad the window is
// clipped to the padded input, otherwise to the input itself.
func gradAveragePool(c *gradCtx, dy []string) []string {
	b := c.b
	xs, ys := c.xShape(0), c.yShape(0)
	if len(xs) != 4 {
		failf("AveragePool %q on a %d-D input: bnaudit differentiates 2-D pooling", c.e.node.GetName(), len(xs))
	}
	w := c.window(c.attrInts("kernel_shape"))
	for _, d := range w.dilations {
		if d != 1 {
			failf("AveragePool %q with dilations is not differentiable in bnaudit", c.e.node.GetName())
		}
	}
	if n, err := onnxio.NumElements([]int64{xs[1], w.kernel[0], w.kernel[1]}); err != nil || n > maxConstElems || ys[2]*ys[3] > maxConstElems {
		failf("AveragePool %q: output %v or kernel %v over %d channels is too large to differentiate", c.e.node.GetName(), ys, w.kernel, xs[1])
	}
	include := c.attrInt("count_include_pad", 0) != 0
	// per-axis counts, then their outer product [Ho, Wo]
	axisCounts := func(i int) []float32 {
		out := make([]float32, ys[i+2])
		in := xs[i+2]
		for o := range out {
			start := int64(o)*w.strides[i] - w.pads[i]
			end := min(start+w.kernel[i], in+w.pads[i+2])
			size := end - start
			start, end = max(start, 0), min(end, in)
			if include {
				out[o] = float32(size)
			} else {
				out[o] = float32(end - start)
			}
		}
		return out
	}
	ch, cw := axisCounts(0), axisCounts(1)
	inv := make([]float32, len(ch)*len(cw))
	for i, a := range ch {
		for j, bb := range cw {
			inv[i*len(cw)+j] = 1 / (a * bb)
		}
	}
	g := b.op("Mul", []string{dy[0], b.constF32([]int64{ys[2], ys[3]}, inv)})
	cch := xs[1]
	ones := make([]float32, cch*w.kernel[0]*w.kernel[1])
	for i := range ones {
		ones[i] = 1
	}
	kern := b.constF32([]int64{cch, 1, w.kernel[0], w.kernel[1]}, ones)
	full := b.op("ConvTranspose", []string{g, kern}, aInts("strides", w.strides), aInt("group", cch))
	// full covers the padded input from its top-left corner; crop the
	// padding and whatever the last windows reached beyond.
	fs := b.shape(full)
	var pads []int64
	needPad := false
	for i := 0; i < 2; i++ {
		extra := w.pads[i] + xs[i+2] - fs[i+2]
		if extra > 0 {
			needPad = true
		}
		pads = append(pads, max(0, extra))
	}
	if needPad {
		full = b.pad(full, []int64{0, 0, 0, 0, 0, 0, pads[0], pads[1]})
	}
	return []string{b.slice(full, []int64{2, 3}, []int64{w.pads[0], w.pads[1]}, []int64{w.pads[0] + xs[2], w.pads[1] + xs[3]})}
}

func inferPool(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	if len(x.shape) < 3 {
		return nil, fmt.Errorf("pooling of rank-%d input", len(x.shape))
	}
	w, err := c.window(x.shape[2:], c.attrInts("kernel_shape"))
	if err != nil {
		return nil, err
	}
	ceil := c.attrInt("ceil_mode", 0) != 0
	shape := []int64{x.shape[0], x.shape[1]}
	for i, d := range x.shape[2:] {
		shape = append(shape, w.outSize(i, d, ceil))
	}
	out := []*value{{shape: shape, dtype: x.dtype}}
	if len(c.node.GetOutput()) > 1 {
		out = append(out, &value{shape: shape, dtype: onnxio.TypeInt64})
	}
	return out, nil
}

func inferMaxUnpool(c *inferCtx) ([]*value, error) {
	shape, err := c.intsOf(2)
	if err != nil {
		return nil, err
	}
	return []*value{{shape: append([]int64{}, shape...), dtype: c.in[0].dtype}}, nil
}
