package audit

import (
	"fmt"
	"math"
)

// The quantile-regression attack (docs/METHODS.md, "Quantile-regression
// MIA"; Bertran et al. 2023): a regression model, fitted on non-members
// only, predicts from a sample the distribution of the audited model's
// hinge score on it, as a Gaussian N(μ(x), σ(x)²). A member's score sits
// high in the distribution predicted for it; the attack's score is the
// standardized position z = (s − μ(x))/σ(x). Calling members the samples
// with z > Φ⁻¹(1 − α) is the paper's test at level α: each sample's
// threshold is the (1 − α) quantile predicted for it. The regression's
// training lives in package study; what is here needs no model.

// HingeScores returns each sample's hinge score s = z_y − max_{j≠y} z_j
// from logits stored row-major (len(labels)·classes values, at least two
// classes): positive when the sample is classified right, by the margin
// over the runner-up. It fails, wrapping ErrInvalidInput, on mismatched
// lengths, a NaN or infinite logit, or a label out of range.
func HingeScores[T Float, L Label](logits []T, classes int, labels []L) ([]float64, error) {
	if classes < 2 {
		return nil, fmt.Errorf("audit: hinge scores need at least 2 classes, not %d: %w", classes, ErrInvalidInput)
	}
	if len(logits) != classes*len(labels) {
		return nil, fmt.Errorf("audit: %d logits for %d labels of %d classes (want %d): %w",
			len(logits), len(labels), classes, classes*len(labels), ErrInvalidInput)
	}
	out := make([]float64, len(labels))
	row := make([]float64, classes)
	for i := range labels {
		if err := loadRow(row, logits[i*classes:(i+1)*classes], i); err != nil {
			return nil, err
		}
		y, err := checkLabel(labels[i], classes, i)
		if err != nil {
			return nil, err
		}
		other := math.Inf(-1)
		for j, v := range row {
			if j != y && v > other {
				other = v
			}
		}
		out[i] = row[y] - other
	}
	return out, nil
}

// Standardization maps a score s to (s − Shift)/Scale. The regression
// fits standardized scores (a fit that does not depend on the scores'
// units); the attack's z is the same in either unit.
type Standardization struct {
	Shift, Scale float64
}

// StandardizationOf returns the mean and the standard deviation (divisor
// n) of s as a Standardization; a constant s gets Scale 1.
func StandardizationOf(s []float64) (Standardization, error) {
	if len(s) == 0 {
		return Standardization{}, fmt.Errorf("audit: no scores to standardize: %w", ErrInvalidInput)
	}
	if err := checkFinite("score", s); err != nil {
		return Standardization{}, err
	}
	mean := Mean(s)
	v := 0.0
	for _, x := range s {
		v += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(v / float64(len(s)))
	if sd == 0 {
		sd = 1
	}
	return Standardization{Shift: mean, Scale: sd}, nil
}

// Apply returns the standardized scores.
func (st Standardization) Apply(s []float64) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = (x - st.Shift) / st.Scale
	}
	return out
}

// QMIAScores returns the attack's score of each sample,
// z = ((s − Shift)/Scale − μ)/exp(logSigma), from its hinge score s and the
// Gaussian (μ, log σ) the regression predicts for it in standardized
// units. A higher z is more member-like. It fails, wrapping
// ErrInvalidInput, on mismatched lengths or a non-finite input, and on a
// σ that is 0 or infinite in float64.
func QMIAScores(hinge, mu, logSigma []float64, st Standardization) ([]float64, error) {
	if len(mu) != len(hinge) || len(logSigma) != len(hinge) {
		return nil, fmt.Errorf("audit: %d hinge scores, %d means, %d log standard deviations: %w", len(hinge), len(mu), len(logSigma), ErrInvalidInput)
	}
	if !(st.Scale > 0) || math.IsInf(st.Scale, 0) || math.IsNaN(st.Shift) || math.IsInf(st.Shift, 0) {
		return nil, fmt.Errorf("audit: standardization shift %v, scale %v: %w", st.Shift, st.Scale, ErrInvalidInput)
	}
	for _, c := range []struct {
		name string
		v    []float64
	}{{"hinge score", hinge}, {"predicted mean", mu}, {"predicted log standard deviation", logSigma}} {
		if err := checkFinite(c.name, c.v); err != nil {
			return nil, err
		}
	}
	out := make([]float64, len(hinge))
	for i, s := range hinge {
		sigma := math.Exp(logSigma[i])
		if sigma == 0 || math.IsInf(sigma, 0) {
			return nil, fmt.Errorf("audit: sample %d: predicted σ = exp(%v) is out of float64's range: %w", i, logSigma[i], ErrInvalidInput)
		}
		out[i] = ((s-st.Shift)/st.Scale - mu[i]) / sigma
	}
	return out, nil
}

// QMIAThreshold is the threshold Φ⁻¹(1 − α) on z (a standard normal
// quantile) of the paper's per-sample test at level α: if the regression's
// Gaussians were exact, a share α of non-members would score above it.
// QMIAObservedFPR measures that share.
func QMIAThreshold(alpha float64) (float64, error) {
	if !(alpha > 0 && alpha < 1) {
		return 0, fmt.Errorf("audit: a test level must lie in (0, 1), not %v: %w", alpha, ErrInvalidInput)
	}
	return math.Sqrt2 * math.Erfinv(1-2*alpha), nil
}

// QMIAObservedFPR returns the share of non-members whose z exceeds
// QMIAThreshold(alpha): the false positive rate the test at nominal level
// α actually has on them, which is α when the regression is calibrated.
func QMIAObservedFPR(z []float64, member []bool, alpha float64) (float64, int, error) {
	thr, err := QMIAThreshold(alpha)
	if err != nil {
		return 0, 0, err
	}
	if len(z) != len(member) {
		return 0, 0, fmt.Errorf("audit: %d scores, %d membership flags: %w", len(z), len(member), ErrInvalidInput)
	}
	above, non := 0, 0
	for i, m := range member {
		if m || math.IsNaN(z[i]) {
			continue
		}
		non++
		if z[i] > thr {
			above++
		}
	}
	if non == 0 {
		return 0, 0, fmt.Errorf("audit: no scored non-member: %w", ErrInvalidInput)
	}
	return float64(above) / float64(non), non, nil
}

// MeanGaussianNLL is the mean over samples of −log N(x; μ, exp(logSigma)²),
// the regression's loss: on samples it was not fitted on, it says how well
// the predicted Gaussians describe new scores (lower is better; one
// Gaussian for every sample, fitted to standardized scores, gives about
// 1.42 on new samples from the same distribution).
func MeanGaussianNLL(x, mu, logSigma []float64) (float64, error) {
	if len(mu) != len(x) || len(logSigma) != len(x) || len(x) == 0 {
		return 0, fmt.Errorf("audit: %d values, %d means, %d log standard deviations: %w", len(x), len(mu), len(logSigma), ErrInvalidInput)
	}
	sum := 0.0
	for i, v := range x {
		d := (v - mu[i]) * math.Exp(-logSigma[i])
		sum += logSigma[i] + d*d/2 + 0.5*math.Log(2*math.Pi)
	}
	return sum / float64(len(x)), nil
}
