package trainer

import (
	"context"
	"fmt"
	"math"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// GradNorms computes each sample's gradient norm ‖∇θ ℓ(x, y; θ)‖₂ over all
// trainable parameters (docs/METHODS.md). In eval mode BatchNorm uses its
// running statistics and one backward pass per batch gives every sample's
// norm. In in-batch mode the data set is cut into consecutive batches of
// the given size (a partial last batch included), each run with batch
// statistics, and sample i's norm is that of the gradient of its own loss
// term inside its batch: one backward pass per sample.
func GradNorms(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, mode GradNormMode, batch int, opts ort.SessionOptions) ([]float64, error) {
	gs, g, w, err := openSweep(m, d, batch, opts, func(b int) (*Graph, error) { return BuildGradNorms(m, b, mode) })
	if err != nil {
		return nil, err
	}
	defer gs.close()
	defer w.destroy()
	n, full := d.Len(), min(batch, d.Len())
	sample := g.Shapes[g.Input][1:]
	out := make([]float64, n)
	for lo := 0; lo < n; lo += full {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := min(full, n-lo)
		s, err := gs.get(b)
		if err != nil {
			return nil, err
		}
		x, y, free, err := dataBatch(d, lo, b, sample)
		if err != nil {
			return nil, err
		}
		in := w.inputs(s.g, x, y)
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
			st, err := ort.NewFloat32([]int64{int64(b)}, seed)
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
				out[lo+i] = math.Sqrt(float64(s.data(NameGradSqNorm)[0]))
			}
			return nil
		}()
		free()
		if runErr != nil {
			return nil, fmt.Errorf("trainer: gradient norms: %w", runErr)
		}
	}
	return out, nil
}
