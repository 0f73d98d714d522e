package audit

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// FeldmanZhangResult holds Feldman–Zhang memorization scores.
type FeldmanZhangResult struct {
	// Scores[i] = InAccuracy[i] − OutAccuracy[i], in [−1, 1]; NaN when
	// sample i has no IN or no OUT model (listed in Missing).
	Scores []float64
	// InAccuracy[i] and OutAccuracy[i] are the mean correctness of sample
	// i over the models that trained on it and over those that did not
	// (NaN with no such model).
	InAccuracy, OutAccuracy []float64
	// NIn[i] and NOut[i] count those models.
	NIn, NOut []int
	// Missing lists the samples whose score is NaN.
	Missing []int
}

// FeldmanZhang estimates the memorization score of Feldman & Zhang (2020),
// mem(i) = Pr[h(x_i) = y_i | i ∈ S] − Pr[h(x_i) = y_i | i ∉ S], from k
// models trained on random subsets: correct[k][i] says whether model k
// classifies sample i correctly (Signals.Correct), in[k][i] whether sample
// i was in model k's training set. The same reference models that serve
// LiRA and RMIA serve here.
func FeldmanZhang(correct [][]bool, in [][]bool) (FeldmanZhangResult, error) {
	if len(correct) == 0 {
		return FeldmanZhangResult{}, fmt.Errorf("audit: Feldman–Zhang: no models: %w", ErrInvalidInput)
	}
	if len(in) != len(correct) {
		return FeldmanZhangResult{}, fmt.Errorf("audit: Feldman–Zhang: %d correctness rows but %d IN-mask rows: %w", len(correct), len(in), ErrInvalidInput)
	}
	n := len(correct[0])
	for k := range correct {
		if len(correct[k]) != n || len(in[k]) != n {
			return FeldmanZhangResult{}, fmt.Errorf("audit: Feldman–Zhang: model %d has %d correctness values and %d IN-mask values, want %d: %w",
				k, len(correct[k]), len(in[k]), n, ErrInvalidInput)
		}
	}
	r := FeldmanZhangResult{
		Scores:      make([]float64, n),
		InAccuracy:  make([]float64, n),
		OutAccuracy: make([]float64, n),
		NIn:         make([]int, n),
		NOut:        make([]int, n),
	}
	for i := range n {
		var cin, cout int
		for k := range correct {
			if in[k][i] {
				r.NIn[i]++
				if correct[k][i] {
					cin++
				}
			} else {
				r.NOut[i]++
				if correct[k][i] {
					cout++
				}
			}
		}
		r.InAccuracy[i] = ratio(cin, r.NIn[i])
		r.OutAccuracy[i] = ratio(cout, r.NOut[i])
		r.Scores[i] = r.InAccuracy[i] - r.OutAccuracy[i]
		if r.NIn[i] == 0 || r.NOut[i] == 0 {
			r.Missing = append(r.Missing, i)
		}
	}
	return r, nil
}

// ratio returns a/b, or NaN when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// CanaryGap is the memorization gap on out-of-distribution canaries
// (docs/METHODS.md, "Memorization", approach 1): inserted canaries were in the
// training set, held-out ones come from the same source with the same
// labelling rule and were not.
type CanaryGap struct {
	NInserted int `json:"inserted"`
	NHeldOut  int `json:"held_out"`
	// Accuracy on each set, and AccuracyGap = inserted − held-out: the
	// share of canaries memorized beyond what the rule lets a model guess.
	InsertedAccuracy Interval `json:"inserted_accuracy"`
	HeldOutAccuracy  Interval `json:"held_out_accuracy"`
	AccuracyGap      Interval `json:"accuracy_gap,required"`
	// Mean loss on each set, and LossGap = inserted − held-out (negative
	// when the model memorized the inserted canaries).
	InsertedLoss Interval `json:"inserted_loss"`
	HeldOutLoss  Interval `json:"held_out_loss"`
	LossGap      Interval `json:"loss_gap"`
}

// CanaryMemorization computes the canary memorization gap from the signals
// of the audited model on the inserted and the held-out canaries, with
// bootstrap intervals that resample each set separately at its own size
// (opt.TargetFPRs is not used).
func CanaryMemorization(inserted, heldOut Signals, opt BootstrapOptions) (CanaryGap, error) {
	if inserted.Len() == 0 || heldOut.Len() == 0 {
		return CanaryGap{}, fmt.Errorf("audit: canary gap needs inserted and held-out canaries (have %d and %d): %w", inserted.Len(), heldOut.Len(), ErrInvalidInput)
	}
	for _, s := range []Signals{inserted, heldOut} {
		if len(s.Correct) != s.Len() {
			return CanaryGap{}, fmt.Errorf("audit: canary signals have %d losses but %d correctness values: %w", s.Len(), len(s.Correct), ErrInvalidInput)
		}
	}
	mean := func(s Signals, idx []int) (acc, loss float64) {
		for _, i := range idx {
			if s.Correct[i] {
				acc++
			}
			loss += s.Loss[i]
		}
		return acc / float64(len(idx)), loss / float64(len(idx))
	}
	stat := func(idx [][]int) []float64 {
		ai, li := mean(inserted, idx[0])
		ah, lh := mean(heldOut, idx[1])
		return []float64{ai, ah, ai - ah, li, lh, li - lh}
	}
	iv, err := BootstrapGroups([]int{inserted.Len(), heldOut.Len()}, stat, opt)
	if err != nil {
		return CanaryGap{}, err
	}
	return CanaryGap{
		NInserted: inserted.Len(), NHeldOut: heldOut.Len(),
		InsertedAccuracy: iv[0], HeldOutAccuracy: iv[1], AccuracyGap: iv[2],
		InsertedLoss: iv[3], HeldOutLoss: iv[4], LossGap: iv[5],
	}, nil
}

// Exposure returns the exposure of a canary (Carlini et al. 2019, "The
// Secret Sharer"): log₂|R| − log₂ rank, where R is the candidate set made
// of the canary and the others (|R| = len(others) + 1) and rank is the
// canary's position when R is sorted by increasing loss (rank 1 = lowest
// loss, exposure log₂|R|; rank |R|, exposure 0). Ties take their mean
// position: rank = 1 + #(others below) + #(others equal)/2.
func Exposure(canaryLoss float64, others []float64) (float64, error) {
	e, err := Exposures([]float64{canaryLoss}, others)
	if err != nil {
		return 0, err
	}
	return e[0], nil
}

// Exposures returns the exposure of each canary against the same other
// candidates (see Exposure); the canaries are not candidates of each
// other. It sorts the candidates once.
func Exposures(canaryLosses, others []float64) ([]float64, error) {
	if err := checkNotNaN("exposure canary loss", canaryLosses); err != nil {
		return nil, err
	}
	if err := checkNotNaN("exposure candidate loss", others); err != nil {
		return nil, err
	}
	sorted := slices.Clone(others)
	slices.Sort(sorted)
	logR := math.Log2(float64(len(sorted) + 1))
	out := make([]float64, len(canaryLosses))
	for i, c := range canaryLosses {
		below := sort.SearchFloat64s(sorted, c) // first index with value ≥ c
		upto := sort.Search(len(sorted), func(j int) bool { return sorted[j] > c })
		rank := 1 + float64(below) + float64(upto-below)/2
		out[i] = logR - math.Log2(rank)
	}
	return out, nil
}

func checkNotNaN(name string, x []float64) error {
	for i, v := range x {
		if math.IsNaN(v) {
			return fmt.Errorf("audit: %s %d is NaN: %w", name, i, ErrInvalidInput)
		}
	}
	return nil
}
