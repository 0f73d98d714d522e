package audit

// Label-only attacks (docs/METHODS.md, "Label-only attacks"): an adversary
// who sees only the model's predicted label.

// GapScores returns the gap attack's scores (Yeom et al. 2018; the
// baseline of Choquette-Choo et al. 2021): 1 when the model classifies the
// sample correctly, 0 otherwise. Signals.Correct compares the label with
// the first index of the largest logit, so nothing but the predicted label
// enters the score.
func GapScores(s Signals) []float64 { return BoolsToFloats(s.Correct) }
