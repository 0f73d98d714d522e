package report

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// parsedHTML is what the test reads from report.html with encoding/xml:
// the page must be well-formed (every element closed and nested).
type parsedHTML struct {
	title    string
	text     string         // all text outside <style>, with no-break spaces as spaces
	elements map[string]int // element name → count
	attrs    []xml.Attr
	noplots  int
}

func parseHTML(t *testing.T, data []byte) parsedHTML {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(data)))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	p := parsedHTML{elements: map[string]int{}}
	var stack []string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("report.html is not well-formed: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tk.Name.Local)
			p.elements[tk.Name.Local]++
			p.attrs = append(p.attrs, tk.Attr...)
			for _, a := range tk.Attr {
				if a.Name.Local == "class" && a.Value == "noplot" {
					p.noplots++
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1] == "title" {
				p.title += string(tk)
			}
			if len(stack) > 0 && stack[len(stack)-1] != "style" {
				text.Write(tk)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements %v", stack)
	}
	p.text = strings.ReplaceAll(text.String(), "\u00a0", " ")
	return p
}

// TestHTML: report.html is well-formed, self-contained (no script, no
// external reference), has an inline SVG per plot and the report's text.
func TestHTML(t *testing.T) {
	dir := writeFixture(t)
	data, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	p := parseHTML(t, data)
	if p.title != "bnaudit BN comparison of small_cnn.onnx" {
		t.Errorf("title %q", p.title)
	}
	// 3 side-by-side bars + 2 memorization (accuracy and loss gaps) + per
	// variant: 2 ROC, 2 histograms (eval, in-batch), 1 ratio along
	// training; + the Feldman–Zhang histogram of "original" (the only
	// variant with reference models, so no overlay).
	if got, want := p.elements["svg"], 3+2+2*5+1; got != want {
		t.Errorf("%d inline SVG plots, want %d", got, want)
	}
	if p.noplots != 0 {
		t.Errorf("%d plots could not be drawn", p.noplots)
	}
	for _, el := range []string{"script", "img", "iframe", "link", "object", "embed"} {
		if p.elements[el] != 0 {
			t.Errorf("report.html has a <%s> element", el)
		}
	}
	for _, a := range p.attrs {
		name := strings.ToLower(a.Name.Local)
		if strings.HasPrefix(name, "on") {
			t.Errorf("event handler attribute %s=%q", a.Name.Local, a.Value)
		}
		if (name == "href" || name == "src") && !strings.HasPrefix(a.Value, "data:") && !strings.HasPrefix(a.Value, "#") {
			t.Errorf("external reference %s=%q", a.Name.Local, a.Value)
		}
	}
	for _, want := range []string{
		"Verdict: Not distinguishable: with and without BatchNorm",
		"0.601 [0.593, 0.609] (lira_online)",
		"0.620 [0.400, 0.800] (loss; no false positive allowed among 50 non-members)",
		"-14.90 [-22.30, -7.20]",
		"0.0042 [0.0018, 0.0071] (rests on 5 non-members)",
		"TPR at 0.1% FPR rests on 5 non-members (of 5000)",
		"LOSS attack (Yeom et al. 2018): score = −ℓ",
		"ROC, members vs non-members: original", // SVG text
		"Gradient norms, in-batch, epoch 30: remove",
		"Canary memorization gap",
		"Canary memorization gap (loss)", // SVG text of the loss-gap bars
		"Mean loss on inserted canaries minus mean loss on held-out canaries, with 95% intervals",
		// Slices of one attack, in words.
		"Attacks on subsets (by lira_online)",
		"misclassified",
		// Every exposed member of both variants, with their loss.
		"Most exposed members (by lira_online)",
		"FPR at its score: the share of non-members scoring at least as high",
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, row := range [][]string{
		{"212", "5", "yes", "7.250", "0%", "0.970", "1.2e-07"},
		{"114", "2", "no", "2.500", "1%", "–", "0.0031"},
		{"7", "0", "no", "1.750", "33.3%", "0.0020", "–"},
		{"43", "4", "no", "1.125", "45%", "0.125", "0.800"}, // the seventh
		{"212", "5", "yes", "6.500", "0%", "0.970", "3e-07"},
		{"90", "3", "no", "2.750", "0.2%", "0.310", "0.004"},
	} {
		want := "<tr><td>" + strings.Join(row, "</td><td>") + "</td></tr>"
		if !strings.Contains(string(data), want) {
			t.Errorf("report.html lacks the row %s", want)
		}
	}
	// Canary memorization: the loss gap with its interval in the row below
	// the accuracy gap, for both variants.
	flat := strings.ReplaceAll(string(data), "\u00a0", " ")
	for _, want := range []string{
		"<tr><th></th><th>inserted (50)</th><th>held out (50)</th><th>gap (inserted − held out)</th></tr>",
		"<tr><td>accuracy</td><td>0.940 [0.880, 0.980]</td><td>0.100 [0.040, 0.180]</td><td>0.840 [0.740, 0.920]</td></tr>" +
			"<tr><td>mean loss</td><td>0.210 [0.120, 0.330]</td><td>5.120 [4.610, 5.700]</td><td>-4.910 [-5.500, -4.370]</td></tr>",
		"<tr><td>accuracy</td><td>0.920 [0.840, 0.980]</td><td>0.090 [0.020, 0.160]</td><td>0.830 [0.720, 0.920]</td></tr>" +
			"<tr><td>mean loss</td><td>0.260 [0.150, 0.400]</td><td>5.010 [4.500, 5.550]</td><td>-4.750 [-5.310, -4.200]</td></tr>",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("report.html lacks the canary memorization rows\n%s", want)
		}
	}
	if n := strings.Count(p.text, "Most exposed members"); n != 2 {
		t.Errorf("%d tables of exposed members, want one per variant", n)
	}
	// The verdict comes before the summary table.
	if v, s := strings.Index(p.text, "Verdict:"), strings.Index(p.text, "Summary"); v < 0 || v > s {
		t.Error("the verdict does not come first")
	}
}

// TestHTMLSingleVariant: an audit of one model has no side-by-side plots
// and still draws its own.
func TestHTMLSingleVariant(t *testing.T) {
	r := fixtureReport()
	r.Kind, r.Variants, r.Comparisons = "audit", r.Variants[:1], nil
	data, err := encodeHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	p := parseHTML(t, data)
	// 2 memorization (accuracy and loss gaps) + 2 ROC, 2 gradient-norm
	// histograms, 1 ratio, 1 Feldman–Zhang histogram.
	if got, want := p.elements["svg"], 2+6; got != want {
		t.Errorf("%d plots, want %d", got, want)
	}
	if strings.Contains(p.text, "BN vs no BN") {
		t.Error("an audit shows a BN comparison section")
	}
}

// TestHTMLMissingData: a variant without ROC points or histograms says so
// in place of the plot instead of failing.
func TestHTMLMissingData(t *testing.T) {
	r := fixtureReport()
	for i := range r.Variants[1].Attacks {
		r.Variants[1].Attacks[i].ROC = nil
	}
	for i := range r.Variants[1].GradNorms {
		r.Variants[1].GradNorms[i].Outlier.Edges = nil
		r.Variants[1].GradNorms[i].Typical.Edges = nil
	}
	data, err := encodeHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	p := parseHTML(t, data)
	if p.noplots != 3 { // ROC and two histograms of "remove"
		t.Errorf("%d missing plots reported, want 3", p.noplots)
	}
	if !strings.Contains(p.text, "no ROC curve to draw") || !strings.Contains(p.text, "no histogram was recorded") {
		t.Error("missing plots are not explained")
	}
}

const hostile = `<script>alert(1)</script>`

// hostileReport puts markup in every string that comes from user files.
func hostileReport() *audit.Report {
	r := fixtureReport()
	r.Variants[1].Name = hostile
	r.Variants[0].Model = `models/<img src=x onerror=alert(1)>.onnx`
	r.Variants[1].Model = hostile + ".onnx"
	r.Comparisons[0].Without = hostile
	r.Verdict = "BN " + hostile
	r.Command = "bnaudit compare '" + hostile + "'"
	r.Notes = append(r.Notes, `</li></ul>`+hostile+`<SCRIPT src="http://x/y.js"></SCRIPT>`)
	r.Definitions[hostile] = `<iframe src="http://x">`
	r.Variants[0].Slices[0].Slice = `<style>body{display:none}</style>`
	return r
}

// TestHTMLEscapesHostileNames: markup in model and variant names, notes
// and definitions is shown as text, in the tables and in the SVG plots.
func TestHTMLEscapesHostileNames(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, hostileReport()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	lower := strings.ToLower(string(data))
	for _, bad := range []string{"<script", "<img", "<iframe", "</ul></li>"} {
		if strings.Contains(lower, bad) {
			t.Errorf("report.html contains unescaped %q", bad)
		}
	}
	if n := strings.Count(lower, "<style"); n != 1 {
		t.Errorf("%d <style> elements, want only the page's own", n)
	}
	p := parseHTML(t, data)
	if p.elements["script"]+p.elements["img"]+p.elements["iframe"] != 0 {
		t.Error("hostile markup became elements")
	}
	// Shown as text: in a table, in the verdict, and in a plot's tick label.
	if n := strings.Count(p.text, hostile); n < 4 {
		t.Errorf("the hostile name appears %d times as text, want it shown (≥ 4)", n)
	}
	if !strings.Contains(string(data), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the hostile name is not HTML-escaped in the page")
	}
}

// TestMarkdownEscapesHostileNames: in report.md every '<' from the data is
// backslash-escaped, so no renderer turns it into HTML.
func TestMarkdownEscapesHostileNames(t *testing.T) {
	var b strings.Builder
	if err := WriteMarkdown(&b, hostileReport()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for i := range len(md) {
		if md[i] == '<' && (i == 0 || md[i-1] != '\\') {
			t.Fatalf("unescaped '<' in report.md: %q", md[max(0, i-30):min(len(md), i+30)])
		}
	}
	if !strings.Contains(md, `| \<script\>alert(1)\</script\> | 0 |`) {
		t.Error("the hostile variant's summary row is missing or not escaped")
	}
}

// TestHTMLPerSeed: a row over two seeds lists each seed's own numbers.
func TestHTMLPerSeed(t *testing.T) {
	r := fixtureReport()
	gap := 0.5
	r.Variants[0].PerSeed = []audit.SeedReport{
		{Seed: 0, TrainAccuracy: 0.91, TestAccuracy: 0.88, Epochs: 7, StoppedEarly: true, CanaryGap: &gap,
			AUC: []audit.AttackAUC{{Attack: "loss", AUC: audit.Interval{Estimate: 0.5512}}}},
		{Seed: 1, TrainAccuracy: 0.93, TestAccuracy: 0.89, Epochs: 10,
			AUC: []audit.AttackAUC{{Attack: "loss", AUC: audit.Interval{Estimate: 0.5634}}}},
	}
	raw, err := encodeHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	parseHTML(t, raw)
	html := string(raw)
	for _, want := range []string{"Each training seed", "AUC loss", "7 (fit reached)", "0.551", "0.563"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// ariaLabels returns the accessible names (aria-label) of the page's
// elements.
func ariaLabels(p parsedHTML) []string {
	var out []string
	for _, a := range p.attrs {
		if a.Name.Local == "aria-label" {
			out = append(out, a.Value)
		}
	}
	return out
}

// The fixture's Feldman–Zhang histograms, bin by bin, as the plots' accessible
// names state them.
const (
	fzOriginalBins = "[0, 0.1): 4590; [0.1, 0.2): 240; [0.2, 0.3): 120; [0.3, 0.4): 60; [0.4, 0.5): 40; " +
		"[0.5, 0.6): 20; [0.6, 0.7): 12; [0.7, 0.8): 8; [0.8, 0.9): 0; [0.9, 1]: 10"
	fzRemoveBins = "[0, 0.1): 4700; [0.1, 0.2): 200; [0.2, 0.3): 90; [0.3, 0.4): 50; [0.4, 0.5): 25; " +
		"[0.5, 0.6): 15; [0.6, 0.7): 10; [0.7, 0.8): 5; [0.8, 0.9): 3; [0.9, 1]: 2"
)

// removeFZ gives the fixture's "remove" variant Feldman–Zhang scores on the
// same bins as "original".
func removeFZ(r *audit.Report) {
	r.Variants[1].FeldmanZhang = &audit.Distribution{N: 5100, Mean: 0.02, Median: 0.001, P90: 0.05, Max: 0.95,
		Edges: fzEdges(), Counts: []int{4700, 200, 90, 50, 25, 15, 10, 5, 3, 2}}
}

// TestHTMLFeldmanZhang: a variant with Feldman–Zhang scores has their
// histogram, with the counts in its accessible name and the score
// explained in its caption; a variant without has none; with two, the
// comparison overlays them.
func TestHTMLFeldmanZhang(t *testing.T) {
	encode := func(r *audit.Report) (parsedHTML, string) {
		t.Helper()
		data, err := encodeHTML(r)
		if err != nil {
			t.Fatal(err)
		}
		return parseHTML(t, data), string(data)
	}
	const overlayTitle = "Feldman–Zhang memorization by variant"

	// The fixture: only "original" has reference models.
	p, _ := encode(fixtureReport())
	wantLabel := "Histogram of the Feldman–Zhang memorization scores of original (5100 samples), samples per score bin: " + fzOriginalBins
	if got := ariaLabels(p); len(got) != 1 || got[0] != wantLabel {
		t.Errorf("accessible names %q, want only\n%q", got, wantLabel)
	}
	for _, want := range []string{
		"Feldman–Zhang memorization: original", // the plot's title, SVG text
		"original: median 0.0020 (n=5100)",     // its legend
		"number of samples",
		"Feldman–Zhang memorization of the 5100 samples the reference models score: the accuracy on a sample of the reference models trained with it minus that of the reference models trained without it",
		"Mean 0.031, median 0.0020, 90th percentile 0.080, max 0.970.",
		// 4590 over 8 is skewed: a logarithmic axis, with the empty bin.
		"The number of samples is on a logarithmic axis; an empty bin has no bar.",
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, gone := range []string{"Feldman–Zhang memorization: remove", overlayTitle} {
		if strings.Contains(p.text, gone) {
			t.Errorf("report.html has %q without reference models for remove", gone)
		}
	}

	// Both variants: each its own histogram, and one overlay in the
	// comparison, by share of samples (the bins are the same).
	r := fixtureReport()
	removeFZ(r)
	p, _ = encode(r)
	if got, want := p.elements["svg"], 3+2+2*5+2+1; got != want {
		t.Errorf("%d plots with two Feldman–Zhang histograms, want %d", got, want)
	}
	if p.noplots != 0 {
		t.Errorf("%d plots could not be drawn", p.noplots)
	}
	wantLabels := []string{
		"Histograms of the Feldman–Zhang memorization scores by variant, samples per score bin. original (5100 samples): " +
			fzOriginalBins + ". remove (5100 samples): " + fzRemoveBins + ".",
		wantLabel,
		"Histogram of the Feldman–Zhang memorization scores of remove (5100 samples), samples per score bin: " + fzRemoveBins,
	}
	if got := ariaLabels(p); !slices.Equal(got, wantLabels) {
		t.Errorf("accessible names\n%q, want\n%q", got, wantLabels)
	}
	for _, want := range []string{
		overlayTitle,
		"original (with BN), median 0.0020 (n=5100)",
		"remove (no BN), median 0.0010 (n=5100)",
		"share of samples per bin",
		"Each line is the share of the variant's scored samples in each bin",
		"The share is on a logarithmic axis",
		"Feldman–Zhang memorization: remove",
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("report.html with two Feldman–Zhang histograms lacks %q", want)
		}
	}
	// The overlay is in the BN-vs-no-BN section.
	if c, o, v := strings.Index(p.text, "BN vs no BN"), strings.Index(p.text, overlayTitle), strings.Index(p.text, "Variant original"); c < 0 || o < c || o > v {
		t.Error("the Feldman–Zhang overlay is not in the BN vs no BN section")
	}

	// Different bins: the overlay is a density.
	r = fixtureReport()
	removeFZ(r)
	r.Variants[1].FeldmanZhang.Edges = []float64{0, 0.2, 0.4, 0.6, 0.8, 1}
	r.Variants[1].FeldmanZhang.Counts = []int{4900, 140, 40, 15, 5}
	p, _ = encode(r)
	if !strings.Contains(p.text, "share of samples per unit of score") || !strings.Contains(p.text, "The variants' bins differ") {
		t.Error("the overlay of different bins is not a density")
	}
	if p.noplots != 0 {
		t.Errorf("%d plots could not be drawn", p.noplots)
	}

	// Counts within a factor 20 (50 over 5): a linear axis.
	r = fixtureReport()
	r.Variants[0].FeldmanZhang.Counts = []int{50, 40, 30, 20, 10, 5, 5, 5, 0, 5}
	p, _ = encode(r)
	if strings.Contains(p.text, "logarithmic axis") {
		t.Error("a histogram of even counts is drawn on a logarithmic axis")
	}
	if got := ariaLabels(p); len(got) != 1 || !strings.HasSuffix(got[0], "[0.7, 0.8): 5; [0.8, 0.9): 0; [0.9, 1]: 5") {
		t.Errorf("accessible names %q, want the counts of the even histogram", got)
	}
	if p.noplots != 0 {
		t.Errorf("%d plots could not be drawn", p.noplots)
	}

	// Scores without a histogram: the plot says so.
	r = fixtureReport()
	r.Variants[0].FeldmanZhang.Edges = nil
	p, _ = encode(r)
	if p.noplots != 1 || !strings.Contains(p.text, "Feldman–Zhang memorization: original: no histogram was recorded") {
		t.Errorf("%d missing plots; a Feldman–Zhang summary without a histogram is not explained", p.noplots)
	}

	// No reference models at all: no plot, no error.
	r = fixtureReport()
	r.Variants[0].FeldmanZhang = nil
	p, _ = encode(r)
	if got, want := p.elements["svg"], 3+2+2*5; got != want || p.noplots != 0 {
		t.Errorf("%d plots (%d not drawn) without Feldman–Zhang scores, want %d", got, p.noplots, want)
	}
	if strings.Contains(p.text, "Feldman–Zhang memorization: original") || len(ariaLabels(p)) != 0 {
		t.Error("a Feldman–Zhang plot without Feldman–Zhang scores")
	}

	// A hostile variant name is escaped in the accessible name and the
	// legend.
	r = fixtureReport()
	removeFZ(r)
	r.Variants[1].Name = hostile
	_, raw := encode(r)
	if strings.Contains(strings.ToLower(raw), "<script") {
		t.Error("a hostile variant name reached report.html unescaped")
	}
}

// TestHTMLBalancedAccuracy: the attack tables of report.html show the
// balanced accuracy next to the advantage, with its interval where the
// report has one and the estimate alone where it has not.
func TestHTMLBalancedAccuracy(t *testing.T) {
	data, err := encodeHTML(fixtureReport())
	if err != nil {
		t.Fatal(err)
	}
	parseHTML(t, data)
	flat := strings.ReplaceAll(string(data), "\u00a0", " ")
	for _, want := range []string{
		"<th>AUC</th><th>advantage</th><th>balanced accuracy</th><th>TPR@0.1% FPR</th>",
		// original, lira_online: its interval.
		"<tr><td>lira_online</td><td>5000</td><td>5000</td><td>0.601 [0.593, 0.609]</td><td>0.152 [0.141, 0.163]</td><td>0.576 [0.570, 0.582]</td>",
		// original, canaries: its interval.
		"<tr><td>loss</td><td>50</td><td>50</td><td>0.970 [0.940, 0.990]</td><td>0.800 [0.700, 0.900]</td><td>0.900 [0.850, 0.950]</td>",
		// original, confidence: NaN and no interval.
		"<tr><td>confidence</td><td>5000</td><td>5000</td><td>0.540 [0.532, inf]</td><td>0.066 [0.055, 0.077]</td><td>n/a</td>",
		// remove, lira_online: no interval, the estimate alone.
		"<tr><td>lira_online</td><td>5000</td><td>5000</td><td>0.594 [0.585, 0.602]</td><td>0.141 [0.130, 0.152]</td><td>0.570</td>",
		// A slice: (1 + advantage)/2 = 0.9 [0.85, 0.95].
		"<tr><td>canaries</td><td>50</td><td>50</td><td>0.970 [0.940, 0.990]</td><td>0.800 [0.700, 0.900]</td><td>0.900 [0.850, 0.950]</td>",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("report.html lacks\n%s", want)
		}
	}
}
