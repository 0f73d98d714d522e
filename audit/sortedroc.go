package audit

// sortedAttack holds one attack's samples in decreasing score order, once
// sorted, so that the metrics of any resample given as per-sample counts
// take one pass without sorting.
type sortedAttack struct {
	// order lists the samples by decreasing score (ties in index order,
	// as sortDescending gives them), each by its place in stratum order
	// (stratumIndex), where a resample's counts are.
	order []int32
	// flag[k] describes sample order[k]: flagMember when it is a member,
	// flagLast when the next sample in order has another score (or there
	// is none), so that the curve's point falls after it.
	flag []uint8
}

const (
	flagMember uint8 = 1 << iota
	flagLast
)

func newSortedAttack(order []int, local []int32, scores []float64, member []bool) sortedAttack {
	s := sortedAttack{order: make([]int32, len(order)), flag: make([]uint8, len(order))}
	for k, i := range order {
		s.order[k] = local[i]
		if member[i] {
			s.flag[k] |= flagMember
		}
		if k+1 == len(order) || scores[order[k+1]] != scores[i] {
			s.flag[k] |= flagLast
		}
	}
	return s
}

// replicate writes the AUC, the advantage and the TPR at each target FPR
// (allowed[j] = allowedFP(target j, nNeg)) of the resample c, with nPos members and nNeg non-members in all, into out
// (2 + len(targets) values). The values are those ROC.fill and its
// methods give with the same counts, to the bit:
//   - the curve's points are the ends of tie groups; a group the resample
//     left out repeats the point before it, which adds nothing to the area
//     and changes neither maximum below;
//   - a point's FPR, float64(fp)/nNeg, is ≤ a target exactly when fp ≤
//     allowedFP(target, nNeg) (the same comparison), so the TPR at a target
//     is that of the last point with fp within it;
//   - the advantage, max float64(tp)/nPos − float64(fp)/nNeg, is reached
//     among the points of largest key tp·nNeg − fp·nPos (exact integers):
//     keys that differ differ by at least 1 in nPos·nNeg, while each
//     float64 difference is within 3·2⁻⁵³ of its exact value, so while
//     nPos·nNeg < 1.5·10¹⁵ a smaller key has a smaller float64 difference.
//     Points of equal key may round apart, so the float64 difference is
//     computed at each of them. Above that size every point is compared.
//
// Points where the TPR did not grow need no test (the FPR only grew), but
// they are cheaper to test than to skip by an unpredictable branch.
func (s *sortedAttack) replicate(c counts, nPos, nNeg int, out []float64, allowed []int64) {
	if c.wide != nil {
		rocPass(s, c.wide, nPos, nNeg, out, allowed)
	} else {
		rocPass(s, c.narrow, nPos, nNeg, out, allowed)
	}
	for j := range allowed {
		out[2+j] /= float64(nPos)
	}
}

// maxExactKeys bounds nPos·nNeg for the advantage by integer keys (see
// replicate).
var maxExactKeys = 1e15

// rocPass does replicate's pass; it leaves in out[2+j] the member count
// (as a float64) of the last point within allowed[j] false positives.
func rocPass[T uint8 | int32](s *sortedAttack, w []T, nPos, nNeg int, out []float64, allowed []int64) {
	fP, fN := float64(nPos), float64(nNeg)
	p, q := int64(nPos), int64(nNeg)
	byKey := fP*fN < maxExactKeys
	var fp, tp, pfp, ptp, twice, bestKey int64
	adv := 0.0
	tpAt := out[2 : 2+len(allowed)]
	clear(tpAt)
	flag := s.flag[:len(s.order)]
	for k, i := range s.order {
		c := int64(w[i])
		m := int64(flag[k] & flagMember)
		tp += c * m
		fp += c - c*m
		if flag[k]&flagLast == 0 {
			continue
		}
		twice += (fp - pfp) * (tp + ptp)
		switch key := tp*q - fp*p; {
		case !byKey:
			adv = max(adv, float64(tp)/fP-float64(fp)/fN)
		case key > bestKey:
			bestKey, adv = key, float64(tp)/fP-float64(fp)/fN
		case key == bestKey:
			adv = max(adv, float64(tp)/fP-float64(fp)/fN)
		}
		for j, a := range allowed {
			if fp <= a {
				tpAt[j] = float64(tp)
			}
		}
		pfp, ptp = fp, tp
	}
	out[0] = float64(twice) / (2 * fP * fN)
	out[1] = adv
}
