package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		// Every attack of a variant, with the non-members TPR rests on.
		"| loss | 5000 | 5000 | 0.544 [0.536, 0.551] | 0.071 [0.060, 0.082] | 0.0042 [0.0018, 0.0071] (rests on 5 non-members) | 0.021 [0.016, 0.027] |",
		"| confidence | 5000 | 5000 | 0.540 [0.532, inf] | 0.066 [0.055, 0.077] | 0.0000 [0.0000, 0.0012] (rests on 5 non-members) | 0.010 [0.006, 0.014] |",
		"| loss | 5000 | 5000 | 0.541 [0.537, 0.545] | 0.066 [0.057, 0.076] | 0.0031 [0.0012, 0.0058] (rests on 5 non-members) | 0.019 [0.014, 0.024] |",
		// Slices of one attack: named once, not on every row; correct and
		// incorrect in words.
		"Attacks on subsets (by lira_online):",
		"| slice | members | non-members | AUC | advantage | TPR@1% FPR |",
		"| class=3 | 500 | 500 | 0.561 [0.532, 0.589] | 0.090 [0.050, 0.130] | 0.030 [0.010, 0.050] (rests on 5 non-members) |",
		"| correctly classified | 4990 | 4560 | 0.598 [0.590, 0.606] | 0.149 [0.138, 0.160] | 0.054 [0.047, 0.061] |",
		"| misclassified | 10 | 440 | 0.912 [0.850, 0.960] | 0.750 [0.600, 0.880] | 0.400 [0.100, 0.700] (rests on 4 non-members) |",
		// The most exposed members: five of seven, without the loss.
		"Most exposed members (by lira_online), top 5 of 7:",
		"| index | label | canary | score | FPR at its score | Feldman–Zhang memorization |",
		"| 212 | 5 | yes | 7.250 | 0% | 0.970 |",
		"| 114 | 2 | no | 2.500 | 1% | – |",
		"| 58 | 9 | no | 2.125 | 0.06% | 0.500 |",
		"| 7 | 0 | no | 1.750 | 33.3% | 0.0020 |",
		"| 3001 | 1 | no | 1.500 | n/a | 0.250 |",
		"| accuracy | 0.940 [0.880, 0.980] | 0.100 [0.040, 0.180] | 0.840 [0.740, 0.920] |",
		"| 30 | eval mode | 0.784 (n=50) | 1.960 | 0.020 (n=5000) | 0.090 | 39.20 [35.40, 44.01] |",
		"## Notes\n\n- TPR at 0.1% FPR rests on 5 non-members (of 5000)",
		"- **loss**: LOSS attack (Yeom et al. 2018): score = −ℓ",
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
	if e, r := strings.Index(md, "Most exposed members"), strings.Index(md, "### remove"); e > r {
		t.Error("the exposed members are not in the original's section")
	}
	// Sections in reading order.
	last := -1
	for _, h := range []string{"**Verdict", "## Summary", "## BN vs no BN", "## Attacks", "### original", "### remove", "## Notes", "## Definitions"} {
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
	if !strings.Contains(b.String(), "Most exposed members (by lira_online):\n\n") {
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
	want := "Most exposed members:\n\n| index | label | canary | score | FPR at its score | Feldman–Zhang memorization |\n| --- | --- | --- | --- | --- | --- |\n| 212 | 5 | yes | 6.500 | 0% | 0.970 |\n| 90 | 3 | no | 2.750 | 0.2% | 0.310 |\n\n"
	if !strings.Contains(md, want) {
		t.Errorf("report.md lacks the second variant's exposed members\n%s", want)
	}
	if strings.Index(md, "Most exposed") < strings.Index(md, "### remove") {
		t.Error("the second variant's exposed members are not in its section")
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
