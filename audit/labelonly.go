package audit

import "fmt"

// Label-only attacks (docs/METHODS.md, "Label-only attacks"): an adversary
// who sees only the model's predicted label.

// GapScores returns the gap attack's scores (Yeom et al. 2018; the
// baseline of Choquette-Choo et al. 2021): 1 when the model classifies the
// sample correctly, 0 otherwise. Signals.Correct compares the label with
// the first index of the largest logit, so nothing but the predicted label
// enters the score.
func GapScores(s Signals) []float64 { return BoolsToFloats(s.Correct) }

// Augmentation is one query of the data-augmentation attack: the image
// flipped left–right (Flip) and then shifted by DX columns and DY rows,
// the uncovered pixels set to 0 (raw value, before normalization).
type Augmentation struct {
	DX, DY int
	Flip   bool
}

// Augmentations draws n queries (seeded): the first is the image itself,
// each other one a shift by DX, DY uniform in [−maxShift, maxShift] and a
// flip with probability ½ (Choquette-Choo et al. 2021, translations and
// flips).
func Augmentations(n, maxShift int, seed uint64) ([]Augmentation, error) {
	if n < 1 || maxShift < 0 {
		return nil, fmt.Errorf("audit: augmentations need n ≥ 1 and a shift ≥ 0, not %d and %d: %w", n, maxShift, ErrInvalidInput)
	}
	r := StreamAugmentations.Rand(seed)
	out := []Augmentation{{}}
	for len(out) < n {
		out = append(out, Augmentation{DX: r.IntN(2*maxShift+1) - maxShift, DY: r.IntN(2*maxShift+1) - maxShift, Flip: r.IntN(2) == 1})
	}
	return out, nil
}

// Augment writes into dst the augmentation a of src, an image of c
// channels of h rows and w columns (channel-major); dst and src must not
// overlap.
func Augment(dst, src []float32, c, h, w int, a Augmentation) error {
	if len(src) != c*h*w || len(dst) != len(src) {
		return fmt.Errorf("audit: augmenting a %d×%d×%d image of %d values into %d: %w", c, h, w, len(src), len(dst), ErrInvalidInput)
	}
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				sx, sy := x-a.DX, y-a.DY // the source pixel of (x, y)
				if a.Flip {
					sx = w - 1 - sx
				}
				v := float32(0)
				if sx >= 0 && sx < w && sy >= 0 && sy < h {
					v = src[(ch*h+sy)*w+sx]
				}
				dst[(ch*h+y)*w+x] = v
			}
		}
	}
	return nil
}

// AugmentationScores returns the data-augmentation attack's scores: for
// each sample, the fraction of its augmented queries the model classifies
// correctly. correct[k][i] says whether query k of sample i was right.
func AugmentationScores(correct [][]bool) ([]float64, error) {
	if len(correct) == 0 {
		return nil, fmt.Errorf("audit: no augmented query: %w", ErrInvalidInput)
	}
	out := make([]float64, len(correct[0]))
	for k, row := range correct {
		if len(row) != len(out) {
			return nil, fmt.Errorf("audit: query %d covers %d samples, query 0 %d: %w", k, len(row), len(out), ErrInvalidInput)
		}
		for i, ok := range row {
			if ok {
				out[i]++
			}
		}
	}
	for i := range out {
		out[i] /= float64(len(correct))
	}
	return out, nil
}
