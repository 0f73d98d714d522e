package report

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestScoresCSV: scores.csv has the header in the documented order, one
// row per sample, values that parse back to the fixture exactly, and empty
// cells for NaN.
func TestScoresCSV(t *testing.T) {
	dir := writeFixture(t)
	f, err := os.Open(filepath.Join(dir, ScoresFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"index", "label", "member", "canary",
		"score_confidence", "score_lira_online", "score_loss",
		"memorization", "grad_norm_eval", "grad_norm_inbatch"}
	if !slices.Equal(rows[0], wantHeader) {
		t.Fatalf("header %q, want %q", rows[0], wantHeader)
	}
	if len(rows) != 1+nSamples {
		t.Fatalf("%d rows, want %d", len(rows), 1+nSamples)
	}
	s := fixtureSamples()
	boolCell := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	floatCell := func(t *testing.T, col, cell string, want float64) {
		t.Helper()
		if math.IsNaN(want) {
			if cell != "" {
				t.Errorf("%s: NaN written as %q, want empty", col, cell)
			}
			return
		}
		got, err := strconv.ParseFloat(cell, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("%s: %q reads %v, want %v exactly", col, cell, got, want)
		}
	}
	for i, row := range rows[1:] {
		if row[0] != strconv.Itoa(100+7*i) || row[1] != strconv.Itoa(i%10) ||
			row[2] != boolCell(i%2 == 0) || row[3] != boolCell(i >= 16) {
			t.Errorf("row %d: %q", i, row[:4])
		}
		floatCell(t, "score_confidence", row[4], s.Scores["confidence"][i])
		floatCell(t, "score_lira_online", row[5], s.Scores["lira_online"][i])
		floatCell(t, "score_loss", row[6], s.Scores["loss"][i])
		floatCell(t, "memorization", row[7], s.Memorization[i])
		floatCell(t, "grad_norm_eval", row[8], s.GradNormEval[i])
		floatCell(t, "grad_norm_inbatch", row[9], s.GradNormInBatch[i])
	}
	// The shortest exact forms, by hand.
	for _, c := range []struct {
		row, col int
		want     string
	}{
		{1, 6, "-0"},                 // −0 loss score
		{2, 6, "-5e-324"},            // smallest subnormal
		{3, 6, "-1e+300"},            //
		{2, 4, "0.3333333333333333"}, // 1/3
		{5, 5, ""},                   // NaN LiRA score
		{1, 7, ""},                   // NaN memorization
		{0, 7, "0"},
		{17, 9, "25.5"},
		{15, 9, ""},
	} {
		if got := rows[1+c.row][c.col]; got != c.want {
			t.Errorf("row %d %s = %q, want %q", c.row, wantHeader[c.col], got, c.want)
		}
	}
}

func TestCSVInfinity(t *testing.T) {
	if got := csvFloat([]float64{math.Inf(1)}, 0); got != "inf" {
		t.Errorf("+Inf written as %q", got)
	}
	if got := csvFloat([]float64{math.Inf(-1)}, 0); got != "-inf" {
		t.Errorf("-Inf written as %q", got)
	}
	if got := csvFloat(nil, 3); got != "" {
		t.Errorf("missing column written as %q", got)
	}
}
