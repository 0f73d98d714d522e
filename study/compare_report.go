package study

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/audit"
)

// buildCompareReport aggregates runs per variant and compares each variant
// without (coupled) BN to the original: a row per variant (means over its
// seeds), the paired comparisons, and the verdict with its notes.
func buildCompareReport(cfg CompareConfig, records map[string][]*runRecord) (*audit.Report, error) {
	r := &audit.Report{Schema: audit.ReportSchema, Tool: "bnaudit", Created: time.Now().UTC().Format(time.RFC3339), Command: cfg.Command,
		Seed: cfg.Seed, Kind: "compare", Definitions: Definitions()}
	rows := map[string]audit.VariantReport{}
	for _, v := range cfg.Variants {
		if recs := records[v]; len(recs) > 0 {
			row, err := variantRow(recs, cfg)
			if err != nil {
				return nil, err
			}
			rows[v] = row
			r.Variants = append(r.Variants, row)
		}
	}
	r.Samples, r.Runs = sampleTables(cfg.Variants, records)
	r.Notes = append(r.Notes, cfg.Notes...)
	r.Notes = append(r.Notes, fallbackNotes(cfg.Variants, records)...)
	orig, ok := rows[VariantOriginal]
	if !ok {
		r.Verdict = "No original variant was trained, so there is no BN-versus-no-BN comparison."
		r.VerdictCode = audit.VerdictNotApplicable
		return r, nil
	}
	if orig.BatchNorms == 0 {
		r.Notes = append(r.Notes, "The original model has no BatchNorm layer; the variants equal it.")
	}
	var f findings
	for _, v := range cfg.Variants {
		other, ok := rows[v]
		if v == VariantOriginal || !ok {
			continue
		}
		cmp := compareVariants(cfg, records[VariantOriginal], records[v], v)
		r.Comparisons = append(r.Comparisons, cmp...)
		f.add(v, verdictComparisons(cmp, cfg.RefModels))
		if note, differs := fitNote(orig, other, v); differs {
			f.misfit = append(f.misfit, v)
			r.Notes = append(r.Notes, note)
		}
	}
	r.VerdictCode, r.Verdict = f.verdict(cfg.Seeds)
	if cfg.RefModels > 0 {
		perSample, _ := LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels) // checked by Compare
		r.Notes = append(r.Notes, liraVarianceNote(perSample, cfg.RefModels))
	}
	recordRefModels(r, cfg.RefModels, true)
	if cfg.Seeds == 1 {
		r.Notes = append(r.Notes, "One seed per variant: intervals resample samples, not training runs; run-to-run variation is not in them (use --seeds K).")
	}
	return r, nil
}

// variantRow is a variant's row of the report: its first run's, with
// every number averaged over the runs when there are several, and each
// run's own numbers in PerSeed.
func variantRow(recs []*runRecord, cfg CompareConfig) (audit.VariantReport, error) {
	bs := cfg.Bootstrap
	row := recs[0].Variant
	// The one-run bound on ε is the first run's: each run is an audit of
	// its own, and taking the best of several would need a correction.
	delta := cfg.DPDelta
	if delta == 0 {
		delta = audit.DefaultDPDelta
	}
	b, err := audit.CanaryEpsilonBound(recs[0].Samples, audit.EpsilonBoundOptions{Delta: delta})
	if err != nil {
		return row, fmt.Errorf("study: %s: one-run bound on ε: %w", row.Name, err)
	}
	row.DPLowerBound = b
	// The row gets its own slices: the first run keeps its numbers.
	row.Attacks = append([]audit.AttackReport{}, row.Attacks...)
	row.CanaryAttacks = append([]audit.AttackReport(nil), row.CanaryAttacks...)
	row.Seeds = len(recs)
	if len(recs) > 1 {
		m := seedMeans{bs: bs}
		for _, rc := range recs {
			m.runs = append(m.runs, rc.Variant)
		}
		m.average(&row)
		row.PerSeed = perSeed(recs)
	}
	// PPV at the priors, like the bound, is the first run's: it needs the
	// per-sample scores.
	if err := audit.AddRiskAtPriors(&row, recs[0].Samples, priorsOrDefault(cfg.Priors), bs); err != nil {
		return row, fmt.Errorf("study: %s: risk at a prior: %w", row.Name, err)
	}
	return row, nil
}

// priorsOrDefault is priors, or audit.DefaultPriors when there are none.
func priorsOrDefault(priors []float64) []float64 {
	if len(priors) == 0 {
		return audit.DefaultPriors()
	}
	return priors
}

// seedMeans averages a variant's numbers over its runs (one per seed),
// with the seeds' interval (audit.SeedInterval).
type seedMeans struct {
	runs []audit.VariantReport
	bs   audit.BootstrapOptions
}

// noValue is a number a run does not have.
var noValue = audit.Interval{Estimate: math.NaN()}

// mean is f's mean over the runs with its interval. A run without the
// number (a record of an older bnaudit that lacked an attack) is left out.
func (s seedMeans) mean(f func(audit.VariantReport) audit.Interval) audit.Interval {
	vals, own := []float64{}, []audit.Interval{}
	for _, x := range s.runs {
		iv := f(x)
		if math.IsNaN(iv.Estimate) {
			continue
		}
		vals = append(vals, iv.Estimate)
		own = append(own, iv)
	}
	if len(vals) == 0 {
		return audit.Interval{Estimate: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	return audit.SeedInterval(vals, own, s.bs)
}

// average replaces the row's numbers by their means over the runs.
func (s seedMeans) average(row *audit.VariantReport) {
	row.TestAccuracy = s.mean(func(x audit.VariantReport) audit.Interval { return x.TestAccuracy })
	row.TrainAccuracy = s.mean(func(x audit.VariantReport) audit.Interval { return x.TrainAccuracy })
	row.TrainLoss = s.mean(func(x audit.VariantReport) audit.Interval { return x.TrainLoss })
	row.TestLoss = s.mean(func(x audit.VariantReport) audit.Interval { return x.TestLoss })
	row.Attacks = s.attacks(row.Attacks, func(x audit.VariantReport) []audit.AttackReport { return x.Attacks })
	row.CanaryAttacks = s.attacks(row.CanaryAttacks, func(x audit.VariantReport) []audit.AttackReport { return x.CanaryAttacks })
	if row.Memorization != nil {
		gap := s.memorization(*row.Memorization)
		row.Memorization = &gap
	}
	if len(row.GradNorms) > 0 {
		row.GradNorms = s.gradNorms(row.GradNorms)
	}
}

// attacks averages every number of each attack row: AUC, advantage,
// balanced accuracy and TPR at each target FPR. (The ROC curve drawn is
// seed 0's; see PerSeed.)
func (s seedMeans) attacks(rows []audit.AttackReport, of func(audit.VariantReport) []audit.AttackReport) []audit.AttackReport {
	out := append([]audit.AttackReport(nil), rows...)
	for i := range out {
		a := &out[i]
		// field is the mean of one number of this attack.
		field := func(f func(audit.AttackReport) audit.Interval) audit.Interval {
			return s.mean(func(x audit.VariantReport) audit.Interval {
				if o := audit.FindAttack(of(x), a.Attack); o != nil {
					return f(*o)
				}
				return noValue
			})
		}
		a.AUC = field(func(o audit.AttackReport) audit.Interval { return o.AUC })
		a.Advantage = field(func(o audit.AttackReport) audit.Interval { return o.Advantage })
		a.BalancedAccInterval = field(audit.AttackReport.BalancedAccuracy)
		a.BalancedAcc = a.BalancedAccInterval.Estimate
		a.TPRAt = append([]audit.TPRAtInterval(nil), a.TPRAt...)
		for ti := range a.TPRAt {
			target := a.TPRAt[ti].TargetFPR
			a.TPRAt[ti].TPR = field(func(o audit.AttackReport) audit.Interval { return tprAt(o, target) })
		}
	}
	return out
}

// tprAt is the attack's TPR at the target FPR, or noValue.
func tprAt(a audit.AttackReport, target float64) audit.Interval {
	for _, t := range a.TPRAt {
		if t.TargetFPR == target {
			return t.TPR
		}
	}
	return noValue
}

// memorization averages the canary gap's numbers.
func (s seedMeans) memorization(g audit.CanaryGap) audit.CanaryGap {
	field := func(f func(audit.CanaryGap) audit.Interval) audit.Interval {
		return s.mean(func(x audit.VariantReport) audit.Interval {
			if x.Memorization == nil {
				return noValue
			}
			return f(*x.Memorization)
		})
	}
	g.AccuracyGap = field(func(g audit.CanaryGap) audit.Interval { return g.AccuracyGap })
	g.InsertedAccuracy = field(func(g audit.CanaryGap) audit.Interval { return g.InsertedAccuracy })
	g.HeldOutAccuracy = field(func(g audit.CanaryGap) audit.Interval { return g.HeldOutAccuracy })
	g.InsertedLoss = field(func(g audit.CanaryGap) audit.Interval { return g.InsertedLoss })
	g.HeldOutLoss = field(func(g audit.CanaryGap) audit.Interval { return g.HeldOutLoss })
	g.LossGap = field(func(g audit.CanaryGap) audit.Interval { return g.LossGap })
	return g
}

// gradNorms averages each checkpoint's ratio over the seeds that reached
// it.
func (s seedMeans) gradNorms(pts []audit.GradNormPoint) []audit.GradNormPoint {
	out := append([]audit.GradNormPoint{}, pts...)
	for i := range out {
		var vals []float64
		var own []audit.Interval
		for _, x := range s.runs {
			for _, p := range x.GradNorms {
				if p.Epoch == out[i].Epoch && p.Mode == out[i].Mode {
					vals, own = append(vals, p.Ratio.Estimate), append(own, p.Ratio)
				}
			}
		}
		out[i].Ratio = audit.SeedInterval(vals, own, s.bs)
	}
	return out
}

// perSeed lists each run's own headline numbers.
func perSeed(recs []*runRecord) []audit.SeedReport {
	var out []audit.SeedReport
	for k, rc := range recs {
		sr := audit.SeedReport{Seed: k, TrainAccuracy: rc.Variant.TrainAccuracy.Estimate, TestAccuracy: rc.Variant.TestAccuracy.Estimate,
			Epochs: rc.Epochs, StoppedEarly: rc.Stopped}
		for _, a := range rc.Variant.Attacks {
			sr.AUC = append(sr.AUC, audit.AttackAUC{Attack: a.Attack, AUC: a.AUC})
		}
		for _, a := range rc.Variant.CanaryAttacks {
			sr.CanaryAUC = append(sr.CanaryAUC, audit.AttackAUC{Attack: a.Attack, AUC: a.AUC})
		}
		if m := rc.Variant.Memorization; m != nil {
			g := m.AccuracyGap.Estimate
			sr.CanaryGap = &g
		}
		out = append(out, sr)
	}
	return out
}

// sampleTables are the report's per-sample table (the original's first
// run, else the first variant's) and every run's own table, so that each
// variant's and each seed's AUCs can be recomputed from the files.
func sampleTables(variants []string, records map[string][]*runRecord) (*audit.SampleTable, []audit.RunSamples) {
	var first *audit.SampleTable
	if recs := records[VariantOriginal]; len(recs) > 0 {
		first = recs[0].Samples
	} else if recs := records[variants[0]]; len(recs) > 0 {
		first = recs[0].Samples
	}
	var runs []audit.RunSamples
	for _, v := range variants {
		for k, rc := range records[v] {
			if rc.Samples != nil {
				runs = append(runs, audit.RunSamples{Variant: v, Seed: k, Table: rc.Samples})
			}
		}
	}
	return first, runs
}

// fitNote warns when the original and a variant do not fit their
// training data alike.
func fitNote(orig, other audit.VariantReport, v string) (string, bool) {
	if d := orig.TrainAccuracy.Estimate - other.TrainAccuracy.Estimate; math.Abs(d) > fitGapLimit {
		return fmt.Sprintf("Fit differs: the original reaches %.1f%% training accuracy and %s %.1f%%; memorization follows fit, so differences against %s may reflect under-fitting rather than batch statistics (docs/METHODS.md). Consider a matched-fit recipe (e.g. a tuned learning rate for %s).",
			100*orig.TrainAccuracy.Estimate, v, 100*other.TrainAccuracy.Estimate, v, v), true
	}
	return "", false
}

// findings are the comparisons' distinguishable differences by sign, and
// the variants that do not fit like the original.
type findings struct {
	amplify, reduce, misfit []string
}

// add takes the variant's comparisons.
func (f *findings) add(v string, cmp []audit.Comparison) {
	for _, c := range cmp {
		if !c.Distinguishable {
			continue
		}
		s := fmt.Sprintf("%s (vs %s: %+.3g [%.3g, %.3g])", c.Metric, v, c.Diff.Estimate, c.Diff.Lo, c.Diff.Hi)
		if c.Diff.Estimate > 0 {
			f.amplify = append(f.amplify, s)
		} else {
			f.reduce = append(f.reduce, s)
		}
	}
}

// verdict is the comparison's conclusion, as a code and in words.
func (f findings) verdict(seeds int) (code, text string) {
	amplify, reduce := append([]string(nil), f.amplify...), append([]string(nil), f.reduce...)
	sort.Strings(amplify)
	sort.Strings(reduce)
	switch {
	case len(amplify) > 0 && len(reduce) == 0:
		code = audit.VerdictAmplifies
		text = "BatchNorm amplifies memorization or leakage on this model and data: with BN, " + strings.Join(amplify, "; ") + " (differences with BN minus without, 95% intervals excluding 0)."
	case len(reduce) > 0 && len(amplify) == 0:
		code = audit.VerdictReduces
		text = "BatchNorm does not amplify memorization here; the variants without it measure higher: " + strings.Join(reduce, "; ") + "."
	case len(reduce) > 0:
		code = audit.VerdictMixed
		text = "Mixed: with BN higher on " + strings.Join(amplify, "; ") + "; lower on " + strings.Join(reduce, "; ") + "."
	default:
		return audit.VerdictNotDistinguishable, "Not distinguishable: no difference between the original (with BN) and its variants has a 95% interval that excludes zero at this scale."
	}
	if len(f.misfit) > 0 {
		text += fmt.Sprintf(" Caution: the original and %s do not fit their training data alike (training accuracy differs by more than %.0f points), so part of these differences may be fit rather than batch statistics; see the notes.", strings.Join(f.misfit, ", "), 100*fitGapLimit)
	}
	if seeds == 1 {
		text = "On one training seed per variant (intervals over samples only, not over training runs): " + text
	}
	return code, text
}

// fallbackNotes says which runs trained on the standard graph because ONNX
// Runtime refused bnaudit's faster session rewrite (each note once).
func fallbackNotes(variants []string, records map[string][]*runRecord) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range variants {
		for _, rec := range records[v] {
			for _, f := range rec.Fallbacks {
				if !seen[f] {
					seen[f] = true
					out = append(out, "Run "+rec.Key+" trained on the standard graph: "+f)
				}
			}
		}
	}
	return out
}
