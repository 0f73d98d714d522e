package audit

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestThresholdAttackSigns: members get more confident logits, so every
// threshold attack must reach AUC > 0.7; a flipped sign would give < 0.3.
func TestThresholdAttackSigns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 600
	logits := make([][]float64, n)
	labels := make([]int, n)
	member := make([]bool, n)
	for i := range logits {
		member[i] = i%2 == 0
		labels[i] = rng.IntN(4)
		z := make([]float64, 4)
		for j := range z {
			z[j] = rng.NormFloat64()
		}
		if member[i] {
			z[labels[i]] += 3
		} else {
			z[labels[i]] += 1
		}
		logits[i] = z
	}
	sig, err := ComputeSignals(logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name   string
		scores []float64
	}{
		{"LOSS", LossScores(sig)},
		{"confidence", ConfidenceScores(sig)},
		{"entropy", EntropyScores(sig)},
		{"modified entropy", ModEntropyScores(sig)},
	} {
		m, err := Evaluate(a.scores, member)
		if err != nil {
			t.Fatal(err)
		}
		if m.AUC < 0.7 {
			t.Errorf("%s attack: AUC %.3f, want > 0.7 (members are more confident)", a.name, m.AUC)
		}
	}
	// The scores are the signals, negated where lower means member.
	if LossScores(sig)[0] != -sig.Loss[0] || ConfidenceScores(sig)[0] != sig.Prob[0] ||
		EntropyScores(sig)[0] != -sig.Entropy[0] || ModEntropyScores(sig)[0] != -sig.ModEntropy[0] {
		t.Errorf("threshold scores are not −ℓ, p_y, −H, −Mentr")
	}
}

// world is a synthetic population for LiRA and RMIA: sample i has φ ~
// N(muIn[i], sdIn[i]²) under models that trained on it and N(muOut[i],
// sdOut[i]²) under the others.
type world struct {
	muIn, muOut, sdIn, sdOut []float64
	ref                      [][]float64 // [nRef][n] φ under reference models
	in                       [][]bool
	target                   []float64 // φ under the audited model
	member                   []bool
}

type worldSpec struct {
	n, nRef                int
	difficulty             float64    // sd of the per-sample OUT mean
	gapLo, gapHi           float64    // μ_in − μ_out ~ U(gapLo, gapHi)
	sdIn, sdOut            [2]float64 // per-sample σ ~ U(lo, hi)
	allMembers, noneMember bool
}

func makeWorld(seed uint64, s worldSpec) world {
	rng := rand.New(rand.NewPCG(seed, 99))
	u := func(r [2]float64) float64 { return r[0] + (r[1]-r[0])*rng.Float64() }
	w := world{
		muIn: make([]float64, s.n), muOut: make([]float64, s.n),
		sdIn: make([]float64, s.n), sdOut: make([]float64, s.n),
		target: make([]float64, s.n), member: make([]bool, s.n),
	}
	for i := range s.n {
		w.muOut[i] = s.difficulty * rng.NormFloat64()
		w.muIn[i] = w.muOut[i] + u([2]float64{s.gapLo, s.gapHi})
		w.sdIn[i], w.sdOut[i] = u(s.sdIn), u(s.sdOut)
	}
	w.ref = make([][]float64, s.nRef)
	w.in = make([][]bool, s.nRef)
	for k := range s.nRef {
		w.ref[k] = make([]float64, s.n)
		w.in[k] = make([]bool, s.n)
	}
	for i := range s.n {
		for _, k := range rng.Perm(s.nRef)[:s.nRef/2] {
			w.in[k][i] = true
		}
		for k := range s.nRef {
			if w.in[k][i] {
				w.ref[k][i] = w.muIn[i] + w.sdIn[i]*rng.NormFloat64()
			} else {
				w.ref[k][i] = w.muOut[i] + w.sdOut[i]*rng.NormFloat64()
			}
		}
		w.member[i] = (i%2 == 0 || s.allMembers) && !s.noneMember
		if w.member[i] {
			w.target[i] = w.muIn[i] + w.sdIn[i]*rng.NormFloat64()
		} else {
			w.target[i] = w.muOut[i] + w.sdOut[i]*rng.NormFloat64()
		}
	}
	return w
}

// trueLogLR is the log likelihood ratio with the true parameters.
func (w world) trueLogLR() []float64 {
	lr := make([]float64, len(w.target))
	for i, x := range w.target {
		lr[i] = logNormalPDF(x, w.muIn[i], w.sdIn[i]) - logNormalPDF(x, w.muOut[i], w.sdOut[i])
	}
	return lr
}

// TestLiRAOnlineRanksLikeTrueLR: with many reference models, online LiRA
// ranks samples like the likelihood ratio of the true Gaussians.
func TestLiRAOnlineRanksLikeTrueLR(t *testing.T) {
	w := makeWorld(1, worldSpec{n: 300, nRef: 512, difficulty: 2, gapLo: 0.5, gapHi: 2.5,
		sdIn: [2]float64{0.3, 1.2}, sdOut: [2]float64{0.3, 1.2}})
	res, err := LiRA(w.target, w.ref, w.in, LiRAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rho := spearman(res.Scores, w.trueLogLR()); rho < 0.995 {
		t.Errorf("Spearman(online LiRA, true LR) = %.4f, want ≥ 0.995", rho)
	}
	if len(res.NoIn)+len(res.NoOut)+res.OneIn+res.OneOut != 0 {
		t.Errorf("unexpected fallbacks: %+v", res)
	}

	// Global σ: fixed-variance LiRA recovers them and ranks like the truth.
	g := makeWorld(2, worldSpec{n: 300, nRef: 64, difficulty: 2, gapLo: 0.5, gapHi: 2.5,
		sdIn: [2]float64{0.8, 0.8}, sdOut: [2]float64{0.5, 0.5}})
	fixed, err := LiRA(g.target, g.ref, g.in, LiRAOptions{FixedVariance: true})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(fixed.PooledSigmaIn-0.8) > 0.02 || math.Abs(fixed.PooledSigmaOut-0.5) > 0.015 {
		t.Errorf("pooled σ_in %v, σ_out %v; want about 0.8 and 0.5", fixed.PooledSigmaIn, fixed.PooledSigmaOut)
	}
	if rho := spearman(fixed.Scores, g.trueLogLR()); rho < 0.99 {
		t.Errorf("Spearman(fixed-variance LiRA, true LR) = %.4f, want ≥ 0.99", rho)
	}
}

// TestLiRAFixedVarianceSigmaOutFromOUT guards against the known bug of a
// reference script that sets the OUT σ from IN data in its fixed-variance
// branch: here IN values spread 2.0 and OUT values 0.3.
func TestLiRAFixedVarianceSigmaOutFromOUT(t *testing.T) {
	w := makeWorld(3, worldSpec{n: 400, nRef: 16, difficulty: 1, gapLo: 1, gapHi: 1,
		sdIn: [2]float64{2, 2}, sdOut: [2]float64{0.3, 0.3}})
	res, err := LiRA(w.target, w.ref, w.in, LiRAOptions{FixedVariance: true})
	if err != nil {
		t.Fatal(err)
	}
	// Pooled within-sample σ of each side, computed here.
	pooled := func(side bool) float64 {
		var ss float64
		var df int
		for i := range w.target {
			var vals []float64
			for k := range w.ref {
				if w.in[k][i] == side {
					vals = append(vals, w.ref[k][i])
				}
			}
			mean := 0.0
			for _, v := range vals {
				mean += v
			}
			mean /= float64(len(vals))
			for _, v := range vals {
				ss += (v - mean) * (v - mean)
			}
			df += len(vals) - 1
		}
		return math.Sqrt(ss / float64(df))
	}
	sIn, sOut := pooled(true), pooled(false)
	if math.Abs(res.PooledSigmaOut-sOut) > 1e-12 || math.Abs(res.PooledSigmaIn-sIn) > 1e-12 {
		t.Fatalf("pooled σ_in %v σ_out %v, want %v %v (σ_out from OUT values)", res.PooledSigmaIn, res.PooledSigmaOut, sIn, sOut)
	}
	if math.Abs(sOut-0.3) > 0.02 {
		t.Fatalf("test world broken: OUT σ %v", sOut)
	}
	for i := range w.target {
		if res.SigmaOut[i] != res.PooledSigmaOut || res.SigmaIn[i] != res.PooledSigmaIn {
			t.Fatalf("sample %d: σ_in %v σ_out %v, want the pooled values", i, res.SigmaIn[i], res.SigmaOut[i])
		}
		want := logNormalPDF(w.target[i], res.MuIn[i], sIn) - logNormalPDF(w.target[i], res.MuOut[i], sOut)
		buggy := logNormalPDF(w.target[i], res.MuIn[i], sIn) - logNormalPDF(w.target[i], res.MuOut[i], sIn)
		if math.Abs(res.Scores[i]-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Fatalf("sample %d: score %v, want %v", i, res.Scores[i], want)
		}
		if math.Abs(res.Scores[i]-buggy) < 1e-6 && math.Abs(w.target[i]-res.MuOut[i]) > 0.1 {
			t.Fatalf("sample %d: score equals the σ_out-from-IN score", i)
		}
	}
}

// TestLiRAOfflineIsOneSided: below μ_out a sample must score lower, not
// higher (−log N(φ; μ_out, σ_out²) would rank φ = μ_out − 3σ like μ_out + 3σ).
func TestLiRAOfflineIsOneSided(t *testing.T) {
	ref := [][]float64{{1, 1, 1}, {2, 2, 2}, {3, 3, 3}} // μ_out = 2, σ = 1
	target := []float64{-1, 2, 5}
	for _, fixed := range []bool{false, true} {
		res, err := LiRA(target, ref, nil, LiRAOptions{Offline: true, FixedVariance: fixed})
		if err != nil {
			t.Fatal(err)
		}
		want := []float64{-3, 0, 3} // z = (φ − μ_out)/σ_out
		for i := range want {
			if math.Abs(res.Scores[i]-want[i]) > 1e-15 {
				t.Errorf("fixed=%v: scores %v, want %v", fixed, res.Scores, want)
				break
			}
		}
		if res.MuIn != nil || res.NoIn != nil {
			t.Errorf("offline LiRA reported IN parameters")
		}
	}
	// The online sign: a target at μ_in scores above one at μ_out.
	ref = [][]float64{{0, 5}, {1, 6}, {5, 0}, {6, 1}}
	in := [][]bool{{false, true}, {false, true}, {true, false}, {true, false}}
	// Both samples: μ_out = 0.5, μ_in = 5.5, σ = √0.5.
	res, err := LiRA([]float64{5.5, 5.5}, ref, in, LiRAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !(res.Scores[0] > 0 && res.Scores[1] > 0) {
		t.Errorf("targets at μ_in scored %v, want positive log-LRs", res.Scores)
	}
	res, _ = LiRA([]float64{0.5, 0.5}, ref, in, LiRAOptions{})
	if !(res.Scores[0] < 0 && res.Scores[1] < 0) {
		t.Errorf("targets at μ_out scored %v, want negative log-LRs", res.Scores)
	}
}

// TestLiRAMatchesScipy compares the four variants with numpy/scipy
// (testdata/make_signal_refs.py), including samples without IN or OUT
// models and with one of each.
func TestLiRAMatchesScipy(t *testing.T) {
	var refs struct {
		Lira struct {
			Target           []float64   `json:"target"`
			Ref              [][]float64 `json:"ref"`
			In               [][]int     `json:"in"`
			PooledSigmaIn    float64     `json:"pooled_sigma_in"`
			PooledSigmaOut   float64     `json:"pooled_sigma_out"`
			MarginalMuIn     float64     `json:"marginal_mu_in"`
			MarginalSigmaIn  float64     `json:"marginal_sigma_in"`
			MarginalMuOut    float64     `json:"marginal_mu_out"`
			MarginalSigmaOut float64     `json:"marginal_sigma_out"`
			OnlinePerSample  []float64   `json:"online_per_sample"`
			OnlineFixed      []float64   `json:"online_fixed"`
			OfflinePerSample []float64   `json:"offline_per_sample"`
			OfflineFixed     []float64   `json:"offline_fixed"`
		} `json:"lira"`
	}
	loadJSON(t, "signal_refs.json", &refs)
	r := refs.Lira
	in := make([][]bool, len(r.In))
	for k, row := range r.In {
		in[k] = make([]bool, len(row))
		for i, v := range row {
			in[k][i] = v == 1
		}
	}
	for _, c := range []struct {
		name string
		opt  LiRAOptions
		want []float64
	}{
		{"online per-sample", LiRAOptions{}, r.OnlinePerSample},
		{"online fixed", LiRAOptions{FixedVariance: true}, r.OnlineFixed},
		{"offline per-sample", LiRAOptions{Offline: true}, r.OfflinePerSample},
		{"offline fixed", LiRAOptions{Offline: true, FixedVariance: true}, r.OfflineFixed},
	} {
		res, err := LiRA(r.Target, r.Ref, in, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.want {
			if !near(res.Scores[i], c.want[i], 1e-12) {
				t.Errorf("%s: sample %d: score %.17g, scipy %.17g", c.name, i, res.Scores[i], c.want[i])
			}
		}
		if len(res.NoOut) != 1 || res.NoOut[0] != 2 {
			t.Errorf("%s: NoOut %v, want [2]", c.name, res.NoOut)
		}
		if !c.opt.Offline && (len(res.NoIn) != 1 || res.NoIn[0] != 0) {
			t.Errorf("%s: NoIn %v, want [0]", c.name, res.NoIn)
		}
		wantOne := 1
		if c.opt.FixedVariance {
			wantOne = 0
		}
		if res.OneOut != wantOne || (!c.opt.Offline && res.OneIn != wantOne) {
			t.Errorf("%s: OneIn %d OneOut %d, want %d", c.name, res.OneIn, res.OneOut, wantOne)
		}
		if !near(res.PooledSigmaOut, r.PooledSigmaOut, 1e-12) || !near(res.MarginalMuOut, r.MarginalMuOut, 1e-12) ||
			!near(res.MarginalSigmaOut, r.MarginalSigmaOut, 1e-12) {
			t.Errorf("%s: OUT parameters %v %v %v", c.name, res.PooledSigmaOut, res.MarginalMuOut, res.MarginalSigmaOut)
		}
		if !c.opt.Offline && (!near(res.PooledSigmaIn, r.PooledSigmaIn, 1e-12) || !near(res.MarginalMuIn, r.MarginalMuIn, 1e-12) ||
			!near(res.MarginalSigmaIn, r.MarginalSigmaIn, 1e-12)) {
			t.Errorf("%s: IN parameters %v %v %v", c.name, res.PooledSigmaIn, res.MarginalMuIn, res.MarginalSigmaIn)
		}
	}
}

// softplus returns log(1 + e^x) without overflow.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// TestLiRAAndRMIABeatLOSSAtLowFPR: when per-sample difficulty varies (the
// OUT mean of φ spreads with sd 3 while membership shifts φ by about 1.5),
// one global threshold on the loss fails at low FPR and per-sample
// calibration wins. The target is a two-class model: p_y = sigmoid(φ) and
// ℓ = softplus(−φ).
func TestLiRAAndRMIABeatLOSSAtLowFPR(t *testing.T) {
	spec := worldSpec{n: 4000, nRef: 32, difficulty: 3, gapLo: 1, gapHi: 2,
		sdIn: [2]float64{0.4, 0.6}, sdOut: [2]float64{0.4, 0.6}}
	w := makeWorld(4, spec)
	spec.n, spec.noneMember = 2000, true
	pop := makeWorld(5, spec) // population z: non-members of the audited model

	loss := make([]float64, len(w.target))
	for i, phi := range w.target {
		loss[i] = -softplus(-phi)
	}
	prob := func(phi [][]float64) [][]float64 {
		out := make([][]float64, len(phi))
		for k, row := range phi {
			out[k] = sigmoidAll(row)
		}
		return out
	}
	x := RMIAData{Target: sigmoidAll(w.target), Ref: prob(w.ref), In: w.in}
	z := RMIAData{Target: sigmoidAll(pop.target), Ref: prob(pop.ref), In: pop.in}

	eval := func(name string, scores []float64) Metrics {
		m, err := Evaluate(scores, w.member, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-22s AUC %.3f  TPR@1%%FPR %.3f", name, m.AUC, m.TPRAt[0].TPR)
		return m
	}
	base := eval("LOSS", loss)
	for _, c := range []struct {
		name   string
		scores func() ([]float64, error)
		margin float64
	}{
		{"LiRA online", func() ([]float64, error) { r, err := LiRA(w.target, w.ref, w.in, LiRAOptions{}); return r.Scores, err }, 0.3},
		{"LiRA online fixed", func() ([]float64, error) {
			r, err := LiRA(w.target, w.ref, w.in, LiRAOptions{FixedVariance: true})
			return r.Scores, err
		}, 0.3},
		{"LiRA offline", func() ([]float64, error) {
			r, err := LiRA(w.target, w.ref, w.in, LiRAOptions{Offline: true})
			return r.Scores, err
		}, 0.15},
		{"LiRA offline fixed", func() ([]float64, error) {
			r, err := LiRA(w.target, w.ref, w.in, LiRAOptions{Offline: true, FixedVariance: true})
			return r.Scores, err
		}, 0.15},
		{"RMIA online", func() ([]float64, error) { r, err := RMIA(x, z, RMIAOptions{}); return r.Scores, err }, 0.1},
		{"RMIA offline a=0.5", func() ([]float64, error) {
			r, err := RMIA(x, z, RMIAOptions{Offline: true, A: 0.5})
			return r.Scores, err
		}, 0.05},
	} {
		s, err := c.scores()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m := eval(c.name, s)
		if m.TPRAt[0].TPR < base.TPRAt[0].TPR+c.margin {
			t.Errorf("%s: TPR at 1%% FPR %.3f, want ≥ LOSS's %.3f + %.2f", c.name, m.TPRAt[0].TPR, base.TPRAt[0].TPR, c.margin)
		}
		// Sign: a flipped attack would score AUC < 0.5.
		if m.AUC < 0.75 {
			t.Errorf("%s: AUC %.3f, want > 0.75", c.name, m.AUC)
		}
	}
}

func sigmoidAll(phi []float64) []float64 {
	p := make([]float64, len(phi))
	for i, v := range phi {
		p[i] = math.Exp(-softplus(-v))
	}
	return p
}

func TestLiRAInvalidInput(t *testing.T) {
	ref := [][]float64{{1, 2}, {2, 3}, {3, 4}}
	in := [][]bool{{true, false}, {false, true}, {true, false}}
	for _, c := range []struct {
		name   string
		target []float64
		ref    [][]float64
		in     [][]bool
		opt    LiRAOptions
	}{
		{"no models", []float64{1, 2}, nil, nil, LiRAOptions{}},
		{"online without mask", []float64{1, 2}, ref, nil, LiRAOptions{}},
		{"ragged reference", []float64{1, 2}, [][]float64{{1, 2}, {1}, {1, 2}}, in, LiRAOptions{}},
		{"mask rows", []float64{1, 2}, ref, in[:2], LiRAOptions{}},
		{"mask width", []float64{1, 2}, ref, [][]bool{{true}, {false, true}, {true, false}}, LiRAOptions{}},
		{"target length", []float64{1}, ref, in, LiRAOptions{}},
		{"NaN target", []float64{1, math.NaN()}, ref, in, LiRAOptions{}},
		{"Inf reference", []float64{1, 2}, [][]float64{{1, 2}, {math.Inf(-1), 3}, {3, 4}}, in, LiRAOptions{}},
		{"one IN value", []float64{1, 2}, ref, [][]bool{{true, false}, {false, false}, {false, false}}, LiRAOptions{}},
		{"one OUT value", []float64{1}, [][]float64{{1}}, nil, LiRAOptions{Offline: true}},
		{"negative MinSigma", []float64{1, 2}, ref, in, LiRAOptions{MinSigma: -1}},
	} {
		_, err := LiRA(c.target, c.ref, c.in, c.opt)
		wantInvalid(t, c.name, err)
	}
	// Identical reference values: σ is floored, scores stay finite.
	res, err := LiRA([]float64{1, 2}, [][]float64{{1, 1}, {1, 1}, {2, 2}, {2, 2}},
		[][]bool{{false, false}, {false, false}, {true, true}, {true, true}}, LiRAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			t.Errorf("degenerate reference values gave score %v", s)
		}
	}
	if !(res.Scores[1] > res.Scores[0]) {
		t.Errorf("φ at μ_in scored %v, φ at μ_out %v", res.Scores[1], res.Scores[0])
	}
}

// TestRMIAMatchesBruteForce compares with numpy's O(n·m) pair count
// (testdata/make_signal_refs.py): online and offline, γ = 0.5, 1 and 2,
// pairs with LR exactly 1 (x copies of z), p(x|θ) = 0, p(z|θ) = 0, and a
// sample without OUT model.
func TestRMIAMatchesBruteForce(t *testing.T) {
	var refs struct {
		Rmia struct {
			TargetX []float64   `json:"target_x"`
			RefX    [][]float64 `json:"ref_x"`
			InX     [][]int     `json:"in_x"`
			TargetZ []float64   `json:"target_z"`
			RefZ    [][]float64 `json:"ref_z"`
			Cases   []struct {
				Offline bool      `json:"offline"`
				A       float64   `json:"a"`
				Gamma   float64   `json:"gamma"`
				Scores  []float64 `json:"scores"`
			} `json:"cases"`
		} `json:"rmia"`
	}
	loadJSON(t, "signal_refs.json", &refs)
	r := refs.Rmia
	in := make([][]bool, len(r.InX))
	for k, row := range r.InX {
		in[k] = make([]bool, len(row))
		for i, v := range row {
			in[k][i] = v == 1
		}
	}
	var noOut []int // samples that are IN for every reference model
	for i := range r.TargetX {
		all := true
		for k := range in {
			all = all && in[k][i]
		}
		if all {
			noOut = append(noOut, i)
		}
	}
	if len(noOut) == 0 || noOut[0] != 0 {
		t.Fatalf("reference data: sample 0 should have no OUT model")
	}
	x := RMIAData{Target: r.TargetX, Ref: r.RefX, In: in}
	z := RMIAData{Target: r.TargetZ, Ref: r.RefZ}
	for _, c := range r.Cases {
		res, err := RMIA(x, z, RMIAOptions{Offline: c.Offline, A: c.A, Gamma: c.Gamma})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range c.Scores {
			if res.Scores[i] != want {
				t.Errorf("offline=%v a=%v γ=%v: sample %d: score %v, numpy %v", c.Offline, c.A, c.Gamma, i, res.Scores[i], want)
			}
		}
		if c.Offline && !slices.Equal(res.NoOut, noOut) {
			t.Errorf("offline: NoOut %v, want %v", res.NoOut, noOut)
		}
	}
	// γ = 0 means γ = 1.
	a, _ := RMIA(x, z, RMIAOptions{})
	b, _ := RMIA(x, z, RMIAOptions{Gamma: 1})
	for i := range a.Scores {
		if a.Scores[i] != b.Scores[i] {
			t.Fatalf("γ = 0 and γ = 1 differ at sample %d", i)
		}
	}
}

// TestRMIARandomBruteForce checks the binary search against a direct
// count on random data with many γ.
func TestRMIARandomBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	mk := func(n, k int) RMIAData {
		d := RMIAData{Target: make([]float64, n), Ref: make([][]float64, k), In: make([][]bool, k)}
		for i := range d.Target {
			d.Target[i] = rng.Float64()
		}
		for j := range k {
			d.Ref[j] = make([]float64, n)
			d.In[j] = make([]bool, n)
			for i := range n {
				d.Ref[j][i] = rng.Float64()
				d.In[j][i] = rng.IntN(2) == 0
			}
		}
		return d
	}
	x, z := mk(50, 4), mk(70, 4)
	for _, opt := range []RMIAOptions{{Gamma: 0.3}, {Gamma: 1}, {Gamma: 4}, {Offline: true, A: 0.2, Gamma: 1.5}} {
		res, err := RMIA(x, z, opt)
		if err != nil {
			t.Fatal(err)
		}
		for i, rx := range res.RatioX {
			cnt := 0
			for _, rz := range res.RatioZ {
				if rx/rz > opt.Gamma {
					cnt++
				}
			}
			if want := float64(cnt) / float64(len(res.RatioZ)); res.Scores[i] != want {
				t.Errorf("%+v: sample %d: %v, direct count %v", opt, i, res.Scores[i], want)
			}
		}
	}
}

func TestRMIAInvalidInput(t *testing.T) {
	x := RMIAData{Target: []float64{0.5, 0.6}, Ref: [][]float64{{0.4, 0.5}}}
	z := RMIAData{Target: []float64{0.3}, Ref: [][]float64{{0.2}}}
	for _, c := range []struct {
		name string
		x, z RMIAData
		opt  RMIAOptions
	}{
		{"negative gamma", x, z, RMIAOptions{Gamma: -1}},
		{"a above 1", x, z, RMIAOptions{Offline: true, A: 1.5}},
		{"probability above 1", RMIAData{Target: []float64{1.5, 0.6}, Ref: x.Ref}, z, RMIAOptions{}},
		{"NaN probability", x, RMIAData{Target: []float64{0.3}, Ref: [][]float64{{math.NaN()}}}, RMIAOptions{}},
		{"model counts differ", x, RMIAData{Target: []float64{0.3}, Ref: [][]float64{{0.2}, {0.3}}}, RMIAOptions{}},
		{"no population", x, RMIAData{Ref: [][]float64{{}}}, RMIAOptions{}},
		{"no OUT value offline", RMIAData{Target: x.Target, Ref: x.Ref, In: [][]bool{{true, true}}}, z, RMIAOptions{Offline: true}},
		{"ragged reference", RMIAData{Target: x.Target, Ref: [][]float64{{0.4}}}, z, RMIAOptions{}},
	} {
		_, err := RMIA(c.x, c.z, c.opt)
		wantInvalid(t, c.name, err)
	}
}
