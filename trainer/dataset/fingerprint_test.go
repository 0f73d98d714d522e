package dataset

import "testing"

func TestFingerprint(t *testing.T) {
	x := make([]byte, 4*6)
	for i := range x {
		x[i] = byte(i * 7)
	}
	y := []int64{0, 1, 2, 1}
	a, err := FromUint8("a", []int64{2, 3}, x, y)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FromUint8("b", []int64{2, 3}, append([]byte{}, x...), append([]int64{}, y...))
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("same samples and labels under different names must share a fingerprint")
	}
	// A subset and a concatenation that select the same rows in the same order.
	s1, _ := a.Subset([]int{0, 1})
	s2, _ := a.Subset([]int{2, 3})
	c, err := Concat("c", s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() != a.Fingerprint() {
		t.Fatal("a concatenation of subsets covering the set in order must equal it")
	}
	changed := map[string]*Dataset{}
	y2 := append([]int64{}, y...)
	y2[3] = 2
	changed["label"], _ = FromUint8("a", []int64{2, 3}, x, y2)
	x2 := append([]byte{}, x...)
	x2[5]++
	changed["pixel"], _ = FromUint8("a", []int64{2, 3}, x2, y)
	changed["order"], _ = a.Subset([]int{1, 0, 2, 3})
	changed["norm"], _ = a.WithNorm(Normalization{Mean: []float32{0.5}, Std: []float32{1}})
	changed["shape"], _ = FromUint8("a", []int64{3, 2}, x, y)
	f := make([]float32, len(x))
	for i, v := range x {
		f[i] = float32(v) / 255
	}
	changed["float"], _ = FromFloat32("a", []int64{2, 3}, f, y)
	for what, d := range changed {
		if d == nil {
			t.Fatalf("%s: could not build the data set", what)
		}
		if d.Fingerprint() == a.Fingerprint() {
			t.Errorf("changing the %s kept the fingerprint", what)
		}
	}
}
