package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestMarkdownSummary: report.md starts with the title and the verdict in
// bold, has a summary row per variant with the intervals of the fixture,
// the comparisons, every attack and the notes.
func TestMarkdownSummary(t *testing.T) {
	dir := writeFixture(t)
	data, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	lines := strings.Split(md, "\n")
	if lines[0] != "# bnaudit BN comparison of small_cnn.onnx" {
		t.Errorf("title line %q", lines[0])
	}
	wantVerdict := "**Verdict: Not distinguishable: with and without BatchNorm the model memorizes its canaries and is exposed to membership inference alike** (not_distinguishable)"
	if lines[2] != wantVerdict {
		t.Errorf("verdict line\n%q, want\n%q", lines[2], wantVerdict)
	}
	for _, want := range []string{
		// Summary: one row per variant.
		"| variant | BN layers | test accuracy | train accuracy | canary memorization gap (accuracy) | gradient-norm ratio outlier/typical (last checkpoint, eval mode) | MIA AUC (best attack) | TPR@1% FPR | TPR@1% FPR on canaries |",
		"| original | 3 | 0.912 [0.905, 0.918] | 0.998 [0.997, 0.999] | 0.840 [0.740, 0.920] | 39.20 [35.40, 44.01] (epoch 30) | 0.601 [0.593, 0.609] (lira_online) | 0.056 [0.049, 0.063] (lira_online) | 0.620 [0.400, 0.800] (loss; no false positive allowed among 50 non-members) |",
		"| remove | 0 | 0.905 [0.897, 0.912] | 0.996 [0.995, 0.998] | 0.830 [0.720, 0.920] | 54.10 [48.00, 60.30] (epoch 30) | 0.594 [0.585, 0.602] (lira_online) | 0.052 [0.045, 0.059] (lira_online) | 0.580 [0.360, 0.780] (loss; no false positive allowed among 50 non-members) |",
		// Comparisons.
		"| loss_auc | original | remove | 0.0032 [-0.0021, 0.0085] | no |",
		"| grad_norm_ratio | original | remove | -14.90 [-22.30, -7.20] | yes |",
		// The most exposed members: five of seven, without the loss.
		"Most exposed members of original (by lira_online), top 5 of 7:",
		"| index | label | canary | score | FPR at its score | Feldman–Zhang memorization |",
		"| 212 | 5 | yes | 7.250 | 0% | 0.970 |",
		"| 114 | 2 | no | 2.500 | 1% | – |",
		"| 58 | 9 | no | 2.125 | 0.06% | 0.500 |",
		"| 7 | 0 | no | 1.750 | 33.3% | 0.0020 |",
		"| 3001 | 1 | no | 1.500 | n/a | 0.250 |",
		"## Notes\n\n- TPR at 0.1% FPR rests on 5 non-members (of 5000)",
		"Details in report.html (every attack per model with ROC curves, canary memorization, gradient norms along training, attacks per class and on canaries, definitions); numbers in report.json; per-sample data in scores.csv and signals.npz.",
	} {
		if !strings.Contains(md, want+"\n") {
			t.Errorf("report.md lacks the line\n%s", want)
		}
	}
	// The exposed members of "original" only, in its section; no sixth.
	if n := strings.Count(md, "Most exposed members"); n != 1 {
		t.Errorf("%d tables of most exposed members, want 1 (the original's)", n)
	}
	if strings.Contains(md, "| 42 | 4 |") || strings.Contains(md, "| 90 | 3 |") {
		t.Error("report.md lists more than five exposed members, or those of the second variant")
	}
	if !strings.Contains(md, "Most exposed members of original (by lira_online)") {
		t.Error("the exposed members do not name their variant")
	}
	// One screen: the per-variant tables (attacks, slices, gradient norms)
	// and the definitions are report.html's.
	for _, gone := range []string{"### original", "Attacks on subsets", "| class=3 |", "| 30 | eval mode", "## Definitions", "**loss**"} {
		if strings.Contains(md, gone) {
			t.Errorf("report.md holds %q, which belongs in report.html", gone)
		}
	}
	if n := strings.Count(md, "\n"); n > 50 {
		t.Errorf("report.md has %d lines; the summary must fit on one screen (50)", n)
	}
	// Sections in reading order.
	last := -1
	for _, h := range []string{"**Verdict", "| variant |", "## BN vs no BN", "Most exposed members", "## Notes", "Details in report.html"} {
		i := strings.Index(md, h)
		if i <= last {
			t.Errorf("%q is missing or out of order", h)
		}
		last = i
	}
	// WriteMarkdown gives the same text.
	var b bytes.Buffer
	if err := WriteMarkdown(&b, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	if b.String() != md {
		t.Error("WriteMarkdown and report.md differ")
	}
}

// TestMarkdownGolden compares report.md with testdata/report.golden.md
// (refresh with go test -run Golden -update after checking the change).
func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("report.md differs from %s (run with -update if the change is intended):\n%s", golden, b.String())
	}
}

func TestMarkdownNilReport(t *testing.T) {
	if err := WriteMarkdown(&bytes.Buffer{}, nil); err == nil {
		t.Error("no error for a nil report")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestMarkdownWriteError(t *testing.T) {
	err := WriteMarkdown(failingWriter{}, fixtureReport())
	if err == nil || !strings.HasPrefix(err.Error(), "report: ") {
		t.Errorf("error %v, want a report: error", err)
	}
}

// TestMarkdownExposedMembers: an audit with few exposed members lists them
// all with no "top" count; when the first variant has none the next one's
// are shown; without the attack's name the heading does without it.
func TestMarkdownExposedMembers(t *testing.T) {
	r := fixtureReport()
	r.Variants[0].Vulnerable = r.Variants[0].Vulnerable[:2]
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Most exposed members of original (by lira_online):\n\n") {
		t.Errorf("heading of two exposed members missing:\n%s", b.String())
	}

	r = fixtureReport()
	r.Variants[0].Vulnerable, r.Variants[0].VulnerableBy = nil, ""
	r.Variants[1].VulnerableBy = ""
	b.Reset()
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	want := "Most exposed members of remove:\n\n| index | label | canary | score | FPR at its score | Feldman–Zhang memorization |\n| --- | --- | --- | --- | --- | --- |\n| 212 | 5 | yes | 6.500 | 0% | 0.970 |\n| 90 | 3 | no | 2.750 | 0.2% | 0.310 |\n\n"
	if !strings.Contains(md, want) {
		t.Errorf("report.md lacks the second variant's exposed members\n%s", want)
	}
}

// TestSliceTableMixedAttacks: slices of several attacks keep the attack
// column and name no attack in the heading.
func TestSliceTableMixedAttacks(t *testing.T) {
	sl := fixtureReport().Variants[0].Slices[:2]
	sl[1].Attack.Attack = "loss"
	tb, by := sliceTable(sl)
	if by != "" {
		t.Errorf("mixed slices named one attack %q", by)
	}
	if tb.Header[0] != "slice" || tb.Header[1] != "attack" || tb.Rows[1][0] != "canaries" || tb.Rows[1][1] != "loss" {
		t.Errorf("mixed slices: header %q, rows %q", tb.Header, tb.Rows)
	}
	if tb, by := sliceTable(nil); !tb.Empty() || by != "" {
		t.Errorf("no slices: %v %q", tb, by)
	}
}

// TestMarkdownAttacksWithoutBalancedAccuracy: the attack table of a
// one-model report.md keeps its columns; the balanced accuracy is
// report.html's.
func TestMarkdownAttacksWithoutBalancedAccuracy(t *testing.T) {
	r := fixtureReport()
	r.Kind, r.Variants, r.Comparisons = "audit", r.Variants[:1], nil
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| attack | members | non-members | AUC | advantage | TPR@0.1% FPR | TPR@1% FPR |",
		"| lira_online | 5000 | 5000 | 0.601 [0.593, 0.609] | 0.152 [0.141, 0.163] | 0.019 [0.015, 0.024] (rests on 5 non-members) | 0.056 [0.049, 0.063] |",
	} {
		if !strings.Contains(md, want+"\n") {
			t.Errorf("report.md lacks the line\n%s\n%s", want, md)
		}
	}
	if strings.Contains(md, "balanced accuracy") || strings.Contains(md, "0.576") {
		t.Error("report.md shows the balanced accuracy")
	}
}

// TestAttackTableCost: the attack table gains a "models trained" column
// when some attack trained models of its own: the quantile-regression
// attack's one model, LiRA's reference models (from the variant's count
// when the attack does not record it), 0 for the threshold attacks.
func TestAttackTableCost(t *testing.T) {
	atts := []audit.AttackReport{
		{Attack: audit.AttackLoss},
		{Attack: audit.AttackLiRAOnline},
		{Attack: audit.AttackQMIA, ModelsTrained: 1},
	}
	tb := attackTable(atts, 8)
	last := len(tb.Header) - 1
	if tb.Header[last] != "models trained" {
		t.Fatalf("header %q", tb.Header)
	}
	for i, want := range []string{"0", "8", "1"} {
		if got := tb.Rows[i][last]; got != want {
			t.Errorf("%s: %s models trained, want %s", atts[i].Attack, got, want)
		}
	}
	if tb := attackTable(atts[:1], 0); slices.Contains(tb.Header, "models trained") {
		t.Errorf("threshold attacks alone got a cost column: %q", tb.Header)
	}
}
