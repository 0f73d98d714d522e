package trainer

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Names of the step graph's interface (the README's training-step contract).
const (
	NameLabels        = "labels"
	NameTargets       = "targets"
	NameLR            = "lr"
	NameStep          = "step"
	NameStepNext      = "step.next"
	NameLoss          = "loss"
	NamePerSampleLoss = "loss_per_sample"
	SuffixNext        = ".next"
	SuffixGrad        = ".grad"
	SuffixMomentum    = ".m"
	SuffixSecond      = ".v"
	SuffixMask        = ".mask"
)

// ErrUnsupported marks models the trainer cannot build a graph for (an op
// without a gradient rule, a shape it cannot infer, …).
var ErrUnsupported = errors.New("unsupported model")

// Optimizer configures the update written into the step graph. Its
// definitions follow PyTorch's torch.optim.SGD and torch.optim.AdamW.
type Optimizer struct {
	// Kind is "sgd" or "adamw".
	Kind        string  `json:"kind"`
	Momentum    float32 `json:"momentum"`
	Nesterov    bool    `json:"nesterov"`
	WeightDecay float32 `json:"weight_decay"`
	Beta1       float32 `json:"beta1"`
	Beta2       float32 `json:"beta2"`
	Eps         float32 `json:"eps"`
}

// SGD returns plain SGD with momentum and weight decay.
func SGD(momentum, weightDecay float32, nesterov bool) Optimizer {
	return Optimizer{Kind: "sgd", Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov}
}

// AdamW returns AdamW with PyTorch's default betas and epsilon.
func AdamW(weightDecay float32) Optimizer {
	return Optimizer{Kind: "adamw", Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay}
}

// slots are the optimizer-state suffixes each parameter has.
func (o Optimizer) slots() []string {
	switch o.Kind {
	case "sgd":
		if o.Momentum != 0 {
			return []string{SuffixMomentum}
		}
		return nil
	case "adamw":
		return []string{SuffixMomentum, SuffixSecond}
	}
	return nil
}

// StepConfig says what step graph to build.
type StepConfig struct {
	// Batch is the batch size the graph is built for.
	Batch     int
	Optimizer Optimizer
	// LabelSmoothing ε of the cross-entropy loss.
	LabelSmoothing float32
	// Loss is the loss the step ends in ("": LossCrossEntropy). With
	// LossGaussianNLL the graph takes float targets (input "targets", [N])
	// besides the labels.
	Loss Loss
	// WithGrads adds each parameter's gradient as output P.grad.
	WithGrads bool
}

// Graph is a built training-step or evaluation graph with its interface.
type Graph struct {
	Model *onnxio.Model
	// Input is the data input's name; Logits the model output's name.
	Input, Logits string
	// Params are the trainable parameters (initializer names of the source
	// model), Stats the BatchNorm running statistics, in graph order.
	Params, Stats []string
	// Slots are the optimizer-state suffixes of every parameter.
	Slots []string
	// Masks are the Dropout mask inputs (float 0/1 of the data's shape,
	// already divided by nothing: the graph scales by 1/(1−p)).
	Masks []string
	// MaskRatios gives each mask's drop probability.
	MaskRatios map[string]float32
	// Shapes of every interface value.
	Shapes map[string][]int64
	// convs has the operand shapes of the graph's Conv nodes, for the
	// CPU session's blocked-layout rewrite (nchwc.go).
	convs map[string]convShape
	// dws are its convolution weight gradients, for the same rewrite.
	dws []dwRecord
	// dxs are its convolution input gradients.
	dxs []dxRecord
	// bns are its BatchNorm backward passes.
	bns []bnRecord
	// vals are the builder's values (shapes, types), for the layout pass.
	vals map[string]*value
	// src is the model the graph was built from: the caller's, or its
	// upgrade (Upgrade), whose initializers hold the parameters' values.
	src *onnxio.Model
}

// modelPlan is what both graphs need to know about the source model.
type modelPlan struct {
	m       *onnxio.Model
	ix      *onnxio.Index
	opset   int64
	input   string
	inShape []int64
	output  string
	params  map[string]bool
	stats   map[string]bool
	frozen  map[string]bool
}

// constSlots lists input slots that hold constants (never trainable).
var constSlots = map[string][]int{
	"Clip": {1, 2}, "Pad": {1, 2, 3}, "Dropout": {1, 2}, "Reshape": {1}, "Expand": {1}, "Tile": {1},
	"Slice": {1, 2, 3, 4}, "Pow": {1}, "BatchNormalization": {3, 4}, "Split": {1}, "Squeeze": {1},
	"Unsqueeze": {1}, "ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1}, "ReduceSumSquare": {1},
	"ConstantOfShape": {0}, "Gather": {1}, "Where": {0}, "Resize": {1, 2, 3},
}

func planModel(m *onnxio.Model, batch int) (*modelPlan, error) {
	ix, err := onnxio.NewIndex(m)
	if err != nil {
		return nil, err
	}
	if m.Opset("") < onnxio.MinUpgradeTarget {
		if m, _, err = Upgrade(m); err != nil {
			return nil, err
		}
		if ix, err = onnxio.NewIndex(m); err != nil {
			return nil, err
		}
	}
	p := &modelPlan{m: m, ix: ix, opset: max(m.Opset(""), graphOpset), params: map[string]bool{}, stats: map[string]bool{}}
	if len(ix.Inputs) != 1 {
		return nil, fmt.Errorf("trainer: %s has %d data inputs; bnaudit trains classifiers with one input: %w", m.Name, len(ix.Inputs), ErrUnsupported)
	}
	if len(m.Graph().GetOutput()) != 1 {
		return nil, fmt.Errorf("trainer: %s has %d outputs; bnaudit trains classifiers with one output (the logits): %w", m.Name, len(m.Graph().GetOutput()), ErrUnsupported)
	}
	p.output = m.Graph().GetOutput()[0].GetName()
	for name := range ix.Inputs {
		p.input = name
	}
	shape, ok := ix.Shape(p.input)
	if !ok || len(shape) == 0 {
		return nil, fmt.Errorf("trainer: %s: input %q has no declared shape: %w", m.Name, p.input, ErrUnsupported)
	}
	shape[0] = int64(batch)
	for i, d := range shape[1:] {
		if d <= 0 {
			return nil, fmt.Errorf("trainer: %s: input %q has an unknown dimension %d; bnaudit needs fixed sample shapes: %w", m.Name, p.input, i+1, ErrUnsupported)
		}
	}
	if err := checkShape(shape); err != nil {
		return nil, fmt.Errorf("trainer: %s: input %q: %v: %w", m.Name, p.input, err, ErrUnsupported)
	}
	p.inShape = shape
	frozen := map[string]bool{}
	for _, f := range onnxio.FrozenBatchNorms(m) {
		frozen[f] = true
	}
	p.frozen = frozen
	// Unsupported ops are reported before anything is built.
	for i, n := range m.Graph().GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("trainer: %s: node %q uses op %s.%s, which bnaudit cannot train: %w", m.Name, n.GetName(), onnxio.CleanMessage(d), onnxio.CleanMessage(op), ErrUnsupported)
		}
		if !opOf(op).trainable() {
			return nil, fmt.Errorf("trainer: %s: node %q (#%d) uses op %s, which bnaudit cannot differentiate yet: %w", m.Name, n.GetName(), i, onnxio.CleanMessage(op), ErrUnsupported)
		}
		// The builders index inputs and outputs by position.
		if err := checkArity(m, i, n); err != nil {
			return nil, err
		}
	}
	// Classify initializers: BN statistics, trainable parameters, constants.
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "BatchNormalization" && len(n.GetInput()) == 5 {
			p.stats[n.GetInput()[3]] = true
			p.stats[n.GetInput()[4]] = true
		}
	}
	for _, n := range m.Graph().GetNode() {
		skip := map[int]bool{}
		for _, k := range constSlots[n.GetOpType()] {
			skip[k] = true
		}
		for k, in := range n.GetInput() {
			t := ix.Initializers[in]
			if t == nil || skip[k] || p.stats[in] || t.GetDataType() != onnxio.TypeFloat {
				continue
			}
			size, _ := onnxio.NumElements(t.GetDims())
			if size > 1 || opOf(n.GetOpType()).weight {
				p.params[in] = true
			}
		}
	}
	return p, nil
}

// sortedByGraph returns names in the order their initializers appear.
func (p *modelPlan) ordered(set map[string]bool) []string {
	var out []string
	for _, t := range p.m.Graph().GetInitializer() {
		if set[t.GetName()] {
			out = append(out, t.GetName())
		}
	}
	return out
}

// forward emits the model's forward pass. train selects batch statistics
// for (non-frozen) BatchNorm, dropout active Dropout (with mask inputs). It returns the tape and,
// for each running statistic S, the value of S.next (train only).
func (p *modelPlan) forward(b *builder, train, dropout bool, g *Graph) (tape []*tapeEntry, statNext map[string]string) {
	statNext = map[string]string{}
	nodes := p.m.Graph().GetNode()
	for _, i := range p.ix.Order {
		src := nodes[i]
		n := &onnxpb.NodeProto{Name: src.GetName(), OpType: src.GetOpType(), Domain: src.GetDomain(),
			Input: append([]string{}, src.GetInput()...), Output: append([]string{}, src.GetOutput()...), Attribute: src.GetAttribute()}
		if n.Name == "" || b.used[n.Name] {
			n.Name = b.fresh(n.OpType)
		}
		switch n.OpType {
		case "BatchNormalization":
			tape = append(tape, p.batchNorm(b, n, train, statNext)...)
			continue
		case "Dropout":
			tape = append(tape, p.dropout(b, n, dropout, g)...)
			continue
		case "MaxPool":
			if len(n.Output) < 2 || n.Output[1] == "" {
				n.Output = append(n.Output[:1], b.fresh(n.Name+"/indices"))
			}
		}
		b.addNode(n)
		tape = append(tape, nodeEntry(n))
	}
	return tape, statNext
}

func (p *modelPlan) batchNorm(b *builder, n *onnxpb.NodeProto, train bool, statNext map[string]string) []*tapeEntry {
	in := n.GetInput()
	if len(in) != 5 {
		failf("BatchNormalization %q has %d inputs", n.GetName(), len(in))
	}
	ctx := &inferCtx{node: n}
	for _, v := range in {
		ctx.in = append(ctx.in, b.val(v))
	}
	if err := checkChannelParams(ctx, ctx.in[0], 5); err != nil {
		failf("BatchNormalization %q: %v", n.GetName(), err)
	}
	y := n.GetOutput()[0]
	if !train || p.frozen[n.GetName()] {
		// Running statistics: an inference-mode BN node.
		n.Output = []string{y}
		n.Attribute = withoutAttr(n.Attribute, "training_mode")
		b.addNode(n)
		return []*tapeEntry{nodeEntry(n)}
	}
	e, mean, variance := b.emitBNTrain(n, in[0], in[1], in[2], y)
	momentum := float32(0.9)
	for _, a := range n.GetAttribute() {
		if a.GetName() == "momentum" {
			momentum = a.GetF()
		}
	}
	xs := b.shape(in[0])
	m := float32(numel(xs) / xs[1])
	// PyTorch keeps the unbiased batch variance in its running estimate.
	unbiased := variance
	if m > 1 {
		unbiased = b.op("Mul", []string{variance, b.scalar(m / (m - 1))})
	}
	for _, s := range []struct{ name, batch string }{{in[3], mean}, {in[4], unbiased}} {
		if !p.stats[s.name] {
			failf("BatchNormalization %q: running statistic %q is not an initializer", n.GetName(), s.name)
		}
		old := b.op("Mul", []string{s.name, b.scalar(momentum)})
		upd := b.op("Mul", []string{s.batch, b.scalar(1 - momentum)})
		statNext[s.name] = b.op("Add", []string{old, upd})
	}
	return []*tapeEntry{e}
}

func withoutAttr(attrs []*onnxpb.AttributeProto, name string) []*onnxpb.AttributeProto {
	var out []*onnxpb.AttributeProto
	for _, a := range attrs {
		if a.GetName() != name {
			out = append(out, a)
		}
	}
	return out
}

// dropout writes a Dropout: identity in evaluation or when p = 0; in
// training x·mask/(1−p) with the mask a graph input, so that the caller's
// seed decides it and a run can repeat bit for bit.
func (p *modelPlan) dropout(b *builder, n *onnxpb.NodeProto, train bool, g *Graph) []*tapeEntry {
	x, y := n.GetInput()[0], n.GetOutput()[0]
	ratio := float64(onnxio.AttrFloat(n, "ratio", 0.5))
	if len(n.GetInput()) > 1 && n.GetInput()[1] != "" {
		v := b.val(n.GetInput()[1])
		if len(v.floats) != 1 {
			failf("Dropout %q: its ratio must be a constant scalar", n.GetName())
		}
		ratio = v.floats[0]
	}
	if !(ratio >= 0 && ratio < 1) {
		failf("Dropout %q: ratio %g is outside [0, 1)", n.GetName(), ratio)
	}
	if !train || ratio == 0 {
		id := b.emitNamed("Identity", n.GetName(), []string{x}, []string{y})
		return []*tapeEntry{nodeEntry(id)}
	}
	mask := y + SuffixMask
	b.declare(mask, &value{shape: b.shape(x), dtype: onnxio.TypeFloat})
	g.Masks = append(g.Masks, mask)
	g.MaskRatios[mask] = float32(ratio)
	scaled := b.op("Mul", []string{mask, b.scalar(float32(1 / (1 - ratio)))})
	mul := b.emitNamed("Mul", n.GetName(), []string{x, scaled}, []string{y})
	return []*tapeEntry{nodeEntry(mul)}
}

// declareInterface declares the data input, parameters, statistics and the
// constant initializers of the source model in the builder.
func (p *modelPlan) declareInterface(b *builder) {
	b.declare(p.input, &value{shape: p.inShape, dtype: onnxio.TypeFloat})
	for _, t := range p.m.Graph().GetInitializer() {
		name := t.GetName()
		if p.params[name] || p.stats[name] {
			b.declare(name, &value{shape: append([]int64{}, t.GetDims()...), dtype: t.GetDataType()})
			continue
		}
		c := proto.Clone(t).(*onnxpb.TensorProto)
		if onnxio.IsExternal(t) {
			vals, err := p.m.Floats(t)
			if err != nil {
				failf("%v", err)
			}
			c = onnxio.FloatTensor(name, t.GetDims(), vals)
		}
		b.addInit(c)
	}
}

// BuildStep writes the training step of a model: forward with batch
// statistics, the loss (softmax cross-entropy, or the Gaussian NLL of
// cfg.Loss), backward, optimizer update and running-statistics update, as
// one ONNX graph under the naming contract.
func BuildStep(m *onnxio.Model, cfg StepConfig) (g *Graph, err error) {
	defer finishBuild(m, &err)
	if cfg.Batch <= 0 {
		return nil, fmt.Errorf("trainer: batch size must be positive, not %d", cfg.Batch)
	}
	switch cfg.Optimizer.Kind {
	case "sgd", "adamw":
	default:
		return nil, fmt.Errorf("trainer: unknown optimizer %q (want sgd or adamw)", cfg.Optimizer.Kind)
	}
	if err := cfg.Loss.check(); err != nil {
		return nil, err
	}
	if cfg.Loss == LossGaussianNLL && cfg.LabelSmoothing != 0 {
		return nil, fmt.Errorf("trainer: label smoothing applies to the cross-entropy loss, not to %s", cfg.Loss)
	}
	p, err := planModel(m, cfg.Batch)
	if err != nil {
		return nil, err
	}
	b := newBuilder(p.opset, p.m)
	g = &Graph{Input: p.input, Logits: p.output, Params: p.ordered(p.params), Stats: p.ordered(p.stats),
		Slots: cfg.Optimizer.slots(), MaskRatios: map[string]float32{}, Shapes: map[string][]int64{}}
	p.declareInterface(b)
	b.declare(NameLabels, &value{shape: []int64{int64(cfg.Batch)}, dtype: onnxio.TypeInt64})
	b.declare(NameLR, &value{shape: []int64{}, dtype: onnxio.TypeFloat})
	b.declare(NameStep, &value{shape: []int64{}, dtype: onnxio.TypeFloat})
	tape, statNext := p.forward(b, true, true, g)
	var dataInputs []string
	switch cfg.Loss {
	case "", LossCrossEntropy:
		tape = append(tape, b.emitCrossEntropy(p.output, NameLabels, cfg.LabelSmoothing, NameLoss, NamePerSampleLoss))
	case LossGaussianNLL:
		b.declare(NameTargets, &value{shape: []int64{int64(cfg.Batch)}, dtype: onnxio.TypeFloat})
		tape = append(tape, b.emitGaussianNLL(p.output, NameLabels, NameTargets, NameLoss, NamePerSampleLoss))
		dataInputs = append(dataInputs, NameTargets)
	}
	grads := b.backward(tape, NameLoss, "", g.Params)

	// Optimizer and the interface outputs.
	b.scope = "optimizer"
	var inputs, outputs []string
	inputs = append(inputs, p.input, NameLabels)
	inputs = append(inputs, dataInputs...)
	inputs = append(inputs, NameLR, NameStep)
	inputs = append(inputs, g.Masks...)
	outputs = append(outputs, NameLoss, NamePerSampleLoss, p.output)
	lr := NameLR
	t := b.op("Add", []string{NameStep, b.scalar(1)}) // this update's step number (1-based)
	b.emitNamed("Identity", "step_next", []string{t}, []string{NameStepNext})
	for _, name := range g.Params {
		grad := grads[name]
		if grad == "" {
			return nil, fmt.Errorf("trainer: %s: parameter %q does not affect the loss: %w", m.Name, name, ErrUnsupported)
		}
		inputs = append(inputs, name)
		for _, s := range g.Slots {
			b.declare(name+s, b.val(name))
			inputs = append(inputs, name+s)
		}
		next := b.update(cfg.Optimizer, name, grad, lr, t)
		b.emitNamed("Identity", name+SuffixNext+"/out", []string{next[0]}, []string{name + SuffixNext})
		outputs = append(outputs, name+SuffixNext)
		for k, s := range g.Slots {
			b.emitNamed("Identity", name+s+SuffixNext+"/out", []string{next[k+1]}, []string{name + s + SuffixNext})
			outputs = append(outputs, name+s+SuffixNext)
		}
		if cfg.WithGrads {
			b.emitNamed("Identity", name+SuffixGrad+"/out", []string{grad}, []string{name + SuffixGrad})
			outputs = append(outputs, name+SuffixGrad)
		}
	}
	for _, s := range g.Stats {
		inputs = append(inputs, s)
		next, ok := statNext[s]
		if !ok { // a frozen BN: its statistics do not move
			next = s
		}
		b.emitNamed("Identity", s+SuffixNext+"/out", []string{next}, []string{s + SuffixNext})
		outputs = append(outputs, s+SuffixNext)
	}
	outputs = append(outputs, NameStepNext)
	g.Model = p.finish(b, "training_step", inputs, outputs, cfg)
	g.convs, g.dws, g.dxs, g.bns, g.vals, g.src = convShapes(b), b.dws, b.dxs, b.bns, b.vals, p.m
	for _, v := range append(inputs, outputs...) {
		g.Shapes[v] = b.shape(v)
	}
	return g, nil
}

// update writes one optimizer step for parameter P and returns P.next and
// the next values of its slots (in Slots order).
func (b *builder) update(o Optimizer, p, grad, lr, t string) []string {
	switch o.Kind {
	case "sgd":
		// PyTorch SGD: g ← g + wd·P; buf ← μ·buf + g (buf = g on the first
		// step, which the zero initial buffer gives); d = g + μ·buf
		// (Nesterov) or buf; P ← P − lr·d.
		g := grad
		if o.WeightDecay != 0 {
			g = b.op("Add", []string{g, b.op("Mul", []string{p, b.scalar(o.WeightDecay)})})
		}
		if o.Momentum == 0 {
			return []string{b.op("Sub", []string{p, b.op("Mul", []string{g, lr})})}
		}
		buf := b.op("Add", []string{b.op("Mul", []string{p + SuffixMomentum, b.scalar(o.Momentum)}), g})
		d := buf
		if o.Nesterov {
			d = b.op("Add", []string{g, b.op("Mul", []string{buf, b.scalar(o.Momentum)})})
		}
		return []string{b.op("Sub", []string{p, b.op("Mul", []string{d, lr})}), buf}
	case "adamw":
		// PyTorch AdamW: P ← P·(1 − lr·wd); m ← β1·m + (1−β1)·g;
		// v ← β2·v + (1−β2)·g²; P ← P − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε).
		decayed := p
		if o.WeightDecay != 0 {
			f := b.op("Sub", []string{b.scalar(1), b.op("Mul", []string{lr, b.scalar(o.WeightDecay)})})
			decayed = b.op("Mul", []string{p, f})
		}
		m := b.op("Add", []string{b.op("Mul", []string{p + SuffixMomentum, b.scalar(o.Beta1)}), b.op("Mul", []string{grad, b.scalar(1 - o.Beta1)})})
		v := b.op("Add", []string{b.op("Mul", []string{p + SuffixSecond, b.scalar(o.Beta2)}), b.op("Mul", []string{b.op("Mul", []string{grad, grad}), b.scalar(1 - o.Beta2)})})
		bc1 := b.op("Sub", []string{b.scalar(1), b.op("Pow", []string{b.scalar(o.Beta1), t})})
		bc2 := b.op("Sub", []string{b.scalar(1), b.op("Pow", []string{b.scalar(o.Beta2), t})})
		denom := b.op("Add", []string{b.op("Div", []string{b.op("Sqrt", []string{v}), b.op("Sqrt", []string{bc2})}), b.scalar(o.Eps)})
		stepSize := b.op("Div", []string{lr, bc1})
		next := b.op("Sub", []string{decayed, b.op("Mul", []string{stepSize, b.op("Div", []string{m, denom})})})
		return []string{next, m, v}
	}
	failf("unknown optimizer %q", o.Kind)
	return nil
}

// BuildEval writes the evaluation graph: the forward pass with BatchNorm on
// running statistics and Dropout off, returning the logits and the
// per-sample loss. It takes the same parameter and statistic names as the
// step graph, with the source model's values as defaults.
func BuildEval(m *onnxio.Model, batch int) (g *Graph, err error) {
	defer finishBuild(m, &err)
	p, err := planModel(m, batch)
	if err != nil {
		return nil, err
	}
	b := newBuilder(p.opset, p.m)
	g = &Graph{Input: p.input, Logits: p.output, Params: p.ordered(p.params), Stats: p.ordered(p.stats),
		MaskRatios: map[string]float32{}, Shapes: map[string][]int64{}}
	p.declareInterface(b)
	b.declare(NameLabels, &value{shape: []int64{int64(batch)}, dtype: onnxio.TypeInt64})
	p.forward(b, false, false, g)
	b.emitCrossEntropy(p.output, NameLabels, 0, NameLoss, NamePerSampleLoss)
	inputs := append([]string{p.input, NameLabels}, g.Params...)
	inputs = append(inputs, g.Stats...)
	outputs := []string{p.output, NamePerSampleLoss, NameLoss}
	g.Model = p.finish(b, "evaluation", inputs, outputs, StepConfig{Batch: batch})
	g.convs, g.dws, g.dxs, g.bns, g.vals, g.src = convShapes(b), b.dws, b.dxs, b.bns, b.vals, p.m
	for _, v := range append(inputs, outputs...) {
		g.Shapes[v] = b.shape(v)
	}
	return g, nil
}

// finish assembles the model proto.
func (p *modelPlan) finish(b *builder, name string, inputs, outputs []string, cfg StepConfig) *onnxio.Model {
	gp := b.graph(name, inputs, outputs)
	mp := &onnxpb.ModelProto{
		IrVersion:       8,
		ProducerName:    "bnaudit",
		ProducerVersion: "trainer",
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Version: p.opset}},
		Graph:           gp,
		DocString:       fmt.Sprintf("bnaudit %s graph of %s for batch %d", name, p.m.Name, cfg.Batch),
	}
	out := &onnxio.Model{Proto: mp, Name: strings.TrimSuffix(p.m.Name, ".onnx") + "." + name + ".onnx"}
	for _, kv := range p.m.Proto.GetMetadataProps() {
		out.SetMetadata(kv.GetKey(), kv.GetValue())
	}
	return out
}
