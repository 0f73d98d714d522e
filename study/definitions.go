package study

import "github.com/bnaudit/bnaudit/audit"

// Definitions explains every metric a report shows.
func Definitions() map[string]string {
	return map[string]string{
		audit.AttackLoss:               "LOSS attack (Yeom et al. 2018): score = −cross-entropy, from float64 log-sum-exp of the logits.",
		audit.AttackConfidence:         "Confidence attack: score = true-class probability p_y.",
		audit.AttackEntropy:            "Entropy attack: score = −H(p).",
		audit.AttackModifiedEntropy:    "Modified-entropy attack (Song & Mittal 2021, eq. 8): score = −Mentr.",
		audit.AttackGap:                "Gap attack, label-only (Yeom et al. 2018; baseline of Choquette-Choo et al. 2021): score = 1 when the predicted label (argmax of the logits) is right, else 0; nothing else of the output is used.",
		audit.AttackAugmentation:       "Data-augmentation attack, label-only (Choquette-Choo et al. 2021), with --augmentations N: score = fraction of N queries (the sample, then seeded shifts of up to 2 pixels and left–right flips) whose predicted label is right.",
		"ppv":                          "Precision of a membership claim at a prior π (fraction of members in the population tested): PPV = π·TPR/(π·TPR + (1 − π)·FPR) at the threshold of each target FPR, from the first run's scores, with a 95% bootstrap interval; members exposed = members flagged there.",
		"dp_lower_bound":               "One-run lower bound on ε (Steinke, Nasr, Jagielski 2023): canaries guessed IN (k₊ highest scores) or OUT (k₋ lowest); the largest ε at which (ε, δ)-DP training would give that many right guesses with probability at most 5%, Bonferroni-corrected over the scores and (k₊, k₋) tried; from the first run.",
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
		audit.AttackLiRAOnline:         "LiRA online (Carlini et al. 2022): likelihood ratio of the target's φ under Gaussians fitted to reference models trained with (IN) and without (OUT) the sample; one pooled σ_in and σ_out (fixed variance) below 64 reference models, per-sample σ from 64 on or with --lira-variance per-sample (the notes say which).",
		audit.AttackLiRAOffline:        "LiRA offline: one-sided test of the target's φ against the OUT Gaussian only, fitted on the reference models that did not train on the sample (the OUT half of the same models, as in Carlini et al.'s offline attack; no model trained on it is used).",
		audit.AttackRMIAOnline:         "RMIA (Zarifzadeh et al. 2024), online, γ = 1: share of population samples z whose likelihood ratio the sample dominates, with Pr(x) averaged over IN and OUT reference models.",
		audit.AttackRMIAOffline:        "RMIA offline: Pr(x) from the OUT reference models only, ((1+a)/2)·mean_OUT + (1−a)/2, with a in {0, 0.1, …, 1} tuned on reference model 0 taken as the target.",
		audit.AttackQMIA:               "Quantile-regression attack (Bertran et al. 2023), with --qmia: one small regression model, fitted on non-members only (a seeded share of them, not scored, or --population), predicts for each sample and class a Gaussian (μ, σ) of the audited model's hinge score s = z_y − max_{j≠y} z_j, by Gaussian negative log-likelihood; score = (s − μ)/σ. Cost: 1 model trained, of any architecture.",
		"grad_norm_inbatch":            "In-batch gradient norm: the canaries and the sampled members shuffled together into batches of the training batch size, BN on batch statistics; each sample's own loss term's gradient norm inside its batch.",
		"slices":                       "Slices: the strongest attack on members vs non-members restricted to one class, to canaries or typical samples, or to samples the model classifies correctly or not; slices with fewer than 10 members or non-members are left out.",
		"grad_norm_ratio (comparison)": "Difference of the outlier/typical gradient-norm ratios, paired over the same canaries and sampled members.",
	}
}
