package trainer

// Softmax cross-entropy on integer labels, as one composite: per-sample
// losses ℓ_i = −(1−ε)·log p_{i,y_i} − ε·mean_j log p_{i,j} (ε the label
// smoothing, PyTorch's CrossEntropyLoss definition) and their mean. Its
// backward is closed-form: dlogits_i = (p_i − t_i)·(dmean/N + dℓ_i), with
// t_i = (1−ε)·onehot(y_i) + ε/C.

import (
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

const crossEntropyOp = "bnaudit.SoftmaxCrossEntropy"

func init() {
	register(crossEntropyOp, opInfo{noFDCase: "a composite; TestStepGradientsFiniteDifferences checks it within whole steps", grad: gradCrossEntropy})
}

// emitCrossEntropy writes the loss for logits [N, C] and labels [N] (int64)
// and returns its tape entry; outputs are the mean loss (a scalar) and the
// per-sample losses [N], named as given.
func (b *builder) emitCrossEntropy(logits, labels string, smoothing float32, meanName, perName string) *tapeEntry {
	ls := b.shape(logits)
	if len(ls) != 2 || ls[0] != b.shape(labels)[0] || ls[1] < 1 {
		failf("the model's output has shape %v; bnaudit trains classifiers whose output is [batch, classes]", ls)
	}
	classes := ls[1]
	lsm := b.op("LogSoftmax", []string{logits}, aInt("axis", 1))
	onehot := b.op("OneHot", []string{labels, b.constI64([]int64{classes}, true), b.constF32([]int64{2}, []float32{0, 1})}, aInt("axis", 1))
	target := onehot
	if smoothing != 0 {
		target = b.op("Add", []string{b.op("Mul", []string{onehot, b.scalar(1 - smoothing)}), b.scalar(smoothing / float32(classes))})
	}
	per := b.op("Neg", []string{b.reduceSum(b.op("Mul", []string{lsm, target}), []int64{1}, false)})
	b.emitNamed("Identity", b.fresh("per_sample_loss"), []string{per}, []string{perName})
	b.emitNamed("Identity", b.fresh("loss"), []string{b.reduceMean(perName, []int64{0}, false)}, []string{meanName})
	node := &onnxpb.NodeProto{Name: "loss", OpType: crossEntropyOp, Attribute: []*onnxpb.AttributeProto{aFloat("label_smoothing", smoothing)}}
	return &tapeEntry{op: crossEntropyOp, node: node, inputs: []string{logits, labels}, outputs: []string{meanName, perName},
		saved: map[string]string{"log_probs": lsm, "target": target}}
}

func gradCrossEntropy(c *gradCtx, dy []string) []string {
	b := c.b
	n := c.xShape(0)[0]
	p := b.op("Exp", []string{c.e.saved["log_probs"]})
	diff := b.op("Sub", []string{p, c.e.saved["target"]})
	// weight per sample: dmean/N + dℓ_i, as [N, 1]
	var w string
	if dy[0] != "" {
		w = b.op("Mul", []string{dy[0], b.scalar(1 / float32(n))})
	}
	if dy[1] != "" {
		wi := b.reshape(dy[1], []int64{n, 1})
		if w == "" {
			w = wi
		} else {
			w = b.op("Add", []string{wi, w})
		}
	}
	return []string{b.op("Mul", []string{diff, w}), ""}
}

// Gaussian negative log-likelihood on float targets, as one composite (the
// quantile-regression attack's regression loss, docs/METHODS.md). The
// prediction is [N, 2K]: K pairs (μ_k, r_k) with σ_k = exp(r_k), one pair
// per class of the audited model (K = 1: one pair for every sample); the
// int64 labels [N] choose each sample's pair (μ_i, r_i) and the targets [N]
// are the values t_i being modelled. Per sample
//
//	ℓ_i = −log N(t_i; μ_i, σ_i²) = r_i + (t_i − μ_i)²·exp(−2 r_i)/2 + log(2π)/2,
//
// and the loss is their mean. Its backward is closed-form: with
// w_i = dmean/N + dℓ_i, d = t_i − μ_i and v = exp(−2 r_i) (1/σ_i²),
// dμ_i = −d·v·w_i and dr_i = (1 − d²·v)·w_i, placed in the sample's pair
// of the prediction (zero in the other pairs).

const gaussianNLLOp = "bnaudit.GaussianNLL"

func init() {
	register(gaussianNLLOp, opInfo{noFDCase: "a composite; TestGaussianNLLFiniteDifferences and TestGaussianNLLStepFiniteDifferences check it", grad: gradGaussianNLL})
}

// halfLog2Pi is log(2π)/2, the constant of the Gaussian's log-density.
const halfLog2Pi = 0.91893853320467274178

// emitGaussianNLL writes the loss for a prediction [N, 2K], labels [N]
// (int64, in [0, K)) and targets [N] (float) and returns its tape entry;
// outputs are the mean loss (a scalar) and the per-sample losses [N],
// named as given.
func (b *builder) emitGaussianNLL(pred, labels, targets string, meanName, perName string) *tapeEntry {
	ps := b.shape(pred)
	if len(ps) != 2 || ps[1] < 2 || ps[1]%2 != 0 || ps[0] != b.shape(labels)[0] || ps[0] != b.shape(targets)[0] {
		failf("the model's output has shape %v; the Gaussian NLL needs [batch, 2·K] (a mean and a log standard deviation per pair)", ps)
	}
	n, k := ps[0], ps[1]/2
	p3 := b.reshape(pred, []int64{n, k, 2})
	onehot := b.op("OneHot", []string{labels, b.constI64([]int64{k}, true), b.constF32([]int64{2}, []float32{0, 1})}, aInt("axis", 1))
	oh3 := b.reshape(onehot, []int64{n, k, 1})
	pair := b.reduceSum(b.op("Mul", []string{p3, oh3}), []int64{1}, false) // [N, 2]
	mu := b.op("Gather", []string{pair, b.constI64([]int64{0}, true)}, aInt("axis", 1))
	r := b.op("Gather", []string{pair, b.constI64([]int64{1}, true)}, aInt("axis", 1))
	diff := b.op("Sub", []string{targets, mu})
	inv := b.op("Exp", []string{b.op("Mul", []string{r, b.scalar(-2)})}) // 1/σ²
	quad := b.op("Mul", []string{b.op("Mul", []string{diff, diff}), inv})
	per := b.op("Add", []string{b.op("Add", []string{r, b.op("Mul", []string{quad, b.scalar(0.5)})}), b.scalar(halfLog2Pi)})
	b.emitNamed("Identity", b.fresh("per_sample_loss"), []string{per}, []string{perName})
	b.emitNamed("Identity", b.fresh("loss"), []string{b.reduceMean(perName, []int64{0}, false)}, []string{meanName})
	node := &onnxpb.NodeProto{Name: "loss", OpType: gaussianNLLOp}
	return &tapeEntry{op: gaussianNLLOp, node: node, inputs: []string{pred, labels, targets}, outputs: []string{meanName, perName},
		saved: map[string]string{"diff": diff, "inv": inv, "onehot": oh3}}
}

func gradGaussianNLL(c *gradCtx, dy []string) []string {
	b := c.b
	ps := c.xShape(0)
	n, k := ps[0], ps[1]/2
	// weight per sample: dmean/N + dℓ_i, as [N]
	var w string
	if dy[0] != "" {
		w = b.op("Expand", []string{b.op("Mul", []string{dy[0], b.scalar(1 / float32(n))}), b.constI64([]int64{n}, false)})
	}
	if dy[1] != "" {
		if w == "" {
			w = dy[1]
		} else {
			w = b.op("Add", []string{dy[1], w})
		}
	}
	diff, inv := c.e.saved["diff"], c.e.saved["inv"]
	dv := b.op("Mul", []string{diff, inv})
	dmu := b.op("Neg", []string{b.op("Mul", []string{dv, w})})
	dr := b.op("Mul", []string{b.op("Sub", []string{b.scalar(1), b.op("Mul", []string{dv, diff})}), w})
	dpair := b.op("Concat", []string{b.reshape(dmu, []int64{n, 1, 1}), b.reshape(dr, []int64{n, 1, 1})}, aInt("axis", 2)) // [N, 1, 2]
	dp3 := b.op("Mul", []string{c.e.saved["onehot"], dpair})                                                              // [N, K, 2]
	return []string{b.reshape(dp3, []int64{n, 2 * k}), "", ""}
}
