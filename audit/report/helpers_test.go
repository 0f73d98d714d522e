package report

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// writeFixture writes the fixture report into a fresh folder.
func writeFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := Write(dir, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// deepEqualNaN is reflect.DeepEqual with NaN equal to NaN.
func deepEqualNaN(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || math.IsNaN(x) && math.IsNaN(y)
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return deepEqualNaN(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return false
		}
		fallthrough
	case reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !deepEqualNaN(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if !deepEqualNaN(a.MapIndex(k), b.MapIndex(k)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !deepEqualNaN(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// testArray is an array read back from an .npy file by the test's own
// minimal reader (written from NumPy's format description, apart from the
// writer under test).
type testArray struct {
	descr  string
	shape  []int
	ints   []int64
	bits   []uint64 // float64 values as IEEE bits, for exact comparison
	bools  []bool
	method uint16 // the zip member's compression method
}

var (
	npyDescr   = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

func readTestNPZ(t *testing.T, data []byte) (map[string]testArray, []string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("signals.npz is not a zip: %v", err)
	}
	out := map[string]testArray{}
	var order []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok {
			t.Fatalf("zip member %q is not an .npy", f.Name)
		}
		a, err := parseTestNPY(b)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		a.method = f.Method
		out[name] = a
		order = append(order, name)
	}
	return out, order
}

func parseTestNPY(b []byte) (testArray, error) {
	var a testArray
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return a, fmt.Errorf("no NPY magic")
	}
	if b[6] != 1 || b[7] != 0 {
		return a, fmt.Errorf("version %d.%d, want 1.0", b[6], b[7])
	}
	hlen := int(binary.LittleEndian.Uint16(b[8:10]))
	if (10+hlen)%64 != 0 {
		return a, fmt.Errorf("data starts at %d, not a multiple of 64", 10+hlen)
	}
	if len(b) < 10+hlen {
		return a, fmt.Errorf("short header")
	}
	header := string(b[10 : 10+hlen])
	if !strings.HasSuffix(header, "\n") {
		return a, fmt.Errorf("header does not end with a newline: %q", header)
	}
	m := npyDescr.FindStringSubmatch(header)
	f := npyFortran.FindStringSubmatch(header)
	s := npyShape.FindStringSubmatch(header)
	if m == nil || f == nil || s == nil {
		return a, fmt.Errorf("header %q", header)
	}
	if f[1] != "False" {
		return a, fmt.Errorf("fortran_order %s", f[1])
	}
	a.descr = m[1]
	n := 1
	for _, d := range strings.Split(s[1], ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		v, err := strconv.Atoi(d)
		if err != nil {
			return a, err
		}
		a.shape = append(a.shape, v)
		n *= v
	}
	data := b[10+hlen:]
	switch a.descr {
	case "<i8":
		if len(data) != 8*n {
			return a, fmt.Errorf("%d bytes for %d int64", len(data), n)
		}
		for i := range n {
			a.ints = append(a.ints, int64(binary.LittleEndian.Uint64(data[8*i:])))
		}
	case "<f8":
		if len(data) != 8*n {
			return a, fmt.Errorf("%d bytes for %d float64", len(data), n)
		}
		for i := range n {
			a.bits = append(a.bits, binary.LittleEndian.Uint64(data[8*i:]))
		}
	case "|b1":
		if len(data) != n {
			return a, fmt.Errorf("%d bytes for %d bool", len(data), n)
		}
		for _, c := range data {
			if c > 1 {
				return a, fmt.Errorf("bool byte %d", c)
			}
			a.bools = append(a.bools, c == 1)
		}
	default:
		return a, fmt.Errorf("unexpected descr %q", a.descr)
	}
	return a, nil
}
