package dataset

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The committed MNIST subset: 64 test images whose first labels are
// 7 2 1 0 4 1 4 9 (MNIST's published t10k order).
func TestReadIDXMNISTSubset(t *testing.T) {
	img, err := ReadIDX("../../testdata/mnist/t10k-64-images-idx3-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Dims) != 3 || img.Dims[0] != 64 || img.Dims[1] != 28 || img.Dims[2] != 28 || len(img.Data) != 64*28*28 {
		t.Fatalf("images: dims %v, %d bytes", img.Dims, len(img.Data))
	}
	lab, err := ReadIDX("../../testdata/mnist/t10k-64-labels-idx1-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{7, 2, 1, 0, 4, 1, 4, 9}
	for i, w := range want {
		if lab.Data[i] != w {
			t.Fatalf("label %d = %d want %d", i, lab.Data[i], w)
		}
	}
}

func TestReadIDXRejects(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"empty":     {},
		"magic":     {1, 2, 3, 4, 5},
		"float":     {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0},
		"truncated": {0, 0, 8, 2, 0, 0, 0, 10, 0, 0, 0, 10, 1, 2, 3},
		"huge":      {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"gzipjunk":  {0x1f, 0x8b, 0, 0, 0},
	}
	for name, data := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadIDX(p); !errors.Is(err, ErrBadData) {
			t.Errorf("%s: want ErrBadData, got %v", name, err)
		}
	}
}

const mnistImages = "../../testdata/mnist/t10k-64-images-idx3-ubyte.gz"

// Pixel values read with numpy from the same file:
//
//	/usr/bin/python3 -c "import gzip,numpy as np; a=np.frombuffer(gzip.open('testdata/mnist/t10k-64-images-idx3-ubyte.gz').read()[16:],np.uint8).reshape(64,28,28); print(a[0,7,6:12].tolist(), a[1,10,10:14].tolist(), a[63,14,14], a[0,0,0], a.mean()/255, (a/255).std())"
//	[84, 185, 159, 151, 60, 36] [0, 0, 76, 247] 252 0 0.11471948154261705 0.2891957816516141
func TestLoadMNISTSubset(t *testing.T) {
	for _, path := range []string{mnistImages, "../../testdata/mnist"} {
		d, err := Load(path, LoadOptions{Split: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != 64 || !slices.Equal(d.SampleShape(), []int64{1, 28, 28}) || d.Classes() != 10 || !d.IsUint8() {
			t.Fatalf("%s: len %d shape %v classes %d", path, d.Len(), d.SampleShape(), d.Classes())
		}
		if !slices.Equal(d.Labels()[:8], []int64{7, 2, 1, 0, 4, 1, 4, 9}) || d.Labels()[63] != 3 {
			t.Errorf("%s: labels %v", path, d.Labels())
		}
		x := batchAll(t, d)
		px := func(i, r, c int) int { return int(math.Round(float64(x[i*784+r*28+c]) * 255)) }
		for _, p := range []struct{ i, r, c, want int }{
			{0, 7, 6, 84}, {0, 7, 7, 185}, {0, 7, 8, 159}, {0, 7, 9, 151}, {0, 7, 10, 60}, {0, 7, 11, 36},
			{1, 10, 12, 76}, {1, 10, 13, 247}, {63, 14, 14, 252}, {0, 0, 0, 0},
		} {
			if got := px(p.i, p.r, p.c); got != p.want {
				t.Errorf("%s: image %d (%d,%d) = %d want %d", path, p.i, p.r, p.c, got, p.want)
			}
		}
		n := ComputeNorm(d)
		if !near(float64(n.Mean[0]), 0.11471948154261705, 1e-6) || !near(float64(n.Std[0]), 0.2891957816516141, 1e-6) {
			t.Errorf("%s: ComputeNorm %v, numpy says mean 0.1147195 std 0.2891958", path, n)
		}
	}
	d, err := Load(mnistImages, LoadOptions{MaxSamples: 10})
	if err != nil || d.Len() != 10 || d.Labels()[9] != 9 {
		t.Errorf("MaxSamples 10: %v", err)
	}
}

// writeIDX writes an uncompressed IDX file of unsigned bytes.
func writeIDX(t *testing.T, path string, dims []uint32, data []byte) {
	t.Helper()
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	if err := os.WriteFile(path, append(b, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadIDXFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "digits")
	os.Mkdir(dir, 0o755)
	writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte"), []uint32{3, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	writeIDX(t, filepath.Join(dir, "train-labels-idx1-ubyte"), []uint32{3}, []byte{2, 0, 1})
	d, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || d.Classes() != 3 || !slices.Equal(d.SampleShape(), []int64{1, 2, 2}) || d.Name() != "digits (train)" {
		t.Errorf("len %d classes %d shape %v name %q", d.Len(), d.Classes(), d.SampleShape(), d.Name())
	}
	_, err = Load(dir, LoadOptions{Split: "test"})
	wantBadData(t, "no test split", err, "digits", "t10k-images-idx3-ubyte")
	_, err = Load(dir, LoadOptions{Split: "validation"})
	wantBadData(t, "bad split", err, "validation")
	_, err = Load(dir, LoadOptions{Resize: [2]int{4, 4}})
	wantBadData(t, "resize", err, "digits", "image folders")
	_, err = Load(filepath.Join(dir, "train-labels-idx1-ubyte"), LoadOptions{})
	wantBadData(t, "labels file", err, "train-labels-idx1-ubyte", "images file")

	// Counts that disagree.
	writeIDX(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), []uint32{3, 2, 2}, make([]byte, 12))
	writeIDX(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), []uint32{2}, []byte{0, 1})
	_, err = Load(dir, LoadOptions{Split: "test"})
	wantBadData(t, "count mismatch", err, "t10k-images-idx3-ubyte holds 3 images", "t10k-labels-idx1-ubyte holds 2 labels")

	// A lone images file.
	lone := filepath.Join(t.TempDir(), "extra-images-idx3-ubyte")
	writeIDX(t, lone, []uint32{1, 2, 2}, make([]byte, 4))
	_, err = Load(lone, LoadOptions{})
	wantBadData(t, "missing labels", err, "extra-images-idx3-ubyte", "extra-labels-idx1-ubyte")
}

// Fashion-MNIST as Debian's dataset-fashion-mnist package installs it.
// The published normalization of its training set is mean 0.2860, std
// 0.3530.
func TestFashionMNIST(t *testing.T) {
	const dir = "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist): %v", err)
	}
	if testing.Short() {
		t.Skip("reads 30 MB of gzip")
	}
	for _, c := range []struct {
		split string
		n     int
	}{{"train", 60000}, {"test", 10000}} {
		d, err := Load(dir, LoadOptions{Split: c.split})
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != c.n || !slices.Equal(d.SampleShape(), []int64{1, 28, 28}) || d.Classes() != 10 {
			t.Errorf("%s: len %d shape %v classes %d, want %d [1 28 28] 10", c.split, d.Len(), d.SampleShape(), d.Classes(), c.n)
		}
		counts := make([]int, 10)
		for _, l := range d.Labels() {
			counts[l]++
		}
		for k, n := range counts {
			if n != c.n/10 {
				t.Errorf("%s: class %d has %d samples, want %d", c.split, k, n, c.n/10)
			}
		}
		if c.split == "train" {
			n := ComputeNorm(d)
			t.Logf("Fashion-MNIST train: mean %.6f std %.6f", n.Mean[0], n.Std[0])
			if !near(float64(n.Mean[0]), 0.2860, 5e-4) || !near(float64(n.Std[0]), 0.3530, 5e-4) {
				t.Errorf("ComputeNorm = %v, want mean 0.2860 std 0.3530", n)
			}
		}
	}
}

// TestLoadIDXSwappedKinds: a labels file that holds images (and the
// reverse) is named as such, before its header's sizes are believed.
func TestLoadIDXSwappedKinds(t *testing.T) {
	dir := t.TempDir()
	imgs := make([]byte, 3*2*2)
	writeIDX(t, filepath.Join(dir, "train-images-idx3-ubyte"), []uint32{3, 2, 2}, imgs)
	// The labels file carries the images magic (3 dimensions) and label
	// bytes where the sizes should be: read as sizes they would be huge.
	lab := []byte{0, 0, 8, 3, 200, 201, 202, 203, 7, 7, 7, 7, 9, 9, 9, 9}
	if err := os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), lab, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, LoadOptions{})
	wantBadData(t, "labels with the images magic", err, "train-labels-idx1-ubyte", "declares 3", "images file?")
	if err != nil && strings.Contains(err.Error(), "bytes") {
		t.Errorf("the message still speaks of sizes: %v", err)
	}

	dir2 := t.TempDir()
	writeIDX(t, filepath.Join(dir2, "train-images-idx3-ubyte"), []uint32{3}, []byte{1, 2, 3})
	writeIDX(t, filepath.Join(dir2, "train-labels-idx1-ubyte"), []uint32{3}, []byte{1, 2, 3})
	_, err = Load(dir2, LoadOptions{})
	wantBadData(t, "images with the labels magic", err, "train-images-idx3-ubyte", "declares 1", "labels file?")
}
