package study

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Canaries are out-of-distribution samples with fixed random labels
// (docs/METHODS.md, "OOD canaries"): Inserted go into the training set,
// HeldOut come from the same source with the same labelling rule and stay
// out. A model that learned nothing specific about the inserted ones
// classifies both sets alike (near chance); the difference is memorization.
type Canaries struct {
	Inserted, HeldOut *dataset.Dataset
	// Source says where they came from ("mnist-canaries (train)", "uniform noise").
	Source string
}

// canaryRand is the seeded stream for canary choice and labels.
func canaryRand(seed uint64) *rand.Rand {
	return audit.StreamCanaries.Rand(seed)
}

// MakeCanaries draws 2·m samples from an out-of-distribution source (in a
// seeded order), gives each a label drawn uniformly from [0, classes), and
// inserts each one independently with probability ½ (the others are held
// out): about m of each, the counts Binomial(2·m, ½). The canaries take norm, the
// normalization of the data they are inserted into.
func MakeCanaries(src *dataset.Dataset, m, classes int, norm dataset.Normalization, seed uint64) (*Canaries, error) {
	return makeCanaries(src, m, classes, norm, seed, false)
}

// RelabeledCanaries makes canaries from in-distribution samples that are
// not members (e.g. the training split beyond the members): 2·m of them
// in a seeded order, each given a label drawn uniformly from the classes
// other than its true one, so that a model can only classify an inserted
// one "right" by memorizing it. Then as MakeCanaries.
func RelabeledCanaries(src *dataset.Dataset, m, classes int, norm dataset.Normalization, seed uint64) (*Canaries, error) {
	if classes < 2 {
		return nil, fmt.Errorf("study: relabeled canaries need at least 2 classes, not %d: %w", classes, audit.ErrInvalidInput)
	}
	c, err := makeCanaries(src, m, classes, norm, seed, true)
	if err != nil {
		return nil, err
	}
	c.Source = src.Name() + " (relabeled)"
	return c, nil
}

func makeCanaries(src *dataset.Dataset, m, classes int, norm dataset.Normalization, seed uint64, avoidTrue bool) (*Canaries, error) {
	if m <= 0 {
		return nil, fmt.Errorf("study: the number of canaries must be positive, not %d", m)
	}
	if src.Len() < 2*m {
		return nil, fmt.Errorf("study: %s holds %d samples; %d canaries need %d (inserted and held out): %w", src.Name(), src.Len(), m, 2*m, audit.ErrInvalidInput)
	}
	r := canaryRand(seed)
	order := r.Perm(src.Len())[:2*m]
	labels := make([]int64, 2*m)
	for i := range labels {
		if !avoidTrue {
			labels[i] = int64(r.IntN(classes))
			continue
		}
		// Uniform over the classes other than the true one.
		y := src.Labels()[order[i]]
		if y < 0 || y >= int64(classes) {
			return nil, fmt.Errorf("study: %s sample %d has label %d outside [0, %d): %w", src.Name(), order[i], y, classes, audit.ErrInvalidInput)
		}
		l := int64(r.IntN(classes - 1))
		if l >= y {
			l++
		}
		labels[i] = l
	}
	pick, err := src.Subset(order)
	if err != nil {
		return nil, err
	}
	relabelled, err := relabel(pick, labels, classes)
	if err != nil {
		return nil, err
	}
	if relabelled, err = relabelled.WithNorm(norm); err != nil {
		return nil, err
	}
	// Each of the 2·m canaries is inserted or held out by its own fair coin
	// (a stream of its own, so the canaries and their labels do not depend
	// on it): the inclusions are independent, as the one-run ε bound
	// assumes (docs/METHODS.md), and about m of each, not exactly m.
	coin := audit.StreamCanaryInclusion.Rand(seed)
	var first, second []int
	for i := range 2 * m {
		if coin.IntN(2) == 1 {
			first = append(first, i)
		} else {
			second = append(second, i)
		}
	}
	if len(first) == 0 || len(second) == 0 {
		return nil, fmt.Errorf("study: the coin flips put all %d canaries on one side (inserted %d, held out %d); use more canaries or another --seed: %w", 2*m, len(first), len(second), audit.ErrInvalidInput)
	}
	ins, err := relabelled.Subset(first)
	if err != nil {
		return nil, err
	}
	held, err := relabelled.Subset(second)
	if err != nil {
		return nil, err
	}
	return &Canaries{Inserted: ins, HeldOut: held, Source: src.Name()}, nil
}

// NoiseCanaries makes 2·m uniform-noise images of the given sample shape as
// the out-of-distribution source, then proceeds as MakeCanaries.
func NoiseCanaries(shape []int64, m, classes int, norm dataset.Normalization, seed uint64) (*Canaries, error) {
	per := int64(1)
	for _, d := range shape {
		per *= d
	}
	r := audit.StreamNoiseCanaries.Rand(seed)
	x := make([]byte, int64(2*m)*per)
	for i := range x {
		x[i] = byte(r.IntN(256))
	}
	y := make([]int64, 2*m)
	src, err := dataset.FromUint8("uniform noise", shape, x, y)
	if err != nil {
		return nil, err
	}
	c, err := MakeCanaries(src, m, classes, norm, seed)
	if err != nil {
		return nil, err
	}
	c.Source = "uniform noise"
	return c, nil
}

// relabel returns a copy of d with new labels.
func relabel(d *dataset.Dataset, labels []int64, classes int) (*dataset.Dataset, error) {
	n := d.Len()
	shape := d.SampleShape()
	per := int64(1)
	for _, s := range shape {
		per *= s
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	// Take the raw values back out through an identity normalization.
	raw, err := d.WithNorm(dataset.IdentityNorm())
	if err != nil {
		return nil, err
	}
	x := make([]float32, int64(n)*per)
	if err := raw.Batch(idx, x); err != nil {
		return nil, err
	}
	if raw.IsUint8() {
		b := make([]byte, len(x))
		for i, v := range x {
			b[i] = byte(v*255 + 0.5)
		}
		out, err := dataset.FromUint8(d.Name()+" (canaries)", shape, b, labels)
		if err != nil {
			return nil, err
		}
		return out.WithClasses(classes)
	}
	out, err := dataset.FromFloat32(d.Name()+" (canaries)", shape, x, labels)
	if err != nil {
		return nil, err
	}
	return out.WithClasses(classes)
}

// ErrNoneOutside is Outside's error when every sample of the pool is a
// member.
var ErrNoneOutside = fmt.Errorf("no sample is left outside the members: %w", audit.ErrInvalidInput)

// Outside returns the samples of pool that are not in members: those whose
// raw values and label match no member's. It is the source of relabeled
// canaries (in-distribution samples the target was not trained on) when
// members were drawn from the same split.
func Outside(pool, members *dataset.Dataset) (*dataset.Dataset, error) {
	if !slices.Equal(pool.SampleShape(), members.SampleShape()) {
		return nil, fmt.Errorf("study: %s has samples of shape %v and %s %v: %w", pool.Name(), pool.SampleShape(), members.Name(), members.SampleShape(), audit.ErrInvalidInput)
	}
	seen := map[[32]byte]bool{}
	if err := eachSampleHash(members, func(_ int, h [32]byte) { seen[h] = true }); err != nil {
		return nil, err
	}
	var keep []int
	if err := eachSampleHash(pool, func(i int, h [32]byte) {
		if !seen[h] {
			keep = append(keep, i)
		}
	}); err != nil {
		return nil, err
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("study: every sample of %s is a member: %w", pool.Name(), ErrNoneOutside)
	}
	return pool.Subset(keep)
}

// eachSampleHash calls f with the SHA-256 of each sample's raw values
// (identity normalization) and label.
func eachSampleHash(d *dataset.Dataset, f func(i int, h [32]byte)) error {
	raw, err := d.WithNorm(dataset.IdentityNorm())
	if err != nil {
		return err
	}
	per := 1
	for _, s := range raw.SampleShape() {
		per *= int(s)
	}
	const chunk = 1024
	buf := make([]float32, chunk*per)
	row := make([]byte, 4*per+8)
	labels := raw.Labels()
	for start := 0; start < raw.Len(); start += chunk {
		n := min(chunk, raw.Len()-start)
		idx := make([]int, n)
		for i := range idx {
			idx[i] = start + i
		}
		if err := raw.Batch(idx, buf[:n*per]); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			for j, v := range buf[i*per : (i+1)*per] {
				binary.LittleEndian.PutUint32(row[4*j:], math.Float32bits(v))
			}
			binary.LittleEndian.PutUint64(row[4*per:], uint64(labels[start+i]))
			f(start+i, sha256.Sum256(row))
		}
	}
	return nil
}
