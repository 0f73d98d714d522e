package onnxio

import "fmt"

// OutputSoftmax reports whether the model's first output is produced by a
// Softmax node of the default domain, and that node's name. A classifier exported with its final Softmax outputs
// probabilities, not logits: bnaudit's signals and its training loss
// expect logits, so such a model is audited through StripOutputSoftmax.
func OutputSoftmax(m *Model) (node string, ok bool, err error) {
	ix, err := NewIndex(m)
	if err != nil {
		return "", false, err
	}
	outs := ix.Graph.GetOutput()
	if len(outs) == 0 {
		return "", false, fmt.Errorf("onnxio: %s has no output: %w", m.Name, ErrInvalidModel)
	}
	p := ix.ProducerOf(outs[0].GetName())
	if p == nil || p.GetOpType() != "Softmax" || (p.GetDomain() != "" && p.GetDomain() != "ai.onnx") {
		return "", false, nil
	}
	return p.GetName(), true, nil
}

// StripOutputSoftmax returns a copy of m whose first output is the input
// of its final Softmax (the logits) instead of the Softmax's probabilities:
// the Softmax node becomes an Identity, so the output keeps its name and
// declared shape. softmax(logits) is the model's former output, so every
// probability bnaudit derives is unchanged, and the losses come from the
// logits without a log of a rounded probability. The model is unchanged
// (and the copy equal to it) when its output is not a Softmax's; changed
// reports which.
func StripOutputSoftmax(m *Model) (out *Model, changed bool, err error) {
	_, ok, err := OutputSoftmax(m)
	if err != nil || !ok {
		return m, false, err
	}
	c := m.Clone()
	ix, err := NewIndex(c)
	if err != nil {
		return nil, false, err
	}
	n := ix.ProducerOf(ix.Graph.GetOutput()[0].GetName())
	if len(n.GetInput()) != 1 || len(n.GetOutput()) != 1 {
		return nil, false, fmt.Errorf("onnxio: %s: Softmax node %q has %d inputs and %d outputs, want 1 and 1: %w",
			m.Name, n.GetName(), len(n.GetInput()), len(n.GetOutput()), ErrInvalidModel)
	}
	n.OpType = "Identity"
	n.Attribute = nil
	n.Domain = ""
	c.SetMetadata("bnaudit.output_softmax_removed", n.GetName()+" ("+n.GetOutput()[0]+")")
	return c, true, nil
}
