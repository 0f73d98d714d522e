package report

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
)

// notAvailable stands for a number that was not measured (NaN).
const notAvailable = "n/a"

// summaryFPR is the target FPR of the summary table's TPR columns.
const summaryFPR = 0.01

// fmtNum formats x with dec decimals: NaN is "n/a", ±Inf "inf"/"-inf", and
// a value that rounds to zero never reads "-0.000".
func fmtNum(x float64, dec int) string {
	switch {
	case math.IsNaN(x):
		return notAvailable
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(x, 'f', dec, 64)
	if strings.HasPrefix(s, "-") && strings.Trim(s, "-0.") == "" {
		s = s[1:]
	}
	return s
}

// decimals returns the number of decimals that shows the largest finite
// value in vals with two to four significant digits: 4 below 0.01 (a TPR
// at a low FPR, a small difference), 3 below 10, 2 below 100, 1 below
// 1000, 0 above.
func decimals(vals ...float64) int {
	m := 0.0
	for _, v := range vals {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m = max(m, math.Abs(v))
		}
	}
	switch {
	case m < 0.01:
		return 4
	case m < 10:
		return 3
	case m < 100:
		return 2
	case m < 1000:
		return 1
	}
	return 0
}

// fmtValue formats one number with decimals chosen from its magnitude.
func fmtValue(x float64) string { return fmtNum(x, decimals(x)) }

// fmtInterval formats an interval as "0.544 [0.536, 0.551]", all three
// numbers with the same decimals; an interval with nothing measured is
// "n/a".
func fmtInterval(iv audit.Interval) string {
	if math.IsNaN(iv.Estimate) && math.IsNaN(iv.Lo) && math.IsNaN(iv.Hi) {
		return notAvailable
	}
	d := decimals(iv.Estimate, iv.Lo, iv.Hi)
	return fmtNum(iv.Estimate, d) + " [" + fmtNum(iv.Lo, d) + ", " + fmtNum(iv.Hi, d) + "]"
}

// fmtFit formats a fit number (accuracy or loss): with one seed its
// interval is the estimate itself (Lo = Hi = Estimate) and only the
// estimate is shown.
func fmtFit(iv audit.Interval) string {
	if iv.Lo == iv.Estimate && iv.Hi == iv.Estimate {
		return fmtValue(iv.Estimate)
	}
	return fmtInterval(iv)
}

// fmtBalanced formats an attack's balanced accuracy with its interval, or
// the estimate alone where none was recorded (AttackReport.BalancedAccuracy).
func fmtBalanced(a audit.AttackReport) string {
	if a.HasBalancedAccInterval() {
		return fmtInterval(a.BalancedAccInterval)
	}
	return fmtValue(a.BalancedAcc)
}

// fmtPercent formats a target FPR as a percentage: 0.001 → "0.1%".
func fmtPercent(fpr float64) string {
	return strconv.FormatFloat(100*fpr, 'g', 6, 64) + "%"
}

// fmtRate formats a measured rate (the FPR of a member's threshold) as a
// percentage with three significant digits and no exponent: 0.01 → "1%",
// 0.0006 → "0.06%", 1/3 → "33.3%", 0 → "0%"; NaN is "n/a".
func fmtRate(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmtNum(x, 0)
	}
	pct := 100 * x
	if pct == 0 {
		return "0%"
	}
	dec := max(0, 2-int(math.Floor(math.Log10(math.Abs(pct)))))
	s := fmtNum(pct, dec)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + "%"
}

// fmtScore formats an attack's score: like fmtValue, but a nonzero score
// below 0.01 in magnitude (the LOSS score −ℓ of a memorized sample) keeps
// three significant digits, "-1.2e-07", rather than reading "0.0000".
func fmtScore(x float64) string {
	if x != 0 && math.Abs(x) < 0.01 {
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	return fmtValue(x)
}

// dash stands for a per-sample number that is not defined (NaN), such as
// the Feldman–Zhang score of a sample without reference models.
const dash = "–"

// orDash formats x with f, or writes a dash when x is NaN.
func orDash(x float64, f func(float64) string) string {
	if math.IsNaN(x) {
		return dash
	}
	return f(x)
}

// yesNo writes a flag as "yes" or "no".
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// sliceName is a slice of the samples in words: the slices "correct" and
// "incorrect" are the samples the audited model classifies correctly and
// wrongly; other names ("class=3", "canaries", "typical") read as they are.
func sliceName(s string) string {
	switch s {
	case "correct":
		return "correctly classified"
	case "incorrect":
		return "misclassified"
	}
	return s
}

// restsOn says, for a TPR at a target FPR that rests on few non-members,
// how many; "" when there are enough.
func restsOn(t audit.TPRAtInterval, nonMembers int) string {
	switch {
	case t.AllowedFP >= audit.FewFalsePositives:
		return ""
	case t.AllowedFP <= 0:
		return "(no false positive allowed among " + strconv.Itoa(nonMembers) + " non-members)"
	case t.AllowedFP == 1:
		return "(rests on 1 non-member)"
	}
	return "(rests on " + strconv.Itoa(t.AllowedFP) + " non-members)"
}

// fmtTPR formats a TPR at a target FPR with its interval and, when few
// non-members decide it, how many.
func fmtTPR(t audit.TPRAtInterval, nonMembers int) string {
	s := fmtInterval(t.TPR)
	if n := restsOn(t, nonMembers); n != "" {
		s += " " + n
	}
	return s
}

// sameFPR reports whether two target FPRs are the same request (they are
// written as decimal constants, so allow for rounding).
func sameFPR(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// tprAt returns the attack's TPR at the target FPR, if it was measured.
func tprAt(a audit.AttackReport, target float64) (audit.TPRAtInterval, bool) {
	for _, t := range a.TPRAt {
		if sameFPR(t.TargetFPR, target) {
			return t, true
		}
	}
	return audit.TPRAtInterval{}, false
}

// targetFPRs returns the target FPRs measured by any of the attacks, in
// increasing order.
func targetFPRs(atts []audit.AttackReport) []float64 {
	var out []float64
	for _, a := range atts {
		for _, t := range a.TPRAt {
			if !slices.ContainsFunc(out, func(x float64) bool { return sameFPR(x, t.TargetFPR) }) {
				out = append(out, t.TargetFPR)
			}
		}
	}
	slices.Sort(out)
	return out
}

// bestByAUC returns the index of the attack with the highest AUC estimate
// (the first of equals), or -1 when no attack has one.
func bestByAUC(atts []audit.AttackReport) int {
	best := -1
	for i, a := range atts {
		if math.IsNaN(a.AUC.Estimate) {
			continue
		}
		if best < 0 || a.AUC.Estimate > atts[best].AUC.Estimate {
			best = i
		}
	}
	return best
}

// bestByTPR returns the index of the attack with the highest TPR estimate
// at the target FPR (the first of equals), or -1 when none measured it.
func bestByTPR(atts []audit.AttackReport, target float64) int {
	best, bestTPR := -1, 0.0
	for i, a := range atts {
		t, ok := tprAt(a, target)
		if !ok || math.IsNaN(t.TPR.Estimate) {
			continue
		}
		if best < 0 || t.TPR.Estimate > bestTPR {
			best, bestTPR = i, t.TPR.Estimate
		}
	}
	return best
}

// lastGradNorm returns the gradient-norm point of the last checkpoint in
// the given mode, if there is one.
func lastGradNorm(pts []audit.GradNormPoint, mode string) (audit.GradNormPoint, bool) {
	found := false
	var last audit.GradNormPoint
	for _, p := range pts {
		if p.Mode == mode && (!found || p.Epoch >= last.Epoch) {
			last, found = p, true
		}
	}
	return last, found
}

// gradModes returns the gradient-norm modes present, "eval" and "inbatch"
// first.
func gradModes(pts []audit.GradNormPoint) []string {
	var out []string
	for _, p := range pts {
		if !slices.Contains(out, p.Mode) {
			out = append(out, p.Mode)
		}
	}
	rank := func(m string) int {
		switch m {
		case "eval":
			return 0
		case "inbatch":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}

// modeName is a gradient-norm mode in words.
func modeName(mode string) string {
	switch mode {
	case "eval":
		return "eval mode"
	case "inbatch":
		return "in-batch"
	}
	return mode
}

// verdictWords returns the verdict in words, falling back on the code.
func verdictWords(r *audit.Report) string {
	if v := strings.TrimSpace(r.Verdict); v != "" {
		return v
	}
	switch r.VerdictCode {
	case audit.VerdictAmplifies:
		return "BatchNorm amplifies memorization and membership-inference risk"
	case audit.VerdictReduces:
		return "BatchNorm reduces memorization and membership-inference risk"
	case audit.VerdictNotDistinguishable:
		return "The variants are not distinguishable"
	case audit.VerdictNotApplicable:
		return "No BN comparison applies"
	case "":
		return "No verdict"
	}
	return r.VerdictCode
}

// oneLine collapses line breaks and tabs in a string from the data, so that
// it cannot break a table row or a list item.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// shortHash shortens a hex digest for display.
func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
