package study

import (
	"strings"

	"github.com/bnaudit/bnaudit/audit"
)

// Reports on few reference models: below audit.MinReliableRefModels, the
// Feldman–Zhang scores and LiRA are indicative only. The report records
// the number on every variant and says so in a note, and a comparison's
// verdict leaves out the reference-attack metrics.

// isReferenceMetric says whether a comparison metric (Metric…) is a
// reference-model attack's: its name carries the attack, as in
// member_lira_auc or canary_lira_auc.
func isReferenceMetric(metric string) bool {
	for _, part := range strings.Split(metric, "_") {
		if part == "lira" || part == "rmia" {
			return true
		}
	}
	return false
}

// fewRefModels says whether n reference models (n > 0) are too few for
// the verdict to lean on their attacks.
func fewRefModels(n int) bool { return n > 0 && n < audit.MinReliableRefModels }

// verdictComparisons are the comparisons a verdict may lean on: all of
// them, less the reference-attack metrics when refs are too few.
func verdictComparisons(cmp []audit.Comparison, refs int) []audit.Comparison {
	if !fewRefModels(refs) {
		return cmp
	}
	var out []audit.Comparison
	for _, c := range cmp {
		if !isReferenceMetric(c.Metric) {
			out = append(out, c)
		}
	}
	return out
}

// recordRefModels writes the number of reference models on every variant
// of the report and, when they are too few, adds the caveat; for a
// comparison (verdict true) it says which metrics the verdict left out.
func recordRefModels(r *audit.Report, refs int, verdict bool) {
	if refs <= 0 {
		return
	}
	for i := range r.Variants {
		r.Variants[i].RefModels = refs
	}
	note := audit.FewRefModelsNote(refs)
	if note == "" {
		return
	}
	if verdict {
		var left []string
		seen := map[string]bool{}
		for _, c := range r.Comparisons {
			if isReferenceMetric(c.Metric) && !seen[c.Metric] {
				seen[c.Metric] = true
				left = append(left, c.Metric)
			}
		}
		if len(left) > 0 {
			note += " The verdict leaves out the reference-attack comparisons (" + strings.Join(left, ", ") + ") for that reason; they are still listed."
		}
	}
	r.Notes = append(r.Notes, note)
}
