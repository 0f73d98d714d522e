package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// TestRiskRendered: each attack's PPV at the priors appears in
// report.json, report.md (the "what this means" line) and report.html
// (the table and the line).
func TestRiskRendered(t *testing.T) {
	r := fixtureReport()
	v := &r.Variants[0]
	b := bestByAUC(v.Attacks)
	v.Attacks[b].Risk = []audit.RiskAtFPR{{TargetFPR: 0.01, TPR: 0.04, FPR: 0.01, Exposed: 40, FalsePositives: 10, Members: 1000, NonMembers: 1000,
		PPV: []audit.PPVAtPrior{{Prior: 0.01, PPV: audit.Interval{Estimate: 0.0388, Lo: 0.02, Hi: 0.06}}, {Prior: 0.1, PPV: audit.Interval{Estimate: 0.3077, Lo: 0.2, Hi: 0.4}}}}}
	data, err := marshalJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Variants[0].Attacks[b].Risk; len(got) != 1 || got[0].Exposed != 40 || got[0].PPV[1].PPV.Estimate != 0.3077 {
		t.Errorf("report.json gives back %+v", got)
	}
	line := "a membership claim by the strongest attack (" + v.Attacks[b].Attack + ") at a 1% false-positive rate would be right 30.8% of the time"
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "Risk in plain terms") || !strings.Contains(md.String(), "exposes 40 of 1000 members") {
		t.Errorf("report.md lacks the line:\n%s", md.String())
	}
	html, err := encodeHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	p := parseHTML(t, html)
	for _, want := range []string{line, "Precision of a membership claim at a prior", "PPV at 10% members", "0.308 [0.200, 0.400]", "40 of 1000"} {
		if !strings.Contains(p.text, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}
