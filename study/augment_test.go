package study

import (
	"slices"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// TestAugmentedDataset: the identity query gives back the data, a shift
// moves the raw pixels, and labels, classes and normalization are kept.
func TestAugmentedDataset(t *testing.T) {
	x := []byte{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}
	d, err := dataset.FromUint8("tiny", []int64{1, 2, 3}, x, []int64{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = d.WithClasses(3); err != nil {
		t.Fatal(err)
	}
	norm := dataset.Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}
	if d, err = d.WithNorm(norm); err != nil {
		t.Fatal(err)
	}
	batch := func(d *dataset.Dataset) []float32 {
		out := make([]float32, 12)
		if err := d.Batch([]int{0, 1}, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	same, err := augmentedDataset(d, audit.Augmentation{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(batch(same), batch(d)) || !slices.Equal(same.Labels(), d.Labels()) || same.Classes() != 3 {
		t.Errorf("identity query: %v vs %v", batch(same), batch(d))
	}
	shifted, err := augmentedDataset(d, audit.Augmentation{DX: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := batch(d)
	zero := (0 - norm.Mean[0]) / norm.Std[0]
	for _, i := range []int{0, 3, 6, 9} { // the first column of each row is uncovered
		want[i+2], want[i+1], want[i] = want[i+1], want[i], zero
	}
	if got := batch(shifted); !slices.Equal(got, want) {
		t.Errorf("shift: %v, want %v", got, want)
	}
	if _, err := augmentedDataset(mustFlat(t), audit.Augmentation{}); err == nil {
		t.Error("a flat sample shape was accepted")
	}
}

func mustFlat(t *testing.T) *dataset.Dataset {
	d, err := dataset.FromFloat32("flat", []int64{4}, make([]float32, 8), []int64{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
