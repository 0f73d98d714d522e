package trainer

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// session runs one built graph with Go-owned buffers bound by name.
type session struct {
	s       *ort.Session
	ins     []string
	outs    []string
	batch   int
	g       *Graph
	scratch map[string]*ort.Value // per-session outputs (loss, logits, …)
	// fallback, when set, says that ORT refused the blocked-layout form of
	// g and that the session runs g.Model as built.
	fallback string
}

// openSessionAs opens a session that runs m, g.Model or a rewrite of it, and
// runs g.Model instead, noting why in the session's fallback, when ONNX
// Runtime refuses the rewrite.
func openSessionAs(g *Graph, m *onnxio.Model, opts ort.SessionOptions, batch int) (*session, error) {
	raw, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	inputs := make([]string, 0)
	for _, in := range g.Model.Graph().GetInput() {
		inputs = append(inputs, in.GetName())
	}
	var outputs []string
	for _, o := range g.Model.Graph().GetOutput() {
		outputs = append(outputs, o.GetName())
	}
	s, err := ort.NewSession(raw, inputs, outputs, opts)
	fallback := ""
	if err != nil && m != g.Model {
		// The blocked-layout rewrite is an optimization: should ORT refuse
		// it for some layer, run the graph as built, and say so.
		fallback = fmt.Sprintf("ONNX Runtime refused the blocked-layout (NCHWc=%s) form of %s at batch %d, which runs as built instead (slower): %v", opts.NCHWc, g.Model.Name, batch, err)
		if raw, err = g.Model.Bytes(); err != nil {
			return nil, err
		}
		s, err = ort.NewSession(raw, inputs, outputs, opts)
	}
	if err != nil {
		return nil, err
	}
	return &session{s: s, ins: inputs, outs: outputs, batch: batch, g: g, scratch: map[string]*ort.Value{}, fallback: fallback}, nil
}

func (s *session) close() {
	for _, t := range s.scratch {
		t.Destroy()
	}
	s.s.Close()
}

// data returns a float output of the last run: a tensor's own buffer, or a
// 0-d output's value as a one-element slice.
func (s *session) data(name string) []float32 {
	return s.scratch[name].Float32()
}

// run binds values by name: in and out map names to ORT values; outputs not
// in out get a scratch tensor of this session.
func (s *session) run(ctx context.Context, in map[string]*ort.Value, out map[string]*ort.Value) error {
	iv := make([]*ort.Value, len(s.ins))
	for k, name := range s.ins {
		v, ok := in[name]
		if !ok {
			return fmt.Errorf("trainer: no value for graph input %q", name)
		}
		iv[k] = v
	}
	ov := make([]*ort.Value, len(s.outs))
	for k, name := range s.outs {
		if v, ok := out[name]; ok {
			ov[k] = v
			continue
		}
		t, ok := s.scratch[name]
		if !ok {
			var err error
			if t, err = ort.NewFloat32(s.g.Shapes[name], make([]float32, numel(s.g.Shapes[name]))); err != nil {
				return err
			}
			s.scratch[name] = t
		}
		ov[k] = t
	}
	return s.s.RunValues(ctx, iv, ov)
}

// trainer holds the sessions and buffers of one run.
type trainer struct {
	cfg         Config
	src         *onnxio.Model
	step, stepR *session // full and remainder batch
	eval, evalR *session
	full, rem   int
	perEpoch    int
	state       map[string][]float32 // P, P.m, P.v, S: current values
	next        map[string][]float32 // the other buffer of each
	cur, nxt    map[string]*ort.Value
	persistent  []string
	sampleShape []int64
	classes     int
	xbuf        map[int][]float32
	x, y        map[int]*ort.Value
	ybuf        map[int][]int64
	targets     map[int]*ort.Value // float targets of a regression, by batch size
	masks       map[string]map[int]*ort.Value
	lr, stepIn  *ort.Value // 0-d inputs, set before every step
	fingerprint string
	history     []EpochStats
	globalStep  int
	totalSteps  int
	epoch       int // 0-based epoch in progress
	stepInEpoch int
	acc         epochAcc
	resumed     bool
	lastLR      float32
	order       []int
}

// epochAcc accumulates an epoch's training metrics (saved in checkpoints so
// that a resumed epoch reports what an uninterrupted one would).
type epochAcc struct {
	LossSum float64 `json:"loss_sum"`
	Correct int     `json:"correct"`
	Seen    int     `json:"seen"`
	Seconds float64 `json:"seconds"`
	Steps   int     `json:"steps"`
}

func newTrainer(src *onnxio.Model, cfg Config) (_ *trainer, err error) {
	t := &trainer{cfg: cfg, src: src, state: map[string][]float32{}, next: map[string][]float32{},
		cur: map[string]*ort.Value{}, nxt: map[string]*ort.Value{},
		xbuf: map[int][]float32{}, x: map[int]*ort.Value{}, y: map[int]*ort.Value{},
		ybuf: map[int][]int64{}, masks: map[string]map[int]*ort.Value{}, targets: map[int]*ort.Value{}}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if err := ort.Init(""); err != nil {
		return nil, err
	}
	n := cfg.Train.Len()
	t.full = min(cfg.Batch, n)
	t.rem = n % t.full
	t.perEpoch = n / t.full
	if t.rem > 0 {
		t.perEpoch++
	}
	t.totalSteps = t.perEpoch * cfg.Epochs
	sc := StepConfig{Batch: t.full, Optimizer: cfg.Optimizer, LabelSmoothing: cfg.LabelSmoothing, Loss: cfg.Loss}
	g, err := BuildStep(src, sc)
	if err != nil {
		return nil, err
	}
	t.sampleShape = g.Shapes[g.Input][1:]
	if err := cfg.Train.CheckShape(t.sampleShape); err != nil {
		return nil, err
	}
	t.classes = int(g.Shapes[g.Logits][1])
	labelRange := t.classes
	if cfg.regression() {
		labelRange = t.classes / 2 // the labels choose a (μ, r) pair
	}
	if err := cfg.Train.CheckLabels(labelRange); err != nil {
		return nil, err
	}
	if cfg.Test != nil {
		if err := cfg.Test.CheckShape(t.sampleShape); err != nil {
			return nil, err
		}
		if err := cfg.Test.CheckLabels(t.classes); err != nil {
			return nil, err
		}
	}
	if t.step, err = openSession(g, cfg.Session, t.full); err != nil {
		return nil, err
	}
	if t.rem > 0 {
		sc.Batch = t.rem
		gr, err := BuildStep(src, sc)
		if err != nil {
			return nil, err
		}
		if t.stepR, err = openSession(gr, cfg.Session, t.rem); err != nil {
			return nil, err
		}
	}
	if cfg.Test != nil {
		eb := min(cfg.Batch, cfg.Test.Len())
		ge, err := BuildEval(src, eb)
		if err != nil {
			return nil, err
		}
		if t.eval, err = openSession(ge, cfg.Session, eb); err != nil {
			return nil, err
		}
		if r := cfg.Test.Len() % eb; r > 0 {
			ger, err := BuildEval(src, r)
			if err != nil {
				return nil, err
			}
			if t.evalR, err = openSession(ger, cfg.Session, r); err != nil {
				return nil, err
			}
		}
	}
	// State buffers: parameters (from the model), slots (zero), statistics.
	ix, err := onnxio.NewIndex(src)
	if err != nil {
		return nil, err
	}
	add := func(name string, shape []int64, vals []float32) error {
		t.persistent = append(t.persistent, name)
		t.state[name] = vals
		t.next[name] = make([]float32, len(vals))
		var err error
		if t.cur[name], err = ort.NewFloat32(shape, t.state[name]); err != nil {
			return err
		}
		t.nxt[name], err = ort.NewFloat32(shape, t.next[name])
		return err
	}
	for _, p := range append(append([]string{}, g.Params...), g.Stats...) {
		v, err := src.Floats(ix.Initializers[p])
		if err != nil {
			return nil, err
		}
		if err := add(p, g.Shapes[p], v); err != nil {
			return nil, err
		}
	}
	for _, p := range g.Params {
		for _, s := range g.Slots {
			if err := add(p+s, g.Shapes[p], make([]float32, len(t.state[p]))); err != nil {
				return nil, err
			}
		}
	}
	t.fingerprint = fingerprint(src, cfg)
	return t, nil
}

func (t *trainer) close() {
	for _, s := range []*session{t.step, t.stepR, t.eval, t.evalR} {
		if s != nil {
			s.close()
		}
	}
	for _, m := range []map[string]*ort.Value{t.cur, t.nxt} {
		for _, v := range m {
			v.Destroy()
		}
	}
	for _, m := range []map[int]*ort.Value{t.x, t.y, t.targets} {
		for _, v := range m {
			v.Destroy()
		}
	}
	for _, m := range t.masks {
		for _, v := range m {
			v.Destroy()
		}
	}
	t.lr.Destroy()
	t.stepIn.Destroy()
}

// fallbacks are the notes of the sessions that run their graph as built
// because ORT refused its blocked-layout form.
func (t *trainer) fallbacks() []string {
	return fallbacks(t.step, t.stepR, t.eval, t.evalR)
}

// fallbacks returns the fallback notes of the given sessions (nil ones
// skipped), in order.
func fallbacks(ss ...*session) []string {
	var out []string
	for _, s := range ss {
		if s != nil && s.fallback != "" {
			out = append(out, s.fallback)
		}
	}
	return out
}

// batchTensors returns the data and label tensors for batch size b.
func (t *trainer) batchTensors(b int) (x, y *ort.Value, err error) {
	if x, ok := t.x[b]; ok {
		return x, t.y[b], nil
	}
	per := numel(t.sampleShape)
	t.xbuf[b] = make([]float32, int64(b)*per)
	t.ybuf[b] = make([]int64, b)
	if x, err = ort.NewFloat32(append([]int64{int64(b)}, t.sampleShape...), t.xbuf[b]); err != nil {
		return nil, nil, err
	}
	if y, err = ort.NewInt64([]int64{int64(b)}, t.ybuf[b]); err != nil {
		x.Destroy()
		return nil, nil, err
	}
	t.x[b], t.y[b] = x, y
	return x, y, nil
}

// epochOrder is the seeded permutation of the training set for an epoch.
func (t *trainer) epochOrder(epoch int) []int {
	r := rng(t.cfg.Seed, streamOrder, uint64(epoch), 0)
	return r.Perm(t.cfg.Train.Len())
}

func (t *trainer) run(ctx context.Context) (*Result, error) {
	cfg := t.cfg
	if cfg.Resume {
		ok, err := t.loadCheckpoint()
		if err != nil {
			return nil, err
		}
		t.resumed = ok
	}
	// A checkpoint written at the end of an epoch that met the target:
	// the run had stopped there.
	stopped := t.stepInEpoch == 0 && t.epoch > 0 && t.epoch < cfg.Epochs && len(t.history) == t.epoch &&
		cfg.reachedTarget(t.history[len(t.history)-1])
	fallbacks := t.fallbacks()
	for _, note := range fallbacks {
		if err := cfg.logLine(map[string]any{"nchwc_fallback": note}); err != nil {
			return nil, err
		}
	}
	runStart := time.Now()
	stepsAtStart := t.globalStep
	for ; t.epoch < cfg.Epochs && !stopped; t.epoch++ {
		t.order = t.epochOrder(t.epoch)
		for ; t.stepInEpoch < t.perEpoch; t.stepInEpoch++ {
			if err := ctx.Err(); err != nil {
				if cfg.CheckpointDir != "" {
					if cerr := t.saveCheckpoint(); cerr != nil {
						return nil, cerr
					}
				}
				return nil, fmt.Errorf("trainer: %w after %d of %d steps (epoch %d, step %d)%s", ErrInterrupted, t.globalStep, t.totalSteps, t.epoch+1, t.stepInEpoch, t.resumeHint())
			}
			if err := t.trainStep(ctx); err != nil {
				return nil, err
			}
			t.globalStep++
			if cfg.Progress != nil {
				el := time.Since(runStart).Seconds()
				done := t.globalStep - stepsAtStart
				rate := float64(done) / math.Max(el, 1e-9)
				cfg.Progress(Progress{Epoch: t.epoch + 1, Epochs: cfg.Epochs, Step: t.stepInEpoch + 1, StepsPerEpoch: t.perEpoch,
					Loss: t.acc.LossSum / float64(max(1, t.acc.Seen)), Accuracy: float64(t.acc.Correct) / float64(max(1, t.acc.Seen)),
					SamplesPerSec: rate * float64(t.full), ETA: time.Duration(float64(t.totalSteps-t.globalStep) / math.Max(rate, 1e-9) * float64(time.Second)),
					GlobalStep: t.globalStep, TotalSteps: t.totalSteps})
			}
			if cfg.LogEvery > 0 && t.globalStep%cfg.LogEvery == 0 {
				if err := cfg.logLine(map[string]any{"step": t.globalStep, "epoch": t.epoch + 1, "loss": t.acc.LossSum / float64(max(1, t.acc.Seen)),
					"acc": float64(t.acc.Correct) / float64(max(1, t.acc.Seen)), "lr": t.lastLR}); err != nil {
					return nil, err
				}
			}
			if cfg.CheckpointDir != "" && cfg.CheckpointEvery > 0 && t.globalStep%cfg.CheckpointEvery == 0 && t.stepInEpoch+1 < t.perEpoch {
				t.stepInEpoch++
				err := t.saveCheckpoint()
				t.stepInEpoch--
				if err != nil {
					return nil, err
				}
			}
		}
		st := EpochStats{Epoch: t.epoch + 1, TrainLoss: t.acc.LossSum / float64(t.acc.Seen), TrainAcc: float64(t.acc.Correct) / float64(t.acc.Seen), LR: t.lastLR}
		st.Seconds = t.acc.Seconds
		if st.Seconds > 0 {
			st.StepsPerSec = float64(t.acc.Steps) / st.Seconds
		}
		if cfg.Test != nil {
			loss, acc, err := t.evaluate(ctx, cfg.Test)
			if err != nil {
				return nil, err
			}
			st.TestLoss, st.TestAcc, st.HasTest = loss, acc, true
		}
		t.history = append(t.history, st)
		if err := cfg.logLine(st); err != nil {
			return nil, err
		}
		t.stepInEpoch = 0
		t.acc = epochAcc{}
		if cfg.CheckpointDir != "" {
			t.epoch++
			err := t.saveCheckpoint()
			t.epoch--
			if err != nil {
				return nil, err
			}
		}
		if cfg.OnEpoch != nil {
			m, err := t.finalModel()
			if err != nil {
				return nil, err
			}
			if err := cfg.OnEpoch(ctx, EpochEnd{Epoch: st.Epoch, Stats: st, Model: m}); err != nil {
				return nil, fmt.Errorf("trainer: after epoch %d: %w", st.Epoch, err)
			}
		}
		// The loop's increment still runs: t.epoch counts finished epochs
		// on leaving, as after a full run.
		stopped = cfg.reachedTarget(st) && t.epoch+1 < cfg.Epochs
	}
	if stopped {
		last := t.history[len(t.history)-1]
		if err := cfg.logLine(map[string]any{"stopped_early": true, "epoch": last.Epoch, "train_acc": last.TrainAcc, "stop_at_train_acc": cfg.StopAtTrainAcc}); err != nil {
			return nil, err
		}
	}
	out, err := t.finalModel()
	if err != nil {
		return nil, err
	}
	return &Result{Model: out, Epochs: t.history, Steps: t.globalStep, Resumed: t.resumed, StoppedEarly: stopped, Fallbacks: fallbacks}, nil
}

func (t *trainer) resumeHint() string {
	if t.cfg.CheckpointDir == "" {
		return ""
	}
	return "; continue with --resume " + t.cfg.CheckpointDir
}

// trainStep runs step t.stepInEpoch of epoch t.epoch.
func (t *trainer) trainStep(ctx context.Context) error {
	start := time.Now()
	lo := t.stepInEpoch * t.full
	b := min(t.full, len(t.order)-lo)
	idx := t.order[lo : lo+b]
	s := t.step
	if b != t.full {
		s = t.stepR
	}
	x, y, err := t.batchTensors(b)
	if err != nil {
		return err
	}
	if err := t.cfg.Train.Batch(idx, t.xbuf[b]); err != nil {
		return err
	}
	labels := t.cfg.Train.Labels()
	for i, k := range idx {
		t.ybuf[b][i] = labels[k]
	}
	if t.cfg.Augment != (Augment{}) {
		t.augment(t.xbuf[b], b, rng(t.cfg.Seed, streamAugment, uint64(t.epoch), uint64(t.stepInEpoch)))
	}
	t.lastLR = t.cfg.Schedule.rate(t.cfg.LR, t.globalStep, t.totalSteps)
	if err := t.setScalars(t.lastLR, float32(t.globalStep)); err != nil {
		return err
	}
	in := map[string]*ort.Value{s.g.Input: x, NameLabels: y, NameLR: t.lr, NameStep: t.stepIn}
	if t.cfg.regression() {
		if in[NameTargets], err = t.targetTensor(idx); err != nil {
			return err
		}
	}
	out := map[string]*ort.Value{}
	for _, name := range t.persistent {
		in[name] = t.cur[name]
		out[name+SuffixNext] = t.nxt[name]
	}
	if len(s.g.Masks) > 0 {
		mr := rng(t.cfg.Seed, streamDropout, uint64(t.epoch), uint64(t.stepInEpoch))
		for _, m := range s.g.Masks {
			mt, err := t.mask(m, b, s.g.Shapes[m])
			if err != nil {
				return err
			}
			keep := 1 - float64(s.g.MaskRatios[m])
			data := mt.Float32()
			for i := range data {
				if mr.Float64() < keep {
					data[i] = 1
				} else {
					data[i] = 0
				}
			}
			in[m] = mt
		}
	}
	// A started step always finishes (cancellation is honoured between
	// steps), so that the state stays consistent and can be checkpointed.
	if err := s.run(context.WithoutCancel(ctx), in, out); err != nil {
		return fmt.Errorf("trainer: step %d: %w", t.globalStep+1, err)
	}
	// swap buffers: the outputs are the new state
	for _, name := range t.persistent {
		t.cur[name], t.nxt[name] = t.nxt[name], t.cur[name]
		t.state[name], t.next[name] = t.next[name], t.state[name]
	}
	per := s.data(NamePerSampleLoss)
	logits := s.data(s.g.Logits)
	for i := 0; i < b; i++ {
		l := float64(per[i])
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return fmt.Errorf("trainer: the loss became %v at step %d (epoch %d); lower the learning rate", l, t.globalStep+1, t.epoch+1)
		}
		t.acc.LossSum += l
		if !t.cfg.regression() && argmax(logits[i*t.classes:(i+1)*t.classes]) == int(t.ybuf[b][i]) {
			t.acc.Correct++
		}
	}
	t.acc.Seen += b
	t.acc.Steps++
	t.acc.Seconds += time.Since(start).Seconds()
	return nil
}

// setScalars sets the 0-d lr and step inputs of the next step.
func (t *trainer) setScalars(lr, step float32) error {
	if err := setScalar(&t.lr, lr); err != nil {
		return err
	}
	return setScalar(&t.stepIn, step)
}

// setScalar makes *v a 0-d float input holding x, creating it on first use.
func setScalar(v **ort.Value, x float32) error {
	if *v != nil {
		return (*v).SetScalar(x)
	}
	var err error
	*v, err = ort.NewFloat32(nil, []float32{x})
	return err
}

func (t *trainer) mask(name string, b int, shape []int64) (*ort.Value, error) {
	if t.masks[name] == nil {
		t.masks[name] = map[int]*ort.Value{}
	}
	if m, ok := t.masks[name][b]; ok {
		return m, nil
	}
	m, err := ort.NewFloat32(shape, make([]float32, numel(shape)))
	if err != nil {
		return nil, err
	}
	t.masks[name][b] = m
	return m, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// augment applies random crops (with padding) and horizontal flips in place
// to a normalized batch [b, C, H, W].
func (t *trainer) augment(x []float32, b int, r interface {
	IntN(int) int
	Float64() float64
}) {
	if len(t.sampleShape) != 3 {
		return
	}
	c, h, w := int(t.sampleShape[0]), int(t.sampleShape[1]), int(t.sampleShape[2])
	norm := t.cfg.Train.Norm()
	pad := t.cfg.Augment.Crop
	tmp := make([]float32, c*h*w)
	for i := 0; i < b; i++ {
		img := x[i*c*h*w : (i+1)*c*h*w]
		dy, dx := 0, 0
		if pad > 0 {
			dy, dx = r.IntN(2*pad+1)-pad, r.IntN(2*pad+1)-pad
		}
		flip := t.cfg.Augment.Flip && r.Float64() < 0.5
		copy(tmp, img)
		for ch := 0; ch < c; ch++ {
			black := float32(0)
			if len(norm.Mean) > 0 {
				m, s := norm.Mean[min(ch, len(norm.Mean)-1)], norm.Std[min(ch, len(norm.Std)-1)]
				black = (0 - m) / s
			}
			for yy := 0; yy < h; yy++ {
				for xx := 0; xx < w; xx++ {
					sy, sx := yy+dy, xx+dx
					if flip {
						sx = w - 1 - xx + dx
					}
					v := black
					if sy >= 0 && sy < h && sx >= 0 && sx < w {
						v = tmp[(ch*h+sy)*w+sx]
					}
					img[(ch*h+yy)*w+xx] = v
				}
			}
		}
	}
}

// evaluate runs the evaluation graph over a data set with the current
// parameters and statistics: mean loss and accuracy.
func (t *trainer) evaluate(ctx context.Context, d *dataset.Dataset) (loss, acc float64, err error) {
	n := d.Len()
	labels := d.Labels()
	correct := 0
	for lo := 0; lo < n; lo += t.eval.batch {
		s := t.eval
		if n-lo < s.batch {
			s = t.evalR
		}
		b := s.batch
		x, y, err := t.batchTensors(b)
		if err != nil {
			return 0, 0, err
		}
		idx := make([]int, b)
		for i := range idx {
			idx[i] = lo + i
			t.ybuf[b][i] = labels[lo+i]
		}
		if err := d.Batch(idx, t.xbuf[b]); err != nil {
			return 0, 0, err
		}
		in := map[string]*ort.Value{s.g.Input: x, NameLabels: y}
		for _, name := range append(append([]string{}, s.g.Params...), s.g.Stats...) {
			in[name] = t.cur[name]
		}
		if err := s.run(context.WithoutCancel(ctx), in, nil); err != nil {
			return 0, 0, fmt.Errorf("trainer: evaluation: %w", err)
		}
		per := s.data(NamePerSampleLoss)
		logits := s.data(s.g.Logits)
		for i := 0; i < b; i++ {
			loss += float64(per[i])
			if argmax(logits[i*t.classes:(i+1)*t.classes]) == int(labels[lo+i]) {
				correct++
			}
		}
	}
	return loss / float64(n), float64(correct) / float64(n), nil
}

// finalModel writes the current parameters and statistics into a copy of
// the source model in inference mode.
func (t *trainer) finalModel() (*onnxio.Model, error) {
	out := t.src.Clone()
	for _, init := range out.Graph().GetInitializer() {
		v, ok := t.state[init.GetName()]
		if !ok {
			continue
		}
		nt := onnxio.FloatTensor(init.GetName(), init.GetDims(), v)
		init.RawData, init.FloatData, init.ExternalData, init.DataLocation = nt.RawData, nil, nil, 0
	}
	ev, err := onnxio.EvalMode(out)
	if err != nil {
		return nil, err
	}
	return ev, nil
}
