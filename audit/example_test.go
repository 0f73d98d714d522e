package audit_test

import (
	"fmt"

	"github.com/bnaudit/bnaudit/audit"
)

// Example audits a model with the LOSS attack: signals from logits, scores,
// then AUC and TPR at 1% FPR with the number of non-members behind it.
func Example() {
	// Logits of a 3-class model on 4 members (fitted) and 4 non-members.
	logits := [][]float32{
		{6, 0, -1}, {0, 5, 1}, {-2, 1, 7}, {1, 2, 0}, // members
		{7, 0, 0}, {0, 1, 3}, {1, 2, 1.5}, {3, 0, 2}, // non-members
	}
	labels := []int{0, 1, 2, 1, 0, 1, 2, 0}
	member := []bool{true, true, true, true, false, false, false, false}

	sig, err := audit.ComputeSignals(logits, labels)
	if err != nil {
		panic(err)
	}
	m, err := audit.Evaluate(audit.LossScores(sig), member, 0.01)
	if err != nil {
		panic(err)
	}
	at := m.TPRAt[0]
	fmt.Printf("LOSS attack: AUC %.4f, advantage %.2f\n", m.AUC, m.Advantage)
	fmt.Printf("TPR at 1%% FPR: %.2f (%d false positives allowed)\n", at.TPR, at.AllowedFP)
	fmt.Println(at.Note())
	// Output:
	// LOSS attack: AUC 0.6875, advantage 0.50
	// TPR at 1% FPR: 0.00 (0 false positives allowed)
	// TPR at 1% FPR: the target is below 1/4 non-members; no false positive is allowed, so this is the TPR at 0% FPR
}

// ExampleBootstrapDifference compares two attacks on the same samples with
// a paired bootstrap.
func ExampleBootstrapDifference() {
	member := []bool{true, true, true, true, true, false, false, false, false, false}
	a := []float64{0.9, 0.8, 0.75, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1} // separates well
	b := []float64{0.9, 0.3, 0.75, 0.2, 0.55, 0.5, 0.4, 0.8, 0.6, 0.1} // separates worse
	d, err := audit.BootstrapDifference(a, b, member, audit.BootstrapOptions{Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("AUC A %.2f, B %.2f, A−B %.2f\n", d.A.AUC.Estimate, d.B.AUC.Estimate, d.Diff.AUC.Estimate)
	fmt.Println("interval of A−B excludes 0:", d.Diff.AUC.Lo > 0)
	// Output:
	// AUC A 1.00, B 0.56, A−B 0.44
	// interval of A−B excludes 0: true
}

// ExampleQMIAScores scores samples with the quantile-regression attack: each
// sample's hinge score, placed in the Gaussian a regression (trained on
// non-members only, in package study) predicts for it. Sample 1 has a low
// hinge but an even lower predicted mean: it scores higher than sample 0.
func ExampleQMIAScores() {
	logits := []float32{
		4, 1, 0, // label 0: hinge 3
		0.5, 1, 0, // label 1: hinge 0.5
	}
	hinge, err := audit.HingeScores(logits, 3, []int{0, 1})
	if err != nil {
		panic(err)
	}
	// The regression's Gaussians, in standardized units (here the identity).
	mu, logSigma := []float64{2, -1}, []float64{0, 0}
	z, err := audit.QMIAScores(hinge, mu, logSigma, audit.Standardization{Shift: 0, Scale: 1})
	if err != nil {
		panic(err)
	}
	thr, _ := audit.QMIAThreshold(0.01)
	fmt.Printf("hinge %v, z %v; member at level 1%% when z > %.3f\n", hinge, z, thr)
	// Output:
	// hinge [3 0.5], z [1 1.5]; member at level 1% when z > 2.326
}
