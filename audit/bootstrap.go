package audit

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// DefaultReplicates is the number of bootstrap replicates used when
// BootstrapOptions.Replicates is zero.
const DefaultReplicates = 1000

// DefaultLevel is the confidence level used when BootstrapOptions.Level is
// zero.
const DefaultLevel = 0.95

// BootstrapOptions configures a bootstrap. The zero value asks for 1,000
// replicates, a 95% interval, seed 0 and the default target FPRs.
type BootstrapOptions struct {
	// Replicates is the number of resamples; 0 means DefaultReplicates.
	Replicates int
	// Seed seeds a PCG generator (math/rand/v2); the same seed, data and
	// options give the same intervals.
	Seed uint64
	// Level is the coverage of the percentile interval, in (0, 1); 0 means
	// DefaultLevel.
	Level float64
	// TargetFPRs are the FPRs at which TPR is bootstrapped (metrics only);
	// nil means DefaultTargetFPRs.
	TargetFPRs []float64
	// Progress, when set, hears how many replicates of a bootstrap over
	// the attacks are done (from one goroutine at a time). It observes
	// only: the intervals are the same with and without it.
	Progress func(done, total int) `json:"-"`
}

func (o BootstrapOptions) WithDefaults() (BootstrapOptions, error) {
	if o.Replicates == 0 {
		o.Replicates = DefaultReplicates
	}
	if o.Replicates < 0 {
		return o, fmt.Errorf("audit: %d bootstrap replicates: %w", o.Replicates, ErrInvalidInput)
	}
	if o.Level == 0 {
		o.Level = DefaultLevel
	}
	if !(o.Level > 0 && o.Level < 1) {
		return o, fmt.Errorf("audit: bootstrap level %v is not in (0, 1): %w", o.Level, ErrInvalidInput)
	}
	if o.TargetFPRs == nil {
		o.TargetFPRs = DefaultTargetFPRs()
	}
	return o, checkTargets(o.TargetFPRs)
}

// Interval is a point estimate on the full data with a bootstrap
// percentile interval [Lo, Hi]. The percentile interval need not contain
// the estimate when the statistic's bootstrap distribution is skewed (TPR
// at a low FPR often is).
type Interval struct {
	Estimate float64 `json:"estimate,required"`
	Lo       float64 `json:"lo,required"`
	Hi       float64 `json:"hi,required"`
}

// String formats the interval as "estimate [lo, hi]".
func (iv Interval) String() string {
	return fmt.Sprintf("%.4g [%.4g, %.4g]", iv.Estimate, iv.Lo, iv.Hi)
}

// percentile returns the interval of the sorted-in-place replicate values
// at the given level, with quantiles interpolated linearly between order
// statistics (numpy's default, Hyndman–Fan type 7).
func percentile(vals []float64, level float64) (lo, hi float64) {
	slices.Sort(vals)
	a := (1 - level) / 2
	return quantileSorted(vals, a), quantileSorted(vals, 1-a)
}

func quantileSorted(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	h := q * float64(len(x)-1)
	i := int(math.Floor(h))
	if i >= len(x)-1 {
		return x[len(x)-1]
	}
	return x[i] + (h-float64(i))*(x[i+1]-x[i])
}

// MetricsInterval holds bootstrap intervals for the metrics of one attack
// (or, from BootstrapDifference, for a difference of metrics).
type MetricsInterval struct {
	AUC, Advantage Interval
	// TPRAt holds one interval per TargetFPRs entry.
	TPRAt      []Interval
	TargetFPRs []float64
	Replicates int
	Level      float64
	Seed       uint64
}

// BootstrapMetrics returns 95% (or opt.Level) percentile intervals for the
// AUC, the advantage and the TPR at each target FPR of one attack. Each
// replicate resamples members and non-members separately, with
// replacement and at their original counts, so that every replicate has
// both classes.
func BootstrapMetrics(scores []float64, member []bool, opt BootstrapOptions) (MetricsInterval, error) {
	opt, err := opt.WithDefaults()
	if err != nil {
		return MetricsInterval{}, err
	}
	pts, vals, err := bootstrapAttacks([][]float64{scores}, member, opt)
	if err != nil {
		return MetricsInterval{}, err
	}
	return buildMetricsInterval(pts[0], vals[0], opt), nil
}

// DifferenceInterval holds paired-bootstrap intervals for two attacks or
// models A and B scored on the same samples, and for A − B.
type DifferenceInterval struct {
	A, B MetricsInterval
	// Diff holds the intervals of metric(A) − metric(B), computed replicate
	// by replicate on the same resample.
	Diff MetricsInterval
}

// BootstrapDifference runs a paired bootstrap for two score vectors on
// the same samples (scoresA[i] and scoresB[i] belong to sample i, with
// membership member[i]): each replicate draws one stratified resample and
// evaluates both attacks on it, so that the interval of the difference
// accounts for their correlation. An interval of Diff that excludes 0 is
// the evidence that A and B differ. With the same seed, the A and B
// intervals equal those BootstrapMetrics gives for each alone.
func BootstrapDifference(scoresA, scoresB []float64, member []bool, opt BootstrapOptions) (DifferenceInterval, error) {
	opt, err := opt.WithDefaults()
	if err != nil {
		return DifferenceInterval{}, err
	}
	pts, vals, err := bootstrapAttacks([][]float64{scoresA, scoresB}, member, opt)
	if err != nil {
		return DifferenceInterval{}, err
	}
	pd := make([]float64, len(pts[0]))
	vd := make([][]float64, len(pts[0]))
	for j := range pd {
		pd[j] = pts[0][j] - pts[1][j]
		vd[j] = make([]float64, opt.Replicates)
		for b := range vd[j] {
			vd[j][b] = vals[0][j][b] - vals[1][j][b]
		}
	}
	return DifferenceInterval{
		A:    buildMetricsInterval(pts[0], vals[0], opt),
		B:    buildMetricsInterval(pts[1], vals[1], opt),
		Diff: buildMetricsInterval(pd, vd, opt),
	}, nil
}

// bootstrapAttacks evaluates several score vectors on the full data and on
// the same stratified resamples. For attack a, points[a] holds AUC,
// advantage and the TPR at each target on the full data, and vals[a][j][b]
// holds value j on replicate b. Replicate b's resample is the b-th of one
// StreamBootstrap sequence (see parallelReplicates), whatever the number
// of goroutines.
func bootstrapAttacks(sets [][]float64, member []bool, opt BootstrapOptions) (points [][]float64, vals [][][]float64, err error) {
	for _, s := range sets {
		if err := checkScores(s, member); err != nil {
			return nil, nil, err
		}
	}
	local, nPos := stratumIndex(member)
	width := 2 + len(opt.TargetFPRs)
	sorted := make([]sortedAttack, len(sets))
	points = make([][]float64, len(sets))
	vals = make([][][]float64, len(sets))
	for a, s := range sets {
		order := sortDescending(s)
		var r ROC
		r.fill(order, s, member, nil)
		points[a] = make([]float64, width)
		points[a][0] = r.AUC()
		points[a][1], _, _ = r.Advantage()
		for j, t := range opt.TargetFPRs {
			points[a][2+j] = r.tprAt(t).TPR
		}
		sorted[a] = newSortedAttack(order, local, s, member)
		vals[a] = make([][]float64, width)
		for j := range width {
			vals[a][j] = make([]float64, opt.Replicates)
		}
	}
	nNeg := len(member) - nPos
	allowed := make([]int64, len(opt.TargetFPRs))
	for j, t := range opt.TargetFPRs {
		allowed[j] = int64(allowedFP(t, nNeg))
	}
	report := progressCounter(opt.Progress, opt.Replicates)
	parallelReplicates(opt.Seed, []int{nPos, nNeg}, opt.Replicates, func() func(b int, c counts) {
		row := make([]float64, width)
		return func(b int, c counts) {
			for a := range sorted {
				sorted[a].replicate(c, nPos, nNeg, row, allowed)
				for j := range width {
					vals[a][j][b] = row[j]
				}
			}
			report()
		}
	})
	return points, vals, nil
}

// buildMetricsInterval turns point values and replicate values (AUC,
// advantage, TPR at each target) into a MetricsInterval.
func buildMetricsInterval(p []float64, v [][]float64, opt BootstrapOptions) MetricsInterval {
	mi := MetricsInterval{
		TargetFPRs: slices.Clone(opt.TargetFPRs),
		Replicates: opt.Replicates,
		Level:      opt.Level,
		Seed:       opt.Seed,
		TPRAt:      make([]Interval, len(opt.TargetFPRs)),
	}
	iv := func(j int) Interval {
		lo, hi := percentile(slices.Clone(v[j]), opt.Level)
		return Interval{Estimate: p[j], Lo: lo, Hi: hi}
	}
	mi.AUC, mi.Advantage = iv(0), iv(1)
	for j := range mi.TPRAt {
		mi.TPRAt[j] = iv(2 + j)
	}
	return mi
}

// BootstrapGroups bootstraps any statistics of data split into groups:
// sizes[g] is the number of samples in group g, and stat receives, for
// each group, the indices (in [0, sizes[g])) of one resample, drawn with
// replacement at the group's own size. It returns one Interval per value
// stat returns; the estimates come from stat on the identity resample.
// Every group must be non-empty, and stat must return the same number of
// values each time; it must not keep idx, which the next call reuses. It serves statistics that the metrics functions do
// not cover, such as CanaryMemorization's gap or a gradient-norm ratio
// between outliers and typical samples.
func BootstrapGroups(sizes []int, stat func(idx [][]int) []float64, opt BootstrapOptions) ([]Interval, error) {
	opt.TargetFPRs = []float64{} // unused here
	opt, err := opt.WithDefaults()
	if err != nil {
		return nil, err
	}
	idx := make([][]int, len(sizes))
	for g, n := range sizes {
		if n <= 0 {
			return nil, fmt.Errorf("audit: bootstrap group %d has %d samples: %w", g, n, ErrInvalidInput)
		}
		idx[g] = make([]int, n)
		for i := range idx[g] {
			idx[g][i] = i
		}
	}
	point := slices.Clone(stat(idx))
	vals := make([][]float64, len(point))
	for j := range vals {
		vals[j] = make([]float64, opt.Replicates)
	}
	rng := StreamBootstrap.Rand(opt.Seed)
	for b := range opt.Replicates {
		for g, n := range sizes {
			for i := range idx[g] {
				idx[g][i] = rng.IntN(n)
			}
		}
		v := stat(idx)
		if len(v) != len(point) {
			return nil, fmt.Errorf("audit: bootstrap statistic returned %d values, then %d: %w", len(point), len(v), ErrInvalidInput)
		}
		for j := range v {
			vals[j][b] = v[j]
		}
	}
	out := make([]Interval, len(point))
	for j := range out {
		lo, hi := percentile(vals[j], opt.Level)
		out[j] = Interval{Estimate: point[j], Lo: lo, Hi: hi}
	}
	return out, nil
}

// progressCounter returns a function that counts finished replicates and
// passes the count to f (serialized), or a no-op when f is nil. A replicate
// evaluated again after a rejection counts again, so the count may pass
// total by a few; it is capped there.
func progressCounter(f func(done, total int), total int) func() {
	if f == nil {
		return func() {}
	}
	var mu sync.Mutex
	done := 0
	return func() {
		mu.Lock()
		defer mu.Unlock()
		done = min(done+1, total)
		f(done, total)
	}
}
