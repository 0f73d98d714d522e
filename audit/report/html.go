package report

import (
	"bytes"
	"fmt"
	"html/template"
	"regexp"
	"strconv"

	"github.com/bnaudit/bnaudit/audit"
)

// htmlPage is what the HTML template renders: the view plus its figures.
type htmlPage struct {
	view
	VerdictClass string
	Compare      []figure
	Memorization []figure
	Variants     []htmlVariant
}

type htmlVariant struct {
	variantView
	Figures []figure
}

// verdictClass maps the verdict code to a fixed CSS class (the code comes
// from the data and never reaches the page as a class name).
func verdictClass(code string) string {
	switch code {
	case audit.VerdictAmplifies:
		return "v-amplifies"
	case audit.VerdictReduces:
		return "v-reduces"
	case audit.VerdictNotDistinguishable:
		return "v-neutral"
	}
	return "v-none"
}

// encodeHTML renders report.html: the view of report.md with plots.
func encodeHTML(r *audit.Report) ([]byte, error) {
	v := buildView(r)
	page := htmlPage{view: v, VerdictClass: verdictClass(r.VerdictCode)}

	if len(r.Variants) > 1 {
		page.Compare = append(page.Compare,
			barsFigure("MIA AUC (best attack)", "Highest AUC among the attacks on members vs non-members, with 95% intervals.", "AUC", r.Variants,
				func(vr *audit.VariantReport) (audit.Interval, bool) {
					b := bestByAUC(vr.Attacks)
					if b < 0 {
						return audit.Interval{}, false
					}
					return vr.Attacks[b].AUC, true
				}),
			barsFigure("TPR at "+fmtPercent(summaryFPR)+" FPR (best attack)", "Highest TPR at "+fmtPercent(summaryFPR)+" FPR among the attacks, with 95% intervals.", "TPR", r.Variants,
				func(vr *audit.VariantReport) (audit.Interval, bool) {
					b := bestByTPR(vr.Attacks, summaryFPR)
					if b < 0 {
						return audit.Interval{}, false
					}
					t, _ := tprAt(vr.Attacks[b], summaryFPR)
					return t.TPR, true
				}),
			barsFigure("Gradient-norm ratio (last checkpoint, eval mode)", "Median outlier over median typical per-sample gradient norm at the last checkpoint, eval mode, with 95% intervals.", "outlier / typical", r.Variants,
				func(vr *audit.VariantReport) (audit.Interval, bool) {
					p, ok := lastGradNorm(vr.GradNorms, "eval")
					return p.Ratio, ok
				}),
		)
		// Memorization by the reference models, BN against no BN: the
		// variants' Feldman–Zhang histograms overlaid.
		withFZ := 0
		for _, vr := range r.Variants {
			if vr.FeldmanZhang != nil {
				withFZ++
			}
		}
		if withFZ > 1 {
			page.Compare = append(page.Compare, feldmanZhangCompareFigure("Feldman–Zhang memorization by variant", r.Variants))
		}
	}
	hasGap := false
	for _, vr := range r.Variants {
		hasGap = hasGap || vr.Memorization != nil
	}
	if hasGap {
		page.Memorization = append(page.Memorization,
			barsFigure("Canary memorization gap", "Accuracy on inserted canaries minus accuracy on held-out canaries, with 95% intervals: the share of canaries memorized.", "accuracy gap", r.Variants,
				func(vr *audit.VariantReport) (audit.Interval, bool) {
					if vr.Memorization == nil {
						return audit.Interval{}, false
					}
					return vr.Memorization.AccuracyGap, true
				}),
			barsFigure("Canary memorization gap (loss)", "Mean loss on inserted canaries minus mean loss on held-out canaries, with 95% intervals: the further below zero, the better the model fits the canaries it trained on.", "loss gap", r.Variants,
				func(vr *audit.VariantReport) (audit.Interval, bool) {
					if vr.Memorization == nil {
						return audit.Interval{}, false
					}
					return vr.Memorization.LossGap, true
				}))
	}

	for i, vv := range v.Variants {
		vr := &r.Variants[i]
		hv := htmlVariant{variantView: vv}
		name := shortName(vr.Name)
		if len(vr.Attacks) > 0 {
			hv.Figures = append(hv.Figures, rocFigure("ROC, members vs non-members: "+name, vr.Attacks))
		}
		if len(vr.CanaryAttacks) > 0 {
			hv.Figures = append(hv.Figures, rocFigure("ROC, canaries: "+name, vr.CanaryAttacks))
		}
		for _, mode := range gradModes(vr.GradNorms) {
			if pt, ok := lastGradNorm(vr.GradNorms, mode); ok {
				hv.Figures = append(hv.Figures, histogramFigure(
					fmt.Sprintf("Gradient norms, %s, epoch %s: %s", modeName(mode), strconv.Itoa(pt.Epoch), name), pt))
			}
		}
		if len(vr.GradNorms) > 0 {
			hv.Figures = append(hv.Figures, ratioFigure("Gradient-norm ratio along training: "+name, vr.GradNorms))
		}
		if vr.FeldmanZhang != nil {
			hv.Figures = append(hv.Figures, feldmanZhangFigure("Feldman–Zhang memorization: "+name, name, vr.FeldmanZhang, variantColor(vr)))
		}
		page.Variants = append(page.Variants, hv)
	}

	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, page); err != nil {
		return nil, fmt.Errorf("report: report.html: %w", err)
	}
	return b.Bytes(), nil
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{"cell": keepIntervals}).Parse(pageHTML))

// intervalText matches a formatted interval, "0.544 [0.536, 0.551]".
var intervalText = regexp.MustCompile(`(\S+) \[(\S+), (\S+)\]`)

// keepIntervals joins the parts of each interval in a table cell with
// no-break spaces, so that a narrow column breaks between an interval and
// its note, not inside the interval.
func keepIntervals(s string) string {
	return intervalText.ReplaceAllString(s, "$1\u00a0[$2,\u00a0$3]")
}

// pageHTML is the page. It is also well-formed XML (every element closed),
// which the tests check with encoding/xml.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>{{.Title}}</title>
<style>
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg2: #f6f8fa; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif;
  color: var(--fg); max-width: 1360px; margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
h2 { font-size: 1.3em; border-bottom: 1px solid var(--line); padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.verdict { font-size: 1.15em; padding: 0.7em 1em; border-radius: 6px; border-left: 6px solid; margin: 0.8em 0 1em; }
.verdict code { font-size: 0.8em; color: var(--muted); margin-left: 0.6em; }
.v-amplifies { background: #fff1e5; border-color: #D55E00; }
.v-reduces { background: #e6f6f1; border-color: #009E73; }
.v-neutral { background: #eaf3fb; border-color: #0072B2; }
.v-none { background: var(--bg2); border-color: #8c959f; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 1em; margin: 0.6em 0; font-size: 0.92em; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 0.5em 0 1em; }
table { border-collapse: collapse; font-size: 0.85em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 0.3em 0.6em; vertical-align: top; }
th { background: var(--bg2); text-align: left; font-weight: 600; }
td:first-child { font-weight: 600; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; margin: 0.8em 0; }
figure { margin: 0; flex: 0 1 480px; min-width: 260px; }
figure.small { flex-basis: 330px; }
figure svg { width: 100%; height: auto; display: block; }
svg.plot text { font-family: "Liberation Sans", Arial, Helvetica, sans-serif !important; }
figcaption { font-size: 0.8em; color: var(--muted); margin-top: 0.3em; }
.noplot { border: 1px dashed var(--line); padding: 2em 1em; color: var(--muted); font-size: 0.9em; }
.note { font-size: 0.85em; color: var(--muted); }
ul.notes li { margin-bottom: 0.3em; }
footer { margin-top: 3em; font-size: 0.8em; color: var(--muted); }
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p class="verdict {{.VerdictClass}}"><strong>Verdict: {{.Verdict}}</strong>{{if .VerdictCode}}<code>{{.VerdictCode}}</code>{{end}}</p>
{{with .Meta}}<dl class="facts">{{range .}}<dt>{{.Name}}</dt><dd>{{.Text}}</dd>{{end}}</dl>{{end}}
</header>

<section>
<h2>Summary</h2>
{{template "table" .Summary}}
<p class="note">Intervals are 95% bootstrap intervals: estimate [low, high].</p>
</section>
{{if not .Comparisons.Empty}}
<section>
<h2>BN vs no BN</h2>
{{template "table" .Comparisons}}
<p class="note">A difference is distinguishable when its interval excludes zero.</p>
{{template "figures" .Compare}}
</section>
{{end}}
{{if not .DPBounds.Empty}}
<section>
<h2>Differential privacy: one-run lower bound on ε</h2>
{{template "table" .DPBounds}}
<p class="note">From the canaries, each guessed IN or OUT from its score (Steinke, Nasr, Jagielski 2023); a bound above the ε a DP training claims refutes the claim. The sweep over scores and guess counts is Bonferroni-corrected.</p>
</section>
{{end}}
{{with .Memorization}}
<section>
<h2>Memorization</h2>
{{template "figures" .}}
</section>
{{end}}
{{range .Variants}}
<section>
<h2>Variant {{.Name}}</h2>
{{with .Facts}}<dl class="facts">{{range .}}<dt>{{.Name}}</dt><dd>{{.Text}}</dd>{{end}}</dl>{{end}}
{{if not .PerSeed.Empty}}<h3>Each training seed</h3>
{{template "table" .PerSeed}}{{end}}
{{template "figures" .Figures}}
<h3>Attacks, members vs non-members</h3>
{{if .Attacks.Empty}}<p>No attack was run.</p>{{else}}{{template "table" .Attacks}}{{end}}
{{with .Meaning}}<p><strong>{{.}}</strong></p>{{end}}
{{if not .Risk.Empty}}<h3>Precision of a membership claim at a prior</h3>
{{template "table" .Risk}}
<p class="note">PPV = π·TPR / (π·TPR + (1 − π)·FPR) at the threshold of each target FPR, for a fraction π of members in the population tested; n/a where the threshold flags no sample. Members exposed: members flagged at that threshold.</p>{{end}}
{{if not .CanaryAttacks.Empty}}<h3>Attacks, inserted (members) vs held-out (non-members) canaries</h3>
{{template "table" .CanaryAttacks}}{{end}}
{{if not .Memorization.Empty}}<h3>Canary memorization</h3>
{{template "table" .Memorization}}{{end}}
{{with .DPBound}}<p>One-run lower bound on ε: {{.}}</p>{{end}}
{{with .FeldmanZhang}}<p>Feldman–Zhang memorization: {{.}}.</p>{{end}}
{{if not .GradNorms.Empty}}<h3>Per-sample gradient norms along training</h3>
{{template "table" .GradNorms}}{{end}}
{{if not .Slices.Empty}}<h3>Attacks on subsets{{with .SliceAttack}} (by {{.}}){{end}}</h3>
{{template "table" .Slices}}{{end}}
{{if not .Vulnerable.Empty}}<h3>Most exposed members{{with .VulnerableBy}} (by {{.}}){{end}}</h3>
{{template "table" .Vulnerable}}
<p class="note">The members the attack scores highest. index: the sample's index in scores.csv and signals.npz; FPR at its score: the share of non-members scoring at least as high, the false positive rate of a threshold that flags this member; Feldman–Zhang memorization: – where it is not defined (no reference model trained with, or none without, the sample).</p>{{end}}
</section>
{{end}}
{{with .Notes}}
<section>
<h2>Notes</h2>
<ul class="notes">{{range .}}<li>{{.}}</li>{{end}}</ul>
</section>
{{end}}
{{with .Definitions}}
<section>
<h2>Definitions</h2>
<dl class="facts">{{range .}}<dt>{{.Name}}</dt><dd>{{.Text}}</dd>{{end}}</dl>
</section>
{{end}}
<footer>Written by {{if .Tool}}{{.Tool}}{{else}}bnaudit{{end}}. Plots drawn with gonum.org/v1/plot.</footer>
</body>
</html>
{{define "table"}}<div class="scroll"><table><thead><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead><tbody>{{range .Rows}}<tr>{{range .}}<td>{{cell .}}</td>{{end}}</tr>{{end}}</tbody></table></div>{{end}}
{{define "figures"}}{{with .}}<div class="figures">{{range .}}<figure{{if .Small}} class="small"{{end}}>{{if .SVG}}{{.SVG}}{{else}}<div class="noplot"><strong>{{.Title}}</strong>: {{.Err}}</div>{{end}}{{with .Caption}}<figcaption>{{.}}</figcaption>{{end}}</figure>{{end}}</div>{{end}}{{end}}
`
