package study

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// CompareConfig is the paper's study on one model: BN variants trained on
// the same data, data order, canaries and starting weights, each audited.
type CompareConfig struct {
	Model *onnxio.Model
	// Variants are "original" and ablation modes ("fold", "remove",
	// "freeze", "groupnorm"); empty means original, remove, freeze, groupnorm.
	Variants []string
	// GroupNorm settings of the groupnorm variant.
	Groups     int
	CopyAffine bool
	Members    *dataset.Dataset
	NonMembers *dataset.Dataset
	// Canaries are shared by every run.
	Canaries *Canaries
	// Train is the recipe; Model, Train, Test and Seed are set per run.
	Train trainer.Config
	// Seeds is the number of seeds per variant (K); run k uses Seed + k.
	Seeds     int
	Seed      uint64
	Bootstrap audit.BootstrapOptions
	Session   ort.SessionOptions
	// Dir receives the trained models and per-run results; with Resume,
	// finished runs found there are not retrained.
	Dir    string
	Resume bool
	// RefModels > 0 trains that many reference models per variant (its
	// architecture and the recipe) on random halves of members ∪
	// non-members ∪ canaries, Jobs at a time, shared by the variant's
	// seeds: LiRA, RMIA and Feldman–Zhang join the threshold attacks.
	RefModels int
	Jobs      int
	// LiRAVariance is "auto" (or ""), "fixed" or "per-sample"
	// (LiRAVarianceFor).
	LiRAVariance string
	// Cache keeps logits by model and data hashes.
	Cache SignalCache
	// GradNormCheckpoints measures the eval-mode gradient-norm study at
	// that many evenly spaced epochs (the last included; 0 or 1: the last
	// only); InBatch adds the in-batch study at the same epochs.
	GradNormCheckpoints int
	InBatch             bool
	// GradNormSample is how many members the canaries' gradient norms are
	// compared with (0: 256).
	GradNormSample int
	// Progress, when set, hears about each run.
	Progress func(CompareProgress)
	// Command is recorded in the report.
	Command string
}

// CompareProgress reports the run in progress.
type CompareProgress struct {
	Variant      string
	Seed         int
	Run, Runs    int
	Reused       bool
	Training     *trainer.Progress
	Finished     bool
	Elapsed      time.Duration
	VariantStats *audit.VariantReport
	// References, when set, reports reference models of the variant done
	// out of total (RefReused: taken from the cache).
	RefDone, RefTotal int
	RefReused         bool
}

// DefaultVariants are compared when none are named.
var DefaultVariants = []string{"original", "remove", "freeze", "groupnorm"}

// runRecord is what a finished run leaves in Dir/runs for --resume.
type runRecord struct {
	Key string `json:"key"`
	// Recipe hashes what the run depends on; a record of another recipe is
	// not reused.
	Recipe  string
	Epochs  int
	Stopped bool
	Variant audit.VariantReport `json:"variant"`
	// Per-sample values the comparisons pair across variants.
	MemberLoss   []float64 `json:"member_loss"`
	CanaryLoss   []float64 `json:"canary_loss"`
	CanaryMember []bool    `json:"canary_member"`
	InsCorrect   []bool    `json:"inserted_correct"`
	HeldCorrect  []bool    `json:"held_out_correct"`
	NonLoss      []float64 `json:"non_member_loss"`
	GradOutlier  []float64 `json:"grad_outlier"`
	GradTypical  []float64 `json:"grad_typical"`
	// Samples is the run's per-sample table (scores.csv, signals.npz).
	Samples *audit.SampleTable
}

// variantModel builds a variant of the source model.
func variantModel(m *onnxio.Model, v string, cfg CompareConfig) (*onnxio.Model, error) {
	if v == "original" {
		return m, nil
	}
	mode, err := onnxio.ParseMode(v)
	if err != nil {
		return nil, fmt.Errorf("audit: unknown variant %q (want original, fold, remove, freeze or groupnorm): %w", v, audit.ErrInvalidInput)
	}
	res, err := onnxio.Ablate(m, onnxio.AblateOptions{Mode: mode, Groups: cfg.Groups, CopyAffine: cfg.CopyAffine})
	if err != nil {
		return nil, err
	}
	out := res.Model
	out.Name = strings.TrimSuffix(m.Name, ".onnx") + "." + v + ".onnx"
	return out, nil
}

// Compare trains and audits every variant × seed and returns the report.
func Compare(ctx context.Context, cfg CompareConfig) (*audit.Report, error) {
	if cfg.Model == nil || cfg.Members == nil || cfg.NonMembers == nil {
		return nil, fmt.Errorf("audit: compare needs a model, members and non-members: %w", audit.ErrInvalidInput)
	}
	if len(cfg.Variants) == 0 {
		cfg.Variants = DefaultVariants
	}
	if cfg.Seeds <= 0 {
		cfg.Seeds = 1
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("audit: compare needs an output folder: %w", audit.ErrInvalidInput)
	}
	if _, err := LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels); err != nil {
		return nil, err
	}
	for _, sub := range []string{"runs", "models", "checkpoints"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	records := map[string][]*runRecord{}
	runs := len(cfg.Variants) * cfg.Seeds
	n := 0
	start := time.Now()
	for _, v := range cfg.Variants {
		vm, err := variantModel(cfg.Model, v, cfg)
		if err != nil {
			return nil, err
		}
		recipe, err := runRecipe(cfg, vm)
		if err != nil {
			return nil, err
		}
		// Finished runs first: a folder of another recipe is refused before
		// anything is trained, and reference models are only needed when a
		// run is left to train.
		finished := map[int]*runRecord{}
		if cfg.Resume {
			for k := 0; k < cfg.Seeds; k++ {
				key := fmt.Sprintf("%s-seed%d", v, k)
				if rec, err := loadRecord(filepath.Join(cfg.Dir, "runs", key+".gob")); err == nil {
					if rec.Recipe != recipe {
						return nil, fmt.Errorf("audit: %s holds a run %s of another recipe (model, data, canaries or settings changed); resume with the same settings or write to a new folder: %w", cfg.Dir, key, audit.ErrInvalidInput)
					}
					finished[k] = rec
				}
			}
		}
		var refs *ReferenceSignals
		if cfg.RefModels > 0 && len(finished) < cfg.Seeds {
			if refs, err = compareReferences(ctx, cfg, v, vm, start, n, runs); err != nil {
				return nil, fmt.Errorf("audit: variant %s: %w", v, err)
			}
		}
		for k := 0; k < cfg.Seeds; k++ {
			n++
			key := fmt.Sprintf("%s-seed%d", v, k)
			recPath := filepath.Join(cfg.Dir, "runs", key+".gob")
			if cfg.Resume {
				if rec, ok := finished[k]; ok {
					records[v] = append(records[v], rec)
					if cfg.Progress != nil {
						cfg.Progress(CompareProgress{Variant: v, Seed: k, Run: n, Runs: runs, Reused: true, Finished: true, Elapsed: time.Since(start), VariantStats: &rec.Variant})
					}
					continue
				}
			}
			tc := cfg.Train
			tc.Model = vm
			tc.Seed = cfg.Seed + uint64(k)
			tc.CheckpointDir = filepath.Join(cfg.Dir, "checkpoints", key)
			tc.Resume = cfg.Resume
			if cfg.Progress != nil {
				v, k, n := v, k, n
				tc.Progress = func(p trainer.Progress) {
					cfg.Progress(CompareProgress{Variant: v, Seed: k, Run: n, Runs: runs, Training: &p, Elapsed: time.Since(start)})
				}
			}
			res, err := RunExperiment(ctx, ExperimentConfig{Name: v, Train: tc, Members: cfg.Members, NonMembers: cfg.NonMembers,
				Canaries: cfg.Canaries, Bootstrap: cfg.Bootstrap, Session: cfg.Session, Cache: cfg.Cache, References: refs,
				GradNormCheckpoints: cfg.GradNormCheckpoints, InBatch: cfg.InBatch, GradNormSample: cfg.GradNormSample})
			if err != nil {
				return nil, fmt.Errorf("audit: variant %s, seed %d: %w", v, k, err)
			}
			if err := res.Model.Save(filepath.Join(cfg.Dir, "models", key+".onnx")); err != nil {
				return nil, err
			}
			rec := recordOf(key, res)
			rec.Recipe, rec.Epochs, rec.Stopped = recipe, res.Epochs, res.StoppedEarly
			if err := saveRecord(recPath, rec); err != nil {
				return nil, err
			}
			os.RemoveAll(tc.CheckpointDir)
			records[v] = append(records[v], rec)
			if cfg.Progress != nil {
				cfg.Progress(CompareProgress{Variant: v, Seed: k, Run: n, Runs: runs, Finished: true, Elapsed: time.Since(start), VariantStats: &rec.Variant})
			}
		}
	}
	return buildCompareReport(cfg, records)
}

// compareReferences trains (or reuses) a variant's reference models on
// random halves of members ∪ non-members ∪ inserted ∪ held-out canaries,
// the order of the experiment's sample table.
func compareReferences(ctx context.Context, cfg CompareConfig, v string, vm *onnxio.Model, start time.Time, n, runs int) (*ReferenceSignals, error) {
	parts := []*dataset.Dataset{cfg.Members, cfg.NonMembers}
	if cfg.Canaries != nil {
		parts = append(parts, cfg.Canaries.Inserted, cfg.Canaries.HeldOut)
	}
	pool, err := dataset.Concat("pool", parts...)
	if err != nil {
		return nil, err
	}
	tc := cfg.Train
	tc.Model = vm
	tc.OnEpoch = nil
	rc := ReferenceConfig{Train: tc, Population: pool, Models: cfg.RefModels, Seed: cfg.Seed, Session: cfg.Session, Jobs: cfg.Jobs,
		Dir: filepath.Join(cfg.Dir, "refs", v), Cache: cfg.Cache}
	if cfg.Progress != nil {
		rc.Progress = func(done, total int, reused bool) {
			cfg.Progress(CompareProgress{Variant: v, Run: n, Runs: runs, Elapsed: time.Since(start), RefDone: done, RefTotal: total, RefReused: reused})
		}
	}
	ref, err := TrainReferences(ctx, rc)
	if err != nil {
		return nil, err
	}
	if ref.PerSampleVariance, err = LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels); err != nil {
		return nil, err
	}
	return ref, nil
}

// runRecipe hashes what a run's results depend on.
func runRecipe(cfg CompareConfig, vm *onnxio.Model) (string, error) {
	mh, err := ModelHash(vm)
	if err != nil {
		return "", err
	}
	t := cfg.Train
	parts := []string{mh, cfg.Members.Fingerprint(), cfg.NonMembers.Fingerprint()}
	if cfg.Canaries != nil {
		parts = append(parts, cfg.Canaries.Inserted.Fingerprint(), cfg.Canaries.HeldOut.Fingerprint())
	}
	parts = append(parts, fmt.Sprintf("%d|%d|%+v|%g|%s|%g|%+v|%s|%g|%d|%d|%d|%t|%d|%d", t.Epochs, t.Batch, t.Optimizer, t.LR, t.Schedule,
		t.LabelSmoothing, t.Augment, t.Init, t.StopAtTrainAcc, cfg.Seed, cfg.RefModels, cfg.GradNormCheckpoints, cfg.InBatch,
		cfg.Bootstrap.Replicates, cfg.Bootstrap.Seed))
	// LiRA's variance: runs recorded before the setting existed used the
	// pooled one, and keep their recipe.
	if perSample, _ := LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels); perSample && cfg.RefModels > 0 {
		parts = append(parts, "lira per-sample variance")
	}
	// 0 means the default 256; runs recorded before the setting existed
	// used it, and keep their recipe.
	if n := cfg.GradNormSample; n != 0 && n != 256 {
		parts = append(parts, fmt.Sprintf("gradnorm-sample %d", n))
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(h[:]), nil
}

func recordOf(key string, res *ExperimentResult) *runRecord {
	rec := &runRecord{Key: key, Variant: res.Variant}
	t := res.Samples
	for i := range t.Member {
		switch {
		case !t.Canary[i] && t.Member[i]:
			rec.MemberLoss = append(rec.MemberLoss, t.Loss[i])
		case !t.Canary[i]:
			rec.NonLoss = append(rec.NonLoss, t.Loss[i])
		default:
			rec.CanaryLoss = append(rec.CanaryLoss, t.Loss[i])
			rec.CanaryMember = append(rec.CanaryMember, t.Member[i])
		}
	}
	for i, c := range t.Canary {
		if c && t.Member[i] && i < len(t.GradNormEval) {
			rec.GradOutlier = append(rec.GradOutlier, t.GradNormEval[i])
		}
	}
	rec.GradTypical = res.TypicalGradNorms
	rec.Samples = res.Samples
	return rec
}

// Run records are gob files (gob keeps NaN, which JSON cannot hold); they
// only serve --resume.
func saveRecord(path string, rec *runRecord) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rec); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

func loadRecord(path string) (*runRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec runRecord
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// buildCompareReport aggregates runs per variant and compares each variant
// without (coupled) BN to the original.
func buildCompareReport(cfg CompareConfig, records map[string][]*runRecord) (*audit.Report, error) {
	r := &audit.Report{Schema: audit.ReportSchema, Tool: "bnaudit", Created: time.Now().UTC().Format(time.RFC3339), Command: cfg.Command,
		Seed: cfg.Seed, Kind: "compare", Definitions: Definitions()}
	agg := map[string]audit.VariantReport{}
	for _, v := range cfg.Variants {
		recs := records[v]
		if len(recs) == 0 {
			continue
		}
		base := recs[0].Variant
		// The row gets its own slices: the first run keeps its numbers.
		base.Attacks = append([]audit.AttackReport{}, base.Attacks...)
		base.CanaryAttacks = append([]audit.AttackReport(nil), base.CanaryAttacks...)
		if len(recs) > 1 {
			// A run without the number (a record of an older bnaudit that
			// lacked an attack) is left out of its mean.
			get := func(f func(audit.VariantReport) audit.Interval) audit.Interval {
				vals, own := []float64{}, []audit.Interval{}
				for _, rc := range recs {
					iv := f(rc.Variant)
					if math.IsNaN(iv.Estimate) {
						continue
					}
					vals = append(vals, iv.Estimate)
					own = append(own, iv)
				}
				if len(vals) == 0 {
					return audit.Interval{Estimate: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
				}
				return audit.SeedInterval(vals, own, cfg.Bootstrap)
			}
			base.TestAccuracy = get(func(x audit.VariantReport) audit.Interval { return x.TestAccuracy })
			base.TrainAccuracy = get(func(x audit.VariantReport) audit.Interval { return x.TrainAccuracy })
			base.TrainLoss = get(func(x audit.VariantReport) audit.Interval { return x.TrainLoss })
			base.TestLoss = get(func(x audit.VariantReport) audit.Interval { return x.TestLoss })
			// Every number of an attack row is the mean over the seeds,
			// with the seeds' interval: AUC, advantage, balanced accuracy
			// and TPR at each target FPR. (The ROC curve drawn is seed
			// 0's; see PerSeed.)
			avgAttacks := func(rows []audit.AttackReport, of func(audit.VariantReport) []audit.AttackReport) []audit.AttackReport {
				out := append([]audit.AttackReport(nil), rows...)
				for ai := range out {
					name := out[ai].Attack
					pick := func(f func(audit.AttackReport) audit.Interval) audit.Interval {
						return get(func(x audit.VariantReport) audit.Interval {
							if a := audit.FindAttack(of(x), name); a != nil {
								return f(*a)
							}
							return audit.Interval{Estimate: math.NaN()}
						})
					}
					out[ai].AUC = pick(func(a audit.AttackReport) audit.Interval { return a.AUC })
					out[ai].Advantage = pick(func(a audit.AttackReport) audit.Interval { return a.Advantage })
					out[ai].BalancedAccInterval = pick(audit.AttackReport.BalancedAccuracy)
					out[ai].BalancedAcc = out[ai].BalancedAccInterval.Estimate
					out[ai].TPRAt = append([]audit.TPRAtInterval(nil), out[ai].TPRAt...)
					for ti := range out[ai].TPRAt {
						target := out[ai].TPRAt[ti].TargetFPR
						out[ai].TPRAt[ti].TPR = pick(func(a audit.AttackReport) audit.Interval {
							for _, t := range a.TPRAt {
								if t.TargetFPR == target {
									return t.TPR
								}
							}
							return audit.Interval{Estimate: math.NaN()}
						})
					}
				}
				return out
			}
			base.Attacks = avgAttacks(base.Attacks, func(x audit.VariantReport) []audit.AttackReport { return x.Attacks })
			base.CanaryAttacks = avgAttacks(base.CanaryAttacks, func(x audit.VariantReport) []audit.AttackReport { return x.CanaryAttacks })
			if base.Memorization != nil {
				gap := *base.Memorization
				mem := func(f func(audit.CanaryGap) audit.Interval) audit.Interval {
					return get(func(x audit.VariantReport) audit.Interval {
						if x.Memorization == nil {
							return audit.Interval{Estimate: math.NaN()}
						}
						return f(*x.Memorization)
					})
				}
				gap.AccuracyGap = mem(func(g audit.CanaryGap) audit.Interval { return g.AccuracyGap })
				gap.InsertedAccuracy = mem(func(g audit.CanaryGap) audit.Interval { return g.InsertedAccuracy })
				gap.HeldOutAccuracy = mem(func(g audit.CanaryGap) audit.Interval { return g.HeldOutAccuracy })
				gap.InsertedLoss = mem(func(g audit.CanaryGap) audit.Interval { return g.InsertedLoss })
				gap.HeldOutLoss = mem(func(g audit.CanaryGap) audit.Interval { return g.HeldOutLoss })
				gap.LossGap = mem(func(g audit.CanaryGap) audit.Interval { return g.LossGap })
				base.Memorization = &gap
			}
			if len(base.GradNorms) > 0 {
				// Each checkpoint's ratio over the seeds that reached it.
				gn := append([]audit.GradNormPoint{}, base.GradNorms...)
				for i := range gn {
					var vals []float64
					var own []audit.Interval
					for _, rc := range recs {
						for _, p := range rc.Variant.GradNorms {
							if p.Epoch == gn[i].Epoch && p.Mode == gn[i].Mode {
								vals, own = append(vals, p.Ratio.Estimate), append(own, p.Ratio)
							}
						}
					}
					gn[i].Ratio = audit.SeedInterval(vals, own, cfg.Bootstrap)
				}
				base.GradNorms = gn
			}
		}
		base.Seeds = len(recs)
		if len(recs) > 1 {
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
				base.PerSeed = append(base.PerSeed, sr)
			}
		}
		agg[v] = base
		r.Variants = append(r.Variants, base)
	}
	if recs := records["original"]; len(recs) > 0 {
		r.Samples = recs[0].Samples
	} else if recs := records[cfg.Variants[0]]; len(recs) > 0 {
		r.Samples = recs[0].Samples
	}
	// Every run's own table, so that each variant's and each seed's AUCs
	// can be recomputed from the files.
	for _, v := range cfg.Variants {
		for k, rc := range records[v] {
			if rc.Samples != nil {
				r.Runs = append(r.Runs, audit.RunSamples{Variant: v, Seed: k, Table: rc.Samples})
			}
		}
	}
	orig, ok := agg["original"]
	if !ok {
		r.Verdict = "No original variant was trained, so there is no BN-versus-no-BN comparison."
		r.VerdictCode = "not_applicable"
		return r, nil
	}
	if orig.BatchNorms == 0 {
		r.Notes = append(r.Notes, "The original model has no BatchNorm layer; the variants equal it.")
	}
	var amplify, reduce, misfit []string
	for _, v := range cfg.Variants {
		if v == "original" {
			continue
		}
		other, ok := agg[v]
		if !ok {
			continue
		}
		cmp := compareVariants(cfg, records["original"], records[v], v)
		r.Comparisons = append(r.Comparisons, cmp...)
		for _, c := range cmp {
			if !c.Distinguishable {
				continue
			}
			if c.Diff.Estimate > 0 {
				amplify = append(amplify, fmt.Sprintf("%s (vs %s: %+.3g [%.3g, %.3g])", c.Metric, v, c.Diff.Estimate, c.Diff.Lo, c.Diff.Hi))
			} else {
				reduce = append(reduce, fmt.Sprintf("%s (vs %s: %+.3g [%.3g, %.3g])", c.Metric, v, c.Diff.Estimate, c.Diff.Lo, c.Diff.Hi))
			}
		}
		if d := orig.TrainAccuracy.Estimate - other.TrainAccuracy.Estimate; math.Abs(d) > 0.05 {
			misfit = append(misfit, v)
			r.Notes = append(r.Notes, fmt.Sprintf("Fit differs: the original reaches %.1f%% training accuracy and %s %.1f%%; memorization follows fit, so differences against %s may reflect under-fitting rather than batch statistics (docs/METHODS.md). Consider a matched-fit recipe (e.g. a tuned learning rate for %s).",
				100*orig.TrainAccuracy.Estimate, v, 100*other.TrainAccuracy.Estimate, v, v))
		}
	}
	sort.Strings(amplify)
	sort.Strings(reduce)
	switch {
	case len(amplify) > 0 && len(reduce) == 0:
		r.VerdictCode = "amplifies"
		r.Verdict = "BatchNorm amplifies memorization or leakage on this model and data: with BN, " + strings.Join(amplify, "; ") + " (differences with BN minus without, 95% intervals excluding 0)."
	case len(reduce) > 0 && len(amplify) == 0:
		r.VerdictCode = "reduces"
		r.Verdict = "BatchNorm does not amplify memorization here; the variants without it measure higher: " + strings.Join(reduce, "; ") + "."
	case len(reduce) > 0:
		r.VerdictCode = "mixed"
		r.Verdict = "Mixed: with BN higher on " + strings.Join(amplify, "; ") + "; lower on " + strings.Join(reduce, "; ") + "."
	default:
		r.VerdictCode = "not_distinguishable"
		r.Verdict = "Not distinguishable: no difference between the original (with BN) and its variants has a 95% interval that excludes zero at this scale."
	}
	if len(misfit) > 0 && r.VerdictCode != "not_distinguishable" {
		r.Verdict += fmt.Sprintf(" Caution: the original and %s do not fit their training data alike (training accuracy differs by more than 5 points), so part of these differences may be fit rather than batch statistics; see the notes.", strings.Join(misfit, ", "))
	}
	if cfg.Seeds == 1 && r.VerdictCode != "not_distinguishable" {
		r.Verdict = "On one training seed per variant (intervals over samples only, not over training runs): " + r.Verdict
	}
	if cfg.RefModels > 0 {
		perSample, _ := LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels)
		r.Notes = append(r.Notes, liraVarianceNote(perSample, cfg.RefModels))
	}
	if cfg.Seeds == 1 {
		r.Notes = append(r.Notes, "One seed per variant: intervals resample samples, not training runs; run-to-run variation is not in them (use --seeds K).")
	}
	return r, nil
}

// compareVariants computes with-BN minus without-BN differences, paired
// over the same samples, with a two-stage bootstrap over seeds and samples
// (HierarchicalInterval) or, with one seed, over samples.
func compareVariants(cfg CompareConfig, orig, other []*runRecord, name string) []audit.Comparison {
	var out []audit.Comparison
	// LOSS-attack AUC on members vs non-members, and on inserted vs
	// held-out canaries: the same samples in both models, so the difference
	// is bootstrapped paired over samples (one seed) or over seeds.
	aucDiff := func(metric string, scores func(*runRecord) ([]float64, []bool)) {
		k := min(len(orig), len(other))
		var diff audit.Interval
		if k > 1 {
			// Two-stage bootstrap: seeds, then samples within each seed.
			est := make([]float64, k)
			reps := make([][]float64, k)
			for i := 0; i < k; i++ {
				sa, ma := scores(orig[i])
				sb, mb := scores(other[i])
				if len(sa) == 0 || len(sa) != len(sb) || !equalBools(ma, mb) {
					return
				}
				d, r, err := audit.PairedAUCReplicates(sa, sb, ma, cfg.Bootstrap, uint64(i))
				if err != nil {
					return
				}
				est[i], reps[i] = d, r
			}
			diff = audit.HierarchicalInterval(est, reps, cfg.Bootstrap)
		} else {
			sa, ma := scores(orig[0])
			sb, mb := scores(other[0])
			if len(sa) == 0 || len(sa) != len(sb) || !equalBools(ma, mb) {
				return
			}
			di, err := audit.BootstrapDifference(sa, sb, ma, cfg.Bootstrap)
			if err != nil {
				return
			}
			diff = di.Diff.AUC
		}
		out = append(out, audit.Comparison{Metric: metric, With: "original", Without: name, Diff: diff,
			Distinguishable: !math.IsNaN(diff.Lo) && (diff.Lo > 0 || diff.Hi < 0)})
	}
	aucDiff("member_loss_auc", func(rc *runRecord) ([]float64, []bool) {
		s := append(audit.Negated(rc.MemberLoss), audit.Negated(rc.NonLoss)...)
		m := make([]bool, len(s))
		for i := range rc.MemberLoss {
			m[i] = true
		}
		return s, m
	})
	aucDiff("canary_loss_auc", func(rc *runRecord) ([]float64, []bool) {
		return audit.Negated(rc.CanaryLoss), rc.CanaryMember
	})
	// The strongest attack of the field, when reference models were trained.
	if hasScores(orig, "lira_online") && hasScores(other, "lira_online") {
		for _, canaries := range []bool{false, true} {
			metric := "member_lira_auc"
			if canaries {
				metric = "canary_lira_auc"
			}
			aucDiff(metric, func(rc *runRecord) ([]float64, []bool) {
				t := rc.Samples
				var s []float64
				var m []bool
				for i, sc := range t.Scores["lira_online"] {
					if t.Canary[i] == canaries {
						s, m = append(s, sc), append(m, t.Member[i])
					}
				}
				return s, m
			})
		}
	}
	// Outlier/typical gradient-norm ratio (eval mode), paired over the same
	// canaries and the same sampled members in both models.
	ratio := func(rc *runRecord, io, it []int) float64 {
		return audit.Median(audit.Pick(rc.GradOutlier, io)) / audit.Median(audit.Pick(rc.GradTypical, it))
	}
	if k := min(len(orig), len(other)); k > 1 {
		est := make([]float64, k)
		reps := make([][]float64, k)
		for i := 0; i < k; i++ {
			a, b := orig[i], other[i]
			if len(a.GradOutlier) == 0 || len(a.GradOutlier) != len(b.GradOutlier) || len(a.GradTypical) != len(b.GradTypical) || len(a.GradTypical) == 0 {
				return out
			}
			est[i] = ratio(a, seq(len(a.GradOutlier)), seq(len(a.GradTypical))) - ratio(b, seq(len(b.GradOutlier)), seq(len(b.GradTypical)))
			opt, _ := cfg.Bootstrap.WithDefaults()
			r := rand.New(rand.NewPCG(opt.Seed^0x67726174, uint64(i)+1))
			reps[i] = make([]float64, opt.Replicates)
			io, it := make([]int, len(a.GradOutlier)), make([]int, len(a.GradTypical))
			for rep := range reps[i] {
				for j := range io {
					io[j] = r.IntN(len(io))
				}
				for j := range it {
					it[j] = r.IntN(len(it))
				}
				reps[i][rep] = ratio(a, io, it) - ratio(b, io, it)
			}
		}
		diff := audit.HierarchicalInterval(est, reps, cfg.Bootstrap)
		out = append(out, audit.Comparison{Metric: "grad_norm_ratio", With: "original", Without: name, Diff: diff, Distinguishable: diff.Lo > 0 || diff.Hi < 0})
	} else if a, b := orig[0], other[0]; len(a.GradOutlier) > 0 && len(a.GradOutlier) == len(b.GradOutlier) && len(a.GradTypical) == len(b.GradTypical) && len(a.GradTypical) > 0 {
		ivs, err := audit.BootstrapGroups([]int{len(a.GradOutlier), len(a.GradTypical)}, func(idx [][]int) []float64 {
			return []float64{ratio(a, idx[0], idx[1]) - ratio(b, idx[0], idx[1])}
		}, cfg.Bootstrap)
		if err == nil {
			out = append(out, audit.Comparison{Metric: "grad_norm_ratio", With: "original", Without: name, Diff: ivs[0], Distinguishable: ivs[0].Lo > 0 || ivs[0].Hi < 0})
		}
	}
	return out
}

// hasScores reports whether every run has the attack's per-sample scores.
func hasScores(recs []*runRecord, attack string) bool {
	for _, rc := range recs {
		if rc.Samples == nil || len(rc.Samples.Scores[attack]) != len(rc.Samples.Member) || len(rc.Samples.Canary) != len(rc.Samples.Member) {
			return false
		}
	}
	return len(recs) > 0
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Definitions explains every metric a report shows.
func Definitions() map[string]string {
	return map[string]string{
		"loss":                         "LOSS attack (Yeom et al. 2018): score = −cross-entropy, from float64 log-sum-exp of the logits.",
		"confidence":                   "Confidence attack: score = true-class probability p_y.",
		"entropy":                      "Entropy attack: score = −H(p).",
		"modified_entropy":             "Modified-entropy attack (Song & Mittal 2021, eq. 8): score = −Mentr.",
		"auc":                          "Area under the ROC curve, members positive, ties as one step (as scikit-learn); interval: 95% stratified bootstrap over samples.",
		"advantage":                    "Attacker advantage (Yeom et al. 2018): the largest TPR − FPR over all thresholds of the attack's score; interval: 95% stratified bootstrap over samples.",
		"balanced_accuracy":            "Balanced accuracy of the best threshold: (TPR + 1 − FPR)/2 = (1 + advantage)/2; its interval maps the advantage interval the same way.",
		"loss_gap":                     "Canary memorization in loss: mean cross-entropy on inserted canaries minus held-out canaries (negative: inserted canaries are fitted).",
		"feldman_zhang":                "Feldman–Zhang memorization (Feldman & Zhang 2020): accuracy of the reference models that trained on the sample minus that of the models that did not; summarized over the samples with at least one IN and one OUT model.",
		"tpr_at_fpr":                   "Largest TPR among ROC points with FPR ≤ target (no interpolation), with the number of false positives the target allows among the non-members.",
		"accuracy_gap":                 "Canary memorization: accuracy on inserted canaries minus held-out canaries (same source, same random-label rule).",
		"grad_norm_ratio":              "Median eval-mode per-sample gradient norm of inserted canaries over that of a sample of typical members.",
		"member_loss_auc":              "Comparison metric: LOSS-attack AUC on members vs non-members, with BN minus without, bootstrapped paired over the same samples (or over seeds).",
		"canary_loss_auc":              "Comparison metric: LOSS-attack AUC on inserted vs held-out canaries, with BN minus without (paired as above).",
		"member_lira_auc":              "Comparison metric: LiRA (online, fixed variance) AUC on members vs non-members, with BN minus without (each variant with its own reference models; paired as above).",
		"canary_lira_auc":              "Comparison metric: LiRA (online) AUC on inserted vs held-out canaries, with BN minus without (paired as above).",
		"lira_online":                  "LiRA online (Carlini et al. 2022): likelihood ratio of the target's φ under Gaussians fitted to reference models trained with (IN) and without (OUT) the sample; one pooled σ_in and σ_out (fixed variance) below 64 reference models, per-sample σ from 64 on or with --lira-variance per-sample (the notes say which).",
		"lira_offline":                 "LiRA offline: one-sided test of the target's φ against the OUT Gaussian only, fitted on the reference models that did not train on the sample (the OUT half of the same models, as in Carlini et al.'s offline attack; no model trained on it is used).",
		"rmia_online":                  "RMIA (Zarifzadeh et al. 2024), online, γ = 1: share of population samples z whose likelihood ratio the sample dominates, with Pr(x) averaged over IN and OUT reference models.",
		"rmia_offline":                 "RMIA offline: Pr(x) from the OUT reference models only, ((1+a)/2)·mean_OUT + (1−a)/2, with a in {0, 0.1, …, 1} tuned on reference model 0 taken as the target.",
		"grad_norm_inbatch":            "In-batch gradient norm: the canaries and the sampled members shuffled together into batches of the training batch size, BN on batch statistics; each sample's own loss term's gradient norm inside its batch.",
		"slices":                       "Slices: the strongest attack on members vs non-members restricted to one class, to canaries or typical samples, or to samples the model classifies correctly or not; slices with fewer than 10 members or non-members are left out.",
		"grad_norm_ratio (comparison)": "Difference of the outlier/typical gradient-norm ratios, paired over the same canaries and sampled members.",
	}
}
