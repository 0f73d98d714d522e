package audit

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// One-run lower bound on ε (docs/METHODS.md, "One-run privacy audit"):
// Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training
// Run" (NeurIPS 2023, arXiv 2305.08846). m canaries are each included in
// training with probability ½; the auditor guesses IN for the k₊ highest
// scores, OUT for the k₋ lowest and abstains on the rest. If training is
// (ε, δ)-DP, the number W of correct guesses among the r = k₊ + k₋ made
// satisfies (the paper's Theorem 3, in the form its Appendix D evaluates)
//
//	P[W ≥ v] ≤ P[Bin(r, q) ≥ v] + 2·m·δ·max_{1≤i≤v} P[v−i ≤ Bin(r, q) < v]/i,
//	q = e^ε/(1 + e^ε),
//
// and the lower bound at confidence 1 − β is the largest ε whose right-hand
// side is still at most β: an algorithm with a smaller ε would have
// produced v or more correct guesses with probability below β.

// Defaults of the one-run bound.
const (
	DefaultDPDelta      = 1e-5
	DefaultDPConfidence = 0.95
)

// DefaultGuessFractions are the numbers of IN and OUT guesses the sweep
// tries, as fractions of the canaries: every pair (k₊, k₋) of them (k₊ +
// k₋ ≤ m, at least one guess).
var DefaultGuessFractions = []float64{0, 0.05, 0.1, 0.25, 0.5}

// EpsilonBoundOptions configures OneRunEpsilon.
type EpsilonBoundOptions struct {
	// Delta of the (ε, δ)-DP hypothesis; 0 is pure ε-DP (callers that
	// want the default pass DefaultDPDelta).
	Delta float64
	// Confidence of the bound, in (0, 1) (0: DefaultDPConfidence).
	Confidence float64
	// Fractions of the canaries tried as k₊ and k₋ (nil:
	// DefaultGuessFractions), each in [0, 1].
	Fractions []float64
}

func (o EpsilonBoundOptions) withDefaults() (EpsilonBoundOptions, error) {
	if o.Confidence == 0 {
		o.Confidence = DefaultDPConfidence
	}
	if o.Fractions == nil {
		o.Fractions = DefaultGuessFractions
	}
	if !(o.Delta >= 0 && o.Delta < 1) {
		return o, fmt.Errorf("audit: δ must be in [0, 1), not %v: %w", o.Delta, ErrInvalidInput)
	}
	if !(o.Confidence > 0 && o.Confidence < 1) {
		return o, fmt.Errorf("audit: the confidence must be in (0, 1), not %v: %w", o.Confidence, ErrInvalidInput)
	}
	for _, f := range o.Fractions {
		if !(f >= 0 && f <= 1) {
			return o, fmt.Errorf("audit: guess fraction %v is outside [0, 1]: %w", f, ErrInvalidInput)
		}
	}
	return o, nil
}

// EpsilonBound is a one-run lower bound on ε with what it rests on.
type EpsilonBound struct {
	// Epsilon is ε̂: training is not (ε, δ)-DP for any ε below it, at the
	// stated confidence. 0 when the guesses show nothing.
	Epsilon    float64 `json:"epsilon"`
	Delta      float64 `json:"delta"`
	Confidence float64 `json:"confidence"`
	// Attack is the score the guesses were made from, the best of
	// Attacks, every score the sweep tried.
	Attack  string   `json:"attack"`
	Attacks []string `json:"attacks"`
	// KPlus and KMinus are the IN and OUT guesses of the best pair, Correct
	// how many of them were right; Canaries is m, all of them included or
	// not at random.
	KPlus    int `json:"k_plus"`
	KMinus   int `json:"k_minus"`
	Correct  int `json:"correct"`
	Canaries int `json:"canaries"`
	// Tests is how many (score, k₊, k₋) choices the sweep tried: each was
	// tested at level (1 − Confidence)/Tests (Bonferroni), so that the
	// best of them holds at the stated confidence.
	Tests int `json:"tests"`
	// Sentence says it in words.
	Sentence string `json:"sentence"`
}

// OneRunPValue is the paper's bound on P[W ≥ v] for an (ε, δ)-DP
// algorithm: r guesses, v of them correct, m canaries each included with
// probability ½. It is at most 1.
func OneRunPValue(m, r, v int, eps, delta float64) (float64, error) {
	if !(0 <= v && v <= r && r <= m) {
		return math.NaN(), fmt.Errorf("audit: need 0 ≤ correct (%d) ≤ guesses (%d) ≤ canaries (%d): %w", v, r, m, ErrInvalidInput)
	}
	if !(eps >= 0) || !(delta >= 0 && delta <= 1) {
		return math.NaN(), fmt.Errorf("audit: need ε ≥ 0 and δ in [0, 1], not %v and %v: %w", eps, delta, ErrInvalidInput)
	}
	pmf := binomialPMF(r, eps)
	tail := 0.0 // P[Bin(r, q) ≥ v]
	for k := r; k >= v; k-- {
		tail += pmf[k]
	}
	// α = max over i of P[v−i ≤ Bin < v]/i: the δ term's worst spread.
	alpha, below := 0.0, 0.0
	for i := 1; i <= v; i++ {
		below += pmf[v-i]
		alpha = math.Max(alpha, below/float64(i))
	}
	return math.Min(1, tail+2*float64(m)*delta*alpha), nil
}

// binomialPMF is P[Bin(r, q) = k] for k = 0..r, q = e^ε/(1 + e^ε), from
// logarithms so that no term under- or overflows on the way.
func binomialPMF(r int, eps float64) []float64 {
	logQ := -math.Log1p(math.Exp(-eps))          // log q
	logNotQ := -eps - math.Log1p(math.Exp(-eps)) // log(1 − q)
	lr, _ := math.Lgamma(float64(r) + 1)
	out := make([]float64, r+1)
	for k := 0; k <= r; k++ {
		lk, _ := math.Lgamma(float64(k) + 1)
		lrk, _ := math.Lgamma(float64(r-k) + 1)
		out[k] = math.Exp(lr - lk - lrk + float64(k)*logQ + float64(r-k)*logNotQ)
	}
	return out
}

// OneRunEpsilonAt is ε̂ for one test: the largest ε whose p-value
// (OneRunPValue) is at most beta, found by bisection to 1e-10 (0 when
// even ε = 0 cannot be rejected).
func OneRunEpsilonAt(m, r, v int, delta, beta float64) (float64, error) {
	p0, err := OneRunPValue(m, r, v, 0, delta)
	if err != nil {
		return math.NaN(), err
	}
	if p0 > beta {
		return 0, nil
	}
	pval := func(eps float64) float64 { p, _ := OneRunPValue(m, r, v, eps, delta); return p }
	lo, hi := 0.0, 1.0
	for pval(hi) <= beta {
		lo, hi = hi, 2*hi
		if hi > 1e4 { // every guess right and β above the δ term: unbounded
			return math.Inf(1), nil
		}
	}
	for hi-lo > 1e-10 {
		mid := (lo + hi) / 2
		if pval(mid) <= beta {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// guessCounts makes the guesses of one (k₊, k₋) from the scores' order
// (order[0] the highest score): IN for the first k₊, OUT for the last k₋.
// A group of tied scores cut by either boundary is left out of the guesses
// (the auditor abstains on it), so that which of tied canaries is guessed
// never depends on their order in the input (inserted canaries come first).
// It returns the guesses made on each side and how many were right.
func guessCounts(scores []float64, in []bool, order []int, kPlus, kMinus int) (plus, minus, correct int) {
	n := len(order)
	s := func(j int) float64 { return scores[order[j]] }
	plus = kPlus
	for plus > 0 && plus < n && s(plus-1) == s(plus) {
		plus--
	}
	minus = kMinus
	for minus > 0 && minus < n && s(n-minus) == s(n-minus-1) {
		minus--
	}
	for j := 0; j < plus; j++ {
		if in[order[j]] {
			correct++
		}
	}
	for j := n - minus; j < n; j++ {
		if !in[order[j]] {
			correct++
		}
	}
	return plus, minus, correct
}

// guessGrid lists the (k₊, k₋) pairs the sweep tries for n canaries.
func guessGrid(n int, fractions []float64) [][2]int {
	var ks []int
	for _, f := range fractions {
		ks = append(ks, int(math.Floor(f*float64(n)+0.5))) // halves round up
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	var out [][2]int
	for _, kp := range ks {
		for _, km := range ks {
			if kp+km >= 1 && kp+km <= n {
				out = append(out, [2]int{kp, km})
			}
		}
	}
	return out
}

// OneRunEpsilon is the one-run lower bound on ε from canary scores (higher
// meaning "more likely included") and whether each canary was included.
// scores maps an attack name to one score per canary; with several, the
// sweep takes the best over every attack and every (k₊, k₋) of the grid.
//
// Multiple testing: choosing the attack and k₊, k₋ after seeing the
// outcome would void the bound's confidence. Each of the T choices the
// sweep tries is therefore tested at level β/T (Bonferroni, a union bound
// over the searched grid), so that the reported maximum holds at
// confidence 1 − β. docs/METHODS.md says why this and not the paper's own
// practice.
func OneRunEpsilon(scores map[string][]float64, in []bool, opts EpsilonBoundOptions) (EpsilonBound, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return EpsilonBound{}, err
	}
	n := len(in)
	if n == 0 || len(scores) == 0 {
		return EpsilonBound{}, fmt.Errorf("audit: the one-run bound needs canaries and a score: %w", ErrInvalidInput)
	}
	names := make([]string, 0, len(scores))
	for name, s := range scores {
		if len(s) != n {
			return EpsilonBound{}, fmt.Errorf("audit: %s has %d scores for %d canaries: %w", name, len(s), n, ErrInvalidInput)
		}
		for _, x := range s {
			if math.IsNaN(x) {
				return EpsilonBound{}, fmt.Errorf("audit: %s has a NaN score: %w", name, ErrInvalidInput)
			}
		}
		names = append(names, name)
	}
	sort.Strings(names)
	grid := guessGrid(n, opts.Fractions)
	if len(grid) == 0 {
		return EpsilonBound{}, fmt.Errorf("audit: the guess fractions give no guess on %d canaries: %w", n, ErrInvalidInput)
	}
	tests := len(grid) * len(names)
	beta := (1 - opts.Confidence) / float64(tests)
	best := EpsilonBound{Epsilon: -1}
	for _, name := range names {
		s := scores[name]
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return s[order[a]] > s[order[b]] })
		for _, g := range grid {
			plus, minus, correct := guessCounts(s, in, order, g[0], g[1])
			if plus+minus == 0 {
				continue
			}
			eps, err := OneRunEpsilonAt(n, plus+minus, correct, opts.Delta, beta)
			if err != nil {
				return EpsilonBound{}, err
			}
			if eps > best.Epsilon {
				best = EpsilonBound{Epsilon: eps, Attack: name, KPlus: plus, KMinus: minus, Correct: correct}
			}
		}
	}
	if best.Epsilon < 0 { // every guess fell in a tie: no guess made
		best = EpsilonBound{Epsilon: 0, Attack: names[0]}
	}
	best.Delta, best.Confidence, best.Canaries, best.Tests, best.Attacks = opts.Delta, opts.Confidence, n, tests, names
	best.Sentence = best.sentence()
	return best, nil
}

// sentence says the bound in words.
func (b EpsilonBound) sentence() string {
	conf := fmt.Sprintf("%.3g%%", 100*b.Confidence)
	if b.Epsilon == 0 {
		return fmt.Sprintf("No lower bound on ε above 0 at δ = %.3g with %s confidence, from %d canaries: the best guesses (%s) were not accurate enough to rule out any ε.",
			b.Delta, conf, b.Canaries, b.Attack)
	}
	return fmt.Sprintf("Training is not (ε, %.3g)-DP for any ε below %.3f, with %s confidence, from %d canaries: %d of %d guesses right (%s; IN for the %d highest scores, OUT for the %d lowest; best of %d tests, Bonferroni-corrected).",
		b.Delta, b.Epsilon, conf, b.Canaries, b.Correct, b.KPlus+b.KMinus, b.Attack, b.KPlus, b.KMinus, b.Tests)
}

// CanaryEpsilonBound is the one-run bound from a run's per-sample table:
// its canary rows (inserted = included) and every attack whose scores are
// defined on all of them. It returns nil when the table has no canary
// of either kind.
func CanaryEpsilonBound(t *SampleTable, opts EpsilonBoundOptions) (*EpsilonBound, error) {
	if t == nil {
		return nil, nil
	}
	var rows []int
	var in []bool
	ins, held := 0, 0
	for i, c := range t.Canary {
		if !c || i >= len(t.Member) {
			continue
		}
		rows = append(rows, i)
		in = append(in, t.Member[i])
		if t.Member[i] {
			ins++
		} else {
			held++
		}
	}
	if ins == 0 || held == 0 {
		return nil, nil
	}
	scores := map[string][]float64{}
	for name, col := range t.Scores {
		if len(col) != len(t.Member) {
			continue
		}
		s := Pick(col, rows)
		if !slices.ContainsFunc(s, math.IsNaN) {
			scores[name] = s
		}
	}
	if len(scores) == 0 {
		return nil, nil
	}
	b, err := OneRunEpsilon(scores, in, opts)
	if err != nil {
		return nil, err
	}
	return &b, nil
}
