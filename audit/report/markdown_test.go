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
		"| class=3 | loss | 500 | 500 | 0.561 [0.532, 0.589] | 0.090 [0.050, 0.130] | 0.030 [0.010, 0.050] (rests on 5 non-members) |",
		"| accuracy | 0.940 [0.880, 0.980] | 0.100 [0.040, 0.180] | 0.840 [0.740, 0.920] |",
		"| 30 | eval mode | 0.784 (n=50) | 1.960 | 0.020 (n=5000) | 0.090 | 39.20 [35.40, 44.01] |",
		"## Notes\n\n- TPR at 0.1% FPR rests on 5 non-members (of 5000)",
		"- **loss**: LOSS attack (Yeom et al. 2018): score = −ℓ",
	} {
		if !strings.Contains(md, want+"\n") {
			t.Errorf("report.md lacks the line\n%s", want)
		}
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
