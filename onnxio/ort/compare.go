package ort

import (
	"fmt"
	"math"
	"sort"
)

// Difference says how far one float output of two models is apart.
type Difference struct {
	Output string `json:"output"`
	// MaxAbs is max |a−b| over the output's elements.
	MaxAbs float64 `json:"max_abs"`
	// Relative is MaxAbs divided by max |a|: the error relative to the
	// scale of the first model's output.
	Relative float64 `json:"relative"`
}

// CompareModels runs two models on the same inputs and reports, for every
// float output they share by name, how far the second is from the first.
func CompareModels(a, b []byte, inputs map[string]*Tensor, opts SessionOptions) ([]Difference, error) {
	run := func(model []byte, which string) (map[string]*Tensor, error) {
		out, err := RunOnce(model, inputs, opts)
		if err != nil {
			return nil, fmt.Errorf("%s model: %w", which, err)
		}
		return out, nil
	}
	oa, err := run(a, "first")
	if err != nil {
		return nil, err
	}
	ob, err := run(b, "second")
	if err != nil {
		return nil, err
	}
	var diffs []Difference
	for name, ta := range oa {
		tb := ob[name]
		if tb == nil || ta.Float32 == nil {
			continue
		}
		if len(tb.Float32) != len(ta.Float32) {
			return nil, fmt.Errorf("ort: output %q has %d values in the first model and %d in the second", name, len(ta.Float32), len(tb.Float32))
		}
		d := Difference{Output: name}
		scale := 0.0
		for i, va := range ta.Float32 {
			x, y := float64(va), float64(tb.Float32[i])
			if math.IsNaN(y) != math.IsNaN(x) {
				d.MaxAbs = math.Inf(1)
			}
			d.MaxAbs = math.Max(d.MaxAbs, math.Abs(x-y))
			scale = math.Max(scale, math.Abs(x))
		}
		if scale > 0 {
			d.Relative = d.MaxAbs / scale
		} else if d.MaxAbs > 0 {
			d.Relative = math.Inf(1)
		}
		diffs = append(diffs, d)
	}
	if len(diffs) == 0 {
		return nil, fmt.Errorf("ort: the two models share no float output to compare")
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].Output < diffs[j].Output })
	return diffs, nil
}
