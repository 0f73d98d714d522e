package study

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// ReferenceConfig trains the reference models of LiRA, RMIA and the
// Feldman–Zhang scores (docs/METHODS.md): K models of the audited architecture,
// each on a random half of the pool, so that every sample of the pool is
// IN for about half of them. One set of models serves all three.
type ReferenceConfig struct {
	// Train is the recipe (its Model is the architecture; Train and Seed
	// are set per reference model).
	Train trainer.Config
	// Population is the pool the halves are drawn from: the audited
	// samples and, when the caller has one, a population set of its own.
	Population *dataset.Dataset
	Models     int
	Seed       uint64
	Session    ort.SessionOptions
	// Jobs trains that many reference models at once, splitting
	// Session.Threads (and the recipe's threads) between them; 0 chooses
	// AutoJobs. The models do not depend on Jobs: each has its own seed
	// and half.
	Jobs int
	// Dir caches trained reference models under a name that hashes the
	// architecture, the pool, the recipe, the seed and the model's index;
	// a model found there is not retrained.
	Dir string
	// Cache keeps the reference models' logits on the pool.
	Cache SignalCache
	// Progress, when set, hears after each model (from one goroutine at a
	// time).
	Progress func(done, total int, reused bool)
	// Only, when set, limits the call to these model indices (a work
	// unit trains one): the others are neither trained nor read, and
	// their rows of the result stay nil.
	Only []int
	// Training, when set, hears the training progress of model k (from
	// the goroutine training it).
	Training func(k int, p trainer.Progress)
	// NoTrain reads every model from Dir and trains none (a study's
	// gather): models not there make a *MissingError naming them.
	NoTrain bool
}

// MissingError is a gather's error when results it needs are not in the
// work folder yet. It wraps audit.ErrInvalidInput.
type MissingError struct {
	// What is missing, in words ("reference models 2, 5 of variant
	// remove", "run remove-seed1").
	What []string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("study: the work folder lacks %s; run those units (bnaudit status --work DIR lists them) and gather again", strings.Join(e.What, "; "))
}

func (e *MissingError) Unwrap() error { return audit.ErrInvalidInput }

// ReferenceSignals are the pool samples' signals under every reference
// model, with the IN masks ([model][sample], samples in pool order).
type ReferenceSignals struct {
	Phi     [][]float64
	Prob    [][]float64
	Correct [][]bool
	In      [][]bool
	// PerSampleVariance makes LiRA fit σ_in and σ_out per sample; false
	// pools one σ of each over the samples ("fixed variance", better with
	// few models). See LiRAVarianceFor.
	PerSampleVariance bool
	// Notes are the trainer's notes on the sessions that trained the
	// models (Result.Fallbacks: a faster form ONNX Runtime refused, or the
	// oneDNN library not installed), each once, sorted.
	Notes []string
}

// LiRA variance settings (AuditConfig.LiRAVariance,
// CompareConfig.LiRAVariance, --lira-variance).
const (
	LiRAVarianceAuto      = "auto"
	LiRAVarianceFixed     = "fixed"
	LiRAVariancePerSample = "per-sample"
)

// PerSampleVarianceModels is where "auto" switches LiRA to per-sample
// variance: Carlini et al. (2022) found one pooled σ better with few
// reference models (16 shadow models on CIFAR-10: AUC 0.686 with fixed
// variance vs 0.668 per sample; docs/METHODS.md) and fit σ per sample with many.
const PerSampleVarianceModels = 64

// LiRAVarianceFor says whether LiRA uses per-sample variance under the
// setting ("", "auto", "fixed" or "per-sample") with this many reference
// models.
func LiRAVarianceFor(setting string, models int) (perSample bool, err error) {
	switch setting {
	case "", LiRAVarianceAuto:
		return models >= PerSampleVarianceModels, nil
	case LiRAVarianceFixed:
		return false, nil
	case LiRAVariancePerSample:
		return true, nil
	}
	return false, fmt.Errorf("study: LiRA variance must be auto, fixed or per-sample, not %q: %w", setting, audit.ErrInvalidInput)
}

// liraVarianceNote says in the report which variance LiRA used.
func liraVarianceNote(perSample bool, models int) string {
	if perSample {
		return fmt.Sprintf("LiRA fits σ_in and σ_out per sample (%d reference models).", models)
	}
	return fmt.Sprintf("LiRA pools one σ_in and one σ_out over the samples (fixed variance; %d reference models, per-sample variance from %d on or with --lira-variance per-sample).", models, PerSampleVarianceModels)
}

// Pick returns the signals of the samples idx (in that order).
func (r *ReferenceSignals) Pick(idx []int) *ReferenceSignals {
	out := &ReferenceSignals{PerSampleVariance: r.PerSampleVariance, Notes: r.Notes}
	for k := range r.Phi {
		out.Phi = append(out.Phi, audit.Pick(r.Phi[k], idx))
		out.Prob = append(out.Prob, audit.Pick(r.Prob[k], idx))
		c, in := make([]bool, len(idx)), make([]bool, len(idx))
		for j, i := range idx {
			c[j], in[j] = r.Correct[k][i], r.In[k][i]
		}
		out.Correct, out.In = append(out.Correct, c), append(out.In, in)
	}
	return out
}

// referenceHalves draws model k's IN mask: a seeded random half of n.
func referenceHalves(seed uint64, k, n int) []bool {
	r := audit.StreamReferenceHalves.Indexed(seed, k)
	perm := r.Perm(n)
	in := make([]bool, n)
	for _, i := range perm[:n/2] {
		in[i] = true
	}
	return in
}

// referenceKey names what a cached reference model depends on: the
// architecture, the pool, the recipe and the seed (12 hex digits).
func referenceKey(cfg ReferenceConfig) (string, error) {
	mh, err := ModelHash(cfg.Train.Model)
	if err != nil {
		return "", err
	}
	h, err := hashOf(struct {
		Model, Pool string
		Training    Recipe
		Seed        uint64
	}{mh, cfg.Population.Fingerprint(), RecipeOf(cfg.Train), cfg.Seed})
	if err != nil {
		return "", err
	}
	return h[:12], nil
}

// TrainReferences trains (or reuses) the reference models and evaluates
// every pool sample under each.
func TrainReferences(ctx context.Context, cfg ReferenceConfig) (*ReferenceSignals, error) {
	if cfg.Models < 2 {
		return nil, fmt.Errorf("study: reference attacks need at least 2 reference models, not %d: %w", cfg.Models, audit.ErrInvalidInput)
	}
	if cfg.Population == nil || cfg.Train.Model == nil {
		return nil, fmt.Errorf("study: reference models need an architecture and a pool: %w", audit.ErrInvalidInput)
	}
	pop := cfg.Population
	n := pop.Len()
	key, err := referenceKey(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("study: %w", err)
		}
	}
	jobs := cfg.Jobs
	if jobs <= 0 {
		jobs = AutoJobs(cfg.Session.Threads, cfg.Models)
	}
	jobs = min(jobs, cfg.Models)
	sess, train := cfg.Session, cfg.Train.Session
	if jobs > 1 {
		split := func(t int) int {
			if t <= 0 { // ONNX Runtime's default: one thread per core
				t = runtime.NumCPU()
			}
			return max(1, t/jobs)
		}
		sess.Threads, train.Threads = split(sess.Threads), split(train.Threads)
	}
	out := &ReferenceSignals{
		Phi: make([][]float64, cfg.Models), Prob: make([][]float64, cfg.Models),
		Correct: make([][]bool, cfg.Models), In: make([][]bool, cfg.Models),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		done     int
		firstErr error
		wg       sync.WaitGroup
		missing  []int
	)
	todo := cfg.Only
	if todo == nil {
		todo = make([]int, cfg.Models)
		for k := range todo {
			todo[k] = k
		}
	}
	for _, k := range todo {
		if k < 0 || k >= cfg.Models {
			return nil, fmt.Errorf("study: reference model %d of %d does not exist: %w", k, cfg.Models, audit.ErrInvalidInput)
		}
	}
	if cfg.NoTrain && cfg.Dir == "" {
		return nil, fmt.Errorf("study: reading reference models needs their folder: %w", audit.ErrInvalidInput)
	}
	next := make(chan int)
	one := func(k int) error {
		in := referenceHalves(cfg.Seed, k, n)
		var m *onnxio.Model
		path := ""
		reused := false
		if cfg.Dir != "" {
			path = filepath.Join(cfg.Dir, fmt.Sprintf("ref-%s-%d.onnx", key, k))
			if cached, err := onnxio.Load(path); err == nil {
				m, reused = cached, true
			}
		}
		if m == nil && cfg.NoTrain {
			mu.Lock()
			missing = append(missing, k)
			mu.Unlock()
			return nil
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
				return err
			}
			tc := cfg.Train
			tc.Train, tc.Test = half, nil
			tc.Seed = cfg.Seed*referenceSeedPrime + uint64(k) + 1
			tc.Session = train
			tc.Progress, tc.CheckpointDir, tc.Resume, tc.Log = nil, "", false, nil
			if cfg.Training != nil {
				tc.Progress = func(p trainer.Progress) { cfg.Training(k, p) }
			}
			res, err := trainer.Train(ctx, tc)
			if err != nil {
				return fmt.Errorf("study: reference model %d: %w", k, err)
			}
			m = res.Model
			if len(res.Fallbacks) > 0 {
				mu.Lock()
				for _, f := range res.Fallbacks {
					if !slices.Contains(out.Notes, f) {
						out.Notes = append(out.Notes, f)
					}
				}
				mu.Unlock()
			}
			if path != "" {
				if err := m.Save(path); err != nil {
					return err
				}
			}
		}
		s, err := cfg.Cache.Signals(ctx, m, pop, sess)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		out.Phi[k], out.Prob[k], out.Correct[k], out.In[k] = s.Phi, s.Prob, s.Correct, in
		done++
		if cfg.Progress != nil {
			cfg.Progress(done, len(todo), reused)
		}
		return nil
	}
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				if err := one(k); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, k := range todo {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out.Notes)
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, &MissingError{What: []string{fmt.Sprintf("reference models %s (of %d) in %s", intList(missing), cfg.Models, cfg.Dir)}}
	}
	return out, nil
}

// intList writes indices as "0, 2, 5".
func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// referenceScores computes the reference attacks' scores (LiRA online and
// offline, RMIA online and, with IN masks of z, offline) and the
// Feldman–Zhang memorization scores. target and ref hold the audited
// samples' signals under the audited model and the reference models,
// member their membership. z holds the RMIA population samples' signals
// (target and reference probabilities of the true class, and IN masks);
// nil takes the audited non-members, as the RMIA paper does when no
// separate population is at hand.
func referenceScores(target audit.Signals, ref *ReferenceSignals, member []bool, z *audit.RMIAData) (scores map[string][]float64, fz []float64, err error) {
	scores = map[string][]float64{}
	for _, v := range []struct {
		name string
		opt  audit.LiRAOptions
	}{
		{audit.AttackLiRAOnline, audit.LiRAOptions{FixedVariance: !ref.PerSampleVariance}},
		{audit.AttackLiRAOffline, audit.LiRAOptions{Offline: true, FixedVariance: !ref.PerSampleVariance}},
	} {
		res, err := audit.LiRA(target.Phi, ref.Phi, ref.In, v.opt)
		if err != nil {
			return nil, nil, err
		}
		scores[v.name] = res.Scores
	}
	if z == nil {
		var zIdx []int
		for i, m := range member {
			if !m {
				zIdx = append(zIdx, i)
			}
		}
		z = ref.population(target.Prob, zIdx)
	}
	x := audit.RMIAData{Target: target.Prob, Ref: ref.Prob}
	rm, err := audit.RMIA(x, *z, audit.RMIAOptions{})
	if err != nil {
		return nil, nil, err
	}
	scores[audit.AttackRMIAOnline] = rm.Scores
	// RMIA offline: P(x) from the OUT models only, with a tuned on one
	// reference model taken as the target (RMIA's paper).
	if z.In != nil && len(ref.Prob) >= 2 {
		a, err := tuneRMIAOffline(ref, z)
		if err != nil {
			return nil, nil, err
		}
		off, err := audit.RMIA(audit.RMIAData{Target: target.Prob, Ref: ref.Prob, In: ref.In}, *z, audit.RMIAOptions{Offline: true, A: a})
		if err != nil {
			return nil, nil, err
		}
		scores[audit.AttackRMIAOffline] = off.Scores
	}
	f, err := audit.FeldmanZhang(ref.Correct, ref.In)
	if err != nil {
		return nil, nil, err
	}
	return scores, f.Scores, nil
}

// tuneRMIAOffline picks RMIA's offline scaling a from 0, 0.1, …, 1: the
// value whose offline attack, run with reference model 0 as the target
// and the others as references, best separates model 0's IN samples from
// its OUT samples (AUC).
func tuneRMIAOffline(ref *ReferenceSignals, z *audit.RMIAData) (float64, error) {
	x := audit.RMIAData{Target: ref.Prob[0], Ref: ref.Prob[1:], In: ref.In[1:]}
	zz := audit.RMIAData{Target: z.Ref[0], Ref: z.Ref[1:], In: z.In[1:]}
	best, bestAUC := 0.0, math.Inf(-1)
	for i := 0; i <= 10; i++ {
		a := float64(i) / 10
		res, err := audit.RMIA(x, zz, audit.RMIAOptions{Offline: true, A: a})
		if err != nil {
			return 0, err
		}
		m, err := audit.Evaluate(res.Scores, ref.In[0])
		if err != nil {
			return 0, err
		}
		if m.AUC > bestAUC {
			best, bestAUC = a, m.AUC
		}
	}
	return best, nil
}

// population is RMIA's population z: the samples idx of the pool, with
// their probabilities of the true class under the target (targetProb,
// over the pool) and the reference models, and their IN masks.
func (r *ReferenceSignals) population(targetProb []float64, idx []int) *audit.RMIAData {
	return &audit.RMIAData{Target: audit.Pick(targetProb, idx), Ref: pickRows(r.Prob, idx), In: pickBoolRows(r.In, idx)}
}

// pickBoolRows selects columns idx of every row.
func pickBoolRows(rows [][]bool, idx []int) [][]bool {
	out := make([][]bool, len(rows))
	for k, r := range rows {
		o := make([]bool, len(idx))
		for j, i := range idx {
			o[j] = r[i]
		}
		out[k] = o
	}
	return out
}

// pickRows selects columns idx of every row.
func pickRows(rows [][]float64, idx []int) [][]float64 {
	out := make([][]float64, len(rows))
	for k, r := range rows {
		out[k] = audit.Pick(r, idx)
	}
	return out
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

// MaxAutoJobs caps AutoJobs: every model trained at once holds its own
// sessions and buffers (about 100 MiB more per model for the fixtures,
// BENCHMARKS.md), which the cap bounds on many-core machines.
const MaxAutoJobs = 4

// AutoJobs is how many of models reference models train at once when the
// caller does not say: one per thread (threads ≤ 0 means one per core),
// each on one thread, at most MaxAutoJobs. Separate single-threaded
// sessions keep both cores busy through the small operations that one
// two-threaded session runs on one core at a time: on 2 cores, 1.39× the
// models per hour for the small CNN and 1.18× for the small ResNet
// (BENCHMARKS.md, "Trained models per hour").
func AutoJobs(threads, models int) int {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return max(1, min(threads, models, MaxAutoJobs))
}
