package study

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// TestLiRAVarianceFor: auto switches to per-sample variance at 64
// reference models; fixed and per-sample are taken as said; anything else
// is refused.
func TestLiRAVarianceFor(t *testing.T) {
	cases := []struct {
		setting string
		models  int
		want    bool
	}{
		{"", 4, false}, {"auto", 63, false}, {"auto", 64, true}, {"", 128, true},
		{"fixed", 256, false}, {"per-sample", 2, true},
	}
	for _, c := range cases {
		got, err := LiRAVarianceFor(c.setting, c.models)
		if err != nil || got != c.want {
			t.Errorf("LiRAVarianceFor(%q, %d) = %v, %v; want %v", c.setting, c.models, got, err, c.want)
		}
	}
	if _, err := LiRAVarianceFor("median", 8); !errors.Is(err, audit.ErrInvalidInput) {
		t.Errorf("unknown setting: %v, want ErrInvalidInput", err)
	}
}

// TestReferenceScoresFollowVariance: the pipeline's LiRA scores are those
// of LiRA with the variance the reference signals ask for (checked against
// a direct call), and the two settings give different scores on samples
// whose spreads differ.
func TestReferenceScoresFollowVariance(t *testing.T) {
	const models, n = 8, 40
	r := rand.New(rand.NewPCG(3, 4))
	ref := &ReferenceSignals{}
	for k := 0; k < models; k++ {
		phi, prob := make([]float64, n), make([]float64, n)
		in, correct := make([]bool, n), make([]bool, n)
		for i := 0; i < n; i++ {
			in[i] = (i+k)%2 == 0
			spread := 0.2 + float64(i%5) // samples differ in spread
			phi[i] = r.NormFloat64() * spread
			if in[i] {
				phi[i] += 2
			}
			prob[i] = 0.5
			correct[i] = in[i]
		}
		ref.Phi, ref.Prob, ref.In, ref.Correct = append(ref.Phi, phi), append(ref.Prob, prob), append(ref.In, in), append(ref.Correct, correct)
	}
	target := audit.Signals{Phi: make([]float64, n), Prob: make([]float64, n)}
	member := make([]bool, n)
	for i := range target.Phi {
		member[i] = i < n/2
		target.Phi[i] = r.NormFloat64()
		target.Prob[i] = 0.5
	}
	got := map[bool][]float64{}
	for _, perSample := range []bool{false, true} {
		ref.PerSampleVariance = perSample
		scores, _, err := referenceScores(target, ref, member, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := audit.LiRA(target.Phi, ref.Phi, ref.In, audit.LiRAOptions{FixedVariance: !perSample})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(scores["lira_online"], want.Scores) {
			t.Errorf("per-sample %v: lira_online is not LiRA with FixedVariance %v", perSample, !perSample)
		}
		got[perSample] = scores["lira_online"]
	}
	if slices.Equal(got[false], got[true]) {
		t.Error("fixed and per-sample variance gave the same scores")
	}
	if picked := ref.Pick([]int{0, 1}); !picked.PerSampleVariance {
		t.Error("Pick dropped the variance setting")
	}
}
