package audit

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadJSON decodes testdata/name into v.
func loadJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("reading reference data (regenerate with testdata/make_*.py): %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
}

// near reports whether got is within tol·max(1, |want|) of want.
func near(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// relNear reports whether got is within a relative tolerance of want (for
// values that are tiny but must not be rounded to 0).
func relNear(got, want, tol float64) bool {
	if want == 0 {
		return got == 0
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// wantInvalid fails unless err wraps ErrInvalidInput and reads as an audit
// error.
func wantInvalid(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want one wrapping ErrInvalidInput", name)
		return
	}
	if !errors.Is(err, ErrInvalidInput) {
		t.Errorf("%s: error %q does not wrap ErrInvalidInput", name, err)
	}
	if !strings.HasPrefix(err.Error(), "audit: ") {
		t.Errorf("%s: error %q lacks the \"audit: \" prefix", name, err)
	}
}

// ranks returns the 1-based ranks of x, ties sharing their mean rank.
func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case x[a] < x[b]:
			return -1
		case x[a] > x[b]:
			return 1
		}
		return 0
	})
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// spearman returns Spearman's rank correlation of x and y.
func spearman(x, y []float64) float64 {
	rx, ry := ranks(x), ranks(y)
	var mx, my float64
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	mx /= float64(len(rx))
	my /= float64(len(ry))
	var sxy, sxx, syy float64
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return sxy / math.Sqrt(sxx*syy)
}
