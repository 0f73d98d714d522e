package audit

import (
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// The bootstrap of the metrics runs its replicates in parallel and still
// draws exactly the resamples of one sequential StreamBootstrap generator:
// replicate b starts where the sequential generator would stand after the
// b replicates before it. Each replicate of n samples takes n values from
// the generator, except when rand.Rand.IntN rejects a value to stay
// unbiased (probability about stratum size / 2⁶⁴ per draw), so replicate b
// is assumed to start b·n values in, reached by jumping the PCG's linear
// congruential state ahead in O(log b·n). Every replicate counts the values
// it took; when one took more, the replicates after it are drawn again from
// the corrected position. The numbers are so those of the sequential
// bootstrap, bit for bit, on any number of cores.

// countingPCG is a rand.PCG that counts the values it returns.
type countingPCG struct {
	pcg rand.PCG
	n   uint64
}

func (c *countingPCG) Uint64() uint64 {
	c.n++
	return c.pcg.Uint64()
}

// pcgState returns the state words of the stream's generator under seed,
// those of Rand(seed).
func (s SeedStream) pcgState(seed uint64) (hi, lo uint64) {
	return seed ^ seedStreams[s].salt, seedStreams[s].seq
}

// The multiplier and increment of math/rand/v2's PCG (state = state·mul +
// inc, modulo 2¹²⁸), as its next method holds them.
const (
	pcgMulHi = 2549297995355413924
	pcgMulLo = 4865540595714422341
	pcgIncHi = 6364136223846793005
	pcgIncLo = 1442695040888963407
)

// mul128 returns a·b modulo 2¹²⁸.
func mul128(aHi, aLo, bHi, bLo uint64) (hi, lo uint64) {
	hi, lo = bits.Mul64(aLo, bLo)
	hi += aHi*bLo + aLo*bHi
	return hi, lo
}

// add128 returns a+b modulo 2¹²⁸.
func add128(aHi, aLo, bHi, bLo uint64) (hi, lo uint64) {
	lo, c := bits.Add64(aLo, bLo, 0)
	hi, _ = bits.Add64(aHi, bHi, c)
	return hi, lo
}

// pcgJump returns the PCG state k steps after (hi, lo): the state the
// generator holds after returning k values. It composes the affine step
// with itself by squaring (Brown, "Random number generation with
// arbitrary strides", 1994).
func pcgJump(hi, lo, k uint64) (uint64, uint64) {
	accMulHi, accMulLo := uint64(0), uint64(1)
	accIncHi, accIncLo := uint64(0), uint64(0)
	curMulHi, curMulLo := uint64(pcgMulHi), uint64(pcgMulLo)
	curIncHi, curIncLo := uint64(pcgIncHi), uint64(pcgIncLo)
	for ; k > 0; k >>= 1 {
		if k&1 != 0 {
			accMulHi, accMulLo = mul128(accMulHi, accMulLo, curMulHi, curMulLo)
			accIncHi, accIncLo = mul128(accIncHi, accIncLo, curMulHi, curMulLo)
			accIncHi, accIncLo = add128(accIncHi, accIncLo, curIncHi, curIncLo)
		}
		// inc ← (mul + 1)·inc, mul ← mul²
		m1Hi, m1Lo := add128(curMulHi, curMulLo, 0, 1)
		curIncHi, curIncLo = mul128(m1Hi, m1Lo, curIncHi, curIncLo)
		curMulHi, curMulLo = mul128(curMulHi, curMulLo, curMulHi, curMulLo)
	}
	hi, lo = mul128(accMulHi, accMulLo, hi, lo)
	return add128(hi, lo, accIncHi, accIncLo)
}

// replicateExtra, when set (by tests), makes replicate b take that many
// extra values from the generator after its draws, as rejections in
// rand.Rand.IntN would; it exercises the correction path.
var replicateExtra func(b int) int

// forceWide, when set (by tests), makes every replicate take the path of
// a count past 255.
var forceWide bool

// counts is one resample as per-sample counts in stratum order: the
// samples of stratum 0 (in index order), then those of stratum 1, …
// (stratumIndex gives each sample's place). The counts are bytes, which
// keeps a million samples' counts in a processor's cache; a replicate in
// which a count passes 255 (essentially never: a sample's count is about
// Poisson(1)) is drawn again into wide.
type counts struct {
	narrow []uint8
	wide   []int32 // non-nil when the counts are in wide instead
}

// drawer draws stratified resamples: each stratum of size m gets m draws
// with replacement from itself, in the order of the sequential bootstrap
// (stratum by stratum, rand.Rand.IntN(m) each).
type drawer struct {
	src   countingPCG
	rng   *rand.Rand
	sizes []int
	c     counts
	wide  []int32
}

func newDrawer(sizes []int) *drawer {
	n := 0
	for _, m := range sizes {
		n += m
	}
	d := &drawer{sizes: sizes, c: counts{narrow: make([]uint8, n)}}
	d.rng = rand.New(&d.src)
	return d
}

// draw draws the resample that starts at PCG state (hi, lo) and returns
// its counts and the number of values it took from the generator.
func (d *drawer) draw(hi, lo uint64) (counts, uint64) {
	d.src.pcg.Seed(hi, lo)
	d.src.n = 0
	c := d.c.narrow
	clear(c)
	over := false
	off := 0
	for _, m := range d.sizes {
		s := c[off : off+m]
		for range m {
			k := d.rng.IntN(m)
			s[k]++
			over = over || s[k] == 0
		}
		off += m
	}
	if !over && !forceWide {
		return d.c, d.src.n
	}
	if d.wide == nil {
		d.wide = make([]int32, len(c))
	}
	clear(d.wide)
	d.src.pcg.Seed(hi, lo)
	d.src.n = 0
	off = 0
	for _, m := range d.sizes {
		for range m {
			d.wide[off+d.rng.IntN(m)]++
		}
		off += m
	}
	return counts{wide: d.wide}, d.src.n
}

// stratumIndex returns each sample's place in stratum order (members
// first, then non-members, each in index order) and the number of members.
func stratumIndex(member []bool) (local []int32, nPos int) {
	for _, m := range member {
		if m {
			nPos++
		}
	}
	local = make([]int32, len(member))
	p, q := 0, nPos
	for i, m := range member {
		if m {
			local[i] = int32(p)
			p++
		} else {
			local[i] = int32(q)
			q++
		}
	}
	return local, nPos
}

// parallelReplicates draws replicates 0 … reps−1 of the bootstrap
// stratified into strata of the given sizes under seed (StreamBootstrap)
// and hands each to an evaluator, on GOMAXPROCS goroutines. newWorker is
// called once per goroutine; the function it returns is called with each
// replicate's index and counts (valid only during the call), and may write
// results indexed by b. A replicate may be evaluated more than once (after
// a rejection in an earlier one); the last call has the right counts.
func parallelReplicates(seed uint64, sizes []int, reps int, newWorker func() func(b int, c counts)) {
	if reps <= 0 {
		return
	}
	n := 0
	for _, m := range sizes {
		n += m
	}
	took := make([]uint64, reps)
	hi, lo := StreamBootstrap.pcgState(seed)
	for start := 0; start < reps; {
		runReplicates(hi, lo, start, reps, sizes, n, took, newWorker)
		next := reps
		for b := start; b < reps; b++ {
			if took[b] != uint64(n) {
				next = b
				break
			}
		}
		if next == reps {
			return
		}
		// Replicate next took more than n values: the later ones start
		// later than assumed and are drawn again.
		hi, lo = pcgJump(hi, lo, uint64(next-start)*uint64(n)+took[next])
		start = next + 1
	}
}

// runReplicates draws replicates start … reps−1, replicate b from the
// state (b−start)·n steps after (hi, lo), and records in took[b] the
// values each took.
func runReplicates(hi, lo uint64, start, reps int, sizes []int, n int, took []uint64, newWorker func() func(b int, c counts)) {
	workers := min(runtime.GOMAXPROCS(0), reps-start)
	var next atomic.Int64
	next.Store(int64(start))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eval := newWorker()
			d := newDrawer(sizes)
			for {
				b := int(next.Add(1) - 1)
				if b >= reps {
					return
				}
				c, t := d.draw(pcgJump(hi, lo, uint64(b-start)*uint64(n)))
				if replicateExtra != nil {
					t += uint64(replicateExtra(b))
				}
				took[b] = t
				eval(b, c)
			}
		}()
	}
	wg.Wait()
}
