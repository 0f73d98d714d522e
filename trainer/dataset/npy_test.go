package dataset

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The fixtures come from testdata/make_npy.py; the values below are the
// ones that script states.

func TestLoadNPZ(t *testing.T) {
	// u8.npz: x[i, r, c] = 10i + 3r + c, shape (5, 2, 3); y int64.
	d, err := Load("testdata/u8.npz", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "u8.npz" || d.Len() != 5 || !d.IsUint8() || !slices.Equal(d.SampleShape(), []int64{1, 2, 3}) ||
		!slices.Equal(d.Labels(), []int64{0, 1, 2, 1, 0}) || d.Classes() != 3 {
		t.Fatalf("u8.npz: name %q len %d shape %v labels %v classes %d", d.Name(), d.Len(), d.SampleShape(), d.Labels(), d.Classes())
	}
	x := batchAll(t, d)
	for _, p := range []struct{ i, r, c, want int }{{0, 0, 0, 0}, {0, 1, 2, 5}, {4, 0, 0, 40}, {4, 1, 2, 45}, {2, 1, 1, 24}} {
		if got := math.Round(float64(x[p.i*6+p.r*3+p.c]) * 255); int(got) != p.want {
			t.Errorf("u8.npz x[%d,%d,%d] = %v want %d", p.i, p.r, p.c, got, p.want)
		}
	}

	// f32.npz: x[i, c, h, w] = i + 0.25c − 0.5h + 0.125w, (4, 3, 2, 2); y int32.
	d, err = Load("testdata/f32.npz", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.IsUint8() || !slices.Equal(d.SampleShape(), []int64{3, 2, 2}) || !slices.Equal(d.Labels(), []int64{3, 0, 1, 2}) {
		t.Fatalf("f32.npz: shape %v labels %v", d.SampleShape(), d.Labels())
	}
	x = batchAll(t, d)
	for _, p := range []struct {
		i, c, h, w int
		want       float32
	}{{0, 0, 0, 0, 0}, {3, 2, 1, 1, 3.125}, {1, 1, 0, 1, 1.375}, {2, 0, 1, 0, 1.5}} {
		if got := x[p.i*12+p.c*4+p.h*2+p.w]; got != p.want {
			t.Errorf("f32.npz x[%d,%d,%d,%d] = %v want %v", p.i, p.c, p.h, p.w, got, p.want)
		}
	}

	// f64_yu8.npz: float64 x of feature vectors (3, 4); y uint8.
	d, err = Load("testdata/f64_yu8.npz", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1.5, -2, 0, 4, 0.1, 0.2, 0.3, 0.4, -1e3, 1e3, 7, 8}
	if got := batchAll(t, d); !slices.Equal(got, want) || !slices.Equal(d.SampleShape(), []int64{4}) || !slices.Equal(d.Labels(), []int64{1, 0, 1}) {
		t.Errorf("f64_yu8.npz: x %v shape %v labels %v", got, d.SampleShape(), d.Labels())
	}

	// compressed.npz (np.savez_compressed): x[i, r, c] = (i + rc) % 7 · 30, (100, 8, 8); y = i % 10.
	// x[99, 7, 7] = 148 % 7 · 30 = 30, x[5, 3, 4] = 17 % 7 · 30 = 90.
	d, err = Load("testdata/compressed.npz", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x = batchAll(t, d)
	if d.Len() != 100 || d.Labels()[57] != 7 || math.Round(float64(x[99*64+7*8+7])*255) != 30 || math.Round(float64(x[5*64+3*8+4])*255) != 90 {
		t.Errorf("compressed.npz: len %d label[57] %d x[99,7,7]·255 %v x[5,3,4]·255 %v", d.Len(), d.Labels()[57], x[99*64+63]*255, x[5*64+28]*255)
	}
	d, err = Load("testdata/compressed.npz", LoadOptions{MaxSamples: 12})
	if err != nil || d.Len() != 12 || d.Labels()[11] != 1 {
		t.Errorf("compressed.npz, MaxSamples 12: %v", err)
	}

	// v2v3.npz: x (v2.0 header) = [[[1,2],[3,4]],[[5,6],[7,8]]], y (v3.0 header) int16 [1, 0].
	d, err = Load("testdata/v2v3.npz", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x = batchAll(t, d)
	for i := range 8 {
		if math.Round(float64(x[i])*255) != float64(i+1) {
			t.Errorf("v2v3.npz element %d = %v·255 want %d", i, x[i]*255, i+1)
		}
	}
	if !slices.Equal(d.Labels(), []int64{1, 0}) {
		t.Errorf("v2v3.npz labels %v", d.Labels())
	}
}

func TestLoadNPZErrors(t *testing.T) {
	cases := []struct {
		file  string
		parts []string
	}{
		{"fortran.npz", []string{"fortran.npz: x.npy", "Fortran order"}},
		{"bigendian.npz", []string{"bigendian.npz: x.npy", "big-endian", ">f4"}},
		{"truncated_entry.npz", []string{"truncated_entry.npz: x.npy", "truncated"}},
		{"truncated.npz", []string{"truncated.npz", "zip"}},
		{"nan.npz", []string{"nan.npz", "sample 2", "NaN"}},
		{"inf.npz", []string{"inf.npz", "sample 1", "-Inf"}},
		{"mismatch.npz", []string{"mismatch.npz", "4 samples", "3 labels"}},
		{"neglabel.npz", []string{"neglabel.npz", "sample 1", "-1"}},
		{"int64x.npz", []string{"int64x.npz", "x has dtype <i8", "uint8 or float32"}},
		{"noy.npz", []string{"noy.npz", `no array "y"`, "holds x"}},
		{"x.npy", []string{"x.npy", "no labels", "np.savez"}},
	}
	for _, c := range cases {
		_, err := Load(filepath.Join("testdata", c.file), LoadOptions{})
		wantBadData(t, c.file, err, c.parts...)
	}
	_, err := Load("testdata/u8.npz", LoadOptions{Grayscale: true})
	wantBadData(t, "grayscale", err, "u8.npz", "image folders")
	_, err = Load("testdata/make_npy.py", LoadOptions{})
	wantBadData(t, "unknown", err, "make_npy.py", "unknown data format")
}

// npyFile builds a .npy file with the given version and header text.
func npyFile(major byte, header string, data []byte) []byte {
	b := []byte("\x93NUMPY")
	b = append(b, major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	}
	return append(append(b, header...), data...)
}

func TestNPYHeaders(t *testing.T) {
	ok := []struct {
		name, header string
		data         []byte
		shape        []int64
		ints         []int64
	}{
		{"plain", "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }\n", []byte{1, 0, 0xff, 0xff}, []int64{2}, []int64{1, -1}},
		{"double quotes, no trailing comma", `{"shape": (2,), "descr": "<u2", "fortran_order": False}`, []byte{1, 0, 0xff, 0xff}, []int64{2}, []int64{1, 65535}},
		{"python 2 longs", "{'descr': '|u1', 'fortran_order': False, 'shape': (1L, 2L), }", []byte{7, 8}, []int64{1, 2}, []int64{7, 8}},
		{"scalar", "{'descr': '<i4', 'fortran_order': False, 'shape': (), }", []byte{5, 0, 0, 0}, []int64{}, []int64{5}},
		{"fortran 1-D", "{'descr': '<i1', 'fortran_order': True, 'shape': (3,), }", []byte{1, 2, 0xfe}, []int64{3}, []int64{1, 2, -2}},
		{"extra key", "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), 'note': ('a', [1, 2]), }", []byte{9, 0, 0, 0, 0, 0, 0, 0}, []int64{1}, []int64{9}},
		{"bool", "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", []byte{1, 0}, []int64{2}, []int64{1, 0}},
	}
	for _, c := range ok {
		f := npyFile(1, c.header, c.data)
		a, err := readNPY(bytes.NewReader(f), int64(len(f)), c.name, "a", npyInts, 0)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(a.shape, c.shape) || !slices.Equal(a.ints, c.ints) {
			t.Errorf("%s: shape %v values %v, want %v %v", c.name, a.shape, a.ints, c.shape, c.ints)
		}
	}
	bad := []struct {
		name, header string
		data         []byte
		want         string
	}{
		{"no shape", "{'descr': '<i2', 'fortran_order': False}", nil, `no "shape" key`},
		{"structured", "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,)}", make([]byte, 4), "structured"},
		{"object", "{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", make([]byte, 8), `"|O"`},
		{"unicode", "{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}", make([]byte, 12), `"<U3"`},
		{"no byte order", "{'descr': '|i4', 'fortran_order': False, 'shape': (1,)}", make([]byte, 4), "byte order"},
		{"negative dim", "{'descr': '<i4', 'fortran_order': False, 'shape': (-1,)}", nil, "non-negative"},
		{"huge dims", "{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", nil, "larger than the file"},
		{"overflow", "{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999999999999,)}", nil, "out of range"},
		{"trailing data", "{'descr': '|u1', 'fortran_order': False, 'shape': (1,)}", []byte{1, 2}, "1 bytes after its data"},
		{"garbage after", "{'descr': '|u1', 'fortran_order': False, 'shape': (1,)} x", []byte{1}, "after the header"},
		{"repeated key", "{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (1,)}", []byte{1}, "repeated"},
		{"fortran 2-D", "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2)}", make([]byte, 4), "Fortran"},
	}
	for _, c := range bad {
		f := npyFile(1, c.header, c.data)
		_, err := readNPY(bytes.NewReader(f), int64(len(f)), c.name, "a", npyInts, 0)
		wantBadData(t, c.name, err, c.name, c.want)
	}
	// Version and length problems.
	for name, f := range map[string][]byte{
		"version 4":       append(npyFile(1, "{}", nil)[:6], 4, 0, 2, 0, '{', '}'),
		"header too long": append([]byte("\x93NUMPY\x02\x00"), 0xff, 0xff, 0xff, 0x7f, '{'),
		"short":           []byte("\x93NUM"),
		"magic":           []byte("PK\x03\x04 not npy at all"),
	} {
		_, err := readNPY(bytes.NewReader(f), int64(len(f)), name, "a", npyInts, 0)
		wantBadData(t, name, err, name)
	}
	// A v2 header through the reader.
	f := npyFile(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", binary.LittleEndian.AppendUint32(nil, math.Float32bits(2.5)))
	a, err := readNPY(bytes.NewReader(f), int64(len(f)), "v2", "x", npySamples, 0)
	if err != nil || len(a.f32) != 1 || a.f32[0] != 2.5 {
		t.Errorf("v2 header: %v %v", a, err)
	}
}

func FuzzNPY(f *testing.F) {
	for _, name := range []string{"index.npy", "index_v2.npy", "index_dup.npy", "truncated.npy", "x.npy"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }\n", make([]byte, 8)))
	f.Add(npyFile(3, "{'descr': '<u8', 'fortran_order': True, 'shape': (1L,), 'x': [(1, 'a'), True]}", make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, role := range []npyRole{npyInts, npySamples} {
			a, err := readNPY(bytes.NewReader(b), int64(len(b)), "fuzz.npy", "a", role, 0)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "dataset: fuzz.npy: ") || strings.Contains(err.Error(), "\n") {
					t.Fatalf("badly formed error %q", err)
				}
				continue
			}
			n := int64(1)
			for _, d := range a.shape {
				n *= d
			}
			if got := int64(len(a.u8) + len(a.f32) + len(a.ints)); got != n || n > int64(len(b)) {
				t.Fatalf("shape %v but %d values from %d bytes", a.shape, got, len(b))
			}
		}
	})
}
