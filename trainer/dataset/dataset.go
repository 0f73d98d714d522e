package dataset

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// maxDataBytes caps the in-memory size of one data set's samples.
const maxDataBytes = 16 << 30

// Dataset is a labelled data set held in memory (uint8 or float32 samples)
// with its normalization. A Dataset is immutable once built and safe for
// concurrent use; WithNorm, WithClasses and Subset return new values that
// share the sample data.
type Dataset struct {
	name    string
	shape   []int64 // per sample; shape[0] is the channel axis
	size    int     // elements per sample
	planes  int     // channels (shape[0], or 1 for a scalar sample)
	plane   int     // elements per channel
	u8      []byte  // samples, uint8 data …
	f32     []float32
	rows    []int // sample i is row rows[i] of u8/f32; nil: row i
	y       []int64
	classes int
	names   []string // class names (image folders), or nil
	norm    Normalization
	lut     []float32 // uint8: 256 normalized values per LUT channel
	mean    []float32 // float32: per-channel mean …
	inv     []float32 // … and 1/std
}

// FromUint8 builds a data set of uint8 samples. shape is the shape of one
// sample (a 2-D [H, W] shape becomes [1, H, W]); len(y) is the number of
// samples and x holds them one after another (len(x) = len(y)·prod(shape)).
// The Dataset keeps x and y: do not modify them afterwards. Labels must not
// be negative; Classes is max label + 1. The normalization is the identity
// (raw/255).
func FromUint8(name string, shape []int64, x []byte, y []int64) (*Dataset, error) {
	return newUint8(name, slices.Clone(shape), x, y)
}

// FromFloat32 builds a data set of float32 samples like FromUint8. Every
// value must be finite.
func FromFloat32(name string, shape []int64, x []float32, y []int64) (*Dataset, error) {
	return newFloat32(name, slices.Clone(shape), x, y)
}

func newUint8(name string, shape []int64, x []byte, y []int64) (*Dataset, error) {
	d, err := newDataset(name, shape, len(x), y)
	if err != nil {
		return nil, err
	}
	d.u8 = x
	if err := d.setNorm(IdentityNorm()); err != nil {
		return nil, err
	}
	return d, nil
}

func newFloat32(name string, shape []int64, x []float32, y []int64) (*Dataset, error) {
	d, err := newDataset(name, shape, len(x), y)
	if err != nil {
		return nil, err
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("dataset: %s: sample %d holds %v: %w", name, i/d.size, v, ErrBadData)
		}
	}
	d.f32 = x
	if err := d.setNorm(IdentityNorm()); err != nil {
		return nil, err
	}
	return d, nil
}

// newDataset checks the shape, the sample count and the labels.
func newDataset(name string, shape []int64, nx int, y []int64) (*Dataset, error) {
	if len(shape) == 2 {
		shape = []int64{1, shape[0], shape[1]}
	}
	size := int64(1)
	for _, s := range shape {
		if s <= 0 {
			return nil, fmt.Errorf("dataset: %s: sample shape %v has an empty or negative dimension: %w", name, shape, ErrBadData)
		}
		if s > maxDataBytes/size {
			return nil, fmt.Errorf("dataset: %s: sample shape %v is too large: %w", name, shape, ErrBadData)
		}
		size *= s
	}
	if len(y) == 0 {
		return nil, fmt.Errorf("dataset: %s: empty data set (no samples): %w", name, ErrBadData)
	}
	if int64(nx) != int64(len(y))*size {
		if int64(nx)%size == 0 {
			return nil, fmt.Errorf("dataset: %s: %d samples but %d labels: %w", name, int64(nx)/size, len(y), ErrBadData)
		}
		return nil, fmt.Errorf("dataset: %s: %d values do not make whole samples of shape %v (%d labels): %w", name, nx, shape, len(y), ErrBadData)
	}
	maxLabel := int64(-1)
	for i, l := range y {
		if l < 0 {
			return nil, fmt.Errorf("dataset: %s: sample %d has negative label %d: %w", name, i, l, ErrBadData)
		}
		maxLabel = max(maxLabel, l)
	}
	if maxLabel >= math.MaxInt32 {
		return nil, fmt.Errorf("dataset: %s: label %d is too large for a class id: %w", name, maxLabel, ErrBadData)
	}
	d := &Dataset{name: name, shape: shape, size: int(size), y: y, classes: int(maxLabel) + 1, planes: 1}
	if len(shape) > 0 {
		d.planes = int(shape[0])
	}
	d.plane = d.size / d.planes
	return d, nil
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return len(d.y) }

// SampleShape returns the shape of one sample, e.g. [1, 28, 28] (C, H, W).
func (d *Dataset) SampleShape() []int64 { return slices.Clone(d.shape) }

// Labels returns the labels, one per sample. The slice is shared: do not
// modify it.
func (d *Dataset) Labels() []int64 { return d.y }

// Classes returns the number of classes: max label + 1, or as declared (the
// class folders of an image folder, WithClasses).
func (d *Dataset) Classes() int { return d.classes }

// ClassNames returns the class names of a data set read from an image
// folder (the subfolder names, by class id), or nil.
func (d *Dataset) ClassNames() []string { return slices.Clone(d.names) }

// Name returns the data set's name for messages: its file or folder name.
func (d *Dataset) Name() string { return d.name }

// IsUint8 reports whether the samples are stored as uint8 (else float32).
func (d *Dataset) IsUint8() bool { return d.f32 == nil }

// Norm returns the normalization Batch applies.
func (d *Dataset) Norm() Normalization {
	return Normalization{Mean: slices.Clone(d.norm.Mean), Std: slices.Clone(d.norm.Std)}
}

// WithNorm returns a copy sharing the data with another normalization;
// len(n.Mean) = len(n.Std) must be 1 or the number of channels.
func (d *Dataset) WithNorm(n Normalization) (*Dataset, error) {
	c := *d
	if err := c.setNorm(n); err != nil {
		return nil, err
	}
	return &c, nil
}

// WithClasses returns a copy sharing the data that declares k classes, for
// instance a test subset lacking the last class. k must exceed every label.
func (d *Dataset) WithClasses(k int) (*Dataset, error) {
	if err := d.CheckLabels(k); err != nil {
		return nil, err
	}
	c := *d
	c.classes = k
	if len(c.names) != k {
		c.names = nil
	}
	return &c, nil
}

// setNorm checks n against the channel count and precomputes Batch's tables.
func (d *Dataset) setNorm(n Normalization) error {
	if err := n.check(d.planes); err != nil {
		return fmt.Errorf("dataset: %s: %w", d.name, err)
	}
	d.norm = Normalization{Mean: slices.Clone(n.Mean), Std: slices.Clone(n.Std)}
	d.lut, d.mean, d.inv = nil, nil, nil
	if d.f32 == nil {
		d.lut = make([]float32, 256*len(n.Mean))
		for c := range n.Mean {
			m, s := float64(n.Mean[c]), float64(n.Std[c])
			for v := range 256 {
				d.lut[c*256+v] = float32((float64(v)/255 - m) / s)
			}
		}
		return nil
	}
	d.mean = slices.Clone(n.Mean)
	d.inv = make([]float32, len(n.Std))
	for c, s := range n.Std {
		d.inv[c] = float32(1 / float64(s))
	}
	return nil
}

// row returns the storage row of sample i.
func (d *Dataset) row(i int) int {
	if d.rows != nil {
		return d.rows[i]
	}
	return i
}

// Batch writes samples idx (in that order) into dst, normalized; dst must
// hold len(idx)·prod(SampleShape()) values. It does not allocate.
func (d *Dataset) Batch(idx []int, dst []float32) error {
	if len(dst) != len(idx)*d.size {
		return fmt.Errorf("dataset: %s: batch buffer holds %d values, %d samples of %v need %d: %w", d.name, len(dst), len(idx), d.shape, len(idx)*d.size, ErrBadData)
	}
	n := len(d.y)
	for k, i := range idx {
		if i < 0 || i >= n {
			return fmt.Errorf("dataset: %s: sample index %d out of range [0, %d): %w", d.name, i, n, ErrBadData)
		}
		r := d.row(i)
		out := dst[k*d.size : (k+1)*d.size]
		if d.f32 == nil {
			src := d.u8[r*d.size : (r+1)*d.size]
			if len(d.lut) == 256 {
				lut := (*[256]float32)(d.lut)
				for j, v := range src {
					out[j] = lut[v]
				}
				continue
			}
			for c := range d.planes {
				lut := (*[256]float32)(d.lut[c*256 : c*256+256])
				o := out[c*d.plane : (c+1)*d.plane]
				for j, v := range src[c*d.plane : (c+1)*d.plane] {
					o[j] = lut[v]
				}
			}
			continue
		}
		src := d.f32[r*d.size : (r+1)*d.size]
		for c := range d.planes {
			m, s := d.mean[0], d.inv[0]
			if len(d.mean) > 1 {
				m, s = d.mean[c], d.inv[c]
			}
			o := out[c*d.plane : (c+1)*d.plane]
			for j, v := range src[c*d.plane : (c+1)*d.plane] {
				o[j] = (v - m) * s
			}
		}
	}
	return nil
}

// Subset returns the samples idx (in that order; repeats allowed) as a
// data set sharing this one's data, classes and normalization.
func (d *Dataset) Subset(idx []int) (*Dataset, error) {
	if len(idx) == 0 {
		return nil, fmt.Errorf("dataset: %s: empty subset: %w", d.name, ErrBadData)
	}
	n := len(d.y)
	rows := make([]int, len(idx))
	y := make([]int64, len(idx))
	for k, i := range idx {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("dataset: %s: subset index %d (position %d) out of range [0, %d): %w", d.name, i, k, n, ErrBadData)
		}
		rows[k] = d.row(i)
		y[k] = d.y[i]
	}
	c := *d
	c.rows, c.y = rows, y
	return &c, nil
}

// Concat joins data sets of the same sample shape, element type and
// normalization into a new one (a copy) named name. Classes is the largest
// of the parts'; class names must agree where parts have them.
func Concat(name string, parts ...*Dataset) (*Dataset, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("dataset: %s: nothing to concatenate: %w", name, ErrBadData)
	}
	p0 := parts[0]
	n, classes := 0, 0
	var names []string
	for _, p := range parts {
		if !slices.Equal(p.shape, p0.shape) {
			return nil, fmt.Errorf("dataset: %s: cannot concatenate %s (samples %v) and %s (samples %v): %w", name, p0.name, p0.shape, p.name, p.shape, ErrBadData)
		}
		if p.IsUint8() != p0.IsUint8() {
			return nil, fmt.Errorf("dataset: %s: cannot concatenate %s (%s) and %s (%s): %w", name, p0.name, p0.elemType(), p.name, p.elemType(), ErrBadData)
		}
		if !p.norm.equal(p0.norm) {
			return nil, fmt.Errorf("dataset: %s: cannot concatenate %s (normalization %v) and %s (normalization %v): %w", name, p0.name, p0.norm, p.name, p.norm, ErrBadData)
		}
		if p.names != nil {
			if names != nil && !slices.Equal(names, p.names) {
				return nil, fmt.Errorf("dataset: %s: %s and %s name their classes differently (%s / %s): %w", name, p0.name, p.name, strings.Join(names, ","), strings.Join(p.names, ","), ErrBadData)
			}
			names = p.names
		}
		n += p.Len()
		classes = max(classes, p.classes)
	}
	if int64(n)*int64(p0.size) > maxDataBytes {
		return nil, fmt.Errorf("dataset: %s: %d samples of %v are too many to hold: %w", name, n, p0.shape, ErrBadData)
	}
	y := make([]int64, 0, n)
	var u8 []byte
	var f32 []float32
	if p0.IsUint8() {
		u8 = make([]byte, 0, n*p0.size)
	} else {
		f32 = make([]float32, 0, n*p0.size)
	}
	for _, p := range parts {
		y = append(y, p.y...)
		for i := range p.Len() {
			r := p.row(i)
			if u8 != nil {
				u8 = append(u8, p.u8[r*p.size:(r+1)*p.size]...)
			} else {
				f32 = append(f32, p.f32[r*p.size:(r+1)*p.size]...)
			}
		}
	}
	c := *p0
	c.name, c.u8, c.f32, c.rows, c.y, c.classes, c.names = name, u8, f32, nil, y, classes, names
	if len(names) != classes {
		c.names = nil
	}
	return &c, nil
}

func (d *Dataset) elemType() string {
	if d.IsUint8() {
		return "uint8"
	}
	return "float32"
}

// CheckLabels checks that every label lies in [0, classes).
func (d *Dataset) CheckLabels(classes int) error {
	if classes <= 0 {
		return fmt.Errorf("dataset: %s: %d classes declared: %w", d.name, classes, ErrBadData)
	}
	for i, l := range d.y {
		if l < 0 || l >= int64(classes) {
			return fmt.Errorf("dataset: %s: sample %d has label %d, outside the %d classes [0, %d): %w", d.name, i, l, classes, classes, ErrBadData)
		}
	}
	return nil
}

// CheckShape checks that the samples fit a model input whose per-sample
// shape (without the batch axis) is want. They fit when the shapes are
// equal, when they differ only by axes of size 1 ([28, 28] and [1, 28, 28]),
// or when want is one flat axis of the same size ([784] takes [1, 28, 28]).
// A dimension ≤ 0 in want (symbolic) matches any size.
func (d *Dataset) CheckShape(want []int64) error {
	if shapeFits(d.shape, want) {
		return nil
	}
	hint := ""
	if len(want) == 3 && len(d.shape) == 3 && want[0] == d.shape[2] && want[1] == d.shape[0] && want[2] == d.shape[1] {
		hint = " (channels-last data? store x as [N, C, H, W])"
	}
	return fmt.Errorf("dataset: %s: samples have shape %v but the model input takes %v%s: %w", d.name, d.shape, want, hint, ErrBadData)
}

func shapeFits(have, want []int64) bool {
	match := func(h, w []int64) bool {
		if len(h) != len(w) {
			return false
		}
		for i := range h {
			if w[i] > 0 && w[i] != h[i] {
				return false
			}
		}
		return true
	}
	if match(have, want) {
		return true
	}
	squeeze := func(s []int64) []int64 {
		var o []int64
		for _, v := range s {
			if v != 1 {
				o = append(o, v)
			}
		}
		return o
	}
	if match(squeeze(have), squeeze(want)) {
		return true
	}
	if len(want) == 1 && want[0] > 0 {
		n := int64(1)
		for _, v := range have {
			n *= v
		}
		return n == want[0]
	}
	return false
}
