package report

import (
	"fmt"
	"math"
	"strconv"

	"github.com/bnaudit/bnaudit/audit"
)

// riskTable lists, for each attack and target FPR, the members its
// threshold exposes, the false positives it rests on and its precision
// (PPV) at each prior; it is empty when no attack has a risk.
func riskTable(atts []audit.AttackReport) table {
	var priors []float64
	for _, a := range atts {
		if len(a.Risk) > 0 && len(a.Risk[0].PPV) > 0 {
			for _, p := range a.Risk[0].PPV {
				priors = append(priors, p.Prior)
			}
			break
		}
	}
	if priors == nil {
		return table{}
	}
	t := table{Header: []string{"attack", "FPR target", "members exposed", "false positives"}}
	for _, p := range priors {
		t.Header = append(t.Header, "PPV at "+fmtPercent(p)+" members")
	}
	for _, a := range atts {
		for _, r := range a.Risk {
			row := []string{a.Attack, fmtPercent(r.TargetFPR),
				fmt.Sprintf("%d of %d", r.Exposed, r.Members), fmt.Sprintf("%d of %d", r.FalsePositives, r.NonMembers)}
			for i := range priors {
				cell := notAvailable
				if i < len(r.PPV) {
					cell = fmtInterval(r.PPV[i].PPV)
				}
				row = append(row, cell)
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

// meaningLine says in one sentence what the strongest attack means at a
// prior: the precision of its membership claims at the largest target FPR
// where it flags a sample, at the prior closest to 10%, and the members it
// exposes there. "" when no attack has a risk.
func meaningLine(vr *audit.VariantReport) string {
	b := bestByAUC(vr.Attacks)
	if b < 0 || len(vr.Attacks[b].Risk) == 0 {
		return ""
	}
	a := vr.Attacks[b]
	var pick *audit.RiskAtFPR
	for i := range a.Risk {
		r := &a.Risk[i]
		if r.Exposed+r.FalsePositives > 0 && (pick == nil || r.TargetFPR > pick.TargetFPR) {
			pick = r
		}
	}
	if pick == nil {
		r := a.Risk[len(a.Risk)-1]
		return fmt.Sprintf("What this means: at %s false positives the strongest attack (%s) flags no record of %d members and %d non-members, so it makes no membership claim there.",
			fmtPercent(r.TargetFPR), a.Attack, r.Members, r.NonMembers)
	}
	if len(pick.PPV) == 0 {
		return ""
	}
	j := 0
	for i, p := range pick.PPV {
		if math.Abs(p.Prior-0.1) < math.Abs(pick.PPV[j].Prior-0.1) {
			j = i
		}
	}
	pp := pick.PPV[j]
	return fmt.Sprintf("What this means: if %s of the records an adversary tests were in the training set, a membership claim by the strongest attack (%s) at a %s false-positive rate would be right %s of the time (%s); at that rate it exposes %s of %s members, with %s of %s non-members wrongly flagged.",
		fmtPercent(pp.Prior), a.Attack, fmtPercent(pick.TargetFPR), fmtRate(pp.PPV.Estimate), "95% interval "+fmtRate(pp.PPV.Lo)+" to "+fmtRate(pp.PPV.Hi),
		strconv.Itoa(pick.Exposed), strconv.Itoa(pick.Members), strconv.Itoa(pick.FalsePositives), strconv.Itoa(pick.NonMembers))
}
