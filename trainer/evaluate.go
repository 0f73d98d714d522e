package trainer

import (
	"context"
	"fmt"

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
	// Fallbacks has one line for each graph whose blocked-layout form
	// (opts.NCHWc) ONNX Runtime refused, so that it ran as built; empty
	// when none (see Result.Fallbacks).
	Fallbacks []string
}

// Evaluate runs a model over a data set in inference mode (BatchNorm on its
// running statistics, Dropout off) with the evaluation graph, in batches of
// the given size (the last one smaller), and returns logits and losses.
func Evaluate(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, batch int, opts ort.SessionOptions) (*Outputs, error) {
	gs, g, w, err := openSweep(m, d, batch, opts, func(b int) (*Graph, error) { return BuildEval(m, b) })
	if err != nil {
		return nil, err
	}
	defer gs.close()
	defer w.destroy()
	n, full := d.Len(), min(batch, d.Len())
	sample := g.Shapes[g.Input][1:]
	classes := int(g.Shapes[g.Logits][1])
	out := &Outputs{Logits: make([]float32, n*classes), Classes: classes, Loss: make([]float32, n)}
	for lo := 0; lo < n; lo += full {
		b := min(full, n-lo)
		s, err := gs.get(b)
		if err != nil {
			return nil, err
		}
		x, y, free, err := dataBatch(d, lo, b, sample)
		if err != nil {
			return nil, err
		}
		err = s.run(ctx, w.inputs(s.g, x, y), nil)
		free()
		if err != nil {
			return nil, fmt.Errorf("trainer: evaluation: %w", err)
		}
		copy(out.Logits[lo*classes:], s.data(s.g.Logits))
		copy(out.Loss[lo:], s.data(NamePerSampleLoss))
	}
	out.Fallbacks = gs.fallbacks()
	return out, nil
}
