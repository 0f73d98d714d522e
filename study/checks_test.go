package study

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func loadFMNIST(t *testing.T, split string, n int) *dataset.Dataset {
	t.Helper()
	d, err := dataset.Load("../testdata/fashion-mnist", dataset.LoadOptions{Split: split, MaxSamples: n})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = d.WithNorm(dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}); err != nil {
		t.Fatal(err)
	}
	return d
}

func concat(t *testing.T, parts ...*dataset.Dataset) *dataset.Dataset {
	t.Helper()
	d, err := dataset.Concat("mixed", parts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func subset(t *testing.T, d *dataset.Dataset, from, to int) *dataset.Dataset {
	t.Helper()
	idx := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	s, err := d.Subset(idx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDisjointNonMembers: non-members that are members by content are
// refused when they are many (or all), dropped with a counted note when
// they are few.
func TestDisjointNonMembers(t *testing.T) {
	train := loadFMNIST(t, "train", 400)
	test := loadFMNIST(t, "test", 300)
	members := subset(t, train, 0, 200)
	// The same samples: all shared.
	_, _, err := DisjointNonMembers(members, members)
	var oe *OverlapError
	if !errors.As(err, &oe) || oe.Shared != 200 || oe.Total != 200 || !errors.Is(err, audit.ErrInvalidInput) {
		t.Fatalf("members as non-members: %v", err)
	}
	// 5 shared of 105: over 1%.
	_, _, err = DisjointNonMembers(members, concat(t, subset(t, test, 0, 100), subset(t, train, 10, 15)))
	if !errors.As(err, &oe) || oe.Shared != 5 || oe.Total != 105 {
		t.Fatalf("5 of 105 shared: %v", err)
	}
	// 2 shared of 302: dropped with a note.
	non := concat(t, subset(t, test, 0, 150), subset(t, train, 3, 4), subset(t, test, 150, 300), subset(t, train, 150, 151))
	got, note, err := DisjointNonMembers(members, non)
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != 300 || !strings.Contains(note, "2 of the 302 non-members") {
		t.Fatalf("kept %d non-members, note %q; want 300 and a note counting 2 of 302", got.Len(), note)
	}
	if again, _ := dataset.Overlap(members, got); len(again) != 0 {
		t.Fatalf("shared samples left: %v", again)
	}
	// No overlap: unchanged, no note.
	got, note, err = DisjointNonMembers(members, test)
	if err != nil || got != test || note != "" {
		t.Fatalf("disjoint sets: %v %q", err, note)
	}
}

// constantModel is the small CNN with its last layer's weights zero and
// its bias favouring class c: it predicts c for every input, with logits
// b (b_c = 5, 0 elsewhere).
func constantModel(t *testing.T, c int) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load("../testdata/models/small_cnn.preserve.onnx")
	if err != nil {
		t.Fatal(err)
	}
	var gemm *onnxpb.NodeProto
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Gemm" {
			gemm = n
		}
	}
	inits := m.Graph().GetInitializer()
	for i, init := range inits {
		switch init.GetName() {
		case gemm.GetInput()[1]:
			inits[i] = onnxio.FloatTensor(init.GetName(), init.GetDims(), make([]float32, numel(init.GetDims())))
		case gemm.GetInput()[2]:
			b := make([]float32, numel(init.GetDims()))
			b[c] = 5
			inits[i] = onnxio.FloatTensor(init.GetName(), init.GetDims(), b)
		}
	}
	return m
}

func numel(dims []int64) int {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return n
}

// TestAuditReportsMemberFit: the audited model's training accuracy and
// loss are its accuracy and mean loss on its members (issue 17, item 2).
func TestAuditReportsMemberFit(t *testing.T) {
	requireORT(t)
	members := loadFMNIST(t, "train", 60)
	c := int(members.Labels()[0])
	hits := 0
	for _, l := range members.Labels() {
		if int(l) == c {
			hits++
		}
	}
	// Cross-entropy of logits (5 at c, 0 elsewhere, 10 classes).
	lse := math.Log(math.Exp(5) + 9)
	wantAcc := float64(hits) / 60
	wantLoss := (float64(hits)*(lse-5) + float64(60-hits)*lse) / 60
	r, err := Audit(context.Background(), AuditConfig{Model: constantModel(t, c), Members: members, NonMembers: loadFMNIST(t, "test", 60),
		Bootstrap: audit.BootstrapOptions{Replicates: 10, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	v := r.Variants[0]
	if math.Abs(v.TrainAccuracy.Estimate-wantAcc) > 1e-9 || math.Abs(v.TrainLoss.Estimate-wantLoss) > 1e-4 {
		t.Fatalf("train accuracy %.6f loss %.6f, want %.6f and %.6f", v.TrainAccuracy.Estimate, v.TrainLoss.Estimate, wantAcc, wantLoss)
	}
}

// softmaxModel is the small CNN with a Softmax after its logits.
func softmaxModel(t *testing.T) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load("../testdata/models/small_cnn.preserve.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph()
	out := g.GetOutput()[0]
	logits := out.GetName()
	for _, n := range g.GetNode() {
		for i, o := range n.GetOutput() {
			if o == logits {
				n.Output[i] = logits + "_pre"
			}
		}
	}
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: "Softmax", Name: "final_softmax", Input: []string{logits + "_pre"}, Output: []string{logits},
		Attribute: []*onnxpb.AttributeProto{{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1}}})
	return m
}

// flattenOutputModel is the small CNN cut after its Flatten: not a
// classifier of 10 classes.
func flattenOutputModel(t *testing.T) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Load("../testdata/models/small_cnn.preserve.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph()
	var nodes []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Gemm" {
			g.GetOutput()[0].Name = n.GetInput()[0]
			g.GetOutput()[0].GetType().GetTensorType().Shape = nil
			continue
		}
		nodes = append(nodes, n)
	}
	g.Node = nodes
	return m
}

// TestPrepareClassifier: a final Softmax is taken off with a note; an
// output that is not one logit per class, or a label beyond the output,
// is refused naming the data set and the label.
func TestPrepareClassifier(t *testing.T) {
	members := loadFMNIST(t, "train", 50)
	m, notes, err := PrepareClassifier(softmaxModel(t), members)
	if err != nil {
		t.Fatal(err)
	}
	if node, ok, _ := onnxio.OutputSoftmax(m); ok || len(notes) != 1 || !strings.Contains(notes[0], "Softmax") {
		t.Fatalf("softmax model: still softmax %v (%s), notes %q", ok, node, notes)
	}
	_, _, err = PrepareClassifier(flattenOutputModel(t), members)
	wantInvalid(t, "flatten output", err)
	if err == nil || !strings.Contains(err.Error(), "outputs 6272 values per sample") || !strings.Contains(err.Error(), "10 classes") {
		t.Fatalf("flatten output: %v", err)
	}
	plain, err := onnxio.Load("../testdata/models/small_cnn.preserve.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if _, notes, err := PrepareClassifier(plain, members); err != nil || len(notes) != 0 {
		t.Fatalf("plain classifier: %v %q", err, notes)
	}
}
