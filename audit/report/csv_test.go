package report

import (
	"bytes"
	"encoding/csv"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
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
	wantHeader := []string{"index", "label", "member", "canary", "correct",
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
			row[2] != boolCell(i%2 == 0) || row[3] != boolCell(i >= 16) || row[4] != boolCell(i%6 != 5) {
			t.Errorf("row %d: %q", i, row[:5])
		}
		floatCell(t, "score_confidence", row[5], s.Scores["confidence"][i])
		floatCell(t, "score_lira_online", row[6], s.Scores["lira_online"][i])
		floatCell(t, "score_loss", row[7], s.Scores["loss"][i])
		floatCell(t, "memorization", row[8], s.Memorization[i])
		floatCell(t, "grad_norm_eval", row[9], s.GradNormEval[i])
		floatCell(t, "grad_norm_inbatch", row[10], s.GradNormInBatch[i])
	}
	// The shortest exact forms, by hand.
	for _, c := range []struct {
		row, col int
		want     string
	}{
		{1, 7, "-0"},                 // −0 loss score
		{2, 7, "-5e-324"},            // smallest subnormal
		{3, 7, "-1e+300"},            //
		{2, 5, "0.3333333333333333"}, // 1/3
		{5, 6, ""},                   // NaN LiRA score
		{1, 8, ""},                   // NaN memorization
		{0, 8, "0"},
		{17, 10, "25.5"},
		{15, 10, ""},
		{5, 4, "0"}, // misclassified
		{6, 4, "1"},
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

// TestCSVCorrectUnknown: where the table has no correctness (older data)
// or fewer values than samples, the correct cells past them are empty,
// not 0; more values than samples are refused.
func TestCSVCorrectUnknown(t *testing.T) {
	for _, c := range []struct {
		name    string
		correct []bool
		want    []string // the correct cells of the first three rows
	}{
		{"nil", nil, []string{"", "", ""}},
		{"short", []bool{true, false}, []string{"1", "0", ""}},
	} {
		s := fixtureSamples()
		s.Correct = c.correct
		data, err := encodeCSV(s)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if rows[0][4] != "correct" {
			t.Fatalf("%s: column 4 is %q, want correct", c.name, rows[0][4])
		}
		for i, want := range c.want {
			if got := rows[1+i][4]; got != want {
				t.Errorf("%s: row %d correct = %q, want %q", c.name, i, got, want)
			}
		}
		if got := rows[nSamples][4]; got != "" {
			t.Errorf("%s: last row correct = %q, want empty", c.name, got)
		}
	}
	s := fixtureSamples()
	s.Correct = append(s.Correct, true)
	if _, err := encodeCSV(s); err == nil || !strings.Contains(err.Error(), "correct has 21 values for 20 samples") {
		t.Errorf("a correct column longer than the table: error %v", err)
	}
}

// pythonWithSklearn returns the interpreter .ci/run gives
// audit/testdata/reproduce_auc.py, if it can import scikit-learn and NumPy.
func pythonWithSklearn() (string, bool) {
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import sklearn, numpy").Run() != nil {
		return "", false
	}
	return py, true
}

// mannWhitneyAUC is the AUC of scores with members positive, ties counted
// half: the test's own, apart from the audit package.
func mannWhitneyAUC(scores []float64, member []bool) float64 {
	var pairs, wins float64
	for i := range scores {
		for j := range scores {
			if !member[i] || member[j] {
				continue
			}
			pairs++
			switch {
			case scores[i] > scores[j]:
				wins++
			case scores[i] == scores[j]:
				wins += 0.5
			}
		}
	}
	return wins / pairs
}

// TestReproduceAUCScript: audit/testdata/reproduce_auc.py, the independent
// scikit-learn check CI runs on the demo's report, still reads scores.csv
// and signals.npz (with their correct column and array) and agrees with
// the AUCs of the report.
func TestReproduceAUCScript(t *testing.T) {
	py, ok := pythonWithSklearn()
	if !ok {
		t.Skip("no /usr/bin/python3 with scikit-learn and numpy (apt-get install python3-sklearn)")
	}
	const n, canaries = 60, 16
	s := &audit.SampleTable{Variant: "original", Scores: map[string][]float64{}}
	var loss, conf []float64
	for i := range n {
		s.Index = append(s.Index, i)
		s.Label = append(s.Label, int64(i%10))
		s.Member = append(s.Member, i%2 == 0)
		s.Canary = append(s.Canary, i >= n-canaries)
		s.Correct = append(s.Correct, i%5 != 4)
		l := float64((i*37)%23)/7 + 0.01
		if i%2 == 0 {
			l /= 2 // members fit better
		}
		loss = append(loss, l)
		conf = append(conf, math.Exp(-l)+float64(i%3)/100)
	}
	s.Loss, s.Phi = loss, loss
	neg := make([]float64, n)
	for i, l := range loss {
		neg[i] = -l
	}
	s.Scores["loss"], s.Scores["confidence"] = neg, conf
	// A quantile-regression column: every third non-member was used to fit
	// the regression and has no score (NaN, an empty cell); the script
	// must leave those rows out and find the report's counts.
	qm := make([]float64, n)
	for i := range qm {
		qm[i] = conf[i] - loss[i]/3
		if !s.Member[i] && i%3 == 0 {
			qm[i] = math.NaN()
		}
	}
	s.Scores[audit.AttackQMIA] = qm
	attacks := func(canary bool) []audit.AttackReport {
		var out []audit.AttackReport
		names := []string{"loss", "confidence"}
		if !canary {
			names = append(names, audit.AttackQMIA)
		}
		for _, name := range names {
			var sc []float64
			var m []bool
			mem, non := 0, 0
			for i := range n {
				if s.Canary[i] == canary && !math.IsNaN(s.Scores[name][i]) {
					sc, m = append(sc, s.Scores[name][i]), append(m, s.Member[i])
					if s.Member[i] {
						mem++
					} else {
						non++
					}
				}
			}
			auc := mannWhitneyAUC(sc, m)
			out = append(out, audit.AttackReport{Attack: name, Members: mem, NonMembers: non, AUC: iv(auc, auc, auc)})
		}
		return out
	}
	r := &audit.Report{Kind: "audit", Samples: s, Variants: []audit.VariantReport{{
		Name: "original", Attacks: attacks(false), CanaryAttacks: attacks(true),
	}}}
	dir := t.TempDir()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, filepath.Join("..", "testdata", "reproduce_auc.py"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("reproduce_auc.py: %v\n%s", err, out)
	}
	checks := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ok ") {
			checks++
		}
	}
	if got := checks; got != 7 {
		t.Errorf("reproduce_auc.py made %d checks, want 7 (2 attacks, 2 blocks, 2 raw loss, qmia on members):\n%s", got, out)
	}
	// A count that differs from the rows scored fails the script.
	r.Variants[0].Attacks[2].NonMembers++
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, filepath.Join("..", "testdata", "reproduce_auc.py"), dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "DIFF") {
		t.Errorf("reproduce_auc.py accepted a report whose qmia count is off: %v\n%s", err, out)
	}
	t.Logf("reproduce_auc.py:\n%s", out)
}
