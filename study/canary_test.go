package study

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// tinySet is n one-pixel-row samples whose 4 pixels spell the sample's
// index (so a sample can be recognized after subsetting), with label
// i mod classes.
func tinySet(t *testing.T, name string, n, classes, offset int) *dataset.Dataset {
	t.Helper()
	x := make([]byte, 4*n)
	y := make([]int64, n)
	for i := 0; i < n; i++ {
		v := i + offset
		x[4*i], x[4*i+1], x[4*i+2], x[4*i+3] = byte(v), byte(v>>8), 7, 9
		y[i] = int64((i + offset) % classes)
	}
	d, err := dataset.FromUint8(name, []int64{1, 2, 2}, x, y)
	if err != nil {
		t.Fatal(err)
	}
	if d, err = d.WithClasses(classes); err != nil {
		t.Fatal(err)
	}
	return d
}

// sampleIDs recovers each sample's index from its pixels.
func sampleIDs(t *testing.T, d *dataset.Dataset) []int {
	t.Helper()
	raw, err := d.WithNorm(dataset.IdentityNorm())
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, raw.Len())
	for i := range idx {
		idx[i] = i
	}
	buf := make([]float32, 4*raw.Len())
	if err := raw.Batch(idx, buf); err != nil {
		t.Fatal(err)
	}
	ids := make([]int, raw.Len())
	for i := range ids {
		ids[i] = int(buf[4*i]*255+0.5) + int(buf[4*i+1]*255+0.5)<<8
	}
	return ids
}

// TestRelabeledCanaries: every canary gets a label other than its true
// one, the wrong labels spread evenly over the other classes, inserted and
// held-out canaries are distinct samples, and the seed decides the draw.
func TestRelabeledCanaries(t *testing.T) {
	const classes, m = 10, 1000
	src := tinySet(t, "pool", 2*m, classes, 0)
	c, err := RelabeledCanaries(src, m, classes, dataset.IdentityNorm(), 5)
	if err != nil {
		t.Fatal(err)
	}
	// Binomial(2000, ½) inserted: sd 22.4, so 1000 ± 112 is five sd
	if c.Inserted.Len()+c.HeldOut.Len() != 2*m || c.Inserted.Len() < m-112 || c.Inserted.Len() > m+112 {
		t.Fatalf("%d inserted and %d held out, want %d in all, about %d each", c.Inserted.Len(), c.HeldOut.Len(), 2*m, m)
	}
	ins, held := sampleIDs(t, c.Inserted), sampleIDs(t, c.HeldOut)
	seen := map[int]bool{}
	// shift[k] counts (label − true label) mod classes = k.
	shift := make([]int, classes)
	for part, ds := range []*dataset.Dataset{c.Inserted, c.HeldOut} {
		ids := [][]int{ins, held}[part]
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("sample %d drawn twice", id)
			}
			seen[id] = true
			truth := int64(id % classes)
			got := ds.Labels()[i]
			if got == truth {
				t.Fatalf("canary from sample %d kept its true label %d", id, truth)
			}
			shift[(got-truth+classes)%classes]++
		}
	}
	// 2000 labels over 9 wrong classes: about 222 each. A chi-square
	// statistic over 9 cells has 8 degrees of freedom; 26.1 is its 99.9%
	// quantile, so a correct draw fails this one time in a thousand (the
	// seed is fixed, so the test is deterministic).
	chi := 0.0
	exp := float64(2*m) / (classes - 1)
	for k := 1; k < classes; k++ {
		d := float64(shift[k]) - exp
		chi += d * d / exp
	}
	if shift[0] != 0 || chi > 26.1 {
		t.Errorf("label shifts %v: chi-square %.1f over the wrong classes", shift, chi)
	}
	again, err := RelabeledCanaries(src, m, classes, dataset.IdentityNorm(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sampleIDs(t, again.Inserted), ins) || !slices.Equal(again.Inserted.Labels(), c.Inserted.Labels()) {
		t.Error("the same seed drew other canaries")
	}
	other, err := RelabeledCanaries(src, m, classes, dataset.IdentityNorm(), 6)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(sampleIDs(t, other.Inserted), ins) {
		t.Error("another seed drew the same canaries")
	}
	if _, err := RelabeledCanaries(src, m, 1, dataset.IdentityNorm(), 5); !errors.Is(err, audit.ErrInvalidInput) {
		t.Errorf("one class: %v, want ErrInvalidInput", err)
	}
}

// TestMakeCanariesCounts: OOD canaries are 2·m distinct samples with labels
// in range; a source that is too small is refused.
func TestMakeCanariesCounts(t *testing.T) {
	src := tinySet(t, "ood", 30, 3, 0)
	c, err := MakeCanaries(src, 10, 5, dataset.IdentityNorm(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ids := append(sampleIDs(t, c.Inserted), sampleIDs(t, c.HeldOut)...)
	slices.Sort(ids)
	if len(slices.Compact(ids)) != 20 {
		t.Errorf("canaries %v are not 20 distinct samples", ids)
	}
	for _, l := range append(c.Inserted.Labels(), c.HeldOut.Labels()...) {
		if l < 0 || l >= 5 {
			t.Errorf("label %d outside [0, 5)", l)
		}
	}
	if _, err := MakeCanaries(src, 16, 5, dataset.IdentityNorm(), 1); !errors.Is(err, audit.ErrInvalidInput) {
		t.Errorf("32 canaries from 30 samples: %v, want ErrInvalidInput", err)
	}
}

// TestOutside: the pool without the members, found by content, in the
// pool's order, whatever order the members come in.
func TestOutside(t *testing.T) {
	pool := tinySet(t, "train", 50, 10, 0)
	members, err := pool.Subset([]int{40, 3, 17, 0, 22})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := Outside(pool, members)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := 0; i < 50; i++ {
		if !slices.Contains([]int{40, 3, 17, 0, 22}, i) {
			want = append(want, i)
		}
	}
	if got := sampleIDs(t, rest); !slices.Equal(got, want) {
		t.Errorf("outside the members: %v, want %v", got, want)
	}
	// Same pixels, another label: not the same sample.
	relabeled, err := dataset.FromUint8("x", []int64{1, 2, 2}, []byte{3, 0, 7, 9}, []int64{4})
	if err != nil {
		t.Fatal(err)
	}
	if rest, err = Outside(pool, relabeled); err != nil || rest.Len() != 50 {
		t.Errorf("a member with another label removed a pool sample: %d left, %v", rest.Len(), err)
	}
	if _, err := Outside(members, pool); !errors.Is(err, ErrNoneOutside) {
		t.Errorf("every sample a member: %v, want ErrNoneOutside", err)
	}
	wrong, err := dataset.FromUint8("y", []int64{1, 4}, []byte{3, 0, 7, 9}, []int64{3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Outside(pool, wrong); !errors.Is(err, audit.ErrInvalidInput) {
		t.Errorf("other sample shape: %v, want ErrInvalidInput", err)
	}
}

// TestCanaryInclusionIndependent: each canary is inserted by its own fair
// coin, as the one-run ε bound assumes. Over 2,000 seeds with 2·m = 10
// canaries, the number inserted has the Binomial(10, ½) mean 5 and
// variance 2.5 (an exactly balanced split would have variance 0), and
// every position is inserted about half the time; the canaries drawn and
// their labels do not depend on the coins (same seed, same samples).
func TestCanaryInclusionIndependent(t *testing.T) {
	const m, seeds = 5, 2000
	src := tinySet(t, "pool", 40, 10, 0)
	var sum, sumSq float64
	refused := 0
	for seed := range uint64(seeds) {
		c, err := MakeCanaries(src, m, 10, dataset.IdentityNorm(), seed)
		if err != nil {
			if !errors.Is(err, audit.ErrInvalidInput) {
				t.Fatal(err)
			}
			refused++ // all ten on one side: probability 2/1024
			continue
		}
		k := float64(c.Inserted.Len())
		sum += k
		sumSq += k * k
	}
	n := float64(seeds - refused)
	mean := sum / n
	variance := sumSq/n - mean*mean
	// standard errors: mean 0.035, variance about 0.08
	if math.Abs(mean-5) > 0.15 || math.Abs(variance-2.5) > 0.4 {
		t.Errorf("inserted count mean %.3f variance %.3f over %v seeds, want Binomial(10, ½): 5 and 2.5", mean, variance, n)
	}
	if refused > 20 {
		t.Errorf("%d of %d seeds refused, expected about 4", refused, seeds)
	}
}
