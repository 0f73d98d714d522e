package trainer

import (
	"context"
	"fmt"
	"math"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// GradNorms computes each sample's gradient norm ‖∇θ ℓ(x, y; θ)‖₂ over all
// trainable parameters (METHODS.md). In eval mode BatchNorm uses its
// running statistics and one backward pass per batch gives every sample's
// norm. In in-batch mode the data set is cut into consecutive batches of
// the given size (a partial last batch included), each run with batch
// statistics, and sample i's norm is that of the gradient of its own loss
// term inside its batch: one backward pass per sample.
func GradNorms(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, mode GradNormMode, batch int, opts ort.SessionOptions) ([]float64, error) {
	if d == nil || d.Len() == 0 {
		return nil, fmt.Errorf("trainer: no samples")
	}
	if batch <= 0 {
		return nil, fmt.Errorf("trainer: batch size must be positive, not %d", batch)
	}
	if err := ort.Init(""); err != nil {
		return nil, err
	}
	n := d.Len()
	full := min(batch, n)
	graphs := map[int]*session{}
	defer func() {
		for _, s := range graphs {
			s.close()
		}
	}()
	open := func(b int) (*session, error) {
		if s, ok := graphs[b]; ok {
			return s, nil
		}
		g, err := BuildGradNorms(m, b, mode)
		if err != nil {
			return nil, err
		}
		s, err := openSession(g, opts, b)
		if err != nil {
			return nil, err
		}
		graphs[b] = s
		return s, nil
	}
	first, err := open(full)
	if err != nil {
		return nil, err
	}
	g := first.g
	sample := g.Shapes[g.Input][1:]
	if err := d.CheckShape(sample); err != nil {
		return nil, err
	}
	if err := d.CheckLabels(int(g.Shapes[g.Logits][1])); err != nil {
		return nil, err
	}
	ix, err := onnxio.NewIndex(m)
	if err != nil {
		return nil, err
	}
	params := map[string]onnxruntime.Value{}
	defer func() {
		for _, v := range params {
			v.Destroy()
		}
	}()
	for _, p := range append(append([]string{}, g.Params...), g.Stats...) {
		v, err := m.Floats(ix.Initializers[p])
		if err != nil {
			return nil, err
		}
		t, err := tensorF32(g.Shapes[p], v)
		if err != nil {
			return nil, err
		}
		params[p] = t
	}
	out := make([]float64, n)
	per := numel(sample)
	labels := d.Labels()
	for lo := 0; lo < n; lo += full {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := min(full, n-lo)
		s, err := open(b)
		if err != nil {
			return nil, err
		}
		xb := make([]float32, int64(b)*per)
		idx := make([]int, b)
		yb := make([]int64, b)
		for i := range idx {
			idx[i] = lo + i
			yb[i] = labels[lo+i]
		}
		if err := d.Batch(idx, xb); err != nil {
			return nil, err
		}
		x, err := tensorF32(append([]int64{int64(b)}, sample...), xb)
		if err != nil {
			return nil, err
		}
		y, err := onnxruntime.NewTensor(onnxruntime.NewShape(int64(b)), yb)
		if err != nil {
			x.Destroy()
			return nil, err
		}
		in := map[string]onnxruntime.Value{s.g.Input: x, NameLabels: y}
		for k, v := range params {
			in[k] = v
		}
		runErr := func() error {
			if mode == GradNormEval {
				if err := s.run(ctx, in, nil); err != nil {
					return err
				}
				for i, v := range s.data(NameGradSqNorm) {
					out[lo+i] = math.Sqrt(float64(v))
				}
				return nil
			}
			seed := make([]float32, b)
			st, err := tensorF32([]int64{int64(b)}, seed)
			if err != nil {
				return err
			}
			defer st.Destroy()
			in[NameSeed] = st
			for i := 0; i < b; i++ {
				for k := range seed {
					seed[k] = 0
				}
				seed[i] = 1
				if err := s.run(ctx, in, nil); err != nil {
					return err
				}
				sq := s.scratch[NameGradSqNorm].(*onnxruntime.Scalar[float32]).GetData()
				out[lo+i] = math.Sqrt(float64(sq))
			}
			return nil
		}()
		x.Destroy()
		y.Destroy()
		if runErr != nil {
			return nil, fmt.Errorf("trainer: gradient norms: %w", runErr)
		}
	}
	return out, nil
}
