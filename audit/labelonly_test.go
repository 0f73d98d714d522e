package audit

import (
	"errors"
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

// TestAugment: a 1×2×3 image shifted one column right, then flipped and
// shifted one row down.
func TestAugment(t *testing.T) {
	src := []float32{1, 2, 3, 4, 5, 6}
	dst := make([]float32, 6)
	if err := Augment(dst, src, 1, 2, 3, Augmentation{DX: 1}); err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 1, 2, 0, 4, 5}; !slices.Equal(dst, want) {
		t.Errorf("shift right: %v, want %v", dst, want)
	}
	if err := Augment(dst, src, 1, 2, 3, Augmentation{DY: 1, Flip: true}); err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 0, 0, 3, 2, 1}; !slices.Equal(dst, want) {
		t.Errorf("flip and shift down: %v, want %v", dst, want)
	}
	if err := Augment(dst[:5], src, 1, 2, 3, Augmentation{}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("short dst: %v", err)
	}
}

func TestAugmentations(t *testing.T) {
	a, err := Augmentations(20, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Augmentations(20, 2, 7)
	if len(a) != 20 || a[0] != (Augmentation{}) || !slices.Equal(a, b) {
		t.Fatalf("augmentations %v (again %v): want 20, the first the identity, seeded", a, b)
	}
	for _, x := range a {
		if x.DX < -2 || x.DX > 2 || x.DY < -2 || x.DY > 2 {
			t.Errorf("shift %v beyond 2", x)
		}
	}
	if _, err := Augmentations(0, 2, 7); !errors.Is(err, ErrInvalidInput) {
		t.Error("0 augmentations accepted")
	}
}

// TestAugmentationAttackKnown: members right on every query, non-members
// on half of them; the attack separates them fully, and its sign flip
// inverts it.
func TestAugmentationAttackKnown(t *testing.T) {
	const n = 40
	correct := make([][]bool, 4)
	member := make([]bool, n)
	for i := range member {
		member[i] = i < n/2
	}
	for k := range correct {
		correct[k] = make([]bool, n)
		for i := range correct[k] {
			correct[k][i] = member[i] || k%2 == 0
		}
	}
	s, err := AugmentationScores(correct)
	if err != nil {
		t.Fatal(err)
	}
	if s[0] != 1 || s[n-1] != 0.5 {
		t.Fatalf("scores %v", s)
	}
	m, _ := Evaluate(s, member)
	f, _ := Evaluate(Negated(s), member)
	if m.AUC != 1 || f.AUC != 0 {
		t.Errorf("AUC %v, flipped %v; want 1 and 0", m.AUC, f.AUC)
	}
	if _, err := AugmentationScores([][]bool{{true}, {true, false}}); !errors.Is(err, ErrInvalidInput) {
		t.Error("ragged queries accepted")
	}
}
