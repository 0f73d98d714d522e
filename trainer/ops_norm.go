package trainer

// Gradient rules of the normalizations.
//
// BatchNorm with batch statistics (training), over the M = N·H·W values of
// each channel, with x̂ = (x − μ_B)·inv, inv = 1/√(σ²_B + ε):
//
//	dβ = Σ dy,  dγ = Σ dy·x̂,  dx = inv/M · (M·dx̂ − Σ dx̂ − x̂·Σ dx̂·x̂),  dx̂ = dy·γ
//
// which includes the paths through μ_B and σ²_B: the coupling between the
// samples of a batch that docs/METHODS.md's theory is about. With running
// statistics (inference, or a frozen BN) the statistics are constants and
// dx = dy·γ·inv. LayerNormalization and InstanceNormalization have the same
// form over their own axes.

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

const bnTrainOp = "bnaudit.BatchNormTrain"

func init() {
	register("BatchNormalization", opInfo{arity: arity{5, 5, 1, 3}, infer: inferBatchNorm, perSample: psNormAffine, weight: true, grad: gradBNInference})
	register(bnTrainOp, opInfo{noFDCase: "a composite; TestStepGradientsFiniteDifferences checks it within whole steps", grad: gradBNTrain})
	register("LayerNormalization", opInfo{arity: arity{2, 3, 1, 3}, infer: inferLayerNorm, perSample: psNormAffine, weight: true, grad: gradLayerNorm})
	register("InstanceNormalization", opInfo{arity: arTernary, infer: inferInstanceNorm, perSample: psNormAffine, weight: true, grad: gradInstanceNorm})
}

// channelShape is [1, C, 1, …] for an input of the given rank.
func channelShape(c int64, rank int) []int64 {
	s := make([]int64, rank)
	for i := range s {
		s[i] = 1
	}
	s[1] = c
	return s
}

// nonChannelAxes is every axis but 1.
func nonChannelAxes(rank int) []int64 {
	a := []int64{0}
	for i := 2; i < rank; i++ {
		a = append(a, int64(i))
	}
	return a
}

// gradBNInference: BN on running statistics.
func gradBNInference(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	ch := xs[1]
	r := len(xs)
	eps := c.attrFloat("epsilon", 1e-5)
	cs := channelShape(ch, r)
	inv := b.op("Reciprocal", []string{b.op("Sqrt", []string{b.op("Add", []string{c.x(4), b.scalar(eps)})})})
	invC := b.reshape(inv, cs)
	out := make([]string, 5)
	if c.want(0) {
		out[0] = b.op("Mul", []string{dy[0], b.reshape(b.op("Mul", []string{c.x(1), inv}), cs)})
	}
	if c.want(1) {
		xhat := b.op("Mul", []string{b.op("Sub", []string{c.x(0), b.reshape(c.x(3), cs)}), invC})
		out[1] = b.reduceSum(b.op("Mul", []string{dy[0], xhat}), nonChannelAxes(r), false)
	}
	if c.want(2) {
		out[2] = b.reduceSum(dy[0], nonChannelAxes(r), false)
	}
	return out
}

// channelAffine computes x·s + t with per-channel s and t ([C], channel
// axis 1) as one BatchNormalization node in inference mode with mean 0,
// variance 1 and epsilon 0: ORT runs it as a single fused pass, where Mul
// and Add with [1, C, 1, 1] broadcasting take one slower pass each.
func (b *builder) channelAffine(x, s, t string) string {
	c := b.shape(s)[0]
	zeros := b.constF32([]int64{c}, make([]float32, c))
	ones := b.constF32([]int64{c}, onesF(int(c)))
	return b.op("BatchNormalization", []string{x, s, t, zeros, ones}, aFloat("epsilon", 0))
}

// emitBNTrain writes BatchNorm with batch statistics and returns its tape
// entry (inputs x, scale, bias; output y) together with the batch mean and
// biased variance (shape [C]) for the running-statistics update. The batch
// statistics are computed in two passes (mean, then the mean square of the
// centred values), as PyTorch does; the centring is a broadcast Sub, the
// final affine map an ONNX BatchNormalization node in inference mode (see
// channelAffine).
func (b *builder) emitBNTrain(node *onnxpb.NodeProto, x, scale, bias, y string) (e *tapeEntry, mean, variance string) {
	xs := b.shape(x)
	r := len(xs)
	ch := xs[1]
	axes := nonChannelAxes(r)
	eps := float32(1e-5)
	for _, a := range node.GetAttribute() {
		if a.GetName() == "epsilon" {
			eps = a.GetF()
		}
	}
	ones := b.constF32([]int64{ch}, onesF(int(ch)))
	mu := b.reshape(b.reduceMean(x, axes, false), []int64{ch})
	xc := b.op("Sub", []string{x, b.reshape(mu, channelShape(ch, r))}) // multithreaded, unlike channelAffine
	// ReduceMean of the squares: ORT's ReduceSumSquare accumulated enough
	// float32 error over 100k values to move the logits by 1.7e-5.
	v := b.reshape(b.reduceMean(b.op("Mul", []string{xc, xc}), axes, false), []int64{ch})
	inv := b.op("Reciprocal", []string{b.op("Sqrt", []string{b.op("Add", []string{v, b.scalar(eps)})})})
	// y = (x − μ)·(γ·inv) + β from the centred values: scaling x first and
	// subtracting μ·γ·inv after would cancel digits when |μ| ≫ σ.
	zeros := b.constF32([]int64{ch}, make([]float32, ch))
	b.emitNamed("BatchNormalization", b.fresh("bn_out"), []string{xc, b.op("Mul", []string{scale, inv}), bias, zeros, ones}, []string{y}, aFloat("epsilon", 0))
	e = &tapeEntry{op: bnTrainOp, node: node, inputs: []string{x, scale, bias}, outputs: []string{y},
		saved: map[string]string{"centred": xc, "inv": inv, "var": v}}
	return e, mu, v
}

// gradBNTrain: with x̂ = (x − μ_B)·inv and S₁ = Σdy, S₂ = Σdy·x̂ per channel,
// dβ = S₁, dγ = S₂, and dx = γ·inv·(dy − S₁/M − x̂·S₂/M), written as a
// per-channel affine map of dy, a per-channel scaling of the centred input
// x − μ_B (whose scale takes the extra inv: x̂ itself is never
// materialized, one pass over the activations fewer) and one Add.
// S₂ = inv·Σdy·(x − μ_B).
func gradBNTrain(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	r := len(xs)
	ch := xs[1]
	m := float32(numel(xs) / ch)
	axes := nonChannelAxes(r)
	inv := c.e.saved["inv"]
	xc := c.e.saved["centred"]
	g := dy[0]
	start := len(b.nodes)
	s1 := b.reduceSum(g, axes, false)
	s2 := b.op("Mul", []string{b.reduceSum(b.op("Mul", []string{g, xc}), axes, false), inv})
	out := make([]string, 3)
	out[1], out[2] = s2, s1
	if c.want(0) {
		k := b.op("Mul", []string{c.x(1), inv}) // γ·inv
		a := b.channelAffine(g, k, b.op("Neg", []string{b.op("Mul", []string{k, b.op("Mul", []string{s1, b.scalar(1 / m)})})}))
		// x̂·(−k·S₂/M) = (x − μ_B)·(−k·inv·S₂/M)
		kc := b.op("Neg", []string{b.op("Mul", []string{b.op("Mul", []string{k, inv}), b.op("Mul", []string{s2, b.scalar(1 / m)})})})
		// a Mul broadcasting [1, C, 1, …] runs on all threads, where the
		// BatchNormalization node of channelAffine runs on one (BENCHMARKS.md)
		bb := b.op("Mul", []string{xc, b.reshape(kc, channelShape(ch, r))})
		out[0] = b.op("Add", []string{a, bb})
	}
	if len(xs) == 4 {
		b.bns = append(b.bns, bnRecord{xc: xc, dy: g, variance: c.e.saved["var"], scale: c.x(1), eps: c.attrFloat("epsilon", 1e-5), dx: out[0], dscale: s2, dshift: s1,
			xs: xs, first: b.nodes[start].GetOutput()[0], nodes: emitted(b, start)})
	}
	if !c.want(1) {
		out[1] = ""
	}
	if !c.want(2) {
		out[2] = ""
	}
	return out
}

// normBack is the backward of x̂ = (x − mean)/√(var+ε) over axes, given
// dx̂: dx = inv·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
func normBack(b *builder, x string, axes []int64, eps float32, dxhat string) (dx, xhat string) {
	mu := b.reduceMean(x, axes, true)
	xc := b.op("Sub", []string{x, mu})
	v := b.reduceMean(b.op("Mul", []string{xc, xc}), axes, true)
	inv := b.op("Reciprocal", []string{b.op("Sqrt", []string{b.op("Add", []string{v, b.scalar(eps)})})})
	xhat = b.op("Mul", []string{xc, inv})
	if dxhat == "" {
		return "", xhat
	}
	m1 := b.reduceMean(dxhat, axes, true)
	m2 := b.reduceMean(b.op("Mul", []string{dxhat, xhat}), axes, true)
	t := b.op("Sub", []string{b.op("Sub", []string{dxhat, m1}), b.op("Mul", []string{xhat, m2})})
	return b.op("Mul", []string{t, inv}), xhat
}

func gradLayerNorm(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	axis := c.attrInt("axis", -1)
	if axis < 0 {
		axis += int64(len(xs))
	}
	axes := axesFrom(int(axis), len(xs))
	eps := c.attrFloat("epsilon", 1e-5)
	out := make([]string, len(c.e.inputs))
	var dxhat string
	if c.want(0) {
		dxhat = b.op("Mul", []string{dy[0], c.x(1)})
	}
	dx, xhat := normBack(b, c.x(0), axes, eps, dxhat)
	out[0] = dx
	if c.want(1) {
		out[1] = b.sumTo(b.op("Mul", []string{dy[0], xhat}), c.xShape(1))
	}
	if c.hasX(2) && c.want(2) {
		out[2] = b.sumTo(dy[0], c.xShape(2))
	}
	return out
}

func gradInstanceNorm(c *gradCtx, dy []string) []string {
	b := c.b
	xs := c.xShape(0)
	r := len(xs)
	cs := channelShape(xs[1], r)
	eps := c.attrFloat("epsilon", 1e-5)
	out := make([]string, 3)
	var dxhat string
	if c.want(0) {
		dxhat = b.op("Mul", []string{dy[0], b.reshape(c.x(1), cs)})
	}
	dx, xhat := normBack(b, c.x(0), axesFrom(2, r), eps, dxhat)
	out[0] = dx
	if c.want(1) {
		out[1] = b.reduceSum(b.op("Mul", []string{dy[0], xhat}), nonChannelAxes(r), false)
	}
	if c.want(2) {
		out[2] = b.reduceSum(dy[0], nonChannelAxes(r), false)
	}
	return out
}

func inferBatchNorm(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	if err := checkChannelParams(c, x, 5); err != nil {
		return nil, err
	}
	out := []*value{{shape: x.shape, dtype: x.dtype}}
	if len(c.node.GetOutput()) > 1 && len(x.shape) > 1 {
		st := &value{shape: []int64{x.shape[1]}, dtype: x.dtype}
		out = append(out, st, st)
	}
	return out, nil
}

func inferLayerNorm(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	axis := normAxis(c.attrInt("axis", -1), len(x.shape))
	if axis < 0 || axis >= len(x.shape) {
		return nil, fmt.Errorf("axis out of range for shape %v", x.shape)
	}
	for k := 1; k < len(c.in); k++ {
		if p := c.in[k]; p != nil {
			if s, err := broadcastShape(x.shape[axis:], p.shape); err != nil || !equalShape(s, x.shape[axis:]) {
				return nil, fmt.Errorf("input %d of shape %v does not broadcast to the normalized shape %v", k, p.shape, x.shape[axis:])
			}
		}
	}
	stat := append([]int64(nil), x.shape...)
	for i := axis; i < len(stat); i++ {
		stat[i] = 1
	}
	return []*value{{shape: x.shape, dtype: x.dtype}, {shape: stat, dtype: onnxio.TypeFloat}, {shape: stat, dtype: onnxio.TypeFloat}}, nil
}

func inferInstanceNorm(c *inferCtx) ([]*value, error) {
	x := c.in[0]
	if len(x.shape) < 3 {
		return nil, fmt.Errorf("InstanceNormalization of rank-%d input", len(x.shape))
	}
	if err := checkChannelParams(c, x, 3); err != nil {
		return nil, err
	}
	return []*value{{shape: x.shape, dtype: x.dtype}}, nil
}

// checkChannelParams checks that x has a channel axis (rank 2 or more) and
// that inputs 1 … n−1 of a normalization node are [C] vectors, as the
// gradient rules assume.
func checkChannelParams(c *inferCtx, x *value, n int) error {
	if len(x.shape) < 2 {
		return fmt.Errorf("input of rank %d has no channel axis", len(x.shape))
	}
	for k := 1; k < n && k < len(c.in); k++ {
		if p := c.in[k]; p != nil && !equalShape(p.shape, x.shape[1:2]) {
			return fmt.Errorf("input %d has shape %v; the input has %d channels", k, p.shape, x.shape[1])
		}
	}
	return nil
}
