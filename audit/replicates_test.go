package audit

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// bootstrapAttacksRef is the sequential bootstrap as it was before the
// replicates ran in parallel: one generator draws replicate after
// replicate, and each replicate's curve is built with ROC.fill. It is the
// reference the parallel one must equal.
func bootstrapAttacksRef(sets [][]float64, member []bool, opt BootstrapOptions) (points [][]float64, vals [][][]float64) {
	var pos, neg []int
	for i, m := range member {
		if m {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	width := 2 + len(opt.TargetFPRs)
	record := func(r *ROC, out []float64) {
		out[0] = r.AUC()
		out[1], _, _ = r.Advantage()
		for j, t := range opt.TargetFPRs {
			out[2+j] = r.tprAt(t).TPR
		}
	}
	orders := make([][]int, len(sets))
	curves := make([]ROC, len(sets))
	points = make([][]float64, len(sets))
	vals = make([][][]float64, len(sets))
	for a, s := range sets {
		orders[a] = sortDescending(s)
		curves[a].fill(orders[a], s, member, nil)
		points[a] = make([]float64, width)
		record(&curves[a], points[a])
		vals[a] = make([][]float64, width)
		for j := range width {
			vals[a][j] = make([]float64, opt.Replicates)
		}
	}
	rs := newResampler(opt.Seed, [][]int{pos, neg}, len(member))
	row := make([]float64, width)
	for b := range opt.Replicates {
		w := rs.draw()
		if replicateExtra != nil {
			for range replicateExtra(b) {
				rs.rng.Uint64()
			}
		}
		for a, s := range sets {
			curves[a].fill(orders[a], s, member, w)
			record(&curves[a], row)
			for j := range width {
				vals[a][j][b] = row[j]
			}
		}
	}
	return points, vals
}

// resampler (test-only reference, the sequential bootstrap's) draws stratified bootstrap resamples as per-sample counts.
type resampler struct {
	rng    *rand.Rand
	strata [][]int
	weight []int32
}

func newResampler(seed uint64, strata [][]int, n int) *resampler {
	return &resampler{rng: StreamBootstrap.Rand(seed), strata: strata, weight: make([]int32, n)}
}

// draw fills weight with a new resample: each stratum of size m gets m
// draws with replacement from itself.
func (r *resampler) draw() []int32 {
	clear(r.weight)
	for _, s := range r.strata {
		for range s {
			r.weight[s[r.rng.IntN(len(s))]]++
		}
	}
	return r.weight
}

// refAttacks returns three attacks on 1,500 samples: continuous scores,
// scores rounded to a coarse grid (many ties, some groups mixed), and
// scores with ±Inf, and an unbalanced membership.
func refAttacks() ([][]float64, []bool) {
	s, member := synthScores(21, 400, 1100, 0.6)
	coarse := make([]float64, len(s))
	inf := make([]float64, len(s))
	for i, v := range s {
		coarse[i] = math.Round(v*3) / 3
		inf[i] = v
		switch i % 97 {
		case 0:
			inf[i] = math.Inf(1)
		case 1:
			inf[i] = math.Inf(-1)
		}
	}
	return [][]float64{s, coarse, inf}, member
}

func compareBootstraps(t *testing.T, sets [][]float64, member []bool, opt BootstrapOptions) {
	t.Helper()
	wantP, wantV := bootstrapAttacksRef(sets, member, opt)
	gotP, gotV, err := bootstrapAttacks(sets, member, opt)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for a := range sets {
		for j := range wantP[a] {
			worst = max(worst, math.Abs(gotP[a][j]-wantP[a][j]))
			for b := range wantV[a][j] {
				worst = max(worst, math.Abs(gotV[a][j][b]-wantV[a][j][b]))
			}
		}
	}
	if worst > 1e-12 {
		t.Errorf("parallel bootstrap differs from the sequential one by %g", worst)
	}
	// Not only close: the same arithmetic, so the same bits.
	for a := range sets {
		for j := range wantV[a] {
			for b := range wantV[a][j] {
				if gotV[a][j][b] != wantV[a][j][b] {
					t.Fatalf("attack %d value %d replicate %d: %v, sequential %v", a, j, b, gotV[a][j][b], wantV[a][j][b])
				}
			}
		}
	}
}

// TestBootstrapParallelEqualsSequential: the parallel, sort-free bootstrap
// gives the sequential bootstrap's replicates exactly, on 1, 2 and 7
// goroutines.
func TestBootstrapParallelEqualsSequential(t *testing.T) {
	sets, member := refAttacks()
	opt, err := BootstrapOptions{Seed: 5, Replicates: 300, TargetFPRs: []float64{0, 0.001, 0.01, 0.1, 0.5, 1}}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 7} {
		runtime.GOMAXPROCS(procs)
		compareBootstraps(t, sets, member, opt)
	}
}

// TestBootstrapRejectionCorrected: when a replicate takes more values from
// the generator than it has draws (as rand.Rand.IntN does, rarely, to stay
// unbiased), the replicates after it are redrawn from the right place.
func TestBootstrapRejectionCorrected(t *testing.T) {
	sets, member := refAttacks()
	opt, err := BootstrapOptions{Seed: 8, Replicates: 120}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	replicateExtra = func(b int) int {
		switch b {
		case 3:
			return 1
		case 4:
			return 2
		case 77:
			return 5
		}
		return 0
	}
	defer func() { replicateExtra = nil }()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(3)
	compareBootstraps(t, sets, member, opt)
}

// TestBootstrapWideCounts: a replicate with a count past 255 (drawn again
// into int32 counts) gives the same numbers.
func TestBootstrapWideCounts(t *testing.T) {
	sets, member := refAttacks()
	opt, err := BootstrapOptions{Seed: 9, Replicates: 50}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	forceWide = true
	defer func() { forceWide = false }()
	compareBootstraps(t, sets, member, opt)
}

// TestBootstrapSmallSets: many small data sets, with heavy ties and
// unbalanced classes, on both ways of finding the advantage.
func TestBootstrapSmallSets(t *testing.T) {
	defer func(v float64) { maxExactKeys = v }(maxExactKeys)
	rng := rand.New(rand.NewPCG(17, 0))
	for trial := range 400 {
		n := 2 + rng.IntN(40)
		member := make([]bool, n)
		member[0], member[1] = true, false
		for i := 2; i < n; i++ {
			member[i] = rng.IntN(4) == 0
		}
		a, b := make([]float64, n), make([]float64, n)
		for i := range a {
			a[i] = float64(rng.IntN(1 + trial%7))
			b[i] = rng.NormFloat64()
		}
		opt, err := BootstrapOptions{Seed: uint64(trial), Replicates: 20, TargetFPRs: []float64{0, 0.05, 0.25, 0.5, 1}}.WithDefaults()
		if err != nil {
			t.Fatal(err)
		}
		maxExactKeys = 1e15
		if trial%2 == 1 {
			maxExactKeys = 0 // compare every point in float64
		}
		compareBootstraps(t, [][]float64{a, b}, member, opt)
	}
}

// TestPCGJump: jumping the state k steps equals stepping k times.
func TestPCGJump(t *testing.T) {
	for _, k := range []uint64{0, 1, 2, 3, 17, 1000, 65537} {
		hi, lo := StreamBootstrap.pcgState(12345)
		step := rand.NewPCG(hi, lo)
		for range k {
			step.Uint64()
		}
		jhi, jlo := pcgJump(hi, lo, k)
		jumped := rand.NewPCG(jhi, jlo)
		for i := range 4 {
			if a, b := step.Uint64(), jumped.Uint64(); a != b {
				t.Fatalf("k=%d: value %d after the jump is %x, stepping gives %x", k, i, b, a)
			}
		}
	}
}

// benchBootstrap times the bootstrap of one attack (AUC, advantage, TPR
// at the default targets) with 1,000 replicates on n samples, half
// members; ref runs the sequential reference instead.
func benchBootstrap(b *testing.B, n int, ref bool) {
	scores, member := synthScores(1, n/2, n-n/2, 0.3)
	for i := range scores {
		scores[i] = math.Round(scores[i]*1e4) / 1e4 // some ties, as float32 losses have
	}
	opt, err := BootstrapOptions{Seed: 1, Replicates: benchReplicates}.WithDefaults()
	if err != nil {
		b.Fatal(err)
	}
	sets := [][]float64{scores}
	b.ResetTimer()
	for range b.N {
		if ref {
			bootstrapAttacksRef(sets, member, opt)
		} else if _, _, err := bootstrapAttacks(sets, member, opt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBootstrap70k(b *testing.B)           { benchBootstrap(b, 70_000, false) }
func BenchmarkBootstrap1M(b *testing.B)            { benchBootstrap(b, 1_000_000, false) }
func BenchmarkBootstrapSequential70k(b *testing.B) { benchBootstrap(b, 70_000, true) }
func BenchmarkBootstrapSequential1M(b *testing.B)  { benchBootstrap(b, 1_000_000, true) }

// benchReplicates is the replicates of the bootstrap benchmarks (the
// default, 1,000); lower it to profile.
var benchReplicates = 1000
