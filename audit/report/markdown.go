package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/bnaudit/bnaudit/audit"
)

// WriteMarkdown writes the report's summary as Markdown (GitHub-flavoured
// tables), the content of report.md: the summary a person reads in a
// terminal or a pull request, on one screen — the verdict, a row per
// variant, the BN-versus-no-BN differences (or, for one model, its
// attacks), the five most exposed members and the notes. Everything else
// is in report.html and report.json.
func WriteMarkdown(w io.Writer, r *audit.Report) error {
	if r == nil {
		return fmt.Errorf("report: no report to write")
	}
	bw := bufio.NewWriter(w)
	writeMarkdown(bw, buildView(r))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report: writing markdown: %w", err)
	}
	return nil
}

func writeMarkdown(w *bufio.Writer, v view) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# %s\n\n", mdEscape(v.Title))
	p("**Verdict: %s**", mdEscape(v.Verdict))
	if v.VerdictCode != "" {
		p(" (%s)", mdEscape(v.VerdictCode))
	}
	p("\n\n")
	// One line of provenance: the command reproduces the report.
	var meta []string
	for _, m := range v.Meta {
		meta = append(meta, m.Name+": "+mdEscape(m.Text))
	}
	if len(meta) > 0 {
		p("%s\n\n", strings.Join(meta, " · "))
	}

	mdTable(w, v.Summary)
	p("Intervals are 95%% bootstrap intervals: estimate [low, high].\n\n")

	if !v.Comparisons.Empty() {
		p("## BN vs no BN\n\n")
		mdTable(w, v.Comparisons)
		p("A difference is distinguishable when its interval excludes zero.\n\n")
	}
	var meaning []string
	for _, vv := range v.Variants {
		if vv.Meaning != "" {
			meaning = append(meaning, "- "+mdEscape(vv.Name)+": "+mdEscape(vv.Meaning)+"\n")
		}
	}
	if len(meaning) > 0 {
		p("## Risk in plain terms\n\n%s\n", strings.Join(meaning, ""))
	}
	if !v.DPBounds.Empty() {
		p("## Differential privacy: one-run lower bound on ε\n\n")
		mdTable(w, v.DPBounds)
		p("From the canaries, each guessed IN or OUT from its score (Steinke, Nasr, Jagielski 2023); a bound above the ε a DP training claims refutes the claim.")
		for _, vv := range v.Variants {
			if vv.DPBound != "" {
				p(" %s: %s", mdEscape(vv.Name), mdEscape(vv.DPBound))
				break
			}
		}
		p("\n\n")
	}

	// One model: its attacks are the substance. A comparison's per-variant
	// tables live in report.html.
	if len(v.Variants) == 1 {
		vv := v.Variants[0]
		p("## Attacks\n\n")
		if vv.Attacks.Empty() {
			p("No attack was run.\n\n")
		} else {
			// The balanced accuracy, (1 + advantage)/2, is in report.html.
			mdTable(w, vv.Attacks.without(balancedAccCol))
		}
	}
	// The most exposed members of the first variant that has them (the
	// original model in a comparison).
	for _, vv := range v.Variants {
		if vv.Vulnerable.Empty() {
			continue
		}
		p("Most exposed members")
		if len(v.Variants) > 1 {
			p(" of %s", mdEscape(vv.Name))
		}
		p("%s", byAttack(vv.VulnerableBy))
		if n := len(vv.Vulnerable.Rows); n > mdVulnerable {
			p(", top %d of %d", mdVulnerable, n)
		}
		p(":\n\n")
		// Up to the Feldman–Zhang column: the loss is in report.html.
		mdTable(w, vv.Vulnerable.head(mdVulnerable, mdVulnerableCols))
		break
	}

	if len(v.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range v.Notes {
			p("- %s\n", mdEscape(n))
		}
		p("\n")
	}
	p("Details in report.html (every attack per model with ROC curves, canary memorization, gradient norms along training, attacks per class and on canaries, definitions); numbers in report.json; per-sample data in scores.csv and signals.npz.\n")
}

// byAttack is " (by NAME)" naming the attack behind a table, escaped for
// Markdown, or "" when it is not known.
func byAttack(name string) string {
	if name == "" {
		return ""
	}
	return " (by " + mdEscape(name) + ")"
}

// mdTable writes a GitHub-flavoured Markdown table.
func mdTable(w *bufio.Writer, t table) {
	row := func(cells []string) {
		w.WriteString("|")
		for _, c := range cells {
			w.WriteString(" ")
			w.WriteString(mdEscape(c))
			w.WriteString(" |")
		}
		w.WriteString("\n")
	}
	row(t.Header)
	w.WriteString("|")
	for range t.Header {
		w.WriteString(" --- |")
	}
	w.WriteString("\n")
	for _, r := range t.Rows {
		row(r)
	}
	w.WriteString("\n")
}

// mdEscape makes a string from the data inert in Markdown: it is put on one
// line, and the characters that start emphasis, code, links, HTML,
// entities, headings or table cells are backslash-escaped (CommonMark renders a
// backslash-escaped punctuation character literally). An underscore inside
// a word (lira_online) cannot start emphasis and is left alone, so that
// names stay readable in a terminal.
func mdEscape(s string) string {
	s = oneLine(s)
	rs := []rune(s)
	var b strings.Builder
	for i, c := range rs {
		switch c {
		case '\\', '`', '*', '<', '>', '|', '#', '&', '~':
			b.WriteByte('\\')
		case '[':
			// Only a line's first "[" can open a link reference definition.
			if i == 0 {
				b.WriteByte('\\')
			}
		case ']':
			// "](", "][" and "]:" would make a link or a definition; a lone
			// bracket pair, as in an interval, is plain text.
			if i+1 < len(rs) && (rs[i+1] == '(' || rs[i+1] == '[' || rs[i+1] == ':') {
				b.WriteByte('\\')
			}
		case '_':
			inWord := i > 0 && i+1 < len(rs) && isWordRune(rs[i-1]) && isWordRune(rs[i+1])
			if !inWord {
				b.WriteByte('\\')
			}
		}
		b.WriteRune(c)
	}
	return b.String()
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
