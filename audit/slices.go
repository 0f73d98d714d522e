package audit

import (
	"fmt"
	"math"
	"sort"
)

// Slices: an attack's metrics on subsets of the audited samples, and the
// samples it finds most member-like. An overall AUC can hide a class, the
// outliers or the misclassified samples that leak far more than the rest.

// minSliceSide is the least number of members and of non-members a slice
// needs to be reported; below it the AUC's interval says little.
const minSliceSide = 10

// SliceInput is what the slices are cut from: one attack's scores over the
// audited samples with their membership and attributes. Correct and Canary
// may be nil.
type SliceInput struct {
	Attack  string
	Scores  []float64
	Member  []bool
	Label   []int64
	Correct []bool
	Canary  []bool
}

// ComputeSlices reports the attack per class, on canaries vs the other
// samples, and on correctly vs incorrectly classified samples, over the
// samples it scored (a NaN score marks one it did not). A slice with fewer
// than 10 members or non-members is left out.
func ComputeSlices(in SliceInput, opt BootstrapOptions) ([]SliceReport, error) {
	n := len(in.Scores)
	if len(in.Member) != n || len(in.Label) != n || (in.Correct != nil && len(in.Correct) != n) || (in.Canary != nil && len(in.Canary) != n) {
		return nil, fmt.Errorf("audit: slices: %d scores but %d membership, %d labels, %d correctness, %d canary flags: %w",
			n, len(in.Member), len(in.Label), len(in.Correct), len(in.Canary), ErrInvalidInput)
	}
	var out []SliceReport
	add := func(name string, keep func(i int) bool) error {
		var s []float64
		var m []bool
		pos, neg := 0, 0
		for i := 0; i < n; i++ {
			if keep(i) && !math.IsNaN(in.Scores[i]) { // NaN: a row the attack did not score
				s, m = append(s, in.Scores[i]), append(m, in.Member[i])
				if in.Member[i] {
					pos++
				} else {
					neg++
				}
			}
		}
		if pos < minSliceSide || neg < minSliceSide {
			return nil
		}
		rep, err := NewAttackReport(in.Attack, s, m, opt)
		if err != nil {
			return fmt.Errorf("audit: slice %s: %w", name, err)
		}
		rep.ROC = nil // the overall curve is plotted; slices are tabulated
		out = append(out, SliceReport{Slice: name, Attack: rep})
		return nil
	}
	classes := map[int64]bool{}
	for _, y := range in.Label {
		classes[y] = true
	}
	var ks []int64
	for y := range classes {
		ks = append(ks, y)
	}
	sort.Slice(ks, func(a, b int) bool { return ks[a] < ks[b] })
	notCanary := func(i int) bool { return in.Canary == nil || !in.Canary[i] }
	for _, y := range ks {
		if err := add(fmt.Sprintf("class=%d", y), func(i int) bool { return in.Label[i] == y && notCanary(i) }); err != nil {
			return nil, err
		}
	}
	if in.Canary != nil {
		if err := add("canaries", func(i int) bool { return in.Canary[i] }); err != nil {
			return nil, err
		}
		if err := add("typical", func(i int) bool { return !in.Canary[i] }); err != nil {
			return nil, err
		}
	}
	if in.Correct != nil {
		if err := add("correct", func(i int) bool { return in.Correct[i] }); err != nil {
			return nil, err
		}
		if err := add("incorrect", func(i int) bool { return !in.Correct[i] }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SampleRisk is one audited sample the attack finds member-like.
type SampleRisk struct {
	Index  int     `json:"index"` // row of scores.csv
	Label  int64   `json:"label"`
	Member bool    `json:"member"`
	Canary bool    `json:"canary"`
	Score  float64 `json:"score"`
	// FPR is the share of non-members scoring at least as high: the false
	// positive rate of a threshold that flags this sample.
	FPR          float64 `json:"fpr"`
	Loss         float64 `json:"loss"`
	Memorization float64 `json:"memorization"` // Feldman–Zhang; NaN without reference models
}

// MostVulnerable returns the k members with the highest scores (ties by
// the LOSS attack's score, then by row), each with the false positive rate
// its threshold would cost.
func MostVulnerable(t *SampleTable, attack string, k int) []SampleRisk {
	scores := t.Scores[attack]
	if len(scores) != len(t.Member) || k <= 0 {
		return nil
	}
	var non []float64
	var mem []int
	for i, m := range t.Member {
		if math.IsNaN(scores[i]) {
			continue
		}
		if m {
			mem = append(mem, i)
		} else {
			non = append(non, scores[i])
		}
	}
	sort.Float64s(non)
	// Ties (RMIA's scores saturate at 1) are broken by the LOSS attack's
	// score, then by row.
	tie := t.Scores[AttackLoss]
	if len(tie) != len(scores) {
		tie = nil
	}
	sort.SliceStable(mem, func(a, b int) bool {
		i, j := mem[a], mem[b]
		if scores[i] != scores[j] || tie == nil {
			return scores[i] > scores[j]
		}
		return tie[i] > tie[j]
	})
	var out []SampleRisk
	for _, i := range mem[:min(k, len(mem))] {
		// non-members with score ≥ this one
		at := sort.SearchFloat64s(non, scores[i])
		fpr := math.NaN()
		if len(non) > 0 {
			fpr = float64(len(non)-at) / float64(len(non))
		}
		r := SampleRisk{Index: t.Index[i], Label: t.Label[i], Member: true, Score: scores[i], FPR: fpr, Loss: math.NaN(), Memorization: math.NaN()}
		if i < len(t.Canary) {
			r.Canary = t.Canary[i]
		}
		if i < len(t.Loss) {
			r.Loss = t.Loss[i]
		}
		if i < len(t.Memorization) {
			r.Memorization = t.Memorization[i]
		}
		out = append(out, r)
	}
	return out
}

// StrongestAttack names the attack with the highest AUC estimate.
func StrongestAttack(as []AttackReport) string {
	best, name := math.Inf(-1), ""
	for _, a := range as {
		if a.AUC.Estimate > best {
			best, name = a.AUC.Estimate, a.Attack
		}
	}
	return name
}
