package audit

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGapScoresUseOnlyTheArgmax: permuting each row's logits while keeping
// the position of its largest one changes every other signal but not the
// gap attack's scores.
func TestGapScoresUseOnlyTheArgmax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, c = 200, 10
	logits := make([][]float64, n)
	labels := make([]int64, n)
	for i := range logits {
		logits[i] = make([]float64, c)
		for j := range logits[i] {
			logits[i][j] = 3 * r.NormFloat64()
		}
		labels[i] = int64(r.IntN(c))
	}
	before, err := ComputeSignals(logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	permuted := make([][]float64, n)
	for i, row := range logits {
		top := 0
		for j, v := range row {
			if v > row[top] {
				top = j
			}
		}
		// Shuffle the other positions among themselves.
		rest := []int{}
		for j := range row {
			if j != top {
				rest = append(rest, j)
			}
		}
		perm := slices.Clone(rest)
		r.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		permuted[i] = slices.Clone(row)
		for k, j := range rest {
			permuted[i][j] = row[perm[k]]
		}
	}
	after, err := ComputeSignals(permuted, labels)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(GapScores(before), GapScores(after)) {
		t.Error("gap scores changed when the logits were permuted with the argmax kept")
	}
	if slices.Equal(LossScores(before), LossScores(after)) {
		t.Error("the permutation did not change the logits the loss sees; the test proves nothing")
	}
}

// TestGapAttackKnown: members all classified right and non-members right
// half of the time give AUC (1 + 1 − 0.5)/2 = 0.75; flipping the score
// gives 0.25.
func TestGapAttackKnown(t *testing.T) {
	correct := make([]bool, 200)
	member := make([]bool, 200)
	for i := range correct {
		member[i] = i < 100
		correct[i] = member[i] || i%2 == 0
	}
	s := GapScores(Signals{Correct: correct})
	m, err := Evaluate(s, member)
	if err != nil {
		t.Fatal(err)
	}
	if m.AUC != 0.75 {
		t.Errorf("gap AUC %v, want 0.75", m.AUC)
	}
	m, err = Evaluate(Negated(s), member)
	if err != nil {
		t.Fatal(err)
	}
	if m.AUC != 0.25 {
		t.Errorf("flipped gap AUC %v, want 0.25", m.AUC)
	}
}
