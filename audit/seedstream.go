package audit

import "math/rand/v2"

// Seed streams. Every random draw of audit and study comes from a PCG
// generator (math/rand/v2) whose state words are the user's seed mixed
// with a salt, and a sequence word, both named in one table here, so that
// no two draws share a stream and a reader sees all of them in one place.
// The trainer names its own streams the same way (trainer/train.go:
// streamInit, streamOrder, …).
//
// The values are ASCII tags and are fixed: changing one moves every draw
// of its stream, and with it the numbers of every report.

// A SeedStream names one random stream.
type SeedStream int

// The project's seed streams (besides the trainer's).
const (
	// StreamBootstrap draws the stratified bootstrap resamples of every
	// interval (Bootstrap, BootstrapGroups).
	StreamBootstrap SeedStream = iota
	// StreamSeedBootstrap draws the two-stage bootstrap over training
	// seeds (HierarchicalInterval).
	StreamSeedBootstrap
	// StreamGradRatio draws, per training seed (Indexed), the resamples
	// of a comparison's paired gradient-norm-ratio difference.
	StreamGradRatio
	// StreamReferenceHalves draws reference model k's random half of the
	// pool (Indexed by k).
	StreamReferenceHalves
	// StreamTypicalMembers draws the sample of members the gradient-norm
	// studies compare the canaries with.
	StreamTypicalMembers
	// StreamInBatchShuffle shuffles canaries and typical members together
	// into the in-batch gradient-norm study's batches.
	StreamInBatchShuffle
	// StreamCanaries draws the canaries from their source, and their labels.
	StreamCanaries
	// StreamNoiseCanaries draws the pixels of uniform-noise canaries.
	StreamNoiseCanaries
	// StreamAugmentations draws the shifts and flips of the
	// data-augmentation label-only attack.
	StreamAugmentations
	// StreamCanaryInclusion flips the coin that includes each canary in
	// the training data (inserted) or holds it out, independently with
	// probability ½, as the one-run ε bound assumes.
	StreamCanaryInclusion
	// StreamQMIA draws the quantile-regression attack's split of the
	// non-members into the regression's fitting set and the scored set,
	// then the seed its regression model trains with.
	StreamQMIA
	numSeedStreams
)

// seedStreams holds each stream's salt (XORed into the seed) and sequence
// word; an indexed stream's sequence word is i + 1 instead.
var seedStreams = [numSeedStreams]struct {
	name      string
	salt, seq uint64
}{
	StreamBootstrap:       {"bootstrap", 0, 0x626e617564697400},         // "bnaudit\x00"
	StreamSeedBootstrap:   {"seed bootstrap", 0x68696572, 0x61726368},   // "hier", "arch"
	StreamGradRatio:       {"gradient-norm ratio", 0x67726174, 0},       // "grat"
	StreamReferenceHalves: {"reference halves", 0x726566, 0},            // "ref"
	StreamTypicalMembers:  {"typical members", 0x67726164, 0x6e6f726d},  // "grad", "norm"
	StreamInBatchShuffle:  {"in-batch shuffle", 0x696e62, 0x6d6978},     // "inb", "mix"
	StreamCanaries:        {"canaries", 0x63616e617279, 0x6f6f64},       // "canary", "ood"
	StreamNoiseCanaries:   {"noise canaries", 0x6e6f697365, 0x63616e},   // "noise", "can"
	StreamAugmentations:   {"augmentations", 0x617567, 0x6d656e74},      // "aug", "ment"
	StreamCanaryInclusion: {"canary inclusion", 0x696e636c, 0x636f696e}, // "incl", "coin"
	StreamQMIA:            {"qmia", 0x716d6961, 0x666974},               // "qmia", "fit"
}

// Rand returns the stream's generator under seed: PCG(seed ^ salt, seq).
func (s SeedStream) Rand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^seedStreams[s].salt, seedStreams[s].seq))
}

// Indexed returns the stream's i-th generator under seed, one per model
// or per training seed: PCG(seed ^ salt, i + 1).
func (s SeedStream) Indexed(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^seedStreams[s].salt, uint64(i)+1))
}

func (s SeedStream) String() string { return seedStreams[s].name }

// seedGamma is the golden-ratio increment (2⁶⁴/φ) that spreads derived
// seeds apart (the trainer's streams use it too).
const seedGamma = 0x9e3779b97f4a7c15

// SplitSeed derives the i-th seed of a family from seed (i = 0 gives seed
// itself); a comparison's bootstrap seed per training seed.
func SplitSeed(seed, i uint64) uint64 {
	return seed + seedGamma*i
}
