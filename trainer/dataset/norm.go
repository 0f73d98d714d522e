package dataset

import (
	"fmt"
	"math"
	"slices"
)

// Normalization is a per-channel affine map applied by Batch:
// x = (raw/255 − Mean[c]) / Std[c] for uint8 data and
// x = (raw − Mean[c]) / Std[c] for float32 data. Mean and Std hold one
// value for all channels or one per channel.
//
// The identity, {Mean: [0], Std: [1]}, maps uint8 pixels to raw/255 in
// [0, 1] and leaves float32 data unchanged.
type Normalization struct {
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// IdentityNorm returns the identity normalization {Mean: [0], Std: [1]}.
func IdentityNorm() Normalization {
	return Normalization{Mean: []float32{0}, Std: []float32{1}}
}

func (n Normalization) equal(o Normalization) bool {
	return slices.Equal(n.Mean, o.Mean) && slices.Equal(n.Std, o.Std)
}

// check validates n for data with c channels.
func (n Normalization) check(c int) error {
	if len(n.Mean) != len(n.Std) {
		return fmt.Errorf("normalization has %d means but %d stds: %w", len(n.Mean), len(n.Std), ErrBadData)
	}
	if len(n.Mean) != 1 && len(n.Mean) != c {
		return fmt.Errorf("normalization has %d values per field, the data has %d channels (want 1 or %d): %w", len(n.Mean), c, c, ErrBadData)
	}
	for i := range n.Mean {
		m, s := float64(n.Mean[i]), float64(n.Std[i])
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("normalization mean[%d] = %v: %w", i, m, ErrBadData)
		}
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("normalization std[%d] = %v, want a positive finite number: %w", i, s, ErrBadData)
		}
	}
	return nil
}

// ComputeNorm returns the per-channel mean and (population) standard
// deviation of d's samples, raw/255 for uint8 data, accumulated in float64
// (exactly, in integers, for uint8). A channel with zero spread gets std 1,
// so the result is always a valid normalization for d.
func ComputeNorm(d *Dataset) Normalization {
	C, P, n := d.planes, d.plane, d.Len()
	mean := make([]float64, C)
	std := make([]float64, C)
	count := float64(n) * float64(P)
	if d.IsUint8() {
		sum := make([]uint64, C)
		sq := make([]uint64, C)
		for i := range n {
			r := d.row(i)
			src := d.u8[r*d.size : (r+1)*d.size]
			for c := range C {
				var s, q uint64
				for _, v := range src[c*P : (c+1)*P] {
					s += uint64(v)
					q += uint64(v) * uint64(v)
				}
				sum[c] += s
				sq[c] += q
			}
		}
		for c := range C {
			m := float64(sum[c]) / count
			v := float64(sq[c])/count - m*m
			mean[c] = m / 255
			std[c] = math.Sqrt(max(v, 0)) / 255
		}
	} else {
		for i := range n {
			r := d.row(i)
			src := d.f32[r*d.size : (r+1)*d.size]
			for c := range C {
				for _, v := range src[c*P : (c+1)*P] {
					mean[c] += float64(v)
				}
			}
		}
		for c := range C {
			mean[c] /= count
		}
		for i := range n {
			r := d.row(i)
			src := d.f32[r*d.size : (r+1)*d.size]
			for c := range C {
				m := mean[c]
				for _, v := range src[c*P : (c+1)*P] {
					e := float64(v) - m
					std[c] += e * e
				}
			}
		}
		for c := range C {
			std[c] = math.Sqrt(std[c] / count)
		}
	}
	out := Normalization{Mean: make([]float32, C), Std: make([]float32, C)}
	for c := range C {
		out.Mean[c] = float32(mean[c])
		out.Std[c] = float32(std[c])
		if !(out.Std[c] > 0) || math.IsInf(float64(out.Std[c]), 0) {
			out.Std[c] = 1
		}
	}
	return out
}
