package report

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
)

// The view is the report laid out for reading: titles, sentences and
// tables of formatted (not yet escaped) strings. report.md and report.html
// render the same view, so they cannot disagree.

// table is a table of formatted cells; Rows may be empty.
type table struct {
	Header []string
	Rows   [][]string
}

// Empty reports whether the table has no rows.
func (t table) Empty() bool { return len(t.Rows) == 0 }

// term is a name with its text (a definition, a fact).
type term struct {
	Name, Text string
}

// view is everything a reader sees, in order.
type view struct {
	Title       string
	Tool        string
	Verdict     string
	VerdictCode string
	Meta        []term
	Summary     table
	Comparisons table
	// DPBounds has a row per variant with a one-run lower bound on ε.
	DPBounds    table
	Variants    []variantView
	Notes       []string
	Definitions []term
}

// variantView is the per-variant part of the report.
type variantView struct {
	Name          string
	Facts         []term
	Attacks       table
	CanaryAttacks table
	Memorization  table
	// DPBound is the one-run lower bound on ε in a sentence.
	DPBound string
	// Risk is each attack's precision at the priors and the members it
	// exposes; Meaning says what the strongest one means in a sentence.
	Risk         table
	Meaning      string
	FeldmanZhang string
	GradNorms    table
	// Slices is the attack on subsets of the samples. When every slice
	// comes from one attack, SliceAttack names it and the table has no
	// attack column.
	Slices      table
	SliceAttack string
	// Vulnerable lists the members the attack VulnerableBy scores highest
	// (at most maxVulnerable), with their Feldman–Zhang score and loss.
	Vulnerable   table
	VulnerableBy string
	// PerSeed lists each training seed's own numbers when the row
	// aggregates several.
	PerSeed table
}

// maxVulnerable is the most exposed members listed per variant; report.md
// shows the first mdVulnerable of them, for one variant, and the first
// mdVulnerableCols columns (up to the Feldman–Zhang score).
const (
	maxVulnerable    = 10
	mdVulnerable     = 5
	mdVulnerableCols = 6
)

// head returns the table's first rows rows and cols columns (all of them
// where there are fewer).
func (t table) head(rows, cols int) table {
	cols = min(cols, len(t.Header))
	out := table{Header: t.Header[:cols]}
	for _, r := range t.Rows[:min(rows, len(t.Rows))] {
		out.Rows = append(out.Rows, r[:min(cols, len(r))])
	}
	return out
}

// without returns the table less column col (the table itself when it has
// no such column).
func (t table) without(col int) table {
	if col < 0 || col >= len(t.Header) {
		return t
	}
	out := table{Header: slices.Delete(slices.Clone(t.Header), col, col+1)}
	for _, r := range t.Rows {
		if col < len(r) {
			r = slices.Delete(slices.Clone(r), col, col+1)
		}
		out.Rows = append(out.Rows, r)
	}
	return out
}

// buildView lays out the report.
func buildView(r *audit.Report) view {
	v := view{
		Title:       title(r),
		Tool:        r.Tool,
		Verdict:     verdictWords(r),
		VerdictCode: r.VerdictCode,
		Notes:       slices.Clone(r.Notes),
	}
	for _, m := range []term{
		{"tool", r.Tool},
		{"kind", r.Kind},
		{"created", r.Created},
		{"seed", strconv.FormatUint(r.Seed, 10)},
		{"command", r.Command},
	} {
		if m.Text != "" {
			v.Meta = append(v.Meta, m)
		}
	}
	v.Summary = summaryTable(r)
	v.Comparisons = comparisonTable(r.Comparisons)
	v.DPBounds = dpBoundTable(r.Variants)
	for i := range r.Variants {
		v.Variants = append(v.Variants, buildVariant(&r.Variants[i]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Definitions)) {
		v.Definitions = append(v.Definitions, term{k, r.Definitions[k]})
	}
	return v
}

// title names the report after its kind and the audited model.
func title(r *audit.Report) string {
	what := "audit"
	if r.Kind == "compare" {
		what = "BN comparison"
	}
	for _, vr := range r.Variants {
		if vr.Model != "" {
			return "bnaudit " + what + " of " + filepath.Base(vr.Model)
		}
	}
	return "bnaudit " + what
}

// summaryTable has one row per variant with its headline numbers.
func summaryTable(r *audit.Report) table {
	t := table{Header: []string{
		"variant",
		"BN layers",
		"test accuracy",
		"train accuracy",
		"canary memorization gap (accuracy)",
		"gradient-norm ratio outlier/typical (last checkpoint, eval mode)",
		"MIA AUC (best attack)",
		"TPR@" + fmtPercent(summaryFPR) + " FPR",
		"TPR@" + fmtPercent(summaryFPR) + " FPR on canaries",
	}}
	for i := range r.Variants {
		vr := &r.Variants[i]
		row := []string{
			vr.Name,
			strconv.Itoa(vr.BatchNorms),
			fmtFit(vr.TestAccuracy),
			fmtFit(vr.TrainAccuracy),
			notAvailable,
			notAvailable,
			notAvailable,
			notAvailable,
			notAvailable,
		}
		if vr.Memorization != nil {
			row[4] = fmtInterval(vr.Memorization.AccuracyGap)
		}
		if p, ok := lastGradNorm(vr.GradNorms, "eval"); ok {
			row[5] = fmtInterval(p.Ratio) + " (epoch " + strconv.Itoa(p.Epoch) + ")"
		} else if p, ok := lastGradNorm(vr.GradNorms, "inbatch"); ok {
			row[5] = fmtInterval(p.Ratio) + " (epoch " + strconv.Itoa(p.Epoch) + ", in-batch: no eval-mode norms)"
		}
		if b := bestByAUC(vr.Attacks); b >= 0 {
			row[6] = fmtInterval(vr.Attacks[b].AUC) + " (" + vr.Attacks[b].Attack + ")"
		}
		row[7] = bestTPRCell(vr.Attacks)
		row[8] = bestTPRCell(vr.CanaryAttacks)
		t.Rows = append(t.Rows, row)
	}
	return t
}

// bestTPRCell formats the highest TPR at the summary FPR among the attacks,
// naming the attack.
func bestTPRCell(atts []audit.AttackReport) string {
	b := bestByTPR(atts, summaryFPR)
	if b < 0 {
		return notAvailable
	}
	tp, _ := tprAt(atts[b], summaryFPR)
	s := fmtInterval(tp.TPR) + " (" + atts[b].Attack
	if n := restsOn(tp, atts[b].NonMembers); n != "" {
		s += "; " + strings.Trim(n, "()")
	}
	return s + ")"
}

// comparisonTable lists the BN-versus-no-BN differences.
func comparisonTable(cs []audit.Comparison) table {
	t := table{Header: []string{"metric", "with BN", "without BN", "difference (with − without)", "distinguishable"}}
	for _, c := range cs {
		d := "no"
		if c.Distinguishable {
			d = "yes"
		}
		t.Rows = append(t.Rows, []string{c.Metric, c.With, c.Without, fmtInterval(c.Diff), d})
	}
	return t
}

// balancedAccCol is the column of attackTable that holds the balanced
// accuracy; report.md leaves it out.
const balancedAccCol = 5

// attackTable lists every attack with its AUC, advantage, balanced
// accuracy, TPR at each target FPR measured and, when some attack trained
// models of its own, each one's cost in models trained (refModels: the
// variant's reference models, for reports that predate
// AttackReport.ModelsTrained).
func attackTable(atts []audit.AttackReport, refModels int) table {
	targets := targetFPRs(atts)
	t := table{Header: []string{"attack", "members", "non-members", "AUC", "advantage", "balanced accuracy"}}
	for _, f := range targets {
		t.Header = append(t.Header, "TPR@"+fmtPercent(f)+" FPR")
	}
	costs := false // the cost column, when some attack trained models
	for _, a := range atts {
		costs = costs || modelsTrained(a, refModels) > 0
	}
	if costs {
		t.Header = append(t.Header, "models trained")
	}
	for _, a := range atts {
		row := []string{a.Attack, strconv.Itoa(a.Members), strconv.Itoa(a.NonMembers), fmtInterval(a.AUC), fmtInterval(a.Advantage), fmtBalanced(a)}
		for _, f := range targets {
			if tp, ok := tprAt(a, f); ok {
				row = append(row, fmtTPR(tp, a.NonMembers))
			} else {
				row = append(row, notAvailable)
			}
		}
		if costs {
			row = append(row, strconv.Itoa(modelsTrained(a, refModels)))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// modelsTrained is an attack's cost in models trained for it; a report
// written before the cost was recorded gives LiRA and RMIA the variant's
// reference models.
func modelsTrained(a audit.AttackReport, refModels int) int {
	if a.ModelsTrained > 0 {
		return a.ModelsTrained
	}
	switch a.Attack {
	case audit.AttackLiRAOnline, audit.AttackLiRAOffline, audit.AttackRMIAOnline, audit.AttackRMIAOffline:
		return refModels
	}
	return 0
}

// buildVariant lays out one variant's details.
func buildVariant(vr *audit.VariantReport) variantView {
	vv := variantView{Name: vr.Name}
	add := func(name, text string) {
		if text != "" {
			vv.Facts = append(vv.Facts, term{name, text})
		}
	}
	add("model", vr.Model)
	add("sha256", shortHash(vr.ModelHash))
	add("BatchNorm layers", strconv.Itoa(vr.BatchNorms))
	if vr.Seeds > 0 {
		add("seeds", strconv.Itoa(vr.Seeds))
	}
	// A fit number left at its zero value was not measured.
	fit := func(name string, x audit.Interval) {
		if x != (audit.Interval{}) {
			add(name, fmtFit(x))
		}
	}
	fit("train accuracy", vr.TrainAccuracy)
	fit("test accuracy", vr.TestAccuracy)
	fit("train loss", vr.TrainLoss)
	fit("test loss", vr.TestLoss)

	vv.PerSeed = perSeedTable(vr.PerSeed)
	vv.Attacks = attackTable(vr.Attacks, vr.RefModels)
	vv.CanaryAttacks = attackTable(vr.CanaryAttacks, vr.RefModels)
	vv.Risk, vv.Meaning = riskTable(vr.Attacks), meaningLine(vr)
	if g := vr.Memorization; g != nil {
		vv.Memorization = table{
			Header: []string{"", fmt.Sprintf("inserted (%d)", g.NInserted), fmt.Sprintf("held out (%d)", g.NHeldOut), "gap (inserted − held out)"},
			Rows: [][]string{
				{"accuracy", fmtInterval(g.InsertedAccuracy), fmtInterval(g.HeldOutAccuracy), fmtInterval(g.AccuracyGap)},
				{"mean loss", fmtInterval(g.InsertedLoss), fmtInterval(g.HeldOutLoss), fmtInterval(g.LossGap)},
			},
		}
	}
	if b := vr.DPLowerBound; b != nil {
		vv.DPBound = b.Sentence
	}
	if fz := vr.FeldmanZhang; fz != nil {
		vv.FeldmanZhang = fmt.Sprintf("mean %s, median %s, p90 %s, max %s over %d samples",
			fmtValue(fz.Mean), fmtValue(fz.Median), fmtValue(fz.P90), fmtValue(fz.Max), fz.N)
	}
	vv.GradNorms = table{Header: []string{"epoch", "mode", "outlier median", "outlier p90", "typical median", "typical p90", "ratio (median outlier / median typical)"}}
	for _, p := range vr.GradNorms {
		vv.GradNorms.Rows = append(vv.GradNorms.Rows, []string{
			strconv.Itoa(p.Epoch), modeName(p.Mode),
			fmt.Sprintf("%s (n=%d)", fmtValue(p.Outlier.Median), p.Outlier.N), fmtValue(p.Outlier.P90),
			fmt.Sprintf("%s (n=%d)", fmtValue(p.Typical.Median), p.Typical.N), fmtValue(p.Typical.P90),
			fmtInterval(p.Ratio),
		})
	}
	vv.Slices, vv.SliceAttack = sliceTable(vr.Slices)
	vv.Vulnerable, vv.VulnerableBy = vulnerableTable(vr.Vulnerable), vr.VulnerableBy
	return vv
}

// sliceTable lists the attack on each slice, a row per slice. When all
// slices come from one attack (the strongest, as the audit computes them)
// the attack column is left out and its name returned instead.
func sliceTable(sl []audit.SliceReport) (table, string) {
	var atts []audit.AttackReport
	shared := ""
	for i, s := range sl {
		atts = append(atts, s.Attack)
		if i == 0 {
			shared = s.Attack.Attack
		} else if s.Attack.Attack != shared {
			shared = ""
		}
	}
	t := attackTable(atts, 0) // no cost column: a slice's cost is its attack's
	if t.Empty() {
		return t, ""
	}
	drop := 0 // the attack column, when all rows name the same attack
	if shared != "" {
		drop = 1
	}
	t.Header = append([]string{"slice"}, t.Header[drop:]...)
	for i, s := range sl {
		t.Rows[i] = append([]string{sliceName(s.Slice)}, t.Rows[i][drop:]...)
	}
	return t, shared
}

// vulnerableTable lists the most exposed members, at most maxVulnerable:
// the sample's index (as in scores.csv and signals.npz), label, whether it
// is a canary, the attack's score, the false positive rate of a threshold
// at that score, its Feldman–Zhang memorization and its loss. report.md
// shows the columns up to memorization.
func vulnerableTable(rs []audit.SampleRisk) table {
	t := table{Header: []string{"index", "label", "canary", "score", "FPR at its score", "Feldman–Zhang memorization", "loss"}}
	for _, r := range rs[:min(len(rs), maxVulnerable)] {
		t.Rows = append(t.Rows, []string{
			strconv.Itoa(r.Index),
			strconv.FormatInt(r.Label, 10),
			yesNo(r.Canary),
			fmtScore(r.Score),
			fmtRate(r.FPR),
			orDash(r.Memorization, fmtValue),
			orDash(r.Loss, fmtScore),
		})
	}
	return t
}

// perSeedTable has a row per training seed: fit, canary gap and each
// attack's AUC on members (and on canaries).
func perSeedTable(runs []audit.SeedReport) table {
	if len(runs) == 0 {
		return table{}
	}
	t := table{Header: []string{"seed", "epochs", "train accuracy", "test accuracy", "canary gap"}}
	for _, a := range runs[0].AUC {
		t.Header = append(t.Header, "AUC "+a.Attack)
	}
	for _, a := range runs[0].CanaryAUC {
		t.Header = append(t.Header, "canary AUC "+a.Attack)
	}
	for _, r := range runs {
		epochs := "–"
		if r.Epochs > 0 {
			epochs = strconv.Itoa(r.Epochs)
			if r.StoppedEarly {
				epochs += " (fit reached)"
			}
		}
		gap := "–"
		if r.CanaryGap != nil {
			gap = fmtValue(*r.CanaryGap)
		}
		row := []string{strconv.Itoa(r.Seed), epochs, fmtValue(r.TrainAccuracy), fmtValue(r.TestAccuracy), gap}
		auc := func(list []audit.AttackAUC, name string) string {
			for _, a := range list {
				if a.Attack == name {
					return fmtValue(a.AUC.Estimate)
				}
			}
			return "–"
		}
		for _, a := range runs[0].AUC {
			row = append(row, auc(r.AUC, a.Attack))
		}
		for _, a := range runs[0].CanaryAUC {
			row = append(row, auc(r.CanaryAUC, a.Attack))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// dpBoundTable lists each variant's one-run lower bound on ε with what it
// rests on; it is empty when no variant has one.
func dpBoundTable(vs []audit.VariantReport) table {
	t := table{Header: []string{"variant", "ε lower bound", "δ", "confidence", "canaries", "guesses IN (k₊)", "guesses OUT (k₋)", "correct", "score", "tests (Bonferroni)"}}
	for _, v := range vs {
		b := v.DPLowerBound
		if b == nil {
			continue
		}
		t.Rows = append(t.Rows, []string{v.Name, strconv.FormatFloat(b.Epsilon, 'f', 3, 64), strconv.FormatFloat(b.Delta, 'g', 3, 64),
			fmtPercent(b.Confidence), strconv.Itoa(b.Canaries), strconv.Itoa(b.KPlus), strconv.Itoa(b.KMinus),
			strconv.Itoa(b.Correct), b.Attack, strconv.Itoa(b.Tests)})
	}
	return t
}
