package dataset

import (
	"errors"
	"os"
	"path/filepath"
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
