package report

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
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
	// 3 side-by-side bars + 1 memorization + per variant: 2 ROC, 2
	// histograms (eval, in-batch), 1 ratio along training.
	if got, want := p.elements["svg"], 3+1+2*5; got != want {
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
	if got, want := p.elements["svg"], 1+5; got != want {
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
