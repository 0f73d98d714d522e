package study

// VariantOriginal names the source model as the comparison trains it,
// with its BatchNorm layers; the other variants are ablation modes.
const VariantOriginal = "original"

// DefaultGradNormSample is how many members the gradient-norm studies
// compare the canaries with when the configuration says 0.
const DefaultGradNormSample = 256

const (
	// signalBatch is the batch size of the evaluations the signals come
	// from (it does not change them).
	signalBatch = 256
	// gradNormBatch is the batch size of eval-mode per-sample gradient
	// norms (it does not change them).
	gradNormBatch = 128
	// inBatchDefault is the in-batch study's batch size when the recipe
	// has none (Measure called without one).
	inBatchDefault = 128
	// fitGapLimit is how far the original's and a variant's training
	// accuracies may differ before the report warns that memorization may
	// follow fit rather than batch statistics.
	fitGapLimit = 0.05
	// referenceSeedPrime spreads the reference models' training seeds
	// apart from the comparison's (reference model k trains with seed
	// referenceSeedPrime·seed + k + 1).
	referenceSeedPrime = 7919
)

// gradNormSample is the size of the members' sample of the gradient-norm
// studies (0: the default).
func gradNormSample(n int) int {
	if n <= 0 {
		return DefaultGradNormSample
	}
	return n
}
