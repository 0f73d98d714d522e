package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"strconv"

	"github.com/bnaudit/bnaudit/audit"
)

// encodeCSV returns scores.csv: a header row, then one row per sample with
// index, label, member and canary (1 or 0), correct (1 or 0 when the
// audited model classifies the sample correctly or not; empty where that
// is not known), one score_<attack> column per attack in name order,
// memorization, grad_norm_eval and grad_norm_inbatch. Numbers are written
// in the shortest form that reads back exactly (strconv 'g', precision
// -1), ±Inf as inf and -inf; NaN, and a column the table does not have,
// are empty. Readers should find columns by their header name.
func encodeCSV(s *audit.SampleTable) ([]byte, error) {
	if err := checkSamples(s); err != nil {
		return nil, err
	}
	attacks, err := sortedAttacks(s)
	if err != nil {
		return nil, err
	}
	header := []string{"index", "label", "member", "canary", "correct"}
	for _, k := range attacks {
		header = append(header, scoreName(k))
	}
	header = append(header, "memorization", "grad_norm_eval", "grad_norm_inbatch")

	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(header); err != nil {
		return nil, fmt.Errorf("report: scores.csv: %w", err)
	}
	row := make([]string, len(header))
	for i := range s.Index {
		row = row[:0]
		row = append(row,
			strconv.Itoa(s.Index[i]),
			strconv.FormatInt(s.Label[i], 10),
			csvBool(s.Member, i),
			csvBool(s.Canary, i),
			csvKnownBool(s.Correct, i),
		)
		for _, k := range attacks {
			row = append(row, csvFloat(s.Scores[k], i))
		}
		row = append(row, csvFloat(s.Memorization, i), csvFloat(s.GradNormEval, i), csvFloat(s.GradNormInBatch, i))
		if err := w.Write(row); err != nil {
			return nil, fmt.Errorf("report: scores.csv: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("report: scores.csv: %w", err)
	}
	return b.Bytes(), nil
}

func csvBool(x []bool, i int) string {
	if i < len(x) && x[i] {
		return "1"
	}
	return "0"
}

// csvKnownBool writes a flag that may be unknown: 1 or 0, empty past the
// end of x (a table from before the column existed).
func csvKnownBool(x []bool, i int) string {
	if i >= len(x) {
		return ""
	}
	return csvBool(x, i)
}

func csvFloat(x []float64, i int) string {
	switch {
	case i >= len(x) || math.IsNaN(x[i]):
		return ""
	case math.IsInf(x[i], 1):
		return "inf" // as Python's float() and NumPy read it
	case math.IsInf(x[i], -1):
		return "-inf"
	}
	return strconv.FormatFloat(x[i], 'g', -1, 64)
}
