package study

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// ExperimentConfig is one membership and memorization experiment on one
// model variant: train it on Members plus the inserted canaries, then
// attack it with members against NonMembers, and inserted against held-out
// canaries.
type ExperimentConfig struct {
	// Name labels the variant ("original", "remove", …).
	Name string
	// Train is the training recipe; its Train field is set by the
	// experiment (members + inserted canaries), and Test to NonMembers.
	Train      trainer.Config
	Members    *dataset.Dataset
	NonMembers *dataset.Dataset
	Canaries   *Canaries
	// GradNormSample is how many members the gradient-norm study compares
	// the canaries with (0: DefaultGradNormSample).
	GradNormSample int
	// GradNormCheckpoints measures the eval-mode gradient-norm study at
	// that many evenly spaced epochs of training, the last included (0 or
	// 1: after the last one only).
	GradNormCheckpoints int
	// InBatch adds the in-batch gradient-norm study at the same epochs:
	// the canaries and the sampled members shuffled together into batches
	// of the training batch size, BN on batch statistics.
	InBatch bool
	// GradNormDir, when set, keeps the points measured along training, one
	// file per epoch, so that a run resumed from a checkpoint reports the
	// epochs measured before the interruption. Without it (or with one of
	// them missing) a resumed run that measures along training is trained
	// again from the start.
	GradNormDir string
	// Augmentations > 0 adds the data-augmentation label-only attack with
	// that many queries per sample (the first the sample itself).
	Augmentations int
	// Bootstrap options of every interval.
	Bootstrap audit.BootstrapOptions
	// Session runs evaluation and gradient graphs.
	Session ort.SessionOptions
	// Cache keeps logits on disk by model and data hashes.
	Cache SignalCache
	// References, when set, are the variant's reference models evaluated
	// on the pool members ∪ non-members ∪ inserted ∪ held-out canaries (in
	// that order): Measure adds LiRA, RMIA and Feldman–Zhang scores.
	References *ReferenceSignals
	// rmiaZ, when set, is RMIA's population (else the non-canary
	// non-members).
	rmiaZ *audit.RMIAData
	// qmia, when set, adds the quantile-regression attack (audits only).
	qmia *qmiaRun
}

// ExperimentResult is a trained variant with its measurements.
type ExperimentResult struct {
	Variant audit.VariantReport
	Samples *audit.SampleTable
	Model   *onnxio.Model
	// TypicalGradNorms are the eval-mode gradient norms of the sampled
	// members the canaries were compared with (same samples for every
	// model of a comparison).
	TypicalGradNorms []float64
	// Epochs trained, and whether a matched-fit target stopped training
	// before the maximum.
	Epochs       int
	StoppedEarly bool
	// Fallbacks are the trainer's notes on session rewrites ONNX Runtime
	// refused (the run trained on the standard graph instead).
	Fallbacks []string
	// notes explain attacks that need them in the report (qmia).
	notes []string
}

// threshold attacks run on every model, with their names in reports.
var thresholdAttacks = []struct {
	name  string
	score func(audit.Signals) []float64
}{
	{audit.AttackLoss, audit.LossScores},
	{audit.AttackConfidence, audit.ConfidenceScores},
	{audit.AttackEntropy, audit.EntropyScores},
	{audit.AttackModifiedEntropy, audit.ModEntropyScores},
	// Label-only: the predicted label's correctness, from the argmax alone.
	{audit.AttackGap, audit.GapScores},
}

// RunExperiment trains and measures one variant.
func RunExperiment(ctx context.Context, cfg ExperimentConfig) (*ExperimentResult, error) {
	if cfg.Members == nil || cfg.NonMembers == nil {
		return nil, fmt.Errorf("study: an experiment needs members and non-members: %w", audit.ErrInvalidInput)
	}
	train := cfg.Members
	var err error
	if cfg.Canaries != nil {
		if train, err = dataset.Concat(cfg.Members.Name()+" + canaries", cfg.Members, cfg.Canaries.Inserted); err != nil {
			return nil, err
		}
	}
	tc := cfg.Train
	tc.Train, tc.Test = train, cfg.NonMembers
	var along []audit.GradNormPoint
	at := alongEpochs(cfg, tc.Epochs)
	if len(at) > 0 {
		tc.OnEpoch = func(ctx context.Context, e trainer.EpochEnd) error {
			if !slices.Contains(at, e.Epoch) {
				return nil
			}
			pts, err := gradNormPoints(ctx, e.Model, cfg)
			if err != nil {
				return err
			}
			for i := range pts {
				pts[i].Epoch = e.Epoch
			}
			along = append(along, pts...)
			// Recorded, so that a resumed run still reports the epochs
			// finished before the interruption.
			if cfg.GradNormDir != "" {
				return saveGradNorms(cfg.GradNormDir, e.Epoch, pts)
			}
			return nil
		}
	}
	res, err := trainer.Train(ctx, tc)
	if err != nil {
		return nil, err
	}
	if res.Resumed && len(at) > 0 {
		// The epochs before the checkpoint were measured by the run that
		// wrote it; one it could not record (interrupted between the
		// checkpoint and the record, or no GradNormDir) cannot be measured
		// again from the checkpoint, so the run is trained again from the
		// start, which gives the same weights.
		pts, missing, err := loadGradNorms(cfg.GradNormDir, epochsBefore(at, len(res.Epochs)))
		if err != nil {
			return nil, err
		}
		if along = pts; len(missing) > 0 {
			along = nil
			tc.Resume = false
			if res, err = trainer.Train(ctx, tc); err != nil {
				return nil, err
			}
		}
	}
	out, err := Measure(ctx, res.Model, cfg)
	if err != nil {
		return nil, err
	}
	addTraining(&out.Variant, res, along)
	out.StoppedEarly = res.StoppedEarly
	out.Fallbacks = res.Fallbacks
	out.Epochs = len(res.Epochs)
	out.Model = res.Model
	return out, nil
}

// alongEpochs are the epochs before the maximum at which the gradient-norm
// study is measured during training (the last epoch trained is Measure's),
// in increasing order; none without canaries or with one checkpoint.
func alongEpochs(cfg ExperimentConfig, epochs int) []int {
	if cfg.GradNormCheckpoints <= 1 || cfg.Canaries == nil {
		return nil
	}
	var at []int
	for e := range checkpointEpochs(epochs, cfg.GradNormCheckpoints) {
		if e != epochs {
			at = append(at, e)
		}
	}
	slices.Sort(at)
	return at
}

// epochsBefore keeps the epochs before last.
func epochsBefore(at []int, last int) []int {
	var out []int
	for _, e := range at {
		if e < last {
			out = append(out, e)
		}
	}
	return out
}

// gradNormPoints measures the gradient-norm studies of the inserted
// canaries on the model of one epoch: eval mode, and in batch when asked.
func gradNormPoints(ctx context.Context, m *onnxio.Model, cfg ExperimentConfig) ([]audit.GradNormPoint, error) {
	pt, _, _, err := gradNormStudy(ctx, m, cfg, cfg.Canaries.Inserted)
	if err != nil {
		return nil, err
	}
	pts := []audit.GradNormPoint{pt}
	if cfg.InBatch {
		ib, _, _, err := inBatchStudy(ctx, m, cfg, cfg.Canaries.Inserted)
		if err != nil {
			return nil, err
		}
		pts = append(pts, ib)
	}
	return pts, nil
}

// addTraining completes a trained variant's row with what training knows:
// the last epoch's training loss and accuracy, and the gradient-norm
// points measured along training before Measure's at the last epoch.
func addTraining(v *audit.VariantReport, res *trainer.Result, along []audit.GradNormPoint) {
	last := res.Epochs[len(res.Epochs)-1]
	v.TrainLoss = audit.PointInterval(last.TrainLoss)
	v.TrainAccuracy = audit.PointInterval(last.TrainAcc)
	v.Seeds = 1
	for i := range v.GradNorms {
		v.GradNorms[i].Epoch = len(res.Epochs)
	}
	// A run stopped early measured its last epoch along training too;
	// that one is Measure's.
	var before []audit.GradNormPoint
	for _, pt := range along {
		if pt.Epoch < len(res.Epochs) {
			before = append(before, pt)
		}
	}
	v.GradNorms = append(before, v.GradNorms...)
}

// Measure attacks a trained model: signals on members, non-members and
// canaries, the threshold attacks with bootstrap intervals, the canary
// memorization gap and the eval-mode gradient-norm study.
func Measure(ctx context.Context, m *onnxio.Model, cfg ExperimentConfig) (*ExperimentResult, error) {
	bs := cfg.Bootstrap
	sig := func(d *dataset.Dataset) (audit.Signals, error) {
		return cfg.Cache.Signals(ctx, m, d, cfg.Session)
	}
	mem, err := sig(cfg.Members)
	if err != nil {
		return nil, err
	}
	non, err := sig(cfg.NonMembers)
	if err != nil {
		return nil, err
	}
	bns, _ := onnxio.FindBatchNorms(m)
	mh, err := ModelHash(m)
	if err != nil {
		return nil, err
	}
	v := audit.VariantReport{Name: cfg.Name, Model: m.Name, ModelHash: mh, BatchNorms: len(bns)}
	v.TestAccuracy = audit.PointInterval(audit.Mean(audit.BoolsToFloats(non.Correct)))
	v.TestLoss = audit.PointInterval(audit.Mean(non.Loss))
	// Members against non-members.
	all := audit.ConcatSignals(mem, non)
	member := make([]bool, all.Len())
	for i := 0; i < mem.Len(); i++ {
		member[i] = true
	}
	table := &audit.SampleTable{Variant: cfg.Name, Scores: map[string][]float64{}}
	for i := range member {
		table.Index = append(table.Index, i)
		table.Member = append(table.Member, member[i])
	}
	table.Label = append(append([]int64{}, cfg.Members.Labels()...), cfg.NonMembers.Labels()...)
	for _, a := range thresholdAttacks {
		rep, err := audit.NewAttackReport(a.name, a.score(all), member, bs)
		if err != nil {
			return nil, err
		}
		v.Attacks = append(v.Attacks, rep)
		table.Scores[a.name] = a.score(all)
	}
	table.Phi, table.Loss, table.Correct = all.Phi, all.Loss, all.Correct
	table.Canary = make([]bool, all.Len())
	var typicalNorms []float64
	// Canaries: inserted against held out.
	if c := cfg.Canaries; c != nil {
		ins, err := sig(c.Inserted)
		if err != nil {
			return nil, err
		}
		held, err := sig(c.HeldOut)
		if err != nil {
			return nil, err
		}
		gap, err := audit.CanaryMemorization(ins, held, bs)
		if err != nil {
			return nil, err
		}
		v.Memorization = &gap
		both := audit.ConcatSignals(ins, held)
		cm := make([]bool, both.Len())
		for i := 0; i < ins.Len(); i++ {
			cm[i] = true
		}
		for _, a := range thresholdAttacks {
			rep, err := audit.NewAttackReport(a.name, a.score(both), cm, bs)
			if err != nil {
				return nil, err
			}
			v.CanaryAttacks = append(v.CanaryAttacks, rep)
			table.Scores[a.name] = append(table.Scores[a.name], a.score(both)...)
		}
		base := len(table.Index)
		for i := 0; i < both.Len(); i++ {
			table.Index = append(table.Index, base+i)
			table.Member = append(table.Member, cm[i])
			table.Canary = append(table.Canary, true)
		}
		table.Label = append(append(table.Label, c.Inserted.Labels()...), c.HeldOut.Labels()...)
		table.Phi = append(append([]float64{}, table.Phi...), both.Phi...)
		table.Loss = append(append([]float64{}, table.Loss...), both.Loss...)
		table.Correct = append(append([]bool{}, table.Correct...), both.Correct...)
		// Gradient norms of the inserted canaries against typical members.
		pt, norms, typical, err := gradNormStudy(ctx, m, cfg, c.Inserted)
		if err != nil {
			return nil, err
		}
		v.GradNorms = append(v.GradNorms, pt)
		typIdx := typicalIdx(cfg)
		table.GradNormEval = normColumn(len(table.Index), base, norms, typIdx, typical)
		table.GradNormInBatch = nil
		typicalNorms = typical
		if cfg.InBatch {
			pt, ins, typ, err := inBatchStudy(ctx, m, cfg, c.Inserted)
			if err != nil {
				return nil, err
			}
			v.GradNorms = append(v.GradNorms, pt)
			table.GradNormInBatch = normColumn(len(table.Index), base, ins, typIdx, typ)
		}
	}
	if cfg.Augmentations > 0 {
		if err := addAugmentationAttack(ctx, m, cfg, &v, table); err != nil {
			return nil, err
		}
	}
	if cfg.References != nil {
		if err := addReferenceAttacks(&v, table, cfg.References, cfg.rmiaZ, bs); err != nil {
			return nil, err
		}
	}
	var notes []string
	if cfg.qmia != nil {
		if notes, err = addQMIAAttack(ctx, m, cfg, &v, table); err != nil {
			return nil, err
		}
	}
	if err := finishVariant(&v, table, bs); err != nil {
		return nil, err
	}
	return &ExperimentResult{Variant: v, Samples: table, TypicalGradNorms: typicalNorms, notes: notes}, nil
}

// addReferenceAttacks runs LiRA, RMIA and Feldman–Zhang with reference
// models evaluated on the table's samples (same order): on members vs
// non-members, and on inserted vs held-out canaries, with the non-canary
// non-members as RMIA's population z.
func addReferenceAttacks(v *audit.VariantReport, t *audit.SampleTable, ref *ReferenceSignals, z *audit.RMIAData, bs audit.BootstrapOptions) error {
	n := len(t.Member)
	if len(ref.Phi) == 0 || len(ref.Phi[0]) != n {
		return fmt.Errorf("study: reference signals cover %d samples, the table %d: %w", len(ref.Phi[0]), n, audit.ErrInvalidInput)
	}
	// The target's probabilities of the true class, from φ: p = σ(φ).
	target := audit.Signals{Phi: t.Phi, Prob: make([]float64, n)}
	for i, f := range t.Phi {
		target.Prob[i] = 1 / (1 + math.Exp(-f))
	}
	var zIdx, typ, can []int
	for i := 0; i < n; i++ {
		if t.Canary[i] {
			can = append(can, i)
			continue
		}
		typ = append(typ, i)
		if !t.Member[i] {
			zIdx = append(zIdx, i)
		}
	}
	if z == nil {
		z = ref.population(target.Prob, zIdx)
	}
	scores, fz, err := referenceScores(target, ref, t.Member, z)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(scores))
	for name := range scores {
		names = append(names, name)
	}
	sort.Strings(names)
	memberOf := func(idx []int) []bool {
		out := make([]bool, len(idx))
		for j, i := range idx {
			out[j] = t.Member[i]
		}
		return out
	}
	for _, name := range names {
		rep, err := audit.NewAttackReport(name, audit.Pick(scores[name], typ), memberOf(typ), bs)
		if err != nil {
			return err
		}
		rep.ModelsTrained = len(ref.Phi)
		v.Attacks = append(v.Attacks, rep)
		if len(can) > 0 {
			rep, err := audit.NewAttackReport(name, audit.Pick(scores[name], can), memberOf(can), bs)
			if err != nil {
				return err
			}
			rep.ModelsTrained = len(ref.Phi)
			v.CanaryAttacks = append(v.CanaryAttacks, rep)
		}
		t.Scores[name] = scores[name]
	}
	t.Memorization = fz
	t.PhiRef, t.InRef = ref.Phi, ref.In
	if f := finite(fz); len(f) > 0 {
		d := audit.NewDistribution(f)
		v.FeldmanZhang = &d
	}
	return nil
}

// finishVariant adds the slices and the most vulnerable members of the
// strongest attack on members vs non-members.
func finishVariant(v *audit.VariantReport, t *audit.SampleTable, bs audit.BootstrapOptions) error {
	name := audit.StrongestAttack(v.Attacks)
	if name == "" {
		return nil
	}
	sl, err := audit.ComputeSlices(audit.SliceInput{Attack: name, Scores: t.Scores[name], Member: t.Member, Label: t.Label, Correct: t.Correct, Canary: t.Canary}, bs)
	if err != nil {
		return err
	}
	v.Slices = sl
	v.VulnerableBy = name
	v.Vulnerable = audit.MostVulnerable(t, name, audit.DefaultVulnerable)
	return nil
}

// gradNormStudy compares eval-mode per-sample gradient norms of the
// outliers with those of a seeded sample of members.
func gradNormStudy(ctx context.Context, m *onnxio.Model, cfg ExperimentConfig, outliers *dataset.Dataset) (audit.GradNormPoint, []float64, []float64, error) {
	typ, err := cfg.Members.Subset(typicalIdx(cfg))
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	on, err := cfg.Cache.GradNorms(ctx, m, outliers, trainer.GradNormEval, gradNormBatch, cfg.Session)
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	tn, err := cfg.Cache.GradNorms(ctx, m, typ, trainer.GradNormEval, gradNormBatch, cfg.Session)
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	ratio, err := audit.MedianRatio(on, tn, cfg.Bootstrap)
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	pt := audit.GradNormPoint{Mode: string(trainer.GradNormEval), Outlier: audit.NewDistribution(on), Typical: audit.NewDistribution(tn), Ratio: ratio}
	return pt, on, tn, nil
}

// checkpointEpochs picks k evenly spaced epochs of 1…n, n included.
func checkpointEpochs(n, k int) map[int]bool {
	at := map[int]bool{n: true}
	for i := 1; i <= k; i++ {
		at[max(1, (i*n+k-1)/k)] = true
	}
	return at
}

// normColumn lays gradient norms out as a per-sample column of n rows:
// the inserted canaries' from row base on, the sampled members' at their
// rows typIdx, NaN elsewhere.
func normColumn(n, base int, canaries []float64, typIdx []int, typical []float64) []float64 {
	col := make([]float64, n)
	for i := range col {
		col[i] = math.NaN()
	}
	copy(col[base:], canaries)
	for j, i := range typIdx {
		col[i] = typical[j]
	}
	return col
}

// typicalIdx is the seeded sample of members the gradient-norm studies
// compare the outliers with (the same for every model of a comparison).
func typicalIdx(cfg ExperimentConfig) []int {
	k := min(gradNormSample(cfg.GradNormSample), cfg.Members.Len())
	r := audit.StreamTypicalMembers.Rand(cfg.Bootstrap.Seed)
	return r.Perm(cfg.Members.Len())[:k]
}

// inBatchStudy measures in-batch gradient norms (docs/METHODS.md): the outliers
// and the sampled members are shuffled together (seeded) and cut into
// batches of the training batch size, run with BatchNorm on batch
// statistics; each sample's norm is that of its own loss term's gradient
// inside its batch. It returns the point and the outliers' and typical
// members' norms in their own orders.
func inBatchStudy(ctx context.Context, m *onnxio.Model, cfg ExperimentConfig, outliers *dataset.Dataset) (audit.GradNormPoint, []float64, []float64, error) {
	typ, err := cfg.Members.Subset(typicalIdx(cfg))
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	mix, err := dataset.Concat("canaries + typical", outliers, typ)
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	r := audit.StreamInBatchShuffle.Rand(cfg.Bootstrap.Seed)
	perm := r.Perm(mix.Len())
	shuffled, err := mix.Subset(perm)
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	batch := cfg.Train.Batch
	if batch <= 0 {
		batch = inBatchDefault
	}
	norms, err := cfg.Cache.GradNorms(ctx, m, shuffled, trainer.GradNormInBatch, batch, cfg.Session)
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	back := make([]float64, len(norms))
	for j, i := range perm {
		back[i] = norms[j]
	}
	on, tn := back[:outliers.Len()], back[outliers.Len():]
	ratio, err := audit.MedianRatio(on, tn, cfg.Bootstrap)
	if err != nil {
		return audit.GradNormPoint{}, nil, nil, err
	}
	pt := audit.GradNormPoint{Mode: string(trainer.GradNormInBatch), Outlier: audit.NewDistribution(on), Typical: audit.NewDistribution(tn), Ratio: ratio}
	return pt, on, tn, nil
}
