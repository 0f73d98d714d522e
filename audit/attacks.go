package audit

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// The attacks below return one score per sample; a higher score means
// "more likely a member" (docs/METHODS.md, "Attacks"). Feed the scores with the
// true membership to Evaluate or BootstrapMetrics.

// LossScores returns the LOSS attack's scores (Yeom et al. 2018): −ℓ.
func LossScores(s Signals) []float64 { return Negated(s.Loss) }

// ConfidenceScores returns the confidence attack's scores: p_y.
func ConfidenceScores(s Signals) []float64 { return slices.Clone(s.Prob) }

// EntropyScores returns the entropy attack's scores: −H.
func EntropyScores(s Signals) []float64 { return Negated(s.Entropy) }

// ModEntropyScores returns the modified-entropy attack's scores (Song &
// Mittal 2021): −Mentr.
func ModEntropyScores(s Signals) []float64 { return Negated(s.ModEntropy) }

// Negated returns −x elementwise.
func Negated(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = -v
	}
	return out
}

// checkMatrix checks a reference matrix [n_ref][n] of finite values and,
// when in is not nil, its IN mask of the same shape.
func checkMatrix(name string, ref [][]float64, in [][]bool, n int) error {
	if len(ref) == 0 {
		return fmt.Errorf("audit: %s: no reference models: %w", name, ErrInvalidInput)
	}
	if in != nil && len(in) != len(ref) {
		return fmt.Errorf("audit: %s: %d reference models but %d IN-mask rows: %w", name, len(ref), len(in), ErrInvalidInput)
	}
	for k, row := range ref {
		if len(row) != n {
			return fmt.Errorf("audit: %s: reference model %d has %d values, want %d (one per sample): %w", name, k, len(row), n, ErrInvalidInput)
		}
		if in != nil && len(in[k]) != n {
			return fmt.Errorf("audit: %s: IN-mask row %d has %d values, want %d: %w", name, k, len(in[k]), n, ErrInvalidInput)
		}
		for i, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("audit: %s: reference model %d, sample %d: value %v: %w", name, k, i, v, ErrInvalidInput)
			}
		}
	}
	return nil
}

func checkFinite(name string, x []float64) error {
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("audit: %s: sample %d: value %v: %w", name, i, v, ErrInvalidInput)
		}
	}
	return nil
}

// DefaultMinSigma is the floor on LiRA's standard deviations used when
// LiRAOptions.MinSigma is zero; it only matters when every reference value
// of a sample is the same.
const DefaultMinSigma = 1e-6

// LiRAOptions selects the LiRA variant.
type LiRAOptions struct {
	// Offline uses OUT reference models only (a one-sided test); otherwise
	// the online test compares the IN and OUT Gaussians.
	Offline bool
	// FixedVariance uses one global σ_in (from IN values) and one global
	// σ_out (from OUT values) for every sample instead of per-sample
	// standard deviations; better with few reference models.
	FixedVariance bool
	// MinSigma floors every σ; 0 means DefaultMinSigma.
	MinSigma float64
}

// LiRAResult holds LiRA's scores and the parameters behind them.
type LiRAResult struct {
	// Scores holds one score per sample, higher = more member-like.
	// Online: log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²).
	// Offline: z = (φ − μ_out)/σ_out, whose one-sided p-value form Φ(z)
	// (docs/METHODS.md) is a strictly increasing function of z: the ROC, AUC
	// and TPR at every FPR are the same, but z never saturates, where Φ(z)
	// rounds to 1 above z ≈ 8.3 and would tie the most member-like samples.
	Scores []float64
	// MuIn, SigmaIn, MuOut, SigmaOut are the Gaussian parameters used for
	// each sample (MuIn and SigmaIn are nil offline).
	MuIn, SigmaIn, MuOut, SigmaOut []float64
	// NoIn and NoOut list the samples that had no IN (online only) or no
	// OUT reference model. For them the IN (OUT) Gaussian is the marginal
	// one: mean and standard deviation of all IN (OUT) values of all
	// samples, the best guess for a sample nothing is known about.
	NoIn, NoOut []int
	// OneIn and OneOut count the samples with a single IN (online only) or
	// OUT reference model under per-sample variance: their own σ is
	// undefined, so they use the pooled σ (their own mean is kept).
	OneIn, OneOut int
	// PooledSigmaIn and PooledSigmaOut are the global standard deviations
	// of fixed-variance LiRA: the within-sample standard deviation pooled
	// over samples, sqrt(Σ_i Σ_k (φ_ki − μ_i)² / Σ_i (n_i − 1)), of the IN
	// and of the OUT values respectively (PooledSigmaIn is 0 offline). When
	// no sample has two values of a side, that side's marginal σ stands in.
	// (The LiRA reference code takes instead the standard deviation of all
	// values around their grand mean, the marginal σ below, which mixes the
	// spread of the per-sample means into σ.)
	PooledSigmaIn, PooledSigmaOut float64
	// MarginalMuIn, MarginalSigmaIn, MarginalMuOut, MarginalSigmaOut
	// describe all IN (OUT) values taken together; see NoIn.
	MarginalMuIn, MarginalSigmaIn, MarginalMuOut, MarginalSigmaOut float64
}

// gaussStats holds, for one side (IN or OUT), the per-sample means,
// standard deviations and counts, and the pooled and marginal parameters.
type gaussStats struct {
	mu, sd    []float64 // sd is NaN where n < 2
	n         []int
	pooled    float64 // pooled within-sample sd (marginal sd if no df)
	margMu    float64
	margSd    float64
	total     int
	noSample  []int
	oneSample int
}

// sideStats computes gaussStats over the values ref[k][i] with
// in[k][i] == side (in == nil: every value is OUT).
func sideStats(ref [][]float64, in [][]bool, side bool) gaussStats {
	n := len(ref[0])
	g := gaussStats{mu: make([]float64, n), sd: make([]float64, n), n: make([]int, n)}
	isSide := func(k, i int) bool {
		if in == nil {
			return !side
		}
		return in[k][i] == side
	}
	var sum float64
	for i := range n {
		s := 0.0
		for k := range ref {
			if isSide(k, i) {
				s += ref[k][i]
				g.n[i]++
			}
		}
		g.total += g.n[i]
		sum += s
		if g.n[i] > 0 {
			g.mu[i] = s / float64(g.n[i])
		}
	}
	if g.total > 0 {
		g.margMu = sum / float64(g.total)
	}
	var within, marg float64
	df := 0
	for i := range n {
		ss := 0.0
		for k := range ref {
			if isSide(k, i) {
				d := ref[k][i] - g.mu[i]
				ss += d * d
				dm := ref[k][i] - g.margMu
				marg += dm * dm
			}
		}
		within += ss
		switch g.n[i] {
		case 0:
			g.noSample = append(g.noSample, i)
			g.sd[i] = math.NaN()
		case 1:
			g.oneSample++
			g.sd[i] = math.NaN()
		default:
			df += g.n[i] - 1
			g.sd[i] = math.Sqrt(ss / float64(g.n[i]-1))
		}
	}
	if g.total > 1 {
		g.margSd = math.Sqrt(marg / float64(g.total-1))
	}
	if df > 0 {
		g.pooled = math.Sqrt(within / float64(df))
	} else {
		g.pooled = g.margSd
	}
	return g
}

// params returns μ and σ for sample i: the marginal Gaussian when it has
// no value, the pooled σ with its own mean under fixed variance or with
// one value, and its own mean and σ otherwise; σ is floored.
func (g *gaussStats) params(i int, fixed bool, floor float64) (mu, sd float64) {
	switch {
	case g.n[i] == 0:
		mu, sd = g.margMu, g.margSd
	case fixed || g.n[i] == 1:
		mu, sd = g.mu[i], g.pooled
	default:
		mu, sd = g.mu[i], g.sd[i]
	}
	return mu, math.Max(sd, floor)
}

// LiRA runs the likelihood-ratio attack of Carlini et al. (2022) on the
// logit-scaled confidences φ (Signals.Phi). target[i] is φ of sample i
// under the audited model; ref[k][i] is φ of sample i under reference
// model k, and in[k][i] says whether sample i was in that model's training
// set. μ_in and μ_out are means (not medians) over a sample's IN and OUT
// reference models; per-sample σ are sample standard deviations (divisor
// n − 1). Offline LiRA reads only the OUT values; in may then be nil
// (every value OUT). Samples without IN or OUT models fall back to the
// marginal Gaussian and are listed in the result.
func LiRA(target []float64, ref [][]float64, in [][]bool, opt LiRAOptions) (LiRAResult, error) {
	n := len(target)
	if err := checkMatrix("LiRA", ref, in, n); err != nil {
		return LiRAResult{}, err
	}
	if err := checkFinite("LiRA target", target); err != nil {
		return LiRAResult{}, err
	}
	if in == nil && !opt.Offline {
		return LiRAResult{}, fmt.Errorf("audit: online LiRA needs the IN mask: %w", ErrInvalidInput)
	}
	floor := opt.MinSigma
	if floor == 0 {
		floor = DefaultMinSigma
	}
	if !(floor > 0) {
		return LiRAResult{}, fmt.Errorf("audit: LiRA MinSigma %v is not positive: %w", opt.MinSigma, ErrInvalidInput)
	}
	out := sideStats(ref, in, false)
	if out.total < 2 {
		return LiRAResult{}, fmt.Errorf("audit: LiRA has %d OUT reference values; it needs at least 2: %w", out.total, ErrInvalidInput)
	}
	res := LiRAResult{
		Scores:           make([]float64, n),
		MuOut:            make([]float64, n),
		SigmaOut:         make([]float64, n),
		NoOut:            out.noSample,
		PooledSigmaOut:   out.pooled,
		MarginalMuOut:    out.margMu,
		MarginalSigmaOut: out.margSd,
	}
	if !opt.FixedVariance {
		res.OneOut = out.oneSample
	}
	if opt.Offline {
		for i, phi := range target {
			mu, sd := out.params(i, opt.FixedVariance, floor)
			res.MuOut[i], res.SigmaOut[i] = mu, sd
			res.Scores[i] = (phi - mu) / sd
		}
		return res, nil
	}

	ins := sideStats(ref, in, true)
	if ins.total < 2 {
		return LiRAResult{}, fmt.Errorf("audit: online LiRA has %d IN reference values; it needs at least 2: %w", ins.total, ErrInvalidInput)
	}
	res.MuIn = make([]float64, n)
	res.SigmaIn = make([]float64, n)
	res.NoIn = ins.noSample
	res.PooledSigmaIn = ins.pooled
	res.MarginalMuIn, res.MarginalSigmaIn = ins.margMu, ins.margSd
	if !opt.FixedVariance {
		res.OneIn = ins.oneSample
	}
	for i, phi := range target {
		mi, si := ins.params(i, opt.FixedVariance, floor)
		mo, so := out.params(i, opt.FixedVariance, floor)
		res.MuIn[i], res.SigmaIn[i] = mi, si
		res.MuOut[i], res.SigmaOut[i] = mo, so
		res.Scores[i] = logNormalPDF(phi, mi, si) - logNormalPDF(phi, mo, so)
	}
	return res, nil
}

// logNormalPDF returns log N(x; mu, sd²).
func logNormalPDF(x, mu, sd float64) float64 {
	d := (x - mu) / sd
	return -0.5*d*d - math.Log(sd) - 0.5*math.Log(2*math.Pi)
}

// RMIAData holds the true-class probabilities p_y (Signals.Prob) of a set
// of samples under the audited model and under the reference models.
type RMIAData struct {
	// Target[i] is p(x_i|θ) under the audited model.
	Target []float64
	// Ref[k][i] is p(x_i|θ_k) under reference model k.
	Ref [][]float64
	// In[k][i] says whether x_i was in reference model k's training set.
	// Only offline RMIA reads it; nil means every sample OUT of every
	// reference model.
	In [][]bool
}

// RMIAOptions selects the RMIA variant.
type RMIAOptions struct {
	// Offline estimates P(·) from OUT reference models only, as
	// ((1+A)/2)·mean_OUT + (1−A)/2, for audited and population samples
	// alike (RMIAData.In says which values are OUT).
	Offline bool
	// A is the offline scaling a in [0, 1], tuned on a reference model
	// (RMIA's paper); ignored online.
	A float64
	// Gamma is the threshold γ > 0 on the pairwise likelihood ratio; 0
	// means 1.
	Gamma float64
}

// RMIAResult holds RMIA's scores and the ratios behind them.
type RMIAResult struct {
	// Scores[i] is the fraction of population samples z with
	// LR(x_i, z) > γ, in [0, 1]; higher = more member-like.
	Scores []float64
	// RatioX[i] is p(x_i|θ)/P(x_i) and RatioZ[j] is p(z_j|θ)/P(z_j).
	RatioX, RatioZ []float64
	// NoOut and PopNoOut list (offline) the audited and population samples
	// without an OUT reference model; their mean_OUT is the mean over all
	// OUT values of their set.
	NoOut, PopNoOut []int
}

// minMarginal floors P(x) so that p/P stays finite; it can only bind
// online, when every reference probability of a sample underflowed to 0.
const minMarginal = 1e-300

// RMIA runs the attack of Zarifzadeh, Liu and Shokri (ICML 2024) on
// true-class probabilities: x holds the audited samples and z the
// population samples (not members of the audited model), each under the
// audited model and the same reference models. P(·) is the mean of the
// reference probabilities (online: all models; offline: see RMIAOptions),
// LR(x, z) = (p(x|θ)/P(x)) / (p(z|θ)/P(z)), and the score of x is the
// fraction of z with LR(x, z) > γ. The ratios of z are sorted once and
// each x is placed among them by binary search: O((n+m) log m), not O(n·m).
func RMIA(x, z RMIAData, opt RMIAOptions) (RMIAResult, error) {
	gamma := opt.Gamma
	if gamma == 0 {
		gamma = 1
	}
	if !(gamma > 0) || math.IsInf(gamma, 1) {
		return RMIAResult{}, fmt.Errorf("audit: RMIA gamma %v is not positive and finite: %w", opt.Gamma, ErrInvalidInput)
	}
	if opt.Offline && !(opt.A >= 0 && opt.A <= 1) {
		return RMIAResult{}, fmt.Errorf("audit: RMIA offline parameter a = %v is not in [0, 1]: %w", opt.A, ErrInvalidInput)
	}
	if len(x.Ref) != len(z.Ref) {
		return RMIAResult{}, fmt.Errorf("audit: RMIA: %d reference models for the audited samples but %d for the population: %w", len(x.Ref), len(z.Ref), ErrInvalidInput)
	}
	if len(z.Target) == 0 {
		return RMIAResult{}, fmt.Errorf("audit: RMIA needs population samples: %w", ErrInvalidInput)
	}
	rx, noX, err := rmiaRatios("RMIA", x, opt)
	if err != nil {
		return RMIAResult{}, err
	}
	rz, noZ, err := rmiaRatios("RMIA population", z, opt)
	if err != nil {
		return RMIAResult{}, err
	}
	sorted := slices.Clone(rz)
	slices.Sort(sorted)
	m := float64(len(sorted))
	scores := make([]float64, len(rx))
	for i, r := range rx {
		// r/z > γ is non-increasing in z (correctly rounded division is
		// monotone, r/0 is +Inf when r > 0 and NaN, not > γ, when r = 0),
		// so the z that pass form a prefix of the ascending order.
		cnt := sort.Search(len(sorted), func(j int) bool { return !(r/sorted[j] > gamma) })
		scores[i] = float64(cnt) / m
	}
	return RMIAResult{Scores: scores, RatioX: rx, RatioZ: rz, NoOut: noX, PopNoOut: noZ}, nil
}

// rmiaRatios returns p(·|θ)/P(·) for one set of samples, and (offline)
// the samples that had no OUT model.
func rmiaRatios(name string, d RMIAData, opt RMIAOptions) ([]float64, []int, error) {
	n := len(d.Target)
	in := d.In
	if !opt.Offline {
		in = nil // online: P is the mean over every reference model
	}
	if err := checkMatrix(name, d.Ref, d.In, n); err != nil {
		return nil, nil, err
	}
	if err := checkProbs(name, d.Target); err != nil {
		return nil, nil, err
	}
	for _, row := range d.Ref {
		if err := checkProbs(name+" reference", row); err != nil {
			return nil, nil, err
		}
	}
	g := sideStats(d.Ref, in, false)
	if g.total == 0 {
		return nil, nil, fmt.Errorf("audit: %s: no OUT reference value at all: %w", name, ErrInvalidInput)
	}
	ratio := make([]float64, n)
	for i, p := range d.Target {
		mean := g.mu[i]
		if g.n[i] == 0 {
			mean = g.margMu
		}
		P := mean
		if opt.Offline {
			P = (1+opt.A)/2*mean + (1-opt.A)/2
		}
		ratio[i] = p / math.Max(P, minMarginal)
	}
	var no []int
	if opt.Offline {
		no = g.noSample
	}
	return ratio, no, nil
}

func checkProbs(name string, p []float64) error {
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("audit: %s: sample %d: probability %v is not in [0, 1]: %w", name, i, v, ErrInvalidInput)
		}
	}
	return nil
}
