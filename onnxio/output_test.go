package onnxio

import (
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// gemmSoftmax is x[N,2] → Gemm → Softmax → probs.
func gemmSoftmax(op string) *Model {
	return model(13, &onnxpb.GraphProto{
		Name:   "gemm_softmax",
		Input:  []*onnxpb.ValueInfoProto{vi("x", -1, 2)},
		Output: []*onnxpb.ValueInfoProto{vi("probs", -1, 2)},
		Initializer: []*onnxpb.TensorProto{
			FloatTensor("fc.weight", []int64{2, 2}, []float32{1, 2, 3, 4}),
			FloatTensor("fc.bias", []int64{2}, []float32{1, -1}),
		},
		Node: []*onnxpb.NodeProto{
			node("Gemm", "fc", []string{"x", "fc.weight", "fc.bias"}, []string{"logits"}, attrI("transB", 1)),
			node(op, "sm", []string{"logits"}, []string{"probs"}, attrI("axis", 1)),
		},
	})
}

func TestStripOutputSoftmax(t *testing.T) {
	m := gemmSoftmax("Softmax")
	name, ok, err := OutputSoftmax(m)
	if err != nil || !ok || name != "sm" {
		t.Fatalf("OutputSoftmax = %q, %v, %v; want sm, true", name, ok, err)
	}
	before := mustBytes(t, m)
	s, changed, err := StripOutputSoftmax(m)
	if err != nil || !changed {
		t.Fatalf("StripOutputSoftmax: changed %v, %v", changed, err)
	}
	if string(mustBytes(t, m)) != string(before) {
		t.Error("StripOutputSoftmax changed its input model")
	}
	mustValid(t, s)
	last := s.Graph().GetNode()[1]
	if last.GetOpType() != "Identity" || len(last.GetAttribute()) != 0 || last.GetInput()[0] != "logits" || last.GetOutput()[0] != "probs" {
		t.Errorf("the final node is %s(%v) → %v with %d attributes; want Identity(logits) → probs", last.GetOpType(), last.GetInput(), last.GetOutput(), len(last.GetAttribute()))
	}
	if v, ok := s.Metadata("bnaudit.output_softmax_removed"); !ok || v != "sm (probs)" {
		t.Errorf("metadata %q, %v", v, ok)
	}
	if _, ok, _ := OutputSoftmax(s); ok {
		t.Error("the stripped model still ends in Softmax")
	}

	// LogSoftmax outputs log-probabilities, which are logits already; a
	// model without a final Softmax is returned as it is.
	for _, op := range []string{"LogSoftmax", "Relu"} {
		m := gemmSoftmax(op)
		if op == "Relu" {
			m.Graph().GetNode()[1].Attribute = nil
		}
		got, changed, err := StripOutputSoftmax(m)
		if err != nil || changed || got != m {
			t.Errorf("%s: changed %v, same model %v, %v; want the model untouched", op, changed, got == m, err)
		}
	}
}
