package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
)

// Hand-computed: x = (raw/255 − mean[c]) / std[c] with mean [0.5, 0.2],
// std [0.5, 0.4]; 51/255 = 0.2, 102/255 = 0.4, 153/255 = 0.6, 204/255 = 0.8.
func TestBatchUint8Normalization(t *testing.T) {
	d, err := FromUint8("hand", []int64{2, 1, 2}, []byte{0, 255, 51, 102, 255, 0, 204, 153}, []int64{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	d, err = d.WithNorm(Normalization{Mean: []float32{0.5, 0.2}, Std: []float32{0.5, 0.4}})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 8)
	if err := d.Batch([]int{1, 0}, got); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -1, 1.5, 1, -1, 1, 0, 0.5}
	for i := range want {
		if !near(float64(got[i]), float64(want[i]), 1e-6) {
			t.Errorf("element %d: got %v want %v", i, got[i], want[i])
		}
	}
	// One mean/std for every channel.
	d, _ = d.WithNorm(Normalization{Mean: []float32{0.2}, Std: []float32{0.4}})
	if err := d.Batch([]int{0}, got[:4]); err != nil {
		t.Fatal(err)
	}
	want = []float32{-0.5, 2, 0, 0.5}
	for i := range want {
		if !near(float64(got[i]), float64(want[i]), 1e-6) {
			t.Errorf("shared norm element %d: got %v want %v", i, got[i], want[i])
		}
	}
	// Identity: raw/255.
	id, _ := d.WithNorm(IdentityNorm())
	if err := id.Batch([]int{0}, got[:4]); err != nil {
		t.Fatal(err)
	}
	want = []float32{0, 1, 0.2, 0.4}
	for i := range want {
		if !near(float64(got[i]), float64(want[i]), 1e-7) {
			t.Errorf("identity element %d: got %v want %v", i, got[i], want[i])
		}
	}
}

// Feature vectors: one channel per feature. (x − mean)/std with mean
// [1, 2], std [2, 4].
func TestBatchFloat32Normalization(t *testing.T) {
	d, err := FromFloat32("feat", []int64{2}, []float32{1, 2, 3, 4, 5, 6}, []int64{0, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 4)
	if err := d.Batch([]int{2, 1}, got); err != nil {
		t.Fatal(err)
	}
	if want := []float32{5, 6, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("identity: got %v want %v", got, want)
	}
	d, err = d.WithNorm(Normalization{Mean: []float32{1, 2}, Std: []float32{2, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Batch([]int{2, 1}, got); err != nil {
		t.Fatal(err)
	}
	want := []float32{2, 1, 1, 0.5}
	for i := range want {
		if !near(float64(got[i]), float64(want[i]), 1e-6) {
			t.Errorf("element %d: got %v want %v", i, got[i], want[i])
		}
	}
}

func TestBatchErrors(t *testing.T) {
	d, _ := FromUint8("small", []int64{1, 2, 2}, make([]byte, 12), []int64{0, 1, 2})
	wantBadData(t, "short buffer", d.Batch([]int{0, 1}, make([]float32, 7)), "small", "7")
	wantBadData(t, "index", d.Batch([]int{0, 3}, make([]float32, 8)), "small", "index 3")
	wantBadData(t, "negative index", d.Batch([]int{-1}, make([]float32, 4)), "index -1")
}

func TestBatchDoesNotAllocate(t *testing.T) {
	for _, d := range []*Dataset{benchData(t, true), benchData(t, false)} {
		idx := make([]int, 128)
		for i := range idx {
			idx[i] = (i * 37) % d.Len()
		}
		dst := make([]float32, 128*784)
		if n := testing.AllocsPerRun(20, func() { _ = d.Batch(idx, dst) }); n != 0 {
			t.Errorf("%s: Batch allocates %v times per call", d.Name(), n)
		}
	}
}

// Hand-computed: uint8 channel 0 = {0, 255, 0, 255}/255 → mean 0.5, std
// 0.5; channel 1 = {51, 51, 51, 51}/255 → mean 0.2, std 0 → reported as 1.
// Float: {1, 3, 5, 7} → mean 4, population std √5.
func TestComputeNormHand(t *testing.T) {
	d, _ := FromUint8("u8", []int64{2, 1, 1}, []byte{0, 51, 255, 51, 0, 51, 255, 51}, []int64{0, 0, 0, 0})
	n := ComputeNorm(d)
	want := Normalization{Mean: []float32{0.5, 0.2}, Std: []float32{0.5, 1}}
	for c := range 2 {
		if !near(float64(n.Mean[c]), float64(want.Mean[c]), 1e-7) || !near(float64(n.Std[c]), float64(want.Std[c]), 1e-7) {
			t.Errorf("channel %d: got mean %v std %v, want %v %v", c, n.Mean[c], n.Std[c], want.Mean[c], want.Std[c])
		}
	}
	f, _ := FromFloat32("f", []int64{1, 1, 2}, []float32{1, 3, 5, 7}, []int64{0, 1})
	n = ComputeNorm(f)
	if !near(float64(n.Mean[0]), 4, 1e-6) || !near(float64(n.Std[0]), math.Sqrt(5), 1e-6) {
		t.Errorf("float: got %v, want mean 4 std %v", n, math.Sqrt(5))
	}
	// On a view: samples 1, 1 of f = {5, 7, 5, 7} → mean 6, std 1.
	s, _ := f.Subset([]int{1, 1})
	n = ComputeNorm(s)
	if !near(float64(n.Mean[0]), 6, 1e-6) || !near(float64(n.Std[0]), 1, 1e-6) {
		t.Errorf("subset: got %v, want mean 6 std 1", n)
	}
	// Normalizing by the computed statistics gives mean 0, std 1.
	s, _ = f.WithNorm(ComputeNorm(f))
	var sum, sq float64
	for _, v := range batchAll(t, s) {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	if !near(sum/4, 0, 1e-6) || !near(sq/4, 1, 1e-6) {
		t.Errorf("normalized data: mean %v, mean square %v", sum/4, sq/4)
	}
}

func TestNormalizationJSON(t *testing.T) {
	b, err := json.Marshal(Normalization{Mean: []float32{0.5}, Std: []float32{0.25}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"mean":[0.5],"std":[0.25]}` {
		t.Errorf("got %s", b)
	}
}

func TestWithNormErrors(t *testing.T) {
	d, _ := FromUint8("rgb", []int64{3, 1, 1}, make([]byte, 6), []int64{0, 1})
	cases := []struct {
		name string
		n    Normalization
		want string
	}{
		{"two channels", Normalization{Mean: []float32{0, 0}, Std: []float32{1, 1}}, "3 channels"},
		{"lengths", Normalization{Mean: []float32{0}, Std: []float32{1, 1}}, "1 means but 2 stds"},
		{"zero std", Normalization{Mean: []float32{0}, Std: []float32{0}}, "std[0]"},
		{"negative std", Normalization{Mean: []float32{0, 0, 0}, Std: []float32{1, -1, 1}}, "std[1]"},
		{"nan mean", Normalization{Mean: []float32{float32(math.NaN())}, Std: []float32{1}}, "mean[0]"},
		{"empty", Normalization{}, "want 1 or 3"},
	}
	for _, c := range cases {
		_, err := d.WithNorm(c.n)
		wantBadData(t, c.name, err, "rgb", c.want)
	}
	if _, err := d.WithNorm(Normalization{Mean: []float32{0.1, 0.2, 0.3}, Std: []float32{1, 2, 3}}); err != nil {
		t.Errorf("per-channel: %v", err)
	}
}

func TestConstructorErrors(t *testing.T) {
	_, err := FromUint8("a.bin", []int64{1, 2, 2}, make([]byte, 12), []int64{0, 1})
	wantBadData(t, "count mismatch", err, "a.bin", "3 samples but 2 labels")
	_, err = FromUint8("a.bin", []int64{1, 2, 2}, make([]byte, 10), []int64{0, 1})
	wantBadData(t, "partial sample", err, "a.bin", "whole samples")
	_, err = FromUint8("a.bin", []int64{1, 2, 2}, nil, nil)
	wantBadData(t, "empty", err, "a.bin", "empty")
	_, err = FromUint8("a.bin", []int64{1, 0, 2}, nil, []int64{0})
	wantBadData(t, "zero dim", err, "a.bin", "[1 0 2]")
	_, err = FromUint8("a.bin", []int64{4}, make([]byte, 12), []int64{0, -3, 1})
	wantBadData(t, "negative label", err, "a.bin", "sample 1", "-3")
	x := []float32{0, 1, 2, 3, float32(math.NaN()), 5}
	_, err = FromFloat32("f.bin", []int64{2}, x, []int64{0, 0, 0})
	wantBadData(t, "nan", err, "f.bin", "sample 2", "NaN")
	x[4] = float32(math.Inf(1))
	_, err = FromFloat32("f.bin", []int64{2}, x, []int64{0, 0, 0})
	wantBadData(t, "inf", err, "f.bin", "sample 2", "+Inf")
}

func TestShapeAndClasses(t *testing.T) {
	d, err := FromUint8("img", []int64{2, 3}, make([]byte, 18), []int64{4, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.SampleShape(); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("2-D samples: shape %v, want [1 2 3]", got)
	}
	if d.Len() != 3 || d.Classes() != 5 || d.Name() != "img" || !d.IsUint8() {
		t.Errorf("Len %d Classes %d Name %q IsUint8 %v", d.Len(), d.Classes(), d.Name(), d.IsUint8())
	}
	if err := d.CheckLabels(5); err != nil {
		t.Errorf("CheckLabels(5): %v", err)
	}
	wantBadData(t, "CheckLabels(4)", d.CheckLabels(4), "img", "sample 0", "label 4", "4 classes")
	wantBadData(t, "CheckLabels(0)", d.CheckLabels(0), "img")
	w, err := d.WithClasses(10)
	if err != nil || w.Classes() != 10 || d.Classes() != 5 {
		t.Errorf("WithClasses(10): %v, classes %d (original %d)", err, w.Classes(), d.Classes())
	}
	_, err = d.WithClasses(3)
	wantBadData(t, "WithClasses(3)", err, "label 4")
}

func TestCheckShape(t *testing.T) {
	d, _ := FromUint8("mnist", []int64{1, 28, 28}, make([]byte, 784), []int64{0})
	for _, c := range []struct {
		want []int64
		ok   bool
	}{
		{[]int64{1, 28, 28}, true},
		{[]int64{28, 28}, true},
		{[]int64{784}, true},
		{[]int64{-1, 28, 28}, true},
		{[]int64{1, 0, 0}, true},
		{[]int64{3, 28, 28}, false},
		{[]int64{1, 32, 32}, false},
		{[]int64{785}, false},
		{[]int64{}, false},
	} {
		err := d.CheckShape(c.want)
		if c.ok && err != nil {
			t.Errorf("want %v: %v", c.want, err)
		}
		if !c.ok {
			wantBadData(t, fmt.Sprint(c.want), err, "mnist", "[1 28 28]", fmt.Sprint(c.want))
		}
	}
	hwc, _ := FromUint8("cifar", []int64{32, 32, 3}, make([]byte, 3072), []int64{0})
	wantBadData(t, "channels last", hwc.CheckShape([]int64{3, 32, 32}), "cifar", "[32 32 3]", "[3 32 32]", "channels-last")
}

func TestSubset(t *testing.T) {
	x := []byte{10, 11, 20, 21, 30, 31, 40, 41}
	d, _ := FromUint8("four", []int64{1, 1, 2}, x, []int64{0, 1, 2, 3})
	s, err := d.Subset([]int{2, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Labels(), []int64{2, 0, 2}) || s.Classes() != 4 || s.Len() != 3 {
		t.Errorf("subset: labels %v classes %d len %d", s.Labels(), s.Classes(), s.Len())
	}
	got := batchAll(t, s)
	want := []float32{30, 31, 10, 11, 30, 31}
	for i := range want {
		if !near(float64(got[i])*255, float64(want[i]), 1e-4) {
			t.Errorf("subset element %d: got %v·255 want %v", i, got[i], want[i])
		}
	}
	ss, err := s.Subset([]int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	got = batchAll(t, ss)
	if !slices.Equal(ss.Labels(), []int64{0, 2}) || !near(float64(got[0])*255, 10, 1e-4) || !near(float64(got[2])*255, 30, 1e-4) {
		t.Errorf("subset of subset: labels %v, values %v", ss.Labels(), got)
	}
	_, err = d.Subset([]int{0, 4})
	wantBadData(t, "out of range", err, "four", "index 4", "position 1")
	_, err = d.Subset(nil)
	wantBadData(t, "empty", err, "four", "empty")
}

func TestConcat(t *testing.T) {
	a, _ := FromUint8("a", []int64{1, 1, 2}, []byte{1, 2, 3, 4}, []int64{0, 1})
	b, _ := FromUint8("b", []int64{1, 1, 2}, []byte{5, 6, 7, 8, 9, 10}, []int64{2, 0, 5})
	bs, _ := b.Subset([]int{2, 0})
	c, err := Concat("ab", a, bs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "ab" || c.Len() != 4 || c.Classes() != 6 || !slices.Equal(c.Labels(), []int64{0, 1, 5, 2}) {
		t.Errorf("concat: name %q len %d classes %d labels %v", c.Name(), c.Len(), c.Classes(), c.Labels())
	}
	got := batchAll(t, c)
	want := []float32{1, 2, 3, 4, 9, 10, 5, 6}
	for i := range want {
		if !near(float64(got[i])*255, float64(want[i]), 1e-4) {
			t.Errorf("element %d: got %v·255 want %v", i, got[i], want[i])
		}
	}
	f, _ := FromFloat32("f", []int64{1, 1, 2}, []float32{1, 2}, []int64{0})
	_, err = Concat("mix", a, f)
	wantBadData(t, "types", err, "mix", "uint8", "float32")
	g, _ := FromUint8("g", []int64{2}, []byte{1, 2}, []int64{0})
	_, err = Concat("shapes", a, g)
	wantBadData(t, "shapes", err, "shapes", "[1 1 2]", "[2]")
	an, _ := a.WithNorm(Normalization{Mean: []float32{0.5}, Std: []float32{0.5}})
	_, err = Concat("norms", a, an)
	wantBadData(t, "norms", err, "norms", "normalization")
	_, err = Concat("none")
	wantBadData(t, "none", err, "none")
}

// benchData is 256 samples of 1×28×28, uint8 or float32.
func benchData(tb testing.TB, u8 bool) *Dataset {
	const n = 256
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(i % 10)
	}
	var d *Dataset
	var err error
	if u8 {
		x := make([]byte, n*784)
		for i := range x {
			x[i] = byte(i * 7)
		}
		d, err = FromUint8("bench-u8", []int64{1, 28, 28}, x, y)
	} else {
		x := make([]float32, n*784)
		for i := range x {
			x[i] = float32(i%255) / 255
		}
		d, err = FromFloat32("bench-f32", []int64{1, 28, 28}, x, y)
	}
	if err != nil {
		tb.Fatal(err)
	}
	d, err = d.WithNorm(Normalization{Mean: []float32{0.1307}, Std: []float32{0.3081}})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkBatch fills a batch of 128 MNIST-sized samples.
func BenchmarkBatch(b *testing.B) {
	for _, u8 := range []bool{true, false} {
		d := benchData(b, u8)
		b.Run(d.Name(), func(b *testing.B) {
			idx := make([]int, 128)
			for i := range idx {
				idx[i] = (i * 37) % d.Len()
			}
			dst := make([]float32, 128*784)
			b.SetBytes(int64(len(dst)) * 4)
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Batch(idx, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
