package study

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

const setupFashion = "../testdata/fashion-mnist"

func TestSetupParseNorm(t *testing.T) {
	good := []struct {
		in        string
		mean, std []float32
	}{
		{"0.2860/0.3530", []float32{0.2860}, []float32{0.3530}},
		{"0.49, 0.48,0.45/0.25,0.24, 0.26", []float32{0.49, 0.48, 0.45}, []float32{0.25, 0.24, 0.26}},
		{"-1/2", []float32{-1}, []float32{2}},
	}
	for _, c := range good {
		n, err := ParseNorm(c.in)
		if err != nil || !slices.Equal(n.Mean, c.mean) || !slices.Equal(n.Std, c.std) {
			t.Errorf("ParseNorm(%q) = %v, %v; want mean %v std %v", c.in, n, err, c.mean, c.std)
		}
	}
	bad := []struct{ in, reason string }{
		{"0.3", "want MEAN/STD, e.g. 0.2860/0.3530"},
		{"1/2/3", "want MEAN/STD, e.g. 0.2860/0.3530"},
		{"1/x", `"x" is not a number`},
		{"a,1/1", `"a" is not a number`},
		{"0/0", "a standard deviation must be positive"},
		{"0/1,-1", "a standard deviation must be positive"},
	}
	for _, c := range bad {
		_, err := ParseNorm(c.in)
		var ne *NormError
		if !errors.As(err, &ne) || ne.Input != c.in || ne.Reason != c.reason {
			t.Errorf("ParseNorm(%q): error %v, want a NormError saying %q", c.in, err, c.reason)
			continue
		}
		if !errors.Is(err, audit.ErrInvalidInput) || err.Error() != "study: normalization "+strconv.Quote(c.in)+": "+c.reason {
			t.Errorf("ParseNorm(%q): error %q, want one wrapping ErrInvalidInput, prefixed study:", c.in, err)
		}
	}
}

func TestSetupLoadData(t *testing.T) {
	// Members: the first 100 training samples, then 3 of them by index.
	index := filepath.Join(t.TempDir(), "index.txt")
	if err := os.WriteFile(index, []byte("7\n0\n99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadData(DataConfig{
		Members:    DataSource{Path: setupFashion, Split: "train", Max: 100, Index: index},
		NonMembers: DataSource{Path: setupFashion, Split: "test", Max: 50},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Members.Len() != 3 || d.NonMembers.Len() != 50 || d.Population != nil {
		t.Fatalf("got %d members, %d non-members, population %v; want 3, 50, none", d.Members.Len(), d.NonMembers.Len(), d.Population)
	}
	all, err := dataset.Load(setupFashion, dataset.LoadOptions{Split: "train", MaxSamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	for k, i := range []int{7, 0, 99} {
		if d.Members.Labels()[k] != all.Labels()[i] {
			t.Errorf("member %d has label %d, sample %d of the split %d", k, d.Members.Labels()[k], i, all.Labels()[i])
		}
	}
	// Auto normalization: computed on the members, applied to all.
	want := dataset.ComputeNorm(d.Members)
	for name, got := range map[string]dataset.Normalization{"Norm": d.Norm, "members": d.Members.Norm(), "non-members": d.NonMembers.Norm()} {
		if !slices.Equal(got.Mean, want.Mean) || !slices.Equal(got.Std, want.Std) {
			t.Errorf("%s: normalization %v, want the members' %v", name, got, want)
		}
	}
	// A given normalization, and a population read whole.
	norm := dataset.Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}
	d, err = LoadData(DataConfig{Norm: &norm,
		Members:    DataSource{Path: setupFashion, Max: 10},
		NonMembers: DataSource{Path: setupFashion, Split: "test", Max: 10},
		Population: DataSource{Path: setupFashion, Split: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	full, err := dataset.Load(setupFashion, dataset.LoadOptions{Split: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Population.Len() != full.Len() || !slices.Equal(d.Population.Norm().Std, norm.Std) || !slices.Equal(d.NonMembers.Norm().Mean, norm.Mean) {
		t.Fatalf("population %d samples (want %d), normalization %v / %v, want %v", d.Population.Len(), full.Len(), d.Population.Norm(), d.NonMembers.Norm(), norm)
	}
	if _, err := LoadData(DataConfig{Members: DataSource{Path: filepath.Join(t.TempDir(), "none")}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing members: %v, want a not-exist error", err)
	}
}

func TestSetupCanaries(t *testing.T) {
	d, err := LoadData(DataConfig{
		Members:    DataSource{Path: setupFashion, Max: 200},
		NonMembers: DataSource{Path: setupFashion, Split: "test", Max: 50},
	})
	if err != nil {
		t.Fatal(err)
	}
	pool := DataSource{Path: setupFashion}
	for _, source := range []string{CanaryNoise, CanaryRelabel, "../testdata/mnist-canaries"} {
		c, err := d.Canaries(CanaryConfig{Source: source, Count: 5, Seed: 3, Pool: pool})
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if c.Inserted.Len()+c.HeldOut.Len() != 10 || c.Inserted.Len() == 0 || c.HeldOut.Len() == 0 || c.Inserted.Classes() != d.Classes() {
			t.Errorf("%s: %d inserted, %d held out, %d classes; want 10 in all, both sides non-empty, %d", source, c.Inserted.Len(), c.HeldOut.Len(), c.Inserted.Classes(), d.Classes())
		}
		if got := c.Inserted.Norm(); !slices.Equal(got.Mean, d.Norm.Mean) || !slices.Equal(got.Std, d.Norm.Std) {
			t.Errorf("%s: canaries normalized with %v, the data with %v", source, got, d.Norm)
		}
	}
	// The same as the functions they choose between.
	want, err := NoiseCanaries(d.Members.SampleShape(), 5, d.Classes(), d.Norm, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := d.Canaries(CanaryConfig{Source: CanaryNoise, Count: 5, Seed: 3})
	if got.Source != want.Source || !slices.Equal(got.Inserted.Labels(), want.Inserted.Labels()) || got.Inserted.Fingerprint() != want.Inserted.Fingerprint() {
		t.Errorf("noise canaries differ from NoiseCanaries")
	}
	if c, err := d.Canaries(CanaryConfig{Source: CanaryNoise, Count: 0}); c != nil || err != nil {
		t.Errorf("no canaries asked: got %v, %v", c, err)
	}
	// Relabeled canaries from a pool holding nothing but the members.
	_, err = d.Canaries(CanaryConfig{Source: CanaryRelabel, Count: 5, Pool: DataSource{Path: setupFashion, Max: 200}})
	var short *ShortPoolError
	if !errors.As(err, &short) || short.Need != 10 || short.Have != 0 || short.Pool != setupFashion {
		t.Fatalf("relabel without spare samples: %v, want a ShortPoolError (need 10, have 0)", err)
	}
	if !errors.Is(err, audit.ErrInvalidInput) {
		t.Errorf("ShortPoolError does not wrap ErrInvalidInput: %v", err)
	}
}
