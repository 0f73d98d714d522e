package study

import (
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// liraRecord is a one-seed run of 20 members and 20 non-members with equal
// losses in every variant and online LiRA scores that separate members
// perfectly (separate) or not at all.
func liraRecord(name string, separate bool) *runRecord {
	const n = 20
	t := &audit.SampleTable{Scores: map[string][]float64{}}
	rc := &runRecord{Variant: audit.VariantReport{Name: name,
		Attacks: []audit.AttackReport{{Attack: audit.AttackLoss}, {Attack: audit.AttackLiRAOnline}}}, Samples: t}
	for i := 0; i < 2*n; i++ {
		member := i < n
		t.Member, t.Canary = append(t.Member, member), append(t.Canary, false)
		score := float64(i % n) // interleaved: AUC ½
		if separate && member {
			score += 100
		}
		t.Scores[audit.AttackLiRAOnline] = append(t.Scores[audit.AttackLiRAOnline], score)
		loss := float64(i%7) / 7
		if member {
			rc.MemberLoss = append(rc.MemberLoss, loss)
		} else {
			rc.NonLoss = append(rc.NonLoss, loss)
		}
	}
	return rc
}

// TestCompareVerdictFewRefModels: with BN the LiRA AUC is 1 and without it
// ½ (a distinguishable difference), the LOSS AUCs are equal. On 4
// reference models the verdict says BN amplifies leakage; on 2 it leaves
// the LiRA comparison out (not distinguishable), keeps it in the report,
// says so in a note, and records the number of reference models on every
// row.
func TestCompareVerdictFewRefModels(t *testing.T) {
	for _, c := range []struct {
		refs     int
		wantCode string
		wantNote bool
	}{{4, audit.VerdictAmplifies, false}, {2, audit.VerdictNotDistinguishable, true}} {
		records := map[string][]*runRecord{"original": {liraRecord("original", true)}, "remove": {liraRecord("remove", false)}}
		cfg := CompareConfig{Variants: []string{"original", "remove"}, Seeds: 1, RefModels: c.refs,
			Bootstrap: audit.BootstrapOptions{Replicates: 200, Seed: 1}}
		r, err := buildCompareReport(cfg, records)
		if err != nil {
			t.Fatal(err)
		}
		lira := false
		for _, cmp := range r.Comparisons {
			if cmp.Metric == MetricMemberLiRAAUC {
				lira = cmp.Distinguishable && cmp.Diff.Estimate > 0.4
			}
		}
		if !lira {
			t.Errorf("%d refs: comparisons %+v lack a distinguishable %s", c.refs, r.Comparisons, MetricMemberLiRAAUC)
		}
		if r.VerdictCode != c.wantCode {
			t.Errorf("%d refs: verdict %q (%s), want %q", c.refs, r.VerdictCode, r.Verdict, c.wantCode)
		}
		var note string
		for _, n := range r.Notes {
			if strings.HasPrefix(n, "Few reference models") {
				note = n
			}
		}
		if got := note != ""; got != c.wantNote {
			t.Errorf("%d refs: few-models note present = %v, want %v (notes %q)", c.refs, got, c.wantNote, r.Notes)
		}
		if c.wantNote && (!strings.Contains(note, "rest on 2 reference model") || !strings.Contains(note, "leaves out the reference-attack comparisons ("+MetricMemberLiRAAUC+")")) {
			t.Errorf("%d refs: note %q should give the number and the metric left out", c.refs, note)
		}
		for _, v := range r.Variants {
			if v.RefModels != c.refs {
				t.Errorf("%d refs: row %s records %d reference models", c.refs, v.Name, v.RefModels)
			}
		}
	}
}

// TestFewRefModelsAuditNote: an audit report on 2 reference models carries
// the caveat with the number; on 0 or 4 it does not; the number is on the
// row whenever models were trained.
func TestFewRefModelsAuditNote(t *testing.T) {
	for _, c := range []struct {
		refs int
		note bool
	}{{0, false}, {1, true}, {2, true}, {3, true}, {4, false}, {8, false}} {
		r := &audit.Report{Kind: "audit", Variants: []audit.VariantReport{{Name: "audited"}}}
		recordRefModels(r, c.refs, false)
		got := len(r.Notes) == 1 && strings.Contains(r.Notes[0], "Feldman–Zhang") && strings.Contains(r.Notes[0], "LiRA")
		if got != c.note || len(r.Notes) > 1 {
			t.Errorf("%d refs: notes %q, want the few-models note: %v", c.refs, r.Notes, c.note)
		}
		if r.Variants[0].RefModels != c.refs {
			t.Errorf("%d refs: the row records %d", c.refs, r.Variants[0].RefModels)
		}
	}
}
