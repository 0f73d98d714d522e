package audit

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// FewFalsePositives is the number of non-members below which a TPR at a
// target FPR is flagged as resting on very few samples (TPRAtFPR.Sparse).
const FewFalsePositives = 10

// DefaultTargetFPRs returns the false-positive rates at which TPR is
// reported when no others are requested: 0.1% and 1%.
func DefaultTargetFPRs() []float64 { return []float64{0.001, 0.01} }

// ROC is the receiver operating characteristic of an attack: one point per
// distinct score, from the strictest threshold to the loosest, plus a
// first point (0, 0) that flags no sample. Members are the positive class
// and a higher score means more member-like.
//
// Tied scores form a single point (one step, possibly diagonal), exactly as
// scikit-learn's roc_curve builds its curve with drop_intermediate=False.
type ROC struct {
	// Thresholds[k] is the threshold of point k: it flags as members the
	// samples whose score is ≥ Thresholds[k]. Thresholds[0] is +Inf and
	// stands for "flag no sample" (scikit-learn ≥ 1.3 writes +Inf there too;
	// 1.2 wrote the largest score plus one). The rest are the distinct
	// scores in decreasing order.
	Thresholds []float64
	// FP and TP count the non-members and members flagged at each point.
	FP, TP []int
	// FPR and TPR are FP/NNonMembers and TP/NMembers.
	FPR, TPR []float64
	// NMembers and NNonMembers count the positives and negatives.
	NMembers, NNonMembers int
}

// NewROC computes the ROC curve of scores against membership (member[i] is
// true when sample i is a member). It needs at least one member and one
// non-member, and refuses NaN scores; ±Inf scores are allowed.
func NewROC(scores []float64, member []bool) (*ROC, error) {
	if err := checkScores(scores, member); err != nil {
		return nil, err
	}
	r := &ROC{}
	r.fill(sortDescending(scores), scores, member, nil)
	return r, nil
}

// checkScores validates a score vector against a membership vector.
func checkScores(scores []float64, member []bool) error {
	if len(scores) != len(member) {
		return fmt.Errorf("audit: %d scores but %d membership labels: %w", len(scores), len(member), ErrInvalidInput)
	}
	pos := 0
	for i, s := range scores {
		if math.IsNaN(s) {
			return fmt.Errorf("audit: score %d is NaN: %w", i, ErrInvalidInput)
		}
		if member[i] {
			pos++
		}
	}
	if pos == 0 || pos == len(scores) {
		return fmt.Errorf("audit: %d members and %d non-members; an ROC needs both: %w", pos, len(scores)-pos, ErrInvalidInput)
	}
	return nil
}

// sortDescending returns the indices of scores ordered by decreasing score.
func sortDescending(scores []float64) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	return order
}

// fill computes the curve from the samples taken in order (decreasing
// score). With weights, sample i counts weight[i] times (0 leaves it out,
// and a score held only by left-out samples makes no point): the curve of
// a resample, which the bootstrap computes in one pass without the curve
// (sortedAttack.replicate, tested against this). fill reuses r's slices.
func (r *ROC) fill(order []int, scores []float64, member []bool, weight []int32) {
	r.Thresholds = append(r.Thresholds[:0], math.Inf(1))
	r.FP = append(r.FP[:0], 0)
	r.TP = append(r.TP[:0], 0)
	fp, tp := 0, 0
	have := false
	cur := 0.0
	for _, i := range order {
		c := 1
		if weight != nil {
			c = int(weight[i])
			if c == 0 {
				continue
			}
		}
		s := scores[i]
		if have && s != cur {
			r.Thresholds = append(r.Thresholds, cur)
			r.FP = append(r.FP, fp)
			r.TP = append(r.TP, tp)
		}
		cur, have = s, true
		if member[i] {
			tp += c
		} else {
			fp += c
		}
	}
	if have {
		r.Thresholds = append(r.Thresholds, cur)
		r.FP = append(r.FP, fp)
		r.TP = append(r.TP, tp)
	}
	r.NMembers, r.NNonMembers = tp, fp
	r.FPR = r.FPR[:0]
	r.TPR = r.TPR[:0]
	for k := range r.FP {
		r.FPR = append(r.FPR, float64(r.FP[k])/float64(fp))
		r.TPR = append(r.TPR, float64(r.TP[k])/float64(tp))
	}
}

// AUC returns the area under the curve by the trapezoid rule, which with
// ties as diagonal steps equals scikit-learn's roc_auc_score and the
// Mann–Whitney probability P(s_member > s_non-member) + ½ P(tie). The sum
// runs on integer counts and is divided once, so it is exact up to one
// rounding.
func (r *ROC) AUC() float64 {
	var twice int64 // 2 · area · NMembers · NNonMembers
	for k := 1; k < len(r.FP); k++ {
		twice += int64(r.FP[k]-r.FP[k-1]) * int64(r.TP[k]+r.TP[k-1])
	}
	return float64(twice) / (2 * float64(r.NMembers) * float64(r.NNonMembers))
}

// Advantage returns the attacker advantage max_k (TPR_k − FPR_k), the
// point of the curve where it is reached first (strictest threshold), and
// that point's threshold. The advantage is never negative: the first point
// (0, 0) gives 0.
func (r *ROC) Advantage() (adv float64, point int, threshold float64) {
	for k := range r.FPR {
		if d := r.TPR[k] - r.FPR[k]; d > adv {
			adv, point = d, k
		}
	}
	return adv, point, r.Thresholds[point]
}

// BalancedAccuracy returns the balanced accuracy (TPR + 1 − FPR)/2 at the
// threshold of largest advantage, which is (1 + Advantage)/2.
func (r *ROC) BalancedAccuracy() float64 {
	adv, _, _ := r.Advantage()
	return (1 + adv) / 2
}

// TPRAtFPR is the true-positive rate of an attack at a target false-positive
// rate, with the number of non-members it rests on.
type TPRAtFPR struct {
	// TargetFPR is the requested false-positive rate.
	TargetFPR float64
	// TPR is the largest TPR among ROC points with FPR ≤ TargetFPR (no
	// interpolation); FPR and Threshold are those of that point.
	TPR, FPR, Threshold float64
	// AllowedFP is the largest number of false positives k with
	// k/NNonMembers ≤ TargetFPR, i.e. floor(TargetFPR·NNonMembers): the
	// non-members the number rests on. 0 means the target is below
	// 1/NNonMembers and TPR is measured with no false positive at all.
	AllowedFP int
	// NNonMembers is the number of non-members.
	NNonMembers int
}

// Resolved reports whether the target FPR allows at least one false
// positive, i.e. whether the data can resolve it at all.
func (t TPRAtFPR) Resolved() bool { return t.AllowedFP >= 1 }

// Sparse reports whether the number rests on fewer than FewFalsePositives
// non-members, so that one or two samples decide it.
func (t TPRAtFPR) Sparse() bool { return t.AllowedFP < FewFalsePositives }

// Note returns a sentence for a report when the number rests on few
// non-members, and "" otherwise.
func (t TPRAtFPR) Note() string {
	switch {
	case t.AllowedFP == 0:
		return fmt.Sprintf("TPR at %g%% FPR: the target is below 1/%d non-members; no false positive is allowed, so this is the TPR at 0%% FPR",
			100*t.TargetFPR, t.NNonMembers)
	case t.AllowedFP == 1:
		return fmt.Sprintf("TPR at %g%% FPR rests on 1 non-member (of %d)", 100*t.TargetFPR, t.NNonMembers)
	case t.Sparse():
		return fmt.Sprintf("TPR at %g%% FPR rests on %d non-members (of %d)", 100*t.TargetFPR, t.AllowedFP, t.NNonMembers)
	}
	return ""
}

// TPRAtFPR returns the largest TPR among the points of the curve with
// FPR ≤ target, without interpolation. The comparison is the float64 one,
// FP/NNonMembers ≤ target, as in "tpr[fpr <= target].max()" on
// scikit-learn's curve. target must lie in [0, 1].
func (r *ROC) TPRAtFPR(target float64) (TPRAtFPR, error) {
	if !(target >= 0 && target <= 1) {
		return TPRAtFPR{}, fmt.Errorf("audit: target FPR %v is not in [0, 1]: %w", target, ErrInvalidInput)
	}
	return r.tprAt(target), nil
}

// tprAt is TPRAtFPR for a target already checked.
func (r *ROC) tprAt(target float64) TPRAtFPR {
	best := 0 // point 0 has FPR 0
	for k := range r.FPR {
		if r.FPR[k] > target {
			break // FPR never decreases along the curve
		}
		best = k // TPR never decreases either
	}
	return TPRAtFPR{
		TargetFPR:   target,
		TPR:         r.TPR[best],
		FPR:         r.FPR[best],
		Threshold:   r.Thresholds[best],
		AllowedFP:   allowedFP(target, r.NNonMembers),
		NNonMembers: r.NNonMembers,
	}
}

// allowedFP returns the largest k in [0, n] with float64(k)/float64(n) ≤
// target, the same float64 comparison that selects ROC points, so that
// floor(target·n) cannot be off by one through rounding (0.29·100 is
// 28.999999999999996 in float64).
func allowedFP(target float64, n int) int {
	k := int(math.Floor(target * float64(n)))
	k = min(max(k, 0), n)
	for k < n && float64(k+1)/float64(n) <= target {
		k++
	}
	for k > 0 && float64(k)/float64(n) > target {
		k--
	}
	return k
}

// Metrics summarizes one attack: the headline numbers of docs/METHODS.md,
// "Metrics".
type Metrics struct {
	NMembers, NNonMembers int
	// AUC is the area under the ROC curve (see ROC.AUC).
	AUC float64
	// Advantage is max(TPR − FPR) over thresholds.
	Advantage float64
	// BalancedAccuracy is (TPR + 1 − FPR)/2 at the threshold of largest
	// advantage, BestThreshold (flag as member when score ≥ BestThreshold).
	BalancedAccuracy float64
	BestThreshold    float64
	// TPRAt holds one entry per requested target FPR, in request order.
	TPRAt []TPRAtFPR
}

// Evaluate computes the metrics of an attack from its scores (higher =
// more member-like) and the true membership (true = member, the positive
// class). The TPR is reported at targets, or at DefaultTargetFPRs when no
// target is given. This is the package's main entry for one attack;
// BootstrapMetrics adds intervals.
func Evaluate(scores []float64, member []bool, targets ...float64) (Metrics, error) {
	if len(targets) == 0 {
		targets = DefaultTargetFPRs()
	}
	if err := checkTargets(targets); err != nil {
		return Metrics{}, err
	}
	r, err := NewROC(scores, member)
	if err != nil {
		return Metrics{}, err
	}
	return r.metrics(targets), nil
}

func checkTargets(targets []float64) error {
	for _, t := range targets {
		if !(t >= 0 && t <= 1) {
			return fmt.Errorf("audit: target FPR %v is not in [0, 1]: %w", t, ErrInvalidInput)
		}
	}
	return nil
}

// metrics computes Metrics from a filled curve; targets are checked.
func (r *ROC) metrics(targets []float64) Metrics {
	adv, _, thr := r.Advantage()
	m := Metrics{
		NMembers:         r.NMembers,
		NNonMembers:      r.NNonMembers,
		AUC:              r.AUC(),
		Advantage:        adv,
		BalancedAccuracy: (1 + adv) / 2,
		BestThreshold:    thr,
		TPRAt:            make([]TPRAtFPR, len(targets)),
	}
	for j, t := range targets {
		m.TPRAt[j] = r.tprAt(t)
	}
	return m
}
