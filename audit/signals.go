package audit

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalidInput is wrapped by every error that reports malformed input:
// mismatched lengths, ragged rows, NaN or infinite values, labels out of
// range, a membership vector with one class only, and the like.
var ErrInvalidInput = errors.New("invalid input")

// Float is the element type of logits that the signal functions accept.
// Whatever the input type, every computation runs in float64.
type Float interface {
	~float32 | ~float64
}

// Label is the element type of class labels that the signal functions
// accept, so that labels read as bytes (IDX files) or int64 (ONNX tensors)
// need no conversion.
type Label interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// Signal holds the per-sample signals of one model on one sample (x, y);
// see docs/METHODS.md, "Signals".
type Signal struct {
	// Loss is the cross-entropy ℓ = logsumexp(z) − z_y.
	Loss float64
	// Prob is the true-class probability p_y = exp(−ℓ).
	Prob float64
	// Phi is the logit-scaled confidence φ = log p_y − log Σ_{j≠y} p_j,
	// computed as z_y − logsumexp_{j≠y}(z_j).
	Phi float64
	// Entropy is H = −Σ_j p_j log p_j (natural log).
	Entropy float64
	// ModEntropy is Song & Mittal's modified entropy
	// Mentr = −(1−p_y) log p_y − Σ_{j≠y} p_j log(1−p_j), logs clamped at
	// 1e-30. Lower means more member-like.
	ModEntropy float64
	// Correct reports whether the first index of the largest logit is y.
	Correct bool
}

// Signals holds the signals of one model on n samples; index i of every
// slice belongs to sample i. The fields mean what Signal's fields mean.
type Signals struct {
	Loss       []float64
	Prob       []float64
	Phi        []float64
	Entropy    []float64
	ModEntropy []float64
	Correct    []bool
}

// Len returns the number of samples.
func (s Signals) Len() int { return len(s.Loss) }

// At returns the signals of sample i.
func (s Signals) At(i int) Signal {
	return Signal{
		Loss:       s.Loss[i],
		Prob:       s.Prob[i],
		Phi:        s.Phi[i],
		Entropy:    s.Entropy[i],
		ModEntropy: s.ModEntropy[i],
		Correct:    s.Correct[i],
	}
}

// Subset returns the signals of the samples idx, in that order.
func (s Signals) Subset(idx []int) Signals {
	out := newSignals(len(idx))
	for k, i := range idx {
		out.set(k, s.At(i))
	}
	return out
}

func newSignals(n int) Signals {
	return Signals{
		Loss:       make([]float64, n),
		Prob:       make([]float64, n),
		Phi:        make([]float64, n),
		Entropy:    make([]float64, n),
		ModEntropy: make([]float64, n),
		Correct:    make([]bool, n),
	}
}

func (s Signals) set(i int, v Signal) {
	s.Loss[i] = v.Loss
	s.Prob[i] = v.Prob
	s.Phi[i] = v.Phi
	s.Entropy[i] = v.Entropy
	s.ModEntropy[i] = v.ModEntropy
	s.Correct[i] = v.Correct
}

// ComputeSignal returns the signals of one sample from its logits z (one
// value per class, at least two classes) and its label y.
func ComputeSignal[T Float, L Label](z []T, y L) (Signal, error) {
	if len(z) < 2 {
		return Signal{}, fmt.Errorf("audit: logits have %d classes, signals need at least 2: %w", len(z), ErrInvalidInput)
	}
	buf := make([]float64, len(z))
	if err := loadRow(buf, z, 0); err != nil {
		return Signal{}, err
	}
	c, err := checkLabel(y, len(z), 0)
	if err != nil {
		return Signal{}, err
	}
	return rowSignal(buf, c), nil
}

// ComputeSignals returns the signals of n samples from their logits (n
// rows with the same number of classes, at least two) and their labels.
// It fails, wrapping ErrInvalidInput, when the lengths differ, a row is
// ragged, a logit is NaN or infinite, or a label is out of range.
func ComputeSignals[T Float, L Label](logits [][]T, labels []L) (Signals, error) {
	if len(logits) != len(labels) {
		return Signals{}, fmt.Errorf("audit: %d rows of logits but %d labels: %w", len(logits), len(labels), ErrInvalidInput)
	}
	if len(logits) == 0 {
		return newSignals(0), nil
	}
	c := len(logits[0])
	if c < 2 {
		return Signals{}, fmt.Errorf("audit: logits have %d classes, signals need at least 2: %w", c, ErrInvalidInput)
	}
	out := newSignals(len(logits))
	buf := make([]float64, c)
	for i, row := range logits {
		if len(row) != c {
			return Signals{}, fmt.Errorf("audit: logits row %d has %d values, row 0 has %d: %w", i, len(row), c, ErrInvalidInput)
		}
		if err := loadRow(buf, row, i); err != nil {
			return Signals{}, err
		}
		y, err := checkLabel(labels[i], c, i)
		if err != nil {
			return Signals{}, err
		}
		out.set(i, rowSignal(buf, y))
	}
	return out, nil
}

// ComputeSignalsFlat is ComputeSignals for logits stored row-major in one
// slice of len(labels)·numClasses values, as ONNX Runtime returns them.
func ComputeSignalsFlat[T Float, L Label](logits []T, numClasses int, labels []L) (Signals, error) {
	if numClasses < 2 {
		return Signals{}, fmt.Errorf("audit: logits have %d classes, signals need at least 2: %w", numClasses, ErrInvalidInput)
	}
	if len(logits) != numClasses*len(labels) {
		return Signals{}, fmt.Errorf("audit: %d logits for %d labels of %d classes (want %d): %w",
			len(logits), len(labels), numClasses, numClasses*len(labels), ErrInvalidInput)
	}
	out := newSignals(len(labels))
	buf := make([]float64, numClasses)
	for i := range labels {
		if err := loadRow(buf, logits[i*numClasses:(i+1)*numClasses], i); err != nil {
			return Signals{}, err
		}
		y, err := checkLabel(labels[i], numClasses, i)
		if err != nil {
			return Signals{}, err
		}
		out.set(i, rowSignal(buf, y))
	}
	return out, nil
}

// loadRow converts one row of logits to float64, refusing NaN and ±Inf.
func loadRow[T Float](dst []float64, row []T, i int) error {
	for j, v := range row {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("audit: sample %d: logit %d is %v: %w", i, j, f, ErrInvalidInput)
		}
		dst[j] = f
	}
	return nil
}

func checkLabel[L Label](y L, c, i int) (int, error) {
	// A huge unsigned label wraps to a negative int64 and is refused too.
	v := int64(y)
	if v < 0 || v >= int64(c) {
		return 0, fmt.Errorf("audit: sample %d: label %d out of range [0, %d): %w", i, y, c, ErrInvalidInput)
	}
	return int(v), nil
}

// logFloor is log(1e-30), the clamp of the logarithms in Mentr.
var logFloor = math.Log(1e-30)

// lseParts returns (m, l) with logsumexp_{j≠skip}(z_j) = m + l, where m is
// the largest such z_j and l = log1p(Σ exp(z_j − m)) over the others. It
// keeps the two parts apart so that callers can subtract m exactly: for
// z = (40, 0) the loss of class 0 is l ≈ 4.2e-18, which m + l would round
// away. skip < 0 skips nothing. At least one index must remain.
func lseParts(z []float64, skip int) (m, l float64) {
	k := -1
	for j, v := range z {
		if j != skip && (k < 0 || v > z[k]) {
			k = j
		}
	}
	m = z[k]
	s := 0.0
	for j, v := range z {
		if j != skip && j != k {
			s += math.Exp(v - m)
		}
	}
	return m, math.Log1p(s)
}

// rowSignal computes the signals of one row of finite logits (at least two
// classes) with a valid label.
func rowSignal(z []float64, y int) Signal {
	m, l := lseParts(z, -1)  // logsumexp(z) = m + l
	mo, lo := lseParts(z, y) // logsumexp_{j≠y}(z_j) = mo + lo
	loss := (m - z[y]) + l   // −log p_y; exact subtraction of m
	phi := (z[y] - mo) - lo  // log p_y − log(1 − p_y)
	logQ := -(loss + phi)    // log(1 − p_y) = logsumexp_{j≠y} − logsumexp
	argmax := 0
	for j := range z {
		if z[j] > z[argmax] {
			argmax = j
		}
	}

	var h, mentr float64
	// −(1−p_y) log p_y, the log clamped at 1e-30.
	mentr = math.Exp(logQ) * -math.Max(-loss, logFloor)
	for j, v := range z {
		nlp := (m - v) + l // −log p_j ≥ 0
		p := math.Exp(-nlp)
		h += p * nlp
		if j == y {
			continue
		}
		var log1m float64 // log(1 − p_j)
		if p <= 0.5 {
			log1m = math.Log1p(-p)
		} else {
			// p_j near 1: 1 − p_j = Σ_{i≠j} p_i, computed from logits.
			mj, lj := lseParts(z, j)
			log1m = (mj - m) + (lj - l)
		}
		mentr -= p * math.Max(log1m, logFloor)
	}
	return Signal{
		Loss:       loss,
		Prob:       math.Exp(-loss),
		Phi:        phi,
		Entropy:    h,
		ModEntropy: mentr,
		Correct:    argmax == y,
	}
}
