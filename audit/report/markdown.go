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
// tables), the content of report.md: the verdict first, a row per variant,
// the BN-versus-no-BN differences, every attack per variant (with the
// attack on subsets and, for the first variant that has them, the five
// most exposed members), then notes and definitions. It reads well as
// plain text in a terminal.
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
	for _, m := range v.Meta {
		p("- %s: %s\n", m.Name, mdEscape(m.Text))
	}
	if len(v.Meta) > 0 {
		p("\n")
	}

	p("## Summary\n\n")
	mdTable(w, v.Summary)
	p("Intervals are 95%% bootstrap intervals: estimate [low, high].\n\n")

	if !v.Comparisons.Empty() {
		p("## BN vs no BN\n\n")
		mdTable(w, v.Comparisons)
		p("A difference is distinguishable when its interval excludes zero.\n\n")
	}

	p("## Attacks\n\n")
	// The most exposed members are listed for one variant only (the first
	// that has them, the original model in a comparison): report.html has
	// them all.
	exposedShown := false
	for _, vv := range v.Variants {
		p("### %s\n\n", mdEscape(vv.Name))
		for _, f := range vv.Facts {
			p("- %s: %s\n", f.Name, mdEscape(f.Text))
		}
		if len(vv.Facts) > 0 {
			p("\n")
		}
		p("Members vs non-members:\n\n")
		if vv.Attacks.Empty() {
			p("No attack was run.\n\n")
		} else {
			mdTable(w, vv.Attacks)
		}
		if !vv.CanaryAttacks.Empty() {
			p("Inserted (members) vs held-out (non-members) canaries:\n\n")
			mdTable(w, vv.CanaryAttacks)
		}
		if !vv.Memorization.Empty() {
			p("Canary memorization:\n\n")
			mdTable(w, vv.Memorization)
		}
		if vv.FeldmanZhang != "" {
			p("Feldman–Zhang memorization: %s.\n\n", vv.FeldmanZhang)
		}
		if !vv.GradNorms.Empty() {
			p("Per-sample gradient norms along training:\n\n")
			mdTable(w, vv.GradNorms)
		}
		if !vv.Slices.Empty() {
			p("Attacks on subsets%s:\n\n", byAttack(vv.SliceAttack))
			mdTable(w, vv.Slices)
		}
		if !vv.Vulnerable.Empty() && !exposedShown {
			exposedShown = true
			p("Most exposed members%s", byAttack(vv.VulnerableBy))
			if n := len(vv.Vulnerable.Rows); n > mdVulnerable {
				p(", top %d of %d", mdVulnerable, n)
			}
			p(":\n\n")
			// Up to the Feldman–Zhang column: the loss is in report.html.
			mdTable(w, vv.Vulnerable.head(mdVulnerable, mdVulnerableCols))
		}
	}

	if len(v.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range v.Notes {
			p("- %s\n", mdEscape(n))
		}
		p("\n")
	}
	if len(v.Definitions) > 0 {
		p("## Definitions\n\n")
		for _, d := range v.Definitions {
			p("- **%s**: %s\n", mdEscape(d.Name), mdEscape(d.Text))
		}
		p("\n")
	}
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
