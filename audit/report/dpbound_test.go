package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// TestDPBoundRendered: a variant's one-run lower bound on ε appears in
// report.json, report.md and report.html, and reads back from report.json.
func TestDPBoundRendered(t *testing.T) {
	r := fixtureReport()
	in := make([]bool, 100)
	scores := make([]float64, 100)
	for i := range in {
		in[i] = i < 50
		if in[i] {
			scores[i] = 1
		}
	}
	b, err := audit.OneRunEpsilon(map[string][]float64{audit.AttackLoss: scores}, in, audit.EpsilonBoundOptions{Delta: audit.DefaultDPDelta})
	if err != nil {
		t.Fatal(err)
	}
	r.Variants[0].DPLowerBound = &b
	eps := strings.TrimRight(strings.TrimRight(strings.Split(b.Sentence, "below ")[1][:5], "0"), ".")

	data, err := marshalJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Variants[0].DPLowerBound; got == nil || got.Epsilon != b.Epsilon || got.Sentence != b.Sentence || got.KPlus != b.KPlus || got.Tests != b.Tests {
		t.Errorf("report.json gives back %+v, want %+v", got, b)
	}

	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one-run lower bound on ε", "guesses IN (k₊)", eps} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	html, err := encodeHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	p := parseHTML(t, html)
	for _, want := range []string{"one-run lower bound on ε", "One-run lower bound on ε: Training is not", eps} {
		if !strings.Contains(p.text, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// Without a bound, no section.
	r.Variants[0].DPLowerBound = nil
	md.Reset()
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "one-run lower bound") {
		t.Error("report.md has a DP section without a bound")
	}
}
