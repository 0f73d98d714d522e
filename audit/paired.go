package audit

import (
	"math"
)

// SeedInterval summarizes one number over K seeds: the mean, with the
// range of a percentile bootstrap over seeds (K = 1: the run's own interval).
func SeedInterval(vals []float64, own []Interval, opt BootstrapOptions) Interval {
	if len(vals) == 1 {
		return own[0]
	}
	ivs, err := BootstrapGroups([]int{len(vals)}, func(idx [][]int) []float64 {
		return []float64{Mean(Pick(vals, idx[0]))}
	}, opt)
	if err != nil {
		return Interval{Estimate: Mean(vals), Lo: math.NaN(), Hi: math.NaN()}
	}
	return ivs[0]
}

func FindAttack(as []AttackReport, name string) *AttackReport {
	for i := range as {
		if as[i].Attack == name {
			return &as[i]
		}
	}
	return nil
}

// PairedAUCReplicates returns AUC(a) − AUC(b) on the full samples and on
// each stratified resample (the same resample for both), with the
// bootstrap seed offset by stream so that seeds draw independently.
func PairedAUCReplicates(a, b []float64, member []bool, opt BootstrapOptions, stream uint64) (float64, []float64, error) {
	opt, err := opt.WithDefaults()
	if err != nil {
		return 0, nil, err
	}
	opt.Seed = SplitSeed(opt.Seed, stream)
	pts, vals, err := bootstrapAttacks([][]float64{a, b}, member, opt)
	if err != nil {
		return 0, nil, err
	}
	d := make([]float64, opt.Replicates)
	for i := range d {
		d[i] = vals[0][0][i] - vals[1][0][i]
	}
	return pts[0][0] - pts[1][0], d, nil
}

// HierarchicalInterval is a two-stage bootstrap over K training seeds:
// each replicate draws K seeds with replacement and, for each, one of that
// seed's own bootstrap replicates over samples, and averages them. The
// interval so carries both run-to-run variation and sampling noise; with
// two or three seeds it is wide, as it should be (a percentile bootstrap
// over the seed means alone cannot be wider than their range). The
// estimate is the mean over seeds.
func HierarchicalInterval(est []float64, reps [][]float64, opt BootstrapOptions) Interval {
	opt, err := opt.WithDefaults()
	if err != nil || len(est) == 0 {
		return Interval{Estimate: Mean(est), Lo: math.NaN(), Hi: math.NaN()}
	}
	r := StreamSeedBootstrap.Rand(opt.Seed)
	k := len(est)
	vals := make([]float64, opt.Replicates)
	for b := range vals {
		sum := 0.0
		for range k {
			s := r.IntN(k)
			sum += reps[s][r.IntN(len(reps[s]))]
		}
		vals[b] = sum / float64(k)
	}
	lo, hi := percentile(vals, opt.Level)
	return Interval{Estimate: Mean(est), Lo: lo, Hi: hi}
}
