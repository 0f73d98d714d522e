package audit

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// ReferenceConfig trains the reference models of LiRA, RMIA and the
// Feldman–Zhang scores (METHODS.md): K models of the audited architecture,
// each on a random half of the population, so that every sample is IN for
// about half of them. One set of models serves all three.
type ReferenceConfig struct {
	// Train is the recipe (its Model is the architecture; Train and Seed
	// are set per reference model).
	Train trainer.Config
	// Population is the set the halves are drawn from; the audited samples
	// are all in it.
	Population *dataset.Dataset
	Models     int
	Seed       uint64
	Session    ort.SessionOptions
	// Dir caches trained reference models (ref-<k>.onnx with its IN mask
	// implied by the seed); a model found there is not retrained.
	Dir string
	// Progress, when set, hears after each model.
	Progress func(done, total int, reused bool)
}

// ReferenceSignals are the audited samples' signals under every reference
// model, with the IN masks ([model][sample], samples in population order).
type ReferenceSignals struct {
	Phi     [][]float64
	Prob    [][]float64
	Correct [][]bool
	In      [][]bool
}

// referenceHalves draws model k's IN mask: a seeded random half of n.
func referenceHalves(seed uint64, k, n int) []bool {
	r := rand.New(rand.NewPCG(seed^0x726566, uint64(k)+1))
	perm := r.Perm(n)
	in := make([]bool, n)
	for _, i := range perm[:n/2] {
		in[i] = true
	}
	return in
}

// TrainReferences trains (or reuses) the reference models and evaluates
// every population sample under each.
func TrainReferences(ctx context.Context, cfg ReferenceConfig) (*ReferenceSignals, error) {
	if cfg.Models < 2 {
		return nil, fmt.Errorf("audit: reference attacks need at least 2 reference models, not %d: %w", cfg.Models, ErrInvalidInput)
	}
	pop := cfg.Population
	n := pop.Len()
	out := &ReferenceSignals{}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	for k := 0; k < cfg.Models; k++ {
		in := referenceHalves(cfg.Seed, k, n)
		var m *onnxio.Model
		path := ""
		reused := false
		if cfg.Dir != "" {
			path = filepath.Join(cfg.Dir, fmt.Sprintf("ref-%d-seed%d.onnx", k, cfg.Seed))
			if cached, err := onnxio.Load(path); err == nil {
				m, reused = cached, true
			}
		}
		if m == nil {
			var idx []int
			for i, b := range in {
				if b {
					idx = append(idx, i)
				}
			}
			half, err := pop.Subset(idx)
			if err != nil {
				return nil, err
			}
			tc := cfg.Train
			tc.Train, tc.Test = half, nil
			tc.Seed = cfg.Seed*7919 + uint64(k) + 1
			tc.Progress, tc.CheckpointDir, tc.Resume = nil, "", false
			res, err := trainer.Train(ctx, tc)
			if err != nil {
				return nil, fmt.Errorf("audit: reference model %d: %w", k, err)
			}
			m = res.Model
			if path != "" {
				if err := m.Save(path); err != nil {
					return nil, err
				}
			}
		}
		o, err := trainer.Evaluate(ctx, m, pop, 256, cfg.Session)
		if err != nil {
			return nil, err
		}
		s, err := ComputeSignalsFlat(o.Logits, o.Classes, pop.Labels())
		if err != nil {
			return nil, err
		}
		out.Phi = append(out.Phi, s.Phi)
		out.Prob = append(out.Prob, s.Prob)
		out.Correct = append(out.Correct, s.Correct)
		out.In = append(out.In, in)
		if cfg.Progress != nil {
			cfg.Progress(k+1, cfg.Models, reused)
		}
	}
	return out, nil
}

// ReferenceAttacks runs LiRA (online and offline, fixed variance, which is
// better with few reference models) and RMIA (online, with the
// non-members as the population z) on the audited samples, and reports the
// Feldman–Zhang memorization scores. target holds the audited model's
// signals on the population, member its membership (the positives).
func ReferenceAttacks(target Signals, ref *ReferenceSignals, member []bool, opt BootstrapOptions) (reps []AttackReport, scores map[string][]float64, fz []float64, err error) {
	scores = map[string][]float64{}
	add := func(name string, s []float64) error {
		rep, err := attackReport(name, s, member, opt)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", name, err)
		}
		reps = append(reps, rep)
		scores[name] = s
		return nil
	}
	for _, v := range []struct {
		name string
		opt  LiRAOptions
	}{
		{"lira_online", LiRAOptions{FixedVariance: true}},
		{"lira_offline", LiRAOptions{Offline: true, FixedVariance: true}},
	} {
		res, err := LiRA(target.Phi, ref.Phi, ref.In, v.opt)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := add(v.name, res.Scores); err != nil {
			return nil, nil, nil, err
		}
	}
	// RMIA: the population z are the non-members.
	var zIdx []int
	for i, m := range member {
		if !m {
			zIdx = append(zIdx, i)
		}
	}
	pick2 := func(rows [][]float64, idx []int) [][]float64 {
		out := make([][]float64, len(rows))
		for k, r := range rows {
			out[k] = pick(r, idx)
		}
		return out
	}
	z := RMIAData{Target: pick(target.Prob, zIdx), Ref: pick2(ref.Prob, zIdx)}
	x := RMIAData{Target: target.Prob, Ref: ref.Prob}
	rm, err := RMIA(x, z, RMIAOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := add("rmia_online", rm.Scores); err != nil {
		return nil, nil, nil, err
	}
	f, err := FeldmanZhang(ref.Correct, ref.In)
	if err != nil {
		return nil, nil, nil, err
	}
	return reps, scores, f.Scores, nil
}

// finite drops NaN values.
func finite(v []float64) []float64 {
	var out []float64
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}
