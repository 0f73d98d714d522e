package trainer

import (
	"context"
	"fmt"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Outputs are a model's per-sample outputs over a data set.
type Outputs struct {
	// Logits holds N rows of Classes values.
	Logits  []float32
	Classes int
	// Loss is each sample's cross-entropy loss as the graph computed it in
	// float32 (use audit.ComputeSignals on Logits for float64 signals).
	Loss []float32
}

// Evaluate runs a model over a data set in inference mode (BatchNorm on its
// running statistics, Dropout off) with the evaluation graph, in batches of
// the given size (the last one smaller), and returns logits and losses.
func Evaluate(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, batch int, opts ort.SessionOptions) (*Outputs, error) {
	if d == nil || d.Len() == 0 {
		return nil, fmt.Errorf("trainer: nothing to evaluate")
	}
	if batch <= 0 {
		return nil, fmt.Errorf("trainer: batch size must be positive, not %d", batch)
	}
	if err := ort.Init(""); err != nil {
		return nil, err
	}
	n := d.Len()
	full := min(batch, n)
	g, err := BuildEval(m, full)
	if err != nil {
		return nil, err
	}
	sample := g.Shapes[g.Input][1:]
	if err := d.CheckShape(sample); err != nil {
		return nil, err
	}
	classes := int(g.Shapes[g.Logits][1])
	if err := d.CheckLabels(classes); err != nil {
		return nil, err
	}
	sessions := map[int]*session{}
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	open := func(b int) (*session, error) {
		if s, ok := sessions[b]; ok {
			return s, nil
		}
		gg := g
		if b != full {
			var err error
			if gg, err = BuildEval(m, b); err != nil {
				return nil, err
			}
		}
		s, err := openSession(gg, opts, b)
		if err != nil {
			return nil, err
		}
		sessions[b] = s
		return s, nil
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
	out := &Outputs{Logits: make([]float32, n*classes), Classes: classes, Loss: make([]float32, n)}
	per := numel(sample)
	labels := d.Labels()
	for lo := 0; lo < n; lo += full {
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
		err = s.run(ctx, in, nil)
		x.Destroy()
		y.Destroy()
		if err != nil {
			return nil, fmt.Errorf("trainer: evaluation: %w", err)
		}
		copy(out.Logits[lo*classes:], s.data(s.g.Logits))
		copy(out.Loss[lo:], s.data(NamePerSampleLoss))
	}
	return out, nil
}
