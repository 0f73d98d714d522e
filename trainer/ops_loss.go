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
