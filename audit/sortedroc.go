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

// replicate writes the AUC, the advantage and the TPR at each target of
// the resample c, with nPos members and nNeg non-members in all, into out
// (2 + len(targets) values). The values are those ROC.fill gives with the
// same counts, to the bit: the curve's points are the ends of tie groups;
// a group the resample left out repeats the point before it, which adds
// nothing to the area and changes neither maximum. Points where the TPR
// did not grow cannot raise the advantage (the FPR only grows) nor change
// a TPR at a target, so the rates are computed only where it grew.
func (s *sortedAttack) replicate(c counts, nPos, nNeg int, targets []float64, out []float64) {
	if c.wide != nil {
		rocPass(s, c.wide, nPos, nNeg, targets, out)
	} else {
		rocPass(s, c.narrow, nPos, nNeg, targets, out)
	}
}

func rocPass[T uint8 | int32](s *sortedAttack, w []T, nPos, nNeg int, targets []float64, out []float64) {
	fP, fN := float64(nPos), float64(nNeg)
	var fp, tp, pfp, ptp, twice int64
	adv := 0.0
	tpr := out[2 : 2+len(targets)]
	clear(tpr)
	flag := s.flag[:len(s.order)]
	for k, i := range s.order {
		c := int64(w[i])
		f := flag[k]
		if f&flagMember != 0 {
			tp += c
		} else {
			fp += c
		}
		if f&flagLast == 0 {
			continue
		}
		twice += (fp - pfp) * (tp + ptp)
		if tp != ptp {
			fpr, r := float64(fp)/fN, float64(tp)/fP
			if d := r - fpr; d > adv {
				adv = d
			}
			for j, t := range targets {
				if fpr <= t {
					tpr[j] = r
				}
			}
		}
		pfp, ptp = fp, tp
	}
	out[0] = float64(twice) / (2 * fP * fN)
	out[1] = adv
}
