package trainer

import (
	"fmt"
	"maps"
	"slices"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Helpers shared by the runners that sweep a graph over a data set
// (Evaluate, GradNorms): one session per batch size, the model's weights as
// ORT tensors, and one batch of data at a time.

// graphSet opens one session per batch size of a family of graphs.
type graphSet struct {
	build    func(batch int) (*Graph, error)
	opts     ort.SessionOptions
	sessions map[int]*session
}

func newGraphSet(build func(int) (*Graph, error), opts ort.SessionOptions) *graphSet {
	return &graphSet{build: build, opts: opts, sessions: map[int]*session{}}
}

func (gs *graphSet) get(batch int) (*session, error) {
	if s, ok := gs.sessions[batch]; ok {
		return s, nil
	}
	g, err := gs.build(batch)
	if err != nil {
		return nil, err
	}
	s, err := openSession(g, gs.opts, batch)
	if err != nil {
		return nil, err
	}
	gs.sessions[batch] = s
	return s, nil
}

// fallbacks returns the fallback notes of the sessions opened so far, by
// batch size, largest first.
func (gs *graphSet) fallbacks() []string {
	batches := slices.Sorted(maps.Keys(gs.sessions))
	slices.Reverse(batches)
	ss := make([]*session, len(batches))
	for i, b := range batches {
		ss[i] = gs.sessions[b]
	}
	return fallbacks(ss...)
}

func (gs *graphSet) close() {
	for _, s := range gs.sessions {
		s.close()
	}
}

// openSweep checks a sweep's arguments, opens the full-batch graph, checks
// the data against it and loads the model's weights. The caller closes gs
// and destroys w.
func openSweep(m *onnxio.Model, d *dataset.Dataset, batch int, opts ort.SessionOptions, build func(int) (*Graph, error)) (gs *graphSet, g *Graph, w weightTensors, err error) {
	if d == nil || d.Len() == 0 {
		return nil, nil, nil, fmt.Errorf("trainer: no samples")
	}
	if batch <= 0 {
		return nil, nil, nil, fmt.Errorf("trainer: batch size must be positive, not %d", batch)
	}
	if err := ort.Init(""); err != nil {
		return nil, nil, nil, err
	}
	gs = newGraphSet(build, opts)
	first, err := gs.get(min(batch, d.Len()))
	if err == nil {
		g = first.g
		if err = d.CheckShape(g.Shapes[g.Input][1:]); err == nil {
			if err = d.CheckLabels(int(g.Shapes[g.Logits][1])); err == nil {
				w, err = newWeightTensors(m, g)
			}
		}
	}
	if err != nil {
		gs.close()
		return nil, nil, nil, err
	}
	return gs, g, w, nil
}

// weightTensors holds a model's parameters and statistics as ORT tensors,
// named as in the graph.
type weightTensors map[string]*ort.Value

func newWeightTensors(m *onnxio.Model, g *Graph) (weightTensors, error) {
	if g.src != nil {
		m = g.src // the model the graph was built from (m, or its upgrade)
	}
	ix, err := onnxio.NewIndex(m)
	if err != nil {
		return nil, err
	}
	w := weightTensors{}
	for _, p := range append(append([]string{}, g.Params...), g.Stats...) {
		v, err := m.Floats(ix.Initializers[p])
		if err != nil {
			w.destroy()
			return nil, err
		}
		t, err := ort.NewFloat32(g.Shapes[p], v)
		if err != nil {
			w.destroy()
			return nil, err
		}
		w[p] = t
	}
	return w, nil
}

func (w weightTensors) destroy() {
	for _, v := range w {
		v.Destroy()
	}
}

// dataBatch makes the data and label tensors of samples [lo, lo+b) of d;
// free releases them.
func dataBatch(d *dataset.Dataset, lo, b int, sample []int64) (x, y *ort.Value, free func(), err error) {
	return paddedBatch(d, lo, b, b, sample)
}

// paddedBatch is dataBatch for a graph of batch size rows ≥ b: rows after
// the b samples are zeros with label 0. Only for graphs in which the
// samples do not see each other (evaluation with running statistics).
func paddedBatch(d *dataset.Dataset, lo, b, rows int, sample []int64) (x, y *ort.Value, free func(), err error) {
	xb := make([]float32, int64(rows)*numel(sample))
	idx := make([]int, b)
	yb := make([]int64, rows)
	labels := d.Labels()
	for i := range idx {
		idx[i] = lo + i
		yb[i] = labels[lo+i]
	}
	if err := d.Batch(idx, xb[:int64(b)*numel(sample)]); err != nil {
		return nil, nil, nil, err
	}
	xt, err := ort.NewFloat32(append([]int64{int64(rows)}, sample...), xb)
	if err != nil {
		return nil, nil, nil, err
	}
	yt, err := ort.NewInt64([]int64{int64(rows)}, yb)
	if err != nil {
		xt.Destroy()
		return nil, nil, nil, err
	}
	return xt, yt, func() { xt.Destroy(); yt.Destroy() }, nil
}

// inputs binds a batch and the weights by name.
func (w weightTensors) inputs(g *Graph, x, y *ort.Value) map[string]*ort.Value {
	in := map[string]*ort.Value{g.Input: x, NameLabels: y}
	for k, v := range w {
		in[k] = v
	}
	return in
}
