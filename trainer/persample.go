package trainer

// Per-sample gradient norms (docs/METHODS.md, "Per-sample gradient norms").
//
// Eval-mode: BatchNorm on running statistics, so the samples of a batch do
// not interact. One backward pass of Σᵢ ℓᵢ then gives, at every layer, each
// sample's own output adjoint δᵢ, and each layer's per-sample weight
// gradient follows from δᵢ and the layer's input aᵢ without a backward pass
// per sample:
//   - Gemm/MatMul with a 2-D input: gᵢ = aᵢ ⊗ δᵢ, so ‖gᵢ‖² = ‖aᵢ‖²·‖δᵢ‖²;
//   - Conv: gᵢ = δᵢ·colsᵢᵀ, a batched matrix product of the im2col columns;
//   - normalization affine and elementwise parameters: the adjoint reduced
//     over every axis but the batch one.
//
// In-batch: BatchNorm with batch statistics couples the samples, so the
// gradient of ℓᵢ alone flows through every other sample's activations. No
// cheaper exact method exists for that; the graph takes the adjoint of the
// per-sample losses as an input ("seed") and the runner sets it to the unit
// vector eᵢ, one backward pass per sample.

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
)

// GradNormMode selects eval-mode or in-batch per-sample gradients.
type GradNormMode string

const (
	GradNormEval    GradNormMode = "eval"
	GradNormInBatch GradNormMode = "inbatch"
)

// Names of the gradient-norm graphs' interface.
const (
	NameSeed         = "seed"
	NameGradSqNorm   = "grad_sqnorm"
	PrefixGradSqNorm = "grad_sqnorm/"
	// Deprecated: use PrefixGradSqNorm.
	PrefixGradSqNom = PrefixGradSqNorm
)

// psRule returns, for each parameter input slot of an entry, a [N] value
// holding each sample's squared gradient norm for that parameter (an op's
// perSample in the op registry, ops.go).
type psRule func(c *gradCtx, dy string, slots []int) map[int]string

// BuildGradNorms writes a per-sample gradient-norm graph. Its inputs are the
// data, labels, parameters and statistics (as in the evaluation graph), plus
// "seed" [N] in in-batch mode. Outputs: eval mode, "grad_sqnorm" [N] and
// "grad_sqnorm/P" [N] per parameter; in-batch mode, the same names as scalars
// for the gradient of Σᵢ seedᵢ·ℓᵢ.
func BuildGradNorms(m *onnxio.Model, batch int, mode GradNormMode) (g *Graph, err error) {
	defer finishBuild(m, &err)
	if mode != GradNormEval && mode != GradNormInBatch {
		return nil, fmt.Errorf("trainer: unknown gradient-norm mode %q (want eval or inbatch)", mode)
	}
	p, err := planModel(m, batch)
	if err != nil {
		return nil, err
	}
	b := newBuilder(p.opset, p.m)
	g = &Graph{Input: p.input, Logits: p.output, Params: p.ordered(p.params), Stats: p.ordered(p.stats),
		MaskRatios: map[string]float32{}, Shapes: map[string][]int64{}}
	p.declareInterface(b)
	b.declare(NameLabels, &value{shape: []int64{int64(batch)}, dtype: onnxio.TypeInt64})
	tape, _ := p.forward(b, mode == GradNormInBatch, false, g)
	tape = append(tape, b.emitCrossEntropy(p.output, NameLabels, 0, NameLoss, NamePerSampleLoss))
	inputs := append([]string{p.input, NameLabels}, g.Params...)
	inputs = append(inputs, g.Stats...)
	outputs := []string{p.output, NamePerSampleLoss}
	isParam := map[string]bool{}
	for _, q := range g.Params {
		isParam[q] = true
	}
	perParam := map[string][]string{}
	var seed string
	if mode == GradNormInBatch {
		seed = NameSeed
		b.declare(NameSeed, &value{shape: []int64{int64(batch)}, dtype: onnxio.TypeFloat})
		inputs = append(inputs, NameSeed)
	} else {
		seed = b.constF32([]int64{int64(batch)}, onesF(batch))
		b.hook = func(e *tapeEntry, dy []string, needs []bool) {
			var slots []int
			for k, in := range e.inputs {
				if isParam[in] && needs[k] {
					slots = append(slots, k)
				}
			}
			if len(slots) == 0 || dy[0] == "" {
				return
			}
			rule := opOf(e.op).perSample
			if rule == nil {
				failf("no per-sample gradient rule for op %s (node %q), which holds parameter %q", e.op, e.node.GetName(), e.inputs[slots[0]])
			}
			saved := b.scope
			b.scope = "per_sample/" + e.node.GetName()
			c := &gradCtx{b: b, e: e, needs: needs}
			for k, v := range rule(c, dy[0], slots) {
				perParam[e.inputs[k]] = append(perParam[e.inputs[k]], v)
			}
			b.scope = saved
		}
	}
	grads := b.backward(tape, NamePerSampleLoss, seed, g.Params)
	b.hook = nil
	b.scope = "norms"
	var total []string
	for _, q := range g.Params {
		var sq string
		if mode == GradNormInBatch {
			if grads[q] == "" {
				continue
			}
			sq = b.op("ReduceSumSquare", []string{grads[q]}, aInt("keepdims", 0))
		} else {
			parts := perParam[q]
			switch len(parts) {
			case 0:
				continue
			case 1:
				sq = parts[0]
			default:
				// a parameter used twice: its per-sample gradient is the sum of
				// the two uses, whose norms do not add; bnaudit refuses that.
				failf("parameter %q is used by %d nodes; per-sample norms of shared parameters are not supported", q, len(parts))
			}
		}
		name := PrefixGradSqNorm + q
		b.emitNamed("Identity", name+"/out", []string{sq}, []string{name})
		outputs = append(outputs, name)
		total = append(total, sq)
	}
	if len(total) == 0 {
		failf("no parameter has a gradient")
	}
	t := total[0]
	if len(total) > 1 {
		t = b.op("Sum", total)
	}
	b.emitNamed("Identity", NameGradSqNorm+"/out", []string{t}, []string{NameGradSqNorm})
	outputs = append(outputs, NameGradSqNorm)
	g.Model = p.finish(b, "grad_norms_"+string(mode), inputs, outputs, StepConfig{Batch: batch})
	g.convs, g.dws, g.dxs, g.bns, g.vals, g.src = convShapes(b), b.dws, b.dxs, b.bns, b.vals, p.m
	for _, v := range append(inputs, outputs...) {
		g.Shapes[v] = b.shape(v)
	}
	return g, nil
}

func onesF(n int) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// sqPerSample sums squares over every axis but the first: [N, …] → [N].
func (b *builder) sqPerSample(x string) string {
	r := len(b.shape(x))
	if r == 1 {
		return b.op("Mul", []string{x, x})
	}
	return b.op("ReduceSumSquare", []string{x}, aInts("axes", axesFrom(1, r)), aInt("keepdims", 0))
}

func psGemm(c *gradCtx, dy string, slots []int) map[int]string {
	b := c.b
	if c.attrInt("transA", 0) != 0 {
		failf("per-sample norms of Gemm %q with transA are not supported", c.e.node.GetName())
	}
	alpha, beta := c.attrFloat("alpha", 1), c.attrFloat("beta", 1)
	out := map[int]string{}
	dd := b.sqPerSample(dy)
	for _, k := range slots {
		switch k {
		case 0:
			failf("Gemm %q: its first input is a parameter; per-sample norms need the data there", c.e.node.GetName())
		case 1:
			aa := b.sqPerSample(c.x(0))
			out[1] = b.op("Mul", []string{b.op("Mul", []string{aa, dd}), b.scalar(alpha * alpha)})
		case 2:
			cs := c.xShape(2)
			if numel(cs) != c.yShape(0)[1] {
				failf("Gemm %q: per-sample norms need a per-output bias", c.e.node.GetName())
			}
			out[2] = b.op("Mul", []string{dd, b.scalar(beta * beta)})
		}
	}
	return out
}

func psMatMul(c *gradCtx, dy string, slots []int) map[int]string {
	b := c.b
	out := map[int]string{}
	for _, k := range slots {
		if k != 1 || len(c.xShape(1)) != 2 || len(c.xShape(0)) < 2 {
			failf("MatMul %q: per-sample norms need batched data as the first input and a 2-D weight", c.e.node.GetName())
		}
		if len(c.xShape(0)) == 2 {
			out[1] = b.op("Mul", []string{b.sqPerSample(c.x(0)), b.sqPerSample(dy)})
		} else {
			// [N, …, K] × [N, …, M]: gᵢ = Σ over the middle axes of aᵢᵀδᵢ
			as, ds := c.xShape(0), b.shape(dy)
			n := as[0]
			a := b.reshape(c.x(0), []int64{n, numel(as[1 : len(as)-1]), as[len(as)-1]})
			d := b.reshape(dy, []int64{n, numel(ds[1 : len(ds)-1]), ds[len(ds)-1]})
			out[1] = b.sqPerSample(b.op("MatMul", []string{transposeLast(b, a), d}))
		}
	}
	return out
}

func psConv(c *gradCtx, dy string, slots []int) map[int]string {
	b := c.b
	xs, ws := c.xShape(0), c.xShape(1)
	if len(xs) != 4 {
		failf("per-sample norms of a %d-D Conv are not supported", len(xs)-2)
	}
	checkTaps(c.e.node.GetName(), ws)
	out := map[int]string{}
	for _, k := range slots {
		switch k {
		case 1:
			out[1] = convPerSampleSq(b, c.x(0), dy, xs, ws, c.window(c.convKernel()), c.attrInt("group", 1))
		case 2:
			out[2] = b.sqPerSample(b.reduceSum(dy, []int64{2, 3}, false))
		default:
			failf("Conv %q: its input is a parameter", c.e.node.GetName())
		}
	}
	return out
}

// convPerSampleSq is ‖δᵢ·colsᵢᵀ‖² per sample, by im2col and a batched product.
func convPerSampleSq(b *builder, x, dy string, xs, ws []int64, w spatial, g int64) string {
	n, cin := xs[0], xs[1]
	cout, kh, kw := ws[0], ws[2], ws[3]
	ys := b.shape(dy)
	ho, wo := ys[2], ys[3]
	cig, cog, k := cin/g, cout/g, kh*kw
	cols := im2col(b, x, kh, kw, ho, wo, w) // [N, Cin, k, Ho, Wo]
	cols = b.reshape(cols, []int64{n, g, cig * k, ho * wo})
	d := b.reshape(dy, []int64{n, g, cog, ho * wo})
	gi := b.op("MatMul", []string{d, transposeLast(b, cols)}) // [N, G, Cog, Cig·k]
	return b.sqPerSample(gi)
}

// im2col stacks the k·k strided windows of the padded input: [N, C, k, Ho, Wo].
func im2col(b *builder, x string, kh, kw, ho, wo int64, w spatial) string {
	xp := b.pad(x, []int64{0, 0, w.pads[0], w.pads[1], 0, 0, w.pads[2], w.pads[3]})
	parts := make([]string, 0, kh*kw)
	for i := int64(0); i < kh; i++ {
		for j := int64(0); j < kw; j++ {
			h0, w0 := i*w.dilations[0], j*w.dilations[1]
			s := b.op("Slice", []string{xp,
				b.constI64([]int64{h0, w0}, false),
				b.constI64([]int64{h0 + w.strides[0]*(ho-1) + 1, w0 + w.strides[1]*(wo-1) + 1}, false),
				b.constI64([]int64{2, 3}, false),
				b.constI64([]int64{w.strides[0], w.strides[1]}, false)})
			parts = append(parts, b.unsqueeze(s, []int64{2}))
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return b.op("Concat", parts, aInt("axis", 2))
}

// psNormAffine: scale and bias gradients of a normalization, per sample.
func psNormAffine(c *gradCtx, dy string, slots []int) map[int]string {
	b := c.b
	xs := c.xShape(0)
	r := len(xs)
	var xhat string
	switch c.e.op {
	case "BatchNormalization":
		cs := channelShape(xs[1], r)
		inv := b.op("Reciprocal", []string{b.op("Sqrt", []string{b.op("Add", []string{c.x(4), b.scalar(c.attrFloat("epsilon", 1e-5))})})})
		xhat = b.op("Mul", []string{b.op("Sub", []string{c.x(0), b.reshape(c.x(3), cs)}), b.reshape(inv, cs)})
	case "InstanceNormalization":
		_, xhat = normBack(b, c.x(0), axesFrom(2, r), c.attrFloat("epsilon", 1e-5), "")
	case "LayerNormalization":
		axis := c.attrInt("axis", -1)
		if axis < 0 {
			axis += int64(r)
		}
		_, xhat = normBack(b, c.x(0), axesFrom(int(axis), r), c.attrFloat("epsilon", 1e-5), "")
	}
	out := map[int]string{}
	for _, k := range slots {
		var t string
		switch k {
		case 1:
			t = b.op("Mul", []string{dy, xhat})
		case 2:
			t = dy
		default:
			continue
		}
		out[k] = b.sqPerSample(c.perSampleSumTo(t, c.xShape(k)))
	}
	return out
}

// perSampleSumTo reduces t [N, …] to [N] + the parameter's shape as it
// broadcasts against t (BatchNorm's [C] becomes [N, C, 1, 1]).
func (c *gradCtx) perSampleSumTo(t string, param []int64) string {
	b := c.b
	ts := b.shape(t)
	r := len(ts)
	var bshape []int64
	switch {
	case c.e.op == "BatchNormalization" || c.e.op == "InstanceNormalization":
		bshape = channelShape(param[0], r)
	default:
		bshape = make([]int64, r)
		for i := range bshape {
			bshape[i] = 1
		}
		copy(bshape[r-len(param):], param)
		if len(param) == r && param[0] != 1 {
			failf("node %q: parameter %v has a batch axis", c.e.node.GetName(), param)
		}
	}
	target := append([]int64{ts[0]}, bshape[1:]...)
	return b.sumTo(t, target)
}

// psElementwise: a parameter added to or multiplied with the data.
func psElementwise(c *gradCtx, dy string, slots []int) map[int]string {
	b := c.b
	out := map[int]string{}
	for _, k := range slots {
		t := dy
		switch c.e.op {
		case "Sub":
			if k == 1 {
				t = b.op("Neg", []string{dy})
			}
		case "Mul":
			t = b.op("Mul", []string{dy, c.x(1 - k)})
		}
		out[k] = b.sqPerSample(c.perSampleSumTo(t, c.xShape(k)))
	}
	return out
}
