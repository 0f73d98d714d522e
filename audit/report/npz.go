package report

// signals.npz is a zip archive of .npy files, as numpy.savez_compressed
// writes it. An .npy file (NumPy's format.py, version 1.0) is the magic
// "\x93NUMPY", the version bytes 1 and 0, the header length as a
// little-endian uint16, the header, an ASCII Python dict literal such as
//
//	{'descr': '<f8', 'fortran_order': False, 'shape': (3, 20), }
//
// padded with spaces and ended by '\n' so that the data starts at a
// multiple of 64 bytes, then the data in C order.

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/audit"
)

// npyAlign is the alignment of the data in an .npy file (NumPy writes 64).
const npyAlign = 64

// npzTime is the modification time of every member of signals.npz: fixed,
// so that the same report gives the same bytes.
var npzTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// npyArray is one array to be written: its dtype descriptor, shape and
// little-endian data.
type npyArray struct {
	name  string
	descr string
	shape []int
	data  []byte
}

// encodeNPY returns the .npy file of the array.
func encodeNPY(a npyArray) ([]byte, error) {
	n := 1
	for _, d := range a.shape {
		n *= d
	}
	if size := descrSize(a.descr); size*n != len(a.data) {
		return nil, fmt.Errorf("report: array %s: %d bytes of data for shape %v of %s", a.name, len(a.data), a.shape, a.descr)
	}
	dims := make([]string, len(a.shape))
	for i, d := range a.shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := "(" + strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	shape += ")"
	header := "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
	const preamble = 6 + 2 + 2 // magic, version, header length
	total := preamble + len(header) + 1
	pad := (npyAlign - total%npyAlign) % npyAlign
	header += strings.Repeat(" ", pad) + "\n"
	if len(header) > math.MaxUint16 {
		return nil, fmt.Errorf("report: array %s: header too long", a.name)
	}
	var b bytes.Buffer
	b.Grow(preamble + len(header) + len(a.data))
	b.WriteString("\x93NUMPY")
	b.Write([]byte{1, 0})
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(a.data)
	return b.Bytes(), nil
}

// descrSize is the item size of the descriptors used here.
func descrSize(descr string) int {
	n, _ := strconv.Atoi(descr[2:])
	return n
}

func int64Array(name string, x []int64) npyArray {
	data := make([]byte, 8*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(v))
	}
	return npyArray{name: name, descr: "<i8", shape: []int{len(x)}, data: data}
}

func float64Array(name string, x []float64) npyArray {
	data := make([]byte, 8*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(v))
	}
	return npyArray{name: name, descr: "<f8", shape: []int{len(x)}, data: data}
}

// boolArray writes NumPy's bool dtype, "|b1": one byte, 0 or 1.
func boolArray(name string, x []bool) npyArray {
	data := make([]byte, len(x))
	for i, v := range x {
		if v {
			data[i] = 1
		}
	}
	return npyArray{name: name, descr: "|b1", shape: []int{len(x)}, data: data}
}

// matrix stacks rows of equal length into a [rows, cols] array.
func matrix[T any](name string, rows [][]T, cols int, flat func(string, []T) npyArray) (npyArray, error) {
	all := make([]T, 0, len(rows)*cols)
	for i, r := range rows {
		if len(r) != cols {
			return npyArray{}, fmt.Errorf("report: %s row %d has %d values for %d samples", name, i, len(r), cols)
		}
		all = append(all, r...)
	}
	a := flat(name, all)
	a.shape = []int{len(rows), cols}
	return a, nil
}

// scoreName is the array or column name of an attack's scores: score_ and
// the attack name with anything but letters, digits, '_', '-' and '.'
// replaced by '_'.
func scoreName(attack string) string {
	var b strings.Builder
	b.WriteString("score_")
	for _, c := range attack {
		if c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// sortedAttacks returns the attacks of the table in name order, checking
// that their array names are distinct.
func sortedAttacks(s *audit.SampleTable) ([]string, error) {
	names := make([]string, 0, len(s.Scores))
	for k := range s.Scores {
		names = append(names, k)
	}
	slices.Sort(names)
	seen := map[string]string{}
	for _, k := range names {
		n := scoreName(k)
		if prev, ok := seen[n]; ok {
			return nil, fmt.Errorf("report: attacks %q and %q both become %s", prev, k, n)
		}
		seen[n] = k
	}
	return names, nil
}

// checkSamples checks that every per-sample column has one value per
// sample (or is absent, where that is allowed).
func checkSamples(s *audit.SampleTable) error {
	n := len(s.Index)
	check := func(name string, got int, optional bool) error {
		if optional && got == 0 {
			return nil
		}
		if got != n {
			return fmt.Errorf("report: samples: %s has %d values for %d samples", name, got, n)
		}
		return nil
	}
	for _, c := range []struct {
		name     string
		n        int
		optional bool
	}{
		{"label", len(s.Label), false},
		{"member", len(s.Member), false},
		{"canary", len(s.Canary), true},
		{"memorization", len(s.Memorization), true},
		{"grad_norm_eval", len(s.GradNormEval), true},
		{"grad_norm_inbatch", len(s.GradNormInBatch), true},
		{"phi", len(s.Phi), true},
		{"loss", len(s.Loss), true},
	} {
		if err := check(c.name, c.n, c.optional); err != nil {
			return err
		}
	}
	// Correct may be shorter than the table (older data leave the rest
	// unknown) but never longer.
	if len(s.Correct) > n {
		return fmt.Errorf("report: samples: correct has %d values for %d samples", len(s.Correct), n)
	}
	for k, v := range s.Scores {
		if err := check("score of "+k, len(v), false); err != nil {
			return err
		}
	}
	if len(s.InRef) > 0 && len(s.InRef) != len(s.PhiRef) {
		return fmt.Errorf("report: samples: %d reference models' φ but %d IN masks", len(s.PhiRef), len(s.InRef))
	}
	return nil
}

// npzArrays lists the arrays of signals.npz, in the order written: index,
// label, member, canary, correct (when known for every sample), the
// signals, the reference models' φ and IN masks, and the scores.
func npzArrays(s *audit.SampleTable) ([]npyArray, error) {
	if err := checkSamples(s); err != nil {
		return nil, err
	}
	n := len(s.Index)
	idx := make([]int64, n)
	for i, v := range s.Index {
		idx[i] = int64(v)
	}
	canary := s.Canary
	if canary == nil {
		canary = make([]bool, n)
	}
	arrays := []npyArray{
		int64Array("index", idx),
		int64Array("label", s.Label),
		boolArray("member", s.Member),
		boolArray("canary", canary),
	}
	// A missing canary flag is false, but a missing correctness is not
	// known: correct is written only when every sample has one.
	if s.Correct != nil && len(s.Correct) == n {
		arrays = append(arrays, boolArray("correct", s.Correct))
	}
	for _, c := range []struct {
		name string
		x    []float64
	}{
		{"phi", s.Phi},
		{"loss", s.Loss},
		{"memorization", s.Memorization},
		{"grad_norm_eval", s.GradNormEval},
		{"grad_norm_inbatch", s.GradNormInBatch},
	} {
		if c.x != nil {
			arrays = append(arrays, float64Array(c.name, c.x))
		}
	}
	if s.PhiRef != nil {
		a, err := matrix("phi_ref", s.PhiRef, n, float64Array)
		if err != nil {
			return nil, err
		}
		arrays = append(arrays, a)
	}
	if s.InRef != nil {
		a, err := matrix("in_ref", s.InRef, n, boolArray)
		if err != nil {
			return nil, err
		}
		arrays = append(arrays, a)
	}
	attacks, err := sortedAttacks(s)
	if err != nil {
		return nil, err
	}
	for _, k := range attacks {
		arrays = append(arrays, float64Array(scoreName(k), s.Scores[k]))
	}
	return arrays, nil
}

// encodeNPZ returns signals.npz for the sample table: a deflated zip of
// one .npy per array.
func encodeNPZ(s *audit.SampleTable) ([]byte, error) {
	arrays, err := npzArrays(s)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, a := range arrays {
		data, err := encodeNPY(a)
		if err != nil {
			return nil, err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: a.name + ".npy", Method: zip.Deflate, Modified: npzTime})
		if err != nil {
			return nil, fmt.Errorf("report: signals.npz: %w", err)
		}
		if _, err := w.Write(data); err != nil {
			return nil, fmt.Errorf("report: signals.npz: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("report: signals.npz: %w", err)
	}
	return b.Bytes(), nil
}
