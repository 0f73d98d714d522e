// Package audit is bnaudit's pure statistics: per-sample signals from
// logits, membership-inference attacks, ROC metrics with bootstrap
// intervals, paired and seed-level intervals, memorization scores, slices,
// the report data model (Report) and the pre-deploy policy (Policy, Check).
// Everything here is plain Go over arrays and follows the definitions of
// docs/METHODS.md. The package imports neither the trainer nor ONNX
// Runtime and builds with CGO_ENABLED=0, so any program can compute or
// check an audit's numbers; the studies that train and evaluate models
// live in package study, and subpackage report renders a Report.
//
// # Signals
//
// ComputeSignals (or ComputeSignalsFlat for ONNX Runtime's row-major
// output) turns logits of type float32 or float64 and integer labels into
// Signals: loss ℓ, true-class probability p_y, logit-scaled confidence φ,
// entropy, modified entropy and correctness. Everything runs in float64
// with log-sum-exp, so that a fitted model's losses do not underflow to 0
// (a float32 pitfall that ties members and breaks TPR at low FPR) and φ
// stays exact when p_y rounds to 1.
//
// # Attacks
//
// Every attack returns one score per sample, higher meaning "more likely a
// member": LossScores (−ℓ), ConfidenceScores (p_y), EntropyScores (−H),
// ModEntropyScores (−Mentr), LiRA (online or offline, per-sample or fixed
// variance, on φ of reference models with an IN mask) and RMIA (on p_y).
// The label-only attacks read the predicted label alone: GapScores
// (correct or not) and AugmentationScores (the share of augmented queries,
// Augment, labelled right).
// The quantile-regression attack (QMIAScores) standardizes each sample's
// hinge score (HingeScores) by the Gaussian a regression model, trained
// in package study on non-members only, predicts for it.
//
// # Risk in the user's terms
//
// RiskAtPriors gives, at the threshold of each target FPR, the members
// exposed and the precision (PPV) of a membership claim at a prior
// fraction of members, with intervals. OneRunEpsilon turns canary scores
// into a one-run lower bound on the ε of differential privacy (Steinke,
// Nasr, Jagielski 2023), with a Bonferroni-corrected sweep over the
// guesses.
//
// # Metrics and intervals
//
// Members are the positive class. Evaluate computes the ROC (ties as one
// step, as scikit-learn does), its AUC, the attacker advantage, balanced
// accuracy and the TPR at target FPRs (0.1% and 1% by default), each TPR
// with the number of non-members it rests on: TPRAtFPR.Note says when that
// number is small. BootstrapMetrics adds seeded, membership-stratified
// percentile intervals; BootstrapDifference gives paired intervals for the
// difference between two attacks or models scored on the same samples, the
// form every BN-versus-no-BN comparison takes. BootstrapGroups bootstraps
// any other statistic.
//
// # Memorization
//
// FeldmanZhang computes per-sample memorization scores from the
// correctness of models trained on random subsets; CanaryMemorization the
// accuracy and loss gap between inserted and held-out canaries, with
// intervals; Exposure and Exposures the exposure of canaries among
// candidates.
//
// Errors are returned, never panicked, and wrap ErrInvalidInput when the
// input is malformed.
package audit
