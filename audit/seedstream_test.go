package audit

import (
	"math/rand/v2"
	"testing"
)

func newPCG(a, b uint64) *rand.Rand { return rand.New(rand.NewPCG(a, b)) }

// TestSeedStreamsDistinct: no two streams share their salt and sequence
// word, so no two draws repeat each other.
func TestSeedStreamsDistinct(t *testing.T) {
	seen := map[[2]uint64]SeedStream{}
	for s := SeedStream(0); s < numSeedStreams; s++ {
		st := seedStreams[s]
		if st.name == "" {
			t.Errorf("stream %d has no entry", s)
		}
		k := [2]uint64{st.salt, st.seq}
		if o, dup := seen[k]; dup {
			t.Errorf("streams %v and %v share salt %#x and sequence %#x", o, s, st.salt, st.seq)
		}
		seen[k] = s
	}
}

// TestSeedStreamValues pins the draws: the streams must keep their values,
// or every report's numbers move.
func TestSeedStreamValues(t *testing.T) {
	for _, c := range []struct {
		s         SeedStream
		salt, seq uint64
		indexed   bool
	}{
		{StreamBootstrap, 0, 0x626e617564697400, false},
		{StreamSeedBootstrap, 0x68696572, 0x61726368, false},
		{StreamGradRatio, 0x67726174, 3, true},
		{StreamReferenceHalves, 0x726566, 3, true},
		{StreamTypicalMembers, 0x67726164, 0x6e6f726d, false},
		{StreamInBatchShuffle, 0x696e62, 0x6d6978, false},
		{StreamCanaries, 0x63616e617279, 0x6f6f64, false},
		{StreamNoiseCanaries, 0x6e6f697365, 0x63616e, false},
		{StreamQMIA, 0x716d6961, 0x666974, false},
	} {
		const seed = 12345
		r := c.s.Rand(seed)
		if c.indexed {
			r = c.s.Indexed(seed, int(c.seq)-1)
		}
		want := newPCG(seed^c.salt, c.seq)
		if got, w := r.Uint64(), want.Uint64(); got != w {
			t.Errorf("%v: first draw %#x, want %#x", c.s, got, w)
		}
	}
	gamma := uint64(0x9e3779b97f4a7c15)
	if got := SplitSeed(7, 2); got != 7+2*gamma {
		t.Errorf("SplitSeed(7, 2) = %#x", got)
	}
}
