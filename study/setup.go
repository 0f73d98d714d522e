package study

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Set-up of a study's data: the members a model trains on, the non-members
// it never sees, more data of the same distribution, all under one
// normalization, and the canaries inserted among the members. The bnaudit
// command sets up compare, audit and train with these functions.

// ParseNorm reads a normalization written MEAN/STD, each side one number
// for every channel or comma-separated numbers, one per channel:
// "0.2860/0.3530", "0.49,0.48,0.45/0.25,0.24,0.26". Its errors are
// *NormError.
func ParseNorm(s string) (dataset.Normalization, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 2 {
		return dataset.Normalization{}, &NormError{Input: s, Reason: "want MEAN/STD, e.g. 0.2860/0.3530"}
	}
	read := func(p string) ([]float32, error) {
		var out []float32
		for _, f := range strings.Split(p, ",") {
			var v float32
			if _, err := fmt.Sscan(strings.TrimSpace(f), &v); err != nil {
				return nil, &NormError{Input: s, Reason: fmt.Sprintf("%q is not a number", f)}
			}
			out = append(out, v)
		}
		return out, nil
	}
	mean, err := read(parts[0])
	if err != nil {
		return dataset.Normalization{}, err
	}
	std, err := read(parts[1])
	if err != nil {
		return dataset.Normalization{}, err
	}
	for _, v := range append(slices.Clone(mean), std...) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return dataset.Normalization{}, &NormError{Input: s, Reason: "means and standard deviations must be finite numbers"}
		}
	}
	for _, v := range std {
		if v <= 0 {
			return dataset.Normalization{}, &NormError{Input: s, Reason: "a standard deviation must be positive"}
		}
	}
	return dataset.Normalization{Mean: mean, Std: std}, nil
}

// NormError says why ParseNorm refused its input. It wraps
// audit.ErrInvalidInput.
type NormError struct {
	// Input is the text ParseNorm was given.
	Input string
	// Reason says what is wrong with it ("a standard deviation must be positive").
	Reason string
}

func (e *NormError) Error() string {
	return fmt.Sprintf("study: normalization %q: %s", e.Input, e.Reason)
}

func (e *NormError) Unwrap() error { return audit.ErrInvalidInput }

// DataSource is a data set file or folder (any input dataset.Load reads)
// and which of its samples to take.
type DataSource struct {
	Path string
	// Split picks the files of an IDX folder: "train" (also when empty) or
	// "test".
	Split string
	// Max keeps only the first Max samples (0: all).
	Max int
	// Index, when set, names a file of indices (dataset.LoadIndex) into
	// those samples: only the samples it lists are kept, in its order.
	Index string
	// FitTo is the sample shape [C, H, W] of the model the data feed: an
	// image folder's images are converted and resized to it
	// (dataset.LoadOptions.FitTo). Nil loads them as they are.
	FitTo []int64
}

// Load reads the source's samples. They keep the loader's normalization.
func (s DataSource) Load() (*dataset.Dataset, error) {
	d, err := dataset.Load(s.Path, dataset.LoadOptions{Split: s.Split, MaxSamples: s.Max, FitTo: s.FitTo})
	if err != nil || s.Index == "" {
		return d, err
	}
	idx, err := dataset.LoadIndex(s.Index, d.Len())
	if err != nil {
		return nil, err
	}
	return d.Subset(idx)
}

// DataConfig says where a study's data come from.
type DataConfig struct {
	// Members are the samples a model trains on (required).
	Members DataSource
	// NonMembers are samples of the same distribution it never trains on
	// (none when Path is empty).
	NonMembers DataSource
	// Population is more data of the distribution, neither member nor
	// audited non-member (AuditConfig.Population; none when Path is empty).
	Population DataSource
	// Norm is the normalization of all the data; nil computes it on the
	// members (dataset.ComputeNorm).
	Norm *dataset.Normalization
	// FitTo, when set, is the FitTo of every source that has none: the
	// sample shape of the model the data feed (ShapeOf).
	FitTo []int64
}

// Data are a study's data sets, all normalized with Norm. NonMembers and
// Population are nil when their source was not given.
type Data struct {
	Members, NonMembers, Population *dataset.Dataset
	Norm                            dataset.Normalization
}

// LoadData loads the members, the non-members and the population, in that
// order, and normalizes them alike.
func LoadData(cfg DataConfig) (*Data, error) {
	var d Data
	sets := []struct {
		src DataSource
		dst **dataset.Dataset
	}{{cfg.Members, &d.Members}, {cfg.NonMembers, &d.NonMembers}, {cfg.Population, &d.Population}}
	for i, s := range sets {
		if s.src.Path == "" && i > 0 {
			continue
		}
		if s.src.FitTo == nil {
			s.src.FitTo = cfg.FitTo
		}
		var err error
		if *s.dst, err = s.src.Load(); err != nil {
			return nil, err
		}
	}
	if cfg.Norm != nil {
		d.Norm = *cfg.Norm
	} else {
		d.Norm = dataset.ComputeNorm(d.Members)
	}
	for _, s := range sets {
		if *s.dst == nil {
			continue
		}
		var err error
		if *s.dst, err = (*s.dst).WithNorm(d.Norm); err != nil {
			return nil, err
		}
	}
	return &d, nil
}

// Classes is the number of classes the members and non-members hold
// between them.
func (d *Data) Classes() int {
	if d.NonMembers == nil {
		return d.Members.Classes()
	}
	return max(d.Members.Classes(), d.NonMembers.Classes())
}

// Canary sources of CanaryConfig.Source besides a data set's path.
const (
	// CanaryNoise makes uniform-noise images of the members' sample shape
	// (NoiseCanaries).
	CanaryNoise = "noise"
	// CanaryRelabel takes in-distribution samples that are not members and
	// gives each a wrong label (RelabeledCanaries).
	CanaryRelabel = "relabel"
)

// CanaryConfig says which canaries to insert among the members.
type CanaryConfig struct {
	// Source is CanaryNoise, CanaryRelabel, or the path of a data set whose
	// train split supplies them (MakeCanaries: e.g. MNIST digits for a
	// Fashion-MNIST model).
	Source string
	// 2·Count canaries are drawn, each inserted with probability ½ (about
	// Count inserted and Count held out); 0 or less makes none.
	Count int
	// Pool is, for CanaryRelabel, the data whose samples outside the
	// members (Outside) become canaries: typically the members' own source
	// without Max.
	Pool DataSource
	Seed uint64
}

// ShortPoolError is Canaries' error when relabeled canaries need more
// samples outside the members than the pool holds. It wraps
// audit.ErrInvalidInput.
type ShortPoolError struct {
	// Pool is the pool's path.
	Pool string
	// Need is 2·Count (inserted and held out); Have is what the pool holds
	// outside the members.
	Need, Have int
}

func (e *ShortPoolError) Error() string {
	return fmt.Sprintf("study: relabeled canaries need %d samples of %s that are not members, and there are %d", e.Need, e.Pool, e.Have)
}

func (e *ShortPoolError) Unwrap() error { return audit.ErrInvalidInput }

// Canaries makes the canaries cfg describes for the study's data: labels
// drawn from its d.Classes() classes, normalized with d.Norm. It returns
// nil, and no error, when cfg.Count is 0 or less.
func (d *Data) Canaries(cfg CanaryConfig) (*Canaries, error) {
	k := cfg.Count
	switch {
	case k <= 0:
		return nil, nil
	case cfg.Source == CanaryNoise:
		return NoiseCanaries(d.Members.SampleShape(), k, d.Classes(), d.Norm, cfg.Seed)
	case cfg.Source == CanaryRelabel:
		pool := cfg.Pool
		if pool.FitTo == nil {
			pool.FitTo = d.Members.SampleShape()
		}
		all, err := pool.Load()
		if err != nil {
			return nil, err
		}
		src, err := Outside(all, d.Members)
		spare := 0
		switch {
		case err == nil:
			spare = src.Len()
		case !errors.Is(err, ErrNoneOutside):
			return nil, err
		}
		if spare < 2*k {
			return nil, &ShortPoolError{Pool: cfg.Pool.Path, Need: 2 * k, Have: spare}
		}
		return RelabeledCanaries(src, k, d.Classes(), d.Norm, cfg.Seed)
	}
	src, err := dataset.Load(cfg.Source, dataset.LoadOptions{Split: "train", FitTo: d.Members.SampleShape()})
	if err != nil {
		return nil, err
	}
	return MakeCanaries(src, k, d.Classes(), d.Norm, cfg.Seed)
}
