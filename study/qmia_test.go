package study

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
)

// TestSplitQMIASeeded: the split of the non-members into fitting and
// scored ones, and of the fitting ones into training and validation, is a
// partition of the stated sizes, the same for the same seed and another
// for another seed; with a population every non-member is scored.
func TestSplitQMIASeeded(t *testing.T) {
	a := splitQMIA(101, 0.5, 0, 7)
	if len(a.fit) != 51 || len(a.scored) != 50 || len(a.val) != 10 || len(a.train) != 41 {
		t.Fatalf("sizes: fit %d scored %d val %d train %d, want 51, 50, 10, 41", len(a.fit), len(a.scored), len(a.val), len(a.train))
	}
	all := append(slices.Clone(a.fit), a.scored...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("fitting ∪ scored is not 0…100: %v", all)
		}
	}
	tv := append(slices.Clone(a.train), a.val...)
	slices.Sort(tv)
	for i, v := range tv {
		if v != i {
			t.Fatalf("train ∪ validation is not 0…50: %v", tv)
		}
	}
	b := splitQMIA(101, 0.5, 0, 7)
	if !slices.Equal(a.fit, b.fit) || !slices.Equal(a.val, b.val) || a.seed != b.seed {
		t.Error("the same seed drew another split")
	}
	if c := splitQMIA(101, 0.5, 0, 8); slices.Equal(a.fit, c.fit) || a.seed == c.seed {
		t.Error("another seed drew the same split")
	}
	p := splitQMIA(40, 0.5, 30, 7)
	if len(p.fit) != 0 || len(p.scored) != 40 || len(p.val)+len(p.train) != 30 {
		t.Errorf("with a population: fit %d scored %d, train+val %d; want 0, 40, 30", len(p.fit), len(p.scored), len(p.val)+len(p.train))
	}
}

// TestQMIARegressorBuilds: the regression model trains as the trainer
// builds it (a Gaussian NLL step graph) with an output of 2K values, a CNN
// for images and an MLP for the rest.
func TestQMIARegressorBuilds(t *testing.T) {
	for _, c := range []struct {
		sample []int64
		pairs  int
		arch   string
	}{
		{[]int64{1, 28, 28}, 10, "flatten 32×7×7"},
		{[]int64{3, 40, 36}, 4, "global average pool over 10×9"},
		{[]int64{1, 4, 4}, 3, "MLP"},
		{[]int64{7}, 1, "MLP"},
	} {
		m, arch, err := qmiaRegressor(c.sample, c.pairs)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(arch, c.arch) {
			t.Errorf("%v: architecture %q, want it to say %q", c.sample, arch, c.arch)
		}
		g, err := trainer.BuildStep(m, trainer.StepConfig{Batch: 3, Optimizer: trainer.AdamW(0), Loss: trainer.LossGaussianNLL})
		if err != nil {
			t.Fatalf("%v: %v", c.sample, err)
		}
		if out := g.Shapes[g.Logits]; len(out) != 2 || out[1] != int64(2*c.pairs) {
			t.Errorf("%v: output %v, want [3 %d]", c.sample, out, 2*c.pairs)
		}
	}
	if _, _, err := qmiaRegressor([]int64{1, 0, 4}, 2); err == nil {
		t.Error("a zero dimension was accepted")
	}
}

// TestQMIAConfigChecked: settings out of range are refused as bad input.
func TestQMIAConfigChecked(t *testing.T) {
	for _, q := range []QMIAConfig{{FitFraction: 1}, {FitFraction: -0.5}, {FitFraction: math.NaN()}, {Epochs: -1}, {LR: -1}} {
		_, err := q.withDefaults()
		wantInvalid(t, "config", err)
	}
	q, err := QMIAConfig{}.withDefaults()
	if err != nil || q.FitFraction != DefaultQMIAFitFraction || q.Epochs != DefaultQMIAEpochs || q.Batch != DefaultQMIABatch || q.LR != DefaultQMIALR {
		t.Errorf("defaults: %+v, %v", q, err)
	}
}

// TestAuditQMIA: an audit with the quantile-regression attack reports it
// beside the threshold attacks, on the members against the non-members
// its regression did not see (their rows hold no score), with its cost,
// its PPV at the priors and its notes; the same seed gives the same
// scores, and a population fits the regression instead of non-members.
func TestAuditQMIA(t *testing.T) {
	requireORT(t)
	members, non, pop := loadFMNIST(t, "train", 120), loadFMNIST(t, "test", 100), loadFMNIST(t, "test", 1000)
	pop, err := pop.Subset(seq(1000)[900:])
	if err != nil {
		t.Fatal(err)
	}
	arch, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	session := ort.SessionOptions{Threads: 2}
	target, err := trainer.Train(context.Background(), trainer.Config{Model: arch, Init: trainer.InitScratch, Train: members, Epochs: 3, Batch: 32,
		Optimizer: trainer.AdamW(0), LR: 2e-3, Schedule: trainer.Cosine, Seed: 1, Session: session})
	if err != nil {
		t.Fatal(err)
	}
	cfg := AuditConfig{Model: target.Model, Members: members, NonMembers: non, Bootstrap: audit.BootstrapOptions{Replicates: 50, Seed: 3},
		Session: session, QMIA: &QMIAConfig{Epochs: 3}}
	r, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var q *audit.AttackReport
	for i, a := range r.Variants[0].Attacks {
		if a.Attack == audit.AttackQMIA {
			q = &r.Variants[0].Attacks[i]
		}
	}
	if q == nil {
		t.Fatal("no qmia attack in the report")
	}
	if q.Members != 120 || q.NonMembers != 50 || q.ModelsTrained != 1 || len(q.TPRAt) != 2 || len(q.Risk) != 2 || !(q.AUC.Lo <= q.AUC.Estimate && q.AUC.Estimate <= q.AUC.Hi) {
		t.Errorf("qmia: %d members, %d non-members, %d models trained, %d TPR@FPR, %d risk rows, AUC %v", q.Members, q.NonMembers, q.ModelsTrained, len(q.TPRAt), len(q.Risk), q.AUC)
	}
	col := r.Samples.Scores[audit.AttackQMIA]
	unscored := 0
	for i, v := range col {
		if math.IsNaN(v) {
			unscored++
			if r.Samples.Member[i] {
				t.Errorf("member row %d has no qmia score", i)
			}
		}
	}
	if unscored != 50 {
		t.Errorf("%d rows without a qmia score, want the 50 fitting non-members", unscored)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"cost: 1 model trained", "40 of them train it and 10 choose its epoch", "On the same 120 members and 50 non-members, LOSS reaches AUC"} {
		if !strings.Contains(notes, want) {
			t.Errorf("the notes lack %q:\n%s", want, notes)
		}
	}
	if _, ok := r.Definitions[audit.AttackQMIA]; !ok {
		t.Error("no definition of qmia")
	}
	again, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Samples.Scores[audit.AttackQMIA]; !slices.EqualFunc(got, col, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
		t.Error("the same seed gave other qmia scores")
	}
	cfg.Population = pop
	withPop, err := Audit(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range withPop.Variants[0].Attacks {
		if a.Attack == audit.AttackQMIA && (a.Members != 120 || a.NonMembers != 100) {
			t.Errorf("with a population: qmia on %d members vs %d non-members, want 120 vs all 100", a.Members, a.NonMembers)
		}
	}
	if notes := strings.Join(withPop.Notes, "\n"); !strings.Contains(notes, "on the 100 population samples: 80 of them train it") {
		t.Errorf("the notes do not say the population fitted the regression:\n%s", notes)
	}
}
