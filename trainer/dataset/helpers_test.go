package dataset

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// wantBadData checks an error is one line, starts with "dataset: ", wraps
// ErrBadData and mentions every part.
func wantBadData(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one mentioning %q", what, parts)
		return
	}
	msg := err.Error()
	if !errors.Is(err, ErrBadData) {
		t.Errorf("%s: error %q does not wrap ErrBadData", what, msg)
	}
	if !strings.HasPrefix(msg, "dataset: ") {
		t.Errorf("%s: error %q lacks the \"dataset: \" prefix", what, msg)
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("%s: error %q spans several lines", what, msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: error %q does not mention %q", what, msg, p)
		}
	}
}

// batchAll returns every sample of d, normalized.
func batchAll(t *testing.T, d *Dataset) []float32 {
	t.Helper()
	idx := make([]int, d.Len())
	for i := range idx {
		idx[i] = i
	}
	out := make([]float32, d.Len()*sampleSize(d))
	if err := d.Batch(idx, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sampleSize(d *Dataset) int {
	n := 1
	for _, s := range d.SampleShape() {
		n *= int(s)
	}
	return n
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
