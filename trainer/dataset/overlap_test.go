package dataset

import (
	"slices"
	"testing"
)

// TestOverlapByContent: samples are matched by their values, not by name,
// label or storage type: a byte image and the same image as floats (the
// /255 scaling identity normalization applies) are one sample.
func TestOverlapByContent(t *testing.T) {
	shape := []int64{1, 2, 2}
	// Four byte images: 0..3 filled with distinct values.
	x := []byte{
		0, 1, 2, 3,
		10, 11, 12, 13,
		20, 21, 22, 23,
		30, 31, 32, 33,
	}
	a, err := FromUint8("a.idx", shape, x, []int64{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	// b: image 2 of a with another label, a new image, image 0 of a as
	// floats (same values once scaled), and a near copy of image 3.
	f := func(v ...byte) []float32 {
		out := make([]float32, len(v))
		for i, b := range v {
			out[i] = float32(b) / 255
		}
		return out
	}
	var xb []float32
	xb = append(xb, f(20, 21, 22, 23)...)
	xb = append(xb, f(40, 41, 42, 43)...)
	xb = append(xb, f(0, 1, 2, 3)...)
	xb = append(xb, f(30, 31, 32, 34)...)
	b, err := FromFloat32("b.npz", shape, xb, []int64{9, 1, 0, 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Overlap(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 2}; !slices.Equal(got, want) {
		t.Errorf("Overlap(a, b) = %v, want %v", got, want)
	}
	// A set overlaps itself everywhere.
	self, err := Overlap(a, a)
	if err != nil || !slices.Equal(self, []int{0, 1, 2, 3}) {
		t.Errorf("Overlap(a, a) = %v, %v; want every index", self, err)
	}
	// Labels count only when asked: image 2 hashes alike without labels.
	h1, _ := a.SampleHashes(true)
	h2, _ := b.SampleHashes(true)
	h3, _ := a.SampleHashes(false)
	h4, _ := b.SampleHashes(false)
	if h1[2] == h2[0] || h3[2] != h4[0] {
		t.Errorf("label handling: with labels equal %v (want false), without equal %v (want true)", h1[2] == h2[0], h3[2] == h4[0])
	}
	// Different shapes share nothing.
	c, _ := FromUint8("c", []int64{4}, x, []int64{0, 1, 2, 3})
	if o, err := Overlap(a, c); err != nil || len(o) != 0 {
		t.Errorf("Overlap over different shapes = %v, %v; want none", o, err)
	}
}
