package audit

import (
	"fmt"
	"math/rand/v2"

	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Canaries are out-of-distribution samples with fixed random labels
// (METHODS.md, "OOD canaries"): Inserted go into the training set,
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
	return rand.New(rand.NewPCG(seed^0x63616e617279, 0x6f6f64))
}

// MakeCanaries draws 2·m samples from an out-of-distribution source (in a
// seeded order), gives each a label drawn uniformly from [0, classes), and
// splits them into m inserted and m held out. The canaries take norm, the
// normalization of the data they are inserted into.
func MakeCanaries(src *dataset.Dataset, m, classes int, norm dataset.Normalization, seed uint64) (*Canaries, error) {
	if m <= 0 {
		return nil, fmt.Errorf("audit: the number of canaries must be positive, not %d", m)
	}
	if src.Len() < 2*m {
		return nil, fmt.Errorf("audit: %s holds %d samples; %d canaries need %d (inserted and held out): %w", src.Name(), src.Len(), m, 2*m, ErrInvalidInput)
	}
	r := canaryRand(seed)
	order := r.Perm(src.Len())[:2*m]
	labels := make([]int64, 2*m)
	for i := range labels {
		labels[i] = int64(r.IntN(classes))
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
	first, second := make([]int, m), make([]int, m)
	for i := 0; i < m; i++ {
		first[i], second[i] = i, m+i
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
	r := rand.New(rand.NewPCG(seed^0x6e6f697365, 0x63616e))
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
