package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
)

// Fingerprint is a SHA-256 over what a model sees of the data set: the
// sample shape, the storage type, the normalization, every sample's values
// in order and every label. Two data sets with the same fingerprint give
// the same batches, whatever their names or how they were assembled
// (subsets, concatenations), so it keys caches of per-sample results.
func (d *Dataset) Fingerprint() string {
	h := sha256.New()
	word := func(v uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	h.Write([]byte("bnaudit.dataset/v1"))
	word(uint64(len(d.shape)))
	for _, s := range d.shape {
		word(uint64(s))
	}
	word(uint64(len(d.y)))
	word(uint64(d.classes))
	floats(h, word, d.norm.Mean)
	floats(h, word, d.norm.Std)
	if d.f32 == nil {
		h.Write([]byte{'u'})
		for i := range d.y {
			r := d.row(i)
			h.Write(d.u8[r*d.size : (r+1)*d.size])
		}
	} else {
		h.Write([]byte{'f'})
		buf := make([]byte, 4*d.size)
		for i := range d.y {
			r := d.row(i)
			for j, v := range d.f32[r*d.size : (r+1)*d.size] {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
			}
			h.Write(buf)
		}
	}
	for _, y := range d.y {
		word(uint64(y))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func floats(h hash.Hash, word func(uint64), v []float32) {
	word(uint64(len(v)))
	for _, x := range v {
		word(uint64(math.Float32bits(x)))
	}
}
