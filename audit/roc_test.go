package audit

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

type rocRef struct {
	Name        string             `json:"name"`
	Scores      []float64          `json:"scores"`
	Labels      []int              `json:"labels"`
	AUC         float64            `json:"auc"`
	FPR         []float64          `json:"fpr"`
	TPR         []float64          `json:"tpr"`
	Thresholds  []float64          `json:"thresholds"`
	TPRAt       map[string]float64 `json:"tpr_at"`
	NMembers    int                `json:"n_members"`
	NNonMembers int                `json:"n_nonmembers"`
}

func loadROCRefs(t *testing.T) []rocRef {
	var refs struct {
		Sklearn string    `json:"sklearn"`
		Targets []float64 `json:"targets"`
		Cases   []rocRef  `json:"cases"`
	}
	loadJSON(t, "roc_refs.json", &refs)
	if len(refs.Cases) < 10 {
		t.Fatalf("only %d ROC references", len(refs.Cases))
	}
	return refs.Cases
}

func boolLabels(labels []int) []bool {
	m := make([]bool, len(labels))
	for i, v := range labels {
		m[i] = v == 1
	}
	return m
}

// TestROCMatchesSklearn compares the curve point by point, the AUC and the
// TPR at FPR 0.1%, 1% and 10% with scikit-learn 1.2's roc_curve
// (drop_intermediate=False) and roc_auc_score, to 1e-12.
func TestROCMatchesSklearn(t *testing.T) {
	for _, c := range loadROCRefs(t) {
		member := boolLabels(c.Labels)
		r, err := NewROC(c.Scores, member)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if r.NMembers != c.NMembers || r.NNonMembers != c.NNonMembers {
			t.Errorf("%s: %d members, %d non-members; want %d, %d", c.Name, r.NMembers, r.NNonMembers, c.NMembers, c.NNonMembers)
		}
		if len(r.FPR) != len(c.FPR) {
			t.Errorf("%s: %d ROC points, sklearn has %d", c.Name, len(r.FPR), len(c.FPR))
			continue
		}
		for k := range c.FPR {
			if math.Abs(r.FPR[k]-c.FPR[k]) > 1e-12 || math.Abs(r.TPR[k]-c.TPR[k]) > 1e-12 {
				t.Errorf("%s: point %d = (%v, %v), sklearn (%v, %v)", c.Name, k, r.FPR[k], r.TPR[k], c.FPR[k], c.TPR[k])
				break
			}
			// sklearn 1.2 writes max+1 as the first threshold; bnaudit +Inf.
			if k > 0 && r.Thresholds[k] != c.Thresholds[k] {
				t.Errorf("%s: threshold %d = %v, sklearn %v", c.Name, k, r.Thresholds[k], c.Thresholds[k])
				break
			}
		}
		if !math.IsInf(r.Thresholds[0], 1) {
			t.Errorf("%s: first threshold %v, want +Inf", c.Name, r.Thresholds[0])
		}
		if got := r.AUC(); math.Abs(got-c.AUC) > 1e-12 {
			t.Errorf("%s: AUC %.17g, sklearn %.17g", c.Name, got, c.AUC)
		}
		for key, want := range c.TPRAt {
			target, err := strconv.ParseFloat(key, 64)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.TPRAtFPR(target)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.TPR-want) > 1e-12 {
				t.Errorf("%s: TPR at FPR %v = %v, sklearn %v", c.Name, target, got.TPR, want)
			}
			if got.FPR > target {
				t.Errorf("%s: point for FPR %v has FPR %v", c.Name, target, got.FPR)
			}
		}
	}
}

// TestEvaluateMatchesROC checks that Evaluate reports the curve's numbers,
// at the default targets when none is given.
func TestEvaluateMatchesROC(t *testing.T) {
	for _, c := range loadROCRefs(t) {
		m, err := Evaluate(c.Scores, boolLabels(c.Labels))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(m.AUC-c.AUC) > 1e-12 {
			t.Errorf("%s: AUC %v, sklearn %v", c.Name, m.AUC, c.AUC)
		}
		if len(m.TPRAt) != 2 || m.TPRAt[0].TargetFPR != 0.001 || m.TPRAt[1].TargetFPR != 0.01 {
			t.Fatalf("%s: default targets %+v", c.Name, m.TPRAt)
		}
		for _, at := range m.TPRAt {
			want := c.TPRAt[strconv.FormatFloat(at.TargetFPR, 'g', -1, 64)]
			if math.Abs(at.TPR-want) > 1e-12 {
				t.Errorf("%s: TPR at %v = %v, sklearn %v", c.Name, at.TargetFPR, at.TPR, want)
			}
		}
		// Advantage from the reference curve, independently.
		adv := 0.0
		for k := range c.FPR {
			adv = math.Max(adv, c.TPR[k]-c.FPR[k])
		}
		if math.Abs(m.Advantage-adv) > 1e-12 || math.Abs(m.BalancedAccuracy-(1+adv)/2) > 1e-12 {
			t.Errorf("%s: advantage %v, balanced accuracy %v; want %v, %v", c.Name, m.Advantage, m.BalancedAccuracy, adv, (1+adv)/2)
		}
	}
}

// TestAdvantageHandComputed: scores (0.1, 0.4, 0.35, 0.8), labels
// (0, 0, 1, 1) give points (0,0) (0,.5) (.5,.5) (.5,1) (1,1).
func TestAdvantageHandComputed(t *testing.T) {
	r, err := NewROC([]float64{0.1, 0.4, 0.35, 0.8}, []bool{false, false, true, true})
	if err != nil {
		t.Fatal(err)
	}
	adv, point, thr := r.Advantage()
	if adv != 0.5 || point != 1 || thr != 0.8 {
		t.Errorf("advantage %v at point %d threshold %v; want 0.5 at 1, 0.8", adv, point, thr)
	}
	if ba := r.BalancedAccuracy(); ba != 0.75 {
		t.Errorf("balanced accuracy %v, want 0.75", ba)
	}
	if auc := r.AUC(); auc != 0.75 {
		t.Errorf("AUC %v, want 0.75", auc)
	}
}

// TestLabelPolarity: members are the positive class. Swapping the labels
// (the convention of a library that labels members 0) turns AUC into
// 1 − AUC; bnaudit must not.
func TestLabelPolarity(t *testing.T) {
	scores := []float64{0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05}
	member := []bool{true, true, true, false, true, false, false, true, false, false}
	swapped := make([]bool, len(member))
	for i, m := range member {
		swapped[i] = !m
	}
	a, _ := Evaluate(scores, member)
	b, _ := Evaluate(scores, swapped)
	// P(member score > non-member score) = (5+5+5+4+2)/25 by counting pairs.
	if a.AUC != 21.0/25 || math.Abs(b.AUC-(1-a.AUC)) > 1e-15 {
		t.Errorf("AUC %v (want 0.84), swapped %v (want %v)", a.AUC, b.AUC, 1-a.AUC)
	}
}

// TestTPRAtFPRRestsOn checks the count of non-members behind a TPR at a
// target FPR and the report's flags.
func TestTPRAtFPRRestsOn(t *testing.T) {
	for _, c := range []struct {
		target    float64
		n         int
		allowed   int
		resolved  bool
		sparse    bool
		noteHas   string
		noteEmpty bool
	}{
		{0.001, 1000, 1, true, true, "rests on 1 non-member (of 1000)", false},
		{0.01, 1000, 10, true, false, "", true},
		{0.001, 500, 0, false, true, "below 1/500", false},
		{0.01, 500, 5, true, true, "rests on 5 non-members", false},
		{0.29, 100, 29, true, false, "", true}, // 0.29·100 = 28.999999999999996
		{0.07, 100, 7, true, true, "7 non-members", false},
		{1, 3, 3, true, true, "", false},
		{0, 100, 0, false, true, "", false},
	} {
		if got := allowedFP(c.target, c.n); got != c.allowed {
			t.Errorf("allowedFP(%v, %d) = %d, want %d", c.target, c.n, got, c.allowed)
		}
		at := TPRAtFPR{TargetFPR: c.target, AllowedFP: c.allowed, NNonMembers: c.n}
		if at.Resolved() != c.resolved || at.Sparse() != c.sparse {
			t.Errorf("target %v, n %d: resolved %v sparse %v; want %v %v", c.target, c.n, at.Resolved(), at.Sparse(), c.resolved, c.sparse)
		}
		note := at.Note()
		if c.noteEmpty && note != "" || !c.noteEmpty && !strings.Contains(note, c.noteHas) {
			t.Errorf("target %v, n %d: note %q, want it to contain %q (empty: %v)", c.target, c.n, note, c.noteHas, c.noteEmpty)
		}
	}
	// Through Evaluate, on the sklearn case with 1000 non-members.
	for _, c := range loadROCRefs(t) {
		if c.Name != "n1000_nonmembers" {
			continue
		}
		m, err := Evaluate(c.Scores, boolLabels(c.Labels))
		if err != nil {
			t.Fatal(err)
		}
		if m.TPRAt[0].AllowedFP != 1 || m.TPRAt[1].AllowedFP != 10 || m.TPRAt[0].NNonMembers != 1000 {
			t.Errorf("allowed false positives %+v", m.TPRAt)
		}
		if m.TPRAt[0].Note() == "" {
			t.Errorf("no note for TPR at 0.1%% FPR with 1000 non-members")
		}
	}
}

func TestROCInvalidInput(t *testing.T) {
	for _, c := range []struct {
		name    string
		scores  []float64
		member  []bool
		targets []float64
	}{
		{"no members", []float64{1, 2}, []bool{false, false}, nil},
		{"no non-members", []float64{1, 2}, []bool{true, true}, nil},
		{"empty", nil, nil, nil},
		{"NaN score", []float64{1, math.NaN()}, []bool{true, false}, nil},
		{"length mismatch", []float64{1, 2, 3}, []bool{true, false}, nil},
		{"target above 1", []float64{1, 2}, []bool{true, false}, []float64{1.5}},
		{"negative target", []float64{1, 2}, []bool{true, false}, []float64{-0.1}},
		{"NaN target", []float64{1, 2}, []bool{true, false}, []float64{math.NaN()}},
	} {
		_, err := Evaluate(c.scores, c.member, c.targets...)
		wantInvalid(t, c.name, err)
	}
	r, err := NewROC([]float64{1, 2}, []bool{true, false})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.TPRAtFPR(2)
	wantInvalid(t, "TPRAtFPR(2)", err)
}

// TestROCInfiniteScores: ±Inf scores are legal (an attack may saturate).
func TestROCInfiniteScores(t *testing.T) {
	inf := math.Inf(1)
	m, err := Evaluate([]float64{inf, inf, 0, -inf}, []bool{true, false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	// Pairs (member, non-member): (inf, inf) tie, (inf, -inf) win,
	// (0, inf) loss, (0, -inf) win: (2 + 0.5)/4.
	if m.AUC != 0.625 {
		t.Errorf("AUC %v, want 0.625", m.AUC)
	}
}
