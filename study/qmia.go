package study

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// The quantile-regression attack (docs/METHODS.md, "Quantile-regression
// MIA"; Bertran et al. 2023) in an audit: a regression model (qmiamodel.go)
// is trained on non-members only to predict, from a sample and its label,
// a Gaussian for the audited model's hinge score on it; each sample's
// score is its standardized position z = (s − μ(x))/σ(x) (audit.QMIAScores).
// The non-members the regression is fitted on are never scored: without a
// population they are a seeded random share of the non-members, and the
// attack is evaluated on the members against the rest.

// QMIAConfig configures the quantile-regression attack.
type QMIAConfig struct {
	// FitFraction is the share of the non-members the regression is
	// fitted on, drawn at random from the audit's seed (0:
	// DefaultQMIAFitFraction); the others are scored. With a population
	// (AuditConfig.Population) the regression is fitted on the population
	// instead and every non-member is scored.
	FitFraction float64 `json:"fit_fraction,omitempty"`
	// Epochs, Batch and LR are the regression's training: AdamW with
	// weight decay QMIAWeightDecay and a cosine schedule, from scratch (0:
	// DefaultQMIAEpochs, DefaultQMIABatch, DefaultQMIALR).
	Epochs int     `json:"epochs,omitempty"`
	Batch  int     `json:"batch,omitempty"`
	LR     float32 `json:"lr,omitempty"`
}

// qmiaRunOf is the attack's run for q (nil: no attack), fitted on part of
// the non-members.
func qmiaRunOf(q *QMIAConfig) *qmiaRun {
	if q == nil {
		return nil
	}
	return &qmiaRun{cfg: *q}
}

// Defaults of the quantile-regression attack.
const (
	DefaultQMIAFitFraction = 0.5
	DefaultQMIAEpochs      = 30
	DefaultQMIABatch       = 32
	DefaultQMIALR          = 1e-3
	QMIAWeightDecay        = 5e-4
	// qmiaMinFit is the fewest samples a regression is fitted on.
	qmiaMinFit = 10
)

// withDefaults fills the zero fields and checks the others.
func (q QMIAConfig) withDefaults() (QMIAConfig, error) {
	if q.FitFraction == 0 {
		q.FitFraction = DefaultQMIAFitFraction
	}
	if q.Epochs == 0 {
		q.Epochs = DefaultQMIAEpochs
	}
	if q.Batch == 0 {
		q.Batch = DefaultQMIABatch
	}
	if q.LR == 0 {
		q.LR = DefaultQMIALR
	}
	switch {
	case !(q.FitFraction > 0 && q.FitFraction < 1):
		return q, fmt.Errorf("study: the share of non-members the regression is fitted on must lie in (0, 1), not %v: %w", q.FitFraction, audit.ErrInvalidInput)
	case q.Epochs < 0 || q.Batch < 0 || !(q.LR > 0) || math.IsInf(float64(q.LR), 0):
		return q, fmt.Errorf("study: the regression's epochs %d, batch %d and learning rate %v must be positive: %w", q.Epochs, q.Batch, q.LR, audit.ErrInvalidInput)
	}
	return q, nil
}

// qmiaRun is the attack as Measure runs it: its settings and, when the
// audit has one, the population the regression is fitted on.
type qmiaRun struct {
	cfg        QMIAConfig
	population *dataset.Dataset
}

// qmiaSplit is the attack's use of the samples, all drawn from the audit's
// seed (audit.StreamQMIA, in this order): which non-members fit the
// regression and which are scored (none fit with a population), which of
// the fitting samples (rows of the fitting set) train it and which
// validate it, and the seed it trains with.
type qmiaSplit struct {
	fit, scored []int // rows of the non-members, increasing
	train, val  []int // rows of the fitting set, increasing
	seed        uint64
}

// qmiaValFraction is the share of the fitting samples that choose the
// regression's epoch (the one of least Gaussian NLL on them) instead of
// training it.
const qmiaValFraction = 0.2

// splitQMIA draws the split for nonMembers non-members and, with a
// population, popSize fitting samples.
func splitQMIA(nonMembers int, frac float64, popSize int, seed uint64) qmiaSplit {
	r := audit.StreamQMIA.Rand(seed)
	var sp qmiaSplit
	nFit := popSize
	if popSize > 0 {
		sp.scored = seq(nonMembers)
	} else {
		perm := r.Perm(nonMembers)
		nFit = int(math.Round(frac * float64(nonMembers)))
		sp.fit, sp.scored = sorted(perm[:nFit]), sorted(perm[nFit:])
	}
	perm := r.Perm(nFit)
	nVal := int(math.Round(qmiaValFraction * float64(nFit)))
	sp.val, sp.train = sorted(perm[:nVal]), sorted(perm[nVal:])
	sp.seed = r.Uint64()
	return sp
}

func sorted(v []int) []int {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}

// hinge returns the audited model's hinge scores on d and its class count.
func hinge(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, cfg ExperimentConfig) ([]float64, int, error) {
	lg, k, err := cfg.Cache.Logits(ctx, m, d, signalBatch, cfg.Session)
	if err != nil {
		return nil, 0, err
	}
	s, err := audit.HingeScores(lg, k, d.Labels())
	return s, k, err
}

// gaussians returns the regression's (μ, log σ) for every sample of d:
// the pair of its label.
func gaussians(ctx context.Context, reg *onnxio.Model, d *dataset.Dataset, cfg ExperimentConfig) (mu, logSigma []float64, err error) {
	o, err := trainer.Evaluate(ctx, reg, d, signalBatch, cfg.Session)
	if err != nil {
		return nil, nil, err
	}
	for i, y := range d.Labels() {
		row := o.Logits[i*o.Classes:]
		mu = append(mu, float64(row[2*y]))
		logSigma = append(logSigma, float64(row[2*y+1]))
	}
	return mu, logSigma, nil
}

// addQMIAAttack trains the regression, scores the members and the scored
// non-members, and adds the attack on them to the variant, its scores to
// the table (NaN on the rows it does not score: the fitting non-members
// and any canary) and returns the notes that explain it.
func addQMIAAttack(ctx context.Context, m *onnxio.Model, cfg ExperimentConfig, v *audit.VariantReport, t *audit.SampleTable) ([]string, error) {
	q, err := cfg.qmia.cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	nm, nn := cfg.Members.Len(), cfg.NonMembers.Len()
	memH, classes, err := hinge(ctx, m, cfg.Members, cfg)
	if err != nil {
		return nil, err
	}
	nonH, _, err := hinge(ctx, m, cfg.NonMembers, cfg)
	if err != nil {
		return nil, err
	}
	pop := cfg.qmia.population
	popSize := 0
	if pop != nil {
		popSize = pop.Len()
	}
	sp := splitQMIA(nn, q.FitFraction, popSize, cfg.Bootstrap.Seed)
	fit, fitH := pop, []float64(nil)
	if pop != nil {
		if fitH, _, err = hinge(ctx, m, pop, cfg); err != nil {
			return nil, err
		}
	} else {
		if fit, err = cfg.NonMembers.Subset(sp.fit); err != nil {
			return nil, err
		}
		fitH = audit.Pick(nonH, sp.fit)
	}
	if len(sp.train) < qmiaMinFit || len(sp.val) == 0 || len(sp.scored) == 0 {
		return nil, fmt.Errorf("study: the quantile-regression attack needs at least %d samples to train its regression on, one to validate it and one non-member to score; the split gives %d, %d and %d: %w",
			qmiaMinFit, len(sp.train), len(sp.val), len(sp.scored), audit.ErrInvalidInput)
	}
	st, err := audit.StandardizationOf(fitH)
	if err != nil {
		return nil, err
	}
	reg, arch, err := qmiaRegressor(fit.SampleShape(), classes)
	if err != nil {
		return nil, err
	}
	trained, err := trainRegression(ctx, reg, fit, st.Apply(fitH), sp, q, cfg)
	if err != nil {
		return nil, err
	}
	// Scores of the members and of every non-member; the fitting ones are
	// then left out.
	memMu, memLS, err := gaussians(ctx, trained.model, cfg.Members, cfg)
	if err != nil {
		return nil, err
	}
	nonMu, nonLS, err := gaussians(ctx, trained.model, cfg.NonMembers, cfg)
	if err != nil {
		return nil, err
	}
	z, err := audit.QMIAScores(append(slices.Clone(memH), nonH...), append(memMu, nonMu...), append(memLS, nonLS...), st)
	if err != nil {
		return nil, err
	}
	col := make([]float64, len(t.Member))
	for i := range col {
		col[i] = math.NaN()
	}
	rows := make([]int, 0, nm+len(sp.scored)) // table rows scored: members, then scored non-members
	for i := 0; i < nm; i++ {
		rows = append(rows, i)
	}
	for _, j := range sp.scored {
		rows = append(rows, nm+j)
	}
	member := make([]bool, len(rows))
	for k, i := range rows {
		col[i], member[k] = z[i], t.Member[i]
	}
	rep, err := audit.NewAttackReport(audit.AttackQMIA, audit.Pick(col, rows), member, cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	rep.ModelsTrained = 1
	v.Attacks = append(v.Attacks, rep)
	t.Scores[audit.AttackQMIA] = col
	return qmiaNotes(qmiaSummary{q: q, arch: arch, fit: fit.Len(), val: len(sp.val), population: pop != nil, members: nm, scored: len(sp.scored),
		trained: trained, rep: rep, rows: rows, member: member, z: audit.Pick(col, rows),
		scoredH: st.Apply(audit.Pick(nonH, sp.scored)), scoredMu: audit.Pick(nonMu, sp.scored), scoredLS: audit.Pick(nonLS, sp.scored)}, t, cfg.Bootstrap)
}

// regression is a trained regression model with the epoch chosen.
type regression struct {
	model         *onnxio.Model
	epoch, epochs int
	valNLL        float64
}

// trainRegression trains the regression on the split's training rows of
// fit (targets: the standardized hinge scores of fit) and keeps the model
// of the epoch whose Gaussian NLL on the validation rows is least.
func trainRegression(ctx context.Context, reg *onnxio.Model, fit *dataset.Dataset, targets []float64, sp qmiaSplit, q QMIAConfig, cfg ExperimentConfig) (regression, error) {
	train, err := fit.Subset(sp.train)
	if err != nil {
		return regression{}, err
	}
	val, err := fit.Subset(sp.val)
	if err != nil {
		return regression{}, err
	}
	tt := make([]float32, len(sp.train))
	for i, k := range sp.train {
		tt[i] = float32(targets[k])
	}
	valT := audit.Pick(targets, sp.val)
	best := regression{valNLL: math.Inf(1), epochs: q.Epochs}
	_, err = trainer.Train(ctx, trainer.Config{Model: reg, Init: trainer.InitScratch, Train: train, Epochs: q.Epochs, Batch: q.Batch,
		Optimizer: trainer.AdamW(QMIAWeightDecay), LR: q.LR, Schedule: trainer.Cosine, Seed: sp.seed,
		Loss: trainer.LossGaussianNLL, Targets: tt, Session: cfg.Session,
		OnEpoch: func(ctx context.Context, e trainer.EpochEnd) error {
			mu, ls, err := gaussians(ctx, e.Model, val, cfg)
			if err != nil {
				return err
			}
			nll, err := audit.MeanGaussianNLL(valT, mu, ls)
			if err != nil {
				return err
			}
			if nll < best.valNLL { // NaN never is
				best.model, best.epoch, best.valNLL = e.Model, e.Epoch, nll
			}
			return nil
		}})
	if err != nil {
		return regression{}, fmt.Errorf("study: training the quantile regression: %w", err)
	}
	if best.model == nil {
		return regression{}, fmt.Errorf("study: the quantile regression's validation loss was never finite")
	}
	return best, nil
}

// qmiaSummary is what the attack's notes rest on.
type qmiaSummary struct {
	q                         QMIAConfig
	arch                      string
	fit, val, members, scored int
	population                bool
	trained                   regression
	rep                       audit.AttackReport
	rows                      []int // table rows scored
	member                    []bool
	z                         []float64
	scoredH                   []float64 // standardized hinge of the scored non-members
	scoredMu, scoredLS        []float64
}

// qmiaNotes explains the attack: how the regression was fitted and on
// what; how well its Gaussians describe non-members it never saw (their
// mean NLL against that of one Gaussian for all, and the share the test at
// a nominal 1% level flags); and LOSS on the same samples, so that the two
// AUCs can be compared on equal terms, with a reason when qmia does not
// beat it.
func qmiaNotes(s qmiaSummary, t *audit.SampleTable, bs audit.BootstrapOptions) ([]string, error) {
	from := fmt.Sprintf("a seeded random %.0f%% of the non-members (%d; audit seed, stream %q), which are not scored", 100*s.q.FitFraction, s.fit, audit.StreamQMIA.String())
	if s.population {
		from = fmt.Sprintf("the %d population samples", s.fit)
	}
	notes := []string{fmt.Sprintf("Quantile-regression attack (qmia, Bertran et al. 2023; cost: 1 model trained): a %s trained from scratch (AdamW, lr %g, weight decay %g, cosine, batch %d) to predict a Gaussian (μ, log σ) of the audited model's hinge score for each class, by Gaussian negative log-likelihood, on %s: %d of them train it and %d choose its epoch (epoch %d of %d, validation NLL %.3f); score z = (s − μ)/σ with the sample's own class. Its AUC is on the %d members vs the %d non-members the regression never saw.",
		s.arch, s.q.LR, QMIAWeightDecay, s.q.Batch, from, s.fit-s.val, s.val, s.trained.epoch, s.trained.epochs, s.trained.valNLL, s.members, s.scored)}
	nll, err := audit.MeanGaussianNLL(s.scoredH, s.scoredMu, s.scoredLS)
	if err != nil {
		return nil, err
	}
	// One Gaussian for all: the standardized fitting scores' mean 0 and
	// standard deviation 1.
	zeros := make([]float64, len(s.scoredH))
	flat, err := audit.MeanGaussianNLL(s.scoredH, zeros, zeros)
	if err != nil {
		return nil, err
	}
	fpr, non, err := audit.QMIAObservedFPR(s.z, s.member, 0.01)
	if err != nil {
		return nil, err
	}
	notes = append(notes, fmt.Sprintf("qmia's regression on the %d non-members it never saw: mean Gaussian NLL %.3f (one Gaussian for every sample: %.3f; lower is better), and its per-sample test at a nominal 1%% FPR (z > 2.326) flags %.1f%% of them (%d).",
		non, nll, flat, 100*fpr, int(math.Round(fpr*float64(non)))))
	loss, err := audit.NewAttackReport(audit.AttackLoss, audit.Pick(t.Scores[audit.AttackLoss], s.rows), s.member, bs)
	if err != nil {
		return nil, err
	}
	q, l := s.rep.AUC, loss.AUC
	cmp := fmt.Sprintf("On the same %d members and %d non-members, LOSS reaches AUC %.3f [%.3f, %.3f] and qmia %.3f [%.3f, %.3f]", s.members, s.scored, l.Estimate, l.Lo, l.Hi, q.Estimate, q.Lo, q.Hi)
	switch {
	case q.Estimate > l.Estimate:
		cmp += ": qmia is the stronger of the two here."
	case nll >= flat:
		cmp += ": qmia does not beat LOSS here, and its regression predicts the scores of unseen non-members no better than one Gaussian for all samples, so its per-sample thresholds carry no information beyond a global threshold on the hinge score; more non-members to fit on (or --population) would be needed."
	default:
		cmp += ": qmia does not beat LOSS here, although its regression describes unseen non-members better than one Gaussian for all; the per-sample thresholds it learned separate members less than the loss does on this model."
	}
	return append(notes, cmp), nil
}
