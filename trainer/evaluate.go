package trainer

import (
	"context"
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
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
//
// The graph holds the model's parameters and statistics as constants
// (BuildFrozenEval), so that ONNX Runtime's optimizer folds BatchNorm into
// the convolutions and moves them to its blocked kernels itself, as it
// does for any inference model; the next batch is decoded while the
// current one runs.
func Evaluate(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, batch int, opts ort.SessionOptions) (*Outputs, error) {
	if d == nil || d.Len() == 0 {
		return nil, fmt.Errorf("trainer: no samples")
	}
	if batch <= 0 {
		return nil, fmt.Errorf("trainer: batch size must be positive, not %d", batch)
	}
	if err := ort.Init(""); err != nil {
		return nil, err
	}
	// ORT blocks the constant-weight convolutions itself; bnaudit's own
	// rewrite is for graphs whose weights are inputs.
	opts.NCHWc = ort.NCHWcOff
	gs := newGraphSet(func(b int) (*Graph, error) { return BuildFrozenEval(m, b) }, opts)
	defer gs.close()
	n, full := d.Len(), min(batch, d.Len())
	first, err := gs.get(full)
	if err != nil {
		return nil, err
	}
	g := first.g
	sample := g.Shapes[g.Input][1:]
	if err := d.CheckShape(sample); err != nil {
		return nil, err
	}
	classes := int(g.Shapes[g.Logits][1])
	if err := d.CheckLabels(classes); err != nil {
		return nil, err
	}
	out := &Outputs{Logits: make([]float32, n*classes), Classes: classes, Loss: make([]float32, n)}
	batches, stop := prefetchBatches(d, full, sample)
	defer stop()
	progress := evalProgressOf(ctx)
	for bt := range batches {
		if bt.err != nil {
			return nil, bt.err
		}
		// every batch has full rows (the last padded): one session
		s, err := gs.get(full)
		if err == nil {
			err = s.run(ctx, map[string]*ort.Value{g.Input: bt.x, NameLabels: bt.y}, nil)
		}
		bt.free()
		if err != nil {
			return nil, fmt.Errorf("trainer: evaluation: %w", err)
		}
		copy(out.Logits[bt.lo*classes:], s.data(s.g.Logits)[:bt.n*classes])
		copy(out.Loss[bt.lo:], s.data(NamePerSampleLoss)[:bt.n])
		if progress != nil {
			progress(bt.lo+bt.n, n)
		}
	}
	out.Fallbacks = gs.fallbacks()
	return out, nil
}

// preparedBatch is one batch of data made ahead of its run.
type preparedBatch struct {
	lo, n int
	x, y  *ort.Value
	free  func()
	err   error
}

// prefetchBatches makes the data tensors of d's batches of size full (the
// last one padded to full with zeros, its n saying how many rows are
// samples, so that one session serves every batch) on a goroutine, one batch ahead of the consumer, and
// sends them in order; a batch that fails ends the stream with its error.
// stop ends the goroutine and frees what the consumer did not take.
func prefetchBatches(d *dataset.Dataset, full int, sample []int64) (<-chan preparedBatch, func()) {
	ch := make(chan preparedBatch, 1)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		for lo := 0; lo < d.Len(); lo += full {
			b := min(full, d.Len()-lo)
			x, y, free, err := paddedBatch(d, lo, b, full, sample)
			select {
			case ch <- preparedBatch{lo: lo, n: b, x: x, y: y, free: free, err: err}:
			case <-done:
				if err == nil {
					free()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() {
		close(done)
		for bt := range ch {
			if bt.err == nil {
				bt.free()
			}
		}
	}
}

// BuildFrozenEval is BuildEval with the model's parameters and running
// statistics written into the graph as initializers and left out of its
// inputs, which are then only the data and the labels: the graph of one
// trained model, which ONNX Runtime optimizes as an inference model.
func BuildFrozenEval(m *onnxio.Model, batch int) (*Graph, error) {
	g, err := BuildEval(m, batch)
	if err != nil {
		return nil, err
	}
	src := g.src // m, or its upgrade
	ix, err := onnxio.NewIndex(src)
	if err != nil {
		return nil, err
	}
	gp := g.Model.Graph()
	frozen := map[string]bool{}
	for _, p := range append(append([]string{}, g.Params...), g.Stats...) {
		t, ok := ix.Initializers[p]
		if !ok {
			return nil, fmt.Errorf("trainer: %s: no initializer %q to freeze", m.Name, p)
		}
		v, err := src.Floats(t)
		if err != nil {
			return nil, err
		}
		gp.Initializer = append(gp.Initializer, onnxio.FloatTensor(p, g.Shapes[p], v))
		frozen[p] = true
	}
	ins := gp.Input[:0]
	for _, in := range gp.GetInput() {
		if !frozen[in.GetName()] {
			ins = append(ins, in)
		}
	}
	gp.Input = ins
	dropUnusedOptionalOutputs(gp)
	return g, nil
}

// optionalOutputs are the operators whose outputs after the first are
// optional: dropped when nothing reads them. ORT's blocked kernels take a
// MaxPool only without its Indices output, which the evaluation graph
// carries for the backward pass of the step graph's shared forward.
var optionalOutputs = map[string]bool{"MaxPool": true, "BatchNormalization": true, "Dropout": true}

// dropUnusedOptionalOutputs removes the trailing outputs of optionalOutputs
// nodes that no node and no graph output reads.
func dropUnusedOptionalOutputs(gp *onnxpb.GraphProto) {
	read := map[string]bool{}
	for _, n := range gp.GetNode() {
		for _, in := range n.GetInput() {
			read[in] = true
		}
	}
	for _, o := range gp.GetOutput() {
		read[o.GetName()] = true
	}
	for _, n := range gp.GetNode() {
		if !optionalOutputs[n.GetOpType()] {
			continue
		}
		k := len(n.Output)
		for k > 1 && !read[n.Output[k-1]] {
			k--
		}
		n.Output = n.Output[:k]
	}
}
