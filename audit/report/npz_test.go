package report

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// expectedArray is an array of signals.npz as the tests expect it, built
// from the fixture's sample table without the writer's code.
type expectedArray struct {
	Name   string `json:"-"`
	Dtype  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Values []any  `json:"values"` // int64, bool, or float64 bits as "0x…"
}

func bitsHex(x float64) string { return fmt.Sprintf("0x%016x", math.Float64bits(x)) }

func expectedArrays(s *audit.SampleTable) []expectedArray {
	ints := func(name string, n int, f func(int) int64) expectedArray {
		a := expectedArray{Name: name, Dtype: "<i8", Shape: []int{n}}
		for i := range n {
			a.Values = append(a.Values, f(i))
		}
		return a
	}
	bools := func(name string, shape []int, x []bool) expectedArray {
		a := expectedArray{Name: name, Dtype: "|b1", Shape: shape}
		for _, v := range x {
			a.Values = append(a.Values, v)
		}
		return a
	}
	floats := func(name string, shape []int, x []float64) expectedArray {
		a := expectedArray{Name: name, Dtype: "<f8", Shape: shape}
		for _, v := range x {
			a.Values = append(a.Values, bitsHex(v))
		}
		return a
	}
	n := len(s.Index)
	out := []expectedArray{
		ints("index", n, func(i int) int64 { return int64(s.Index[i]) }),
		ints("label", n, func(i int) int64 { return s.Label[i] }),
		bools("member", []int{n}, s.Member),
		bools("canary", []int{n}, s.Canary),
		bools("correct", []int{n}, s.Correct),
		floats("phi", []int{n}, s.Phi),
		floats("loss", []int{n}, s.Loss),
		floats("memorization", []int{n}, s.Memorization),
		floats("grad_norm_eval", []int{n}, s.GradNormEval),
		floats("grad_norm_inbatch", []int{n}, s.GradNormInBatch),
		floats("phi_ref", []int{len(s.PhiRef), n}, slices.Concat(s.PhiRef...)),
		bools("in_ref", []int{len(s.InRef), n}, slices.Concat(s.InRef...)),
		floats("score_confidence", []int{n}, s.Scores["confidence"]),
		floats("score_lira_online", []int{n}, s.Scores["lira_online"]),
		floats("score_loss", []int{n}, s.Scores["loss"]),
	}
	return out
}

// TestSignalsNPZ reads signals.npz back with the test's own NPY reader and
// compares every array with the fixture, bit for bit.
func TestSignalsNPZ(t *testing.T) {
	dir := writeFixture(t)
	data, err := os.ReadFile(filepath.Join(dir, SignalsFile))
	if err != nil {
		t.Fatal(err)
	}
	arrays, order := readTestNPZ(t, data)
	want := expectedArrays(fixtureSamples())
	var wantOrder []string
	for _, w := range want {
		wantOrder = append(wantOrder, w.Name)
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("arrays %q, want %q", order, wantOrder)
	}
	for _, w := range want {
		a, ok := arrays[w.Name]
		if !ok {
			continue
		}
		if a.method != zip.Deflate {
			t.Errorf("%s: zip method %d, want deflate", w.Name, a.method)
		}
		if a.descr != w.Dtype || !slices.Equal(a.shape, w.Shape) {
			t.Errorf("%s: %s %v, want %s %v", w.Name, a.descr, a.shape, w.Dtype, w.Shape)
			continue
		}
		var got []any
		switch a.descr {
		case "<i8":
			for _, v := range a.ints {
				got = append(got, v)
			}
		case "<f8":
			for _, v := range a.bits {
				got = append(got, fmt.Sprintf("0x%016x", v))
			}
		case "|b1":
			for _, v := range a.bools {
				got = append(got, v)
			}
		}
		if !slices.Equal(got, w.Values) {
			t.Errorf("%s: values\n%v, want\n%v", w.Name, got, w.Values)
		}
	}
}

// TestSignalsNPZOptional: without reference models, gradient norms,
// correctness or canary flags, those arrays are left out (canary reads all
// false).
func TestSignalsNPZOptional(t *testing.T) {
	s := fixtureSamples()
	s.PhiRef, s.InRef, s.GradNormEval, s.GradNormInBatch, s.Memorization, s.Canary, s.Correct = nil, nil, nil, nil, nil, nil, nil
	data, err := encodeNPZ(s)
	if err != nil {
		t.Fatal(err)
	}
	arrays, order := readTestNPZ(t, data)
	want := []string{"index", "label", "member", "canary", "phi", "loss", "score_confidence", "score_lira_online", "score_loss"}
	if !slices.Equal(order, want) {
		t.Errorf("arrays %q, want %q", order, want)
	}
	if slices.Contains(arrays["canary"].bools, true) {
		t.Error("missing canary flags were not written as false")
	}
}

// TestSignalsNPZCorrectPartial: a correctness known for only some samples
// (older data) cannot be a bool array; it is left out rather than padded
// with false.
func TestSignalsNPZCorrectPartial(t *testing.T) {
	s := fixtureSamples()
	s.Correct = s.Correct[:5]
	data, err := encodeNPZ(s)
	if err != nil {
		t.Fatal(err)
	}
	arrays, _ := readTestNPZ(t, data)
	if _, ok := arrays["correct"]; ok {
		t.Error("a partial correctness was written as an array")
	}
	if _, ok := arrays["canary"]; !ok {
		t.Error("canary is missing")
	}
}

func TestSamplesRejected(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(s *audit.SampleTable)
		wantE string
	}{
		{"short label", func(s *audit.SampleTable) { s.Label = s.Label[:3] }, "label has 3 values for 20 samples"},
		{"short score", func(s *audit.SampleTable) { s.Scores["loss"] = s.Scores["loss"][:5] }, "score of loss"},
		{"ragged phi_ref", func(s *audit.SampleTable) { s.PhiRef[2] = s.PhiRef[2][:4] }, "phi_ref row 2"},
		{"masks without φ", func(s *audit.SampleTable) { s.InRef = s.InRef[:1] }, "IN masks"},
		{"long correct", func(s *audit.SampleTable) { s.Correct = append(s.Correct, false) }, "correct has 21 values for 20 samples"},
		{"clashing names", func(s *audit.SampleTable) { s.Scores["lira online"] = s.Scores["loss"] }, "both become score_lira_online"},
	} {
		s := fixtureSamples()
		c.edit(s)
		_, errNPZ := encodeNPZ(s)
		_, errCSV := encodeCSV(s)
		for j, err := range []error{errNPZ, errCSV} {
			if c.name == "ragged phi_ref" && j == 1 {
				continue // scores.csv has no reference models
			}
			if err == nil || !strings.Contains(err.Error(), c.wantE) {
				t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.wantE)
			}
		}
	}
}

func TestNPYHeader(t *testing.T) {
	b, err := encodeNPY(npyArray{name: "x", descr: "<f8", shape: []int{2, 3}, data: make([]byte, 48)})
	if err != nil {
		t.Fatal(err)
	}
	const want = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"
	if !strings.HasPrefix(string(b), want) || len(b) != 128+48 || b[127] != '\n' {
		t.Errorf("header %q", b[:128])
	}
	if _, err := encodeNPY(npyArray{name: "x", descr: "<f8", shape: []int{2}, data: make([]byte, 8)}); err == nil {
		t.Error("no error for data that does not fill the shape")
	}
}

// pythonWithNumPy returns a Python interpreter that can import numpy.
func pythonWithNumPy() (string, bool) {
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import numpy").Run() == nil {
			return path, true
		}
	}
	return "", false
}

// TestSignalsNPZWithNumPy has NumPy load signals.npz and compare it with
// the expected arrays (testdata/check_npz.py).
func TestSignalsNPZWithNumPy(t *testing.T) {
	py, ok := pythonWithNumPy()
	if !ok {
		t.Skip("no python3 with numpy: install numpy (apt-get install python3-numpy) to run this check")
	}
	dir := writeFixture(t)
	exp := map[string]expectedArray{}
	for _, a := range expectedArrays(fixtureSamples()) {
		exp[a.Name] = a
	}
	js, err := json.Marshal(exp)
	if err != nil {
		t.Fatal(err)
	}
	expPath := filepath.Join(t.TempDir(), "expected.json")
	if err := os.WriteFile(expPath, js, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, filepath.Join("testdata", "check_npz.py"), filepath.Join(dir, SignalsFile), expPath).CombinedOutput()
	if err != nil {
		t.Fatalf("check_npz.py: %v\n%s", err, out)
	}
	t.Logf("check_npz.py:\n%s", out)
}
