package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// SampleHashes returns the SHA-256 of each sample's values as the model
// would see them without normalization (identity normalization, so the
// same image stored as bytes or as floats, or named differently, hashes
// alike), followed by its label when withLabels is set. Hashes identify
// samples by content across files: Overlap and the choice of samples
// outside a set use them.
func (d *Dataset) SampleHashes(withLabels bool) ([][32]byte, error) {
	raw, err := d.WithNorm(IdentityNorm())
	if err != nil {
		return nil, err
	}
	per := 1
	for _, s := range raw.SampleShape() {
		per *= int(s)
	}
	const chunk = 1024
	buf := make([]float32, chunk*per)
	row := make([]byte, 4*per+8)
	out := make([][32]byte, raw.Len())
	idx := make([]int, 0, chunk)
	for start := 0; start < raw.Len(); start += chunk {
		n := min(chunk, raw.Len()-start)
		idx = idx[:0]
		for i := range n {
			idx = append(idx, start+i)
		}
		if err := raw.Batch(idx, buf[:n*per]); err != nil {
			return nil, err
		}
		for i := range n {
			for j, v := range buf[i*per : (i+1)*per] {
				binary.LittleEndian.PutUint32(row[4*j:], math.Float32bits(v))
			}
			b := row[:4*per]
			if withLabels {
				binary.LittleEndian.PutUint64(row[4*per:], uint64(raw.y[start+i]))
				b = row
			}
			out[start+i] = sha256.Sum256(b)
		}
	}
	return out, nil
}

// Overlap returns the indices (ascending) of the samples of b whose values
// equal those of some sample of a, whatever their labels, file names or
// storage types. Two sets that must be disjoint (members and non-members,
// training and held-out data) are checked with it. Sets of different
// sample shapes share nothing.
func Overlap(a, b *Dataset) ([]int, error) {
	if !slices.Equal(a.SampleShape(), b.SampleShape()) {
		return nil, nil
	}
	ha, err := a.SampleHashes(false)
	if err != nil {
		return nil, fmt.Errorf("dataset: hashing %s: %w", a.Name(), err)
	}
	hb, err := b.SampleHashes(false)
	if err != nil {
		return nil, fmt.Errorf("dataset: hashing %s: %w", b.Name(), err)
	}
	seen := make(map[[32]byte]struct{}, len(ha))
	for _, h := range ha {
		seen[h] = struct{}{}
	}
	var out []int
	for i, h := range hb {
		if _, ok := seen[h]; ok {
			out = append(out, i)
		}
	}
	return out, nil
}
