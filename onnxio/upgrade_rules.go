package onnxio

import (
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// The upgrade rules, one per op whose signature or meaning changed between
// opset 6 and opset 17, written from the ONNX operator changelog. A rule
// gets a node whose definition at the model's opset is version v and
// returns the nodes that compute the same at the upgrader's target opset
// (the node itself, changed in place, and any nodes placed before or after
// it), or nil when the node needs no change. Ops without a rule changed
// only in ways that keep old models' meaning: wider types, negative axes,
// new optional inputs, new attributes whose defaults are the old behaviour.

// upgradeRule rewrites one node; v is its definition's since_version.
type upgradeRule func(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error)

var upgradeRules = map[string]upgradeRule{
	// Opset 7 replaced the broadcast and axis attributes of opset 1's
	// elementwise ops by numpy broadcasting.
	"Add": upBroadcast, "Sub": upBroadcast, "Mul": upBroadcast, "Div": upBroadcast, "Pow": upBroadcast,
	"And": upBroadcast, "Or": upBroadcast, "Xor": upBroadcast,
	"Equal": upBroadcast, "Greater": upBroadcast, "Less": upBroadcast,
	"Gemm":               upGemm,
	"PRelu":              upPRelu,
	"BatchNormalization": upBatchNorm,
	"Dropout":            upDropout,
	"Clip":               upClip,
	"Pad":                upPad,
	"Split":              upSplit,
	"Squeeze":            upAxes,
	"Unsqueeze":          upAxes,
	"ReduceSum":          upAxes,
	"Slice":              upSlice,
	"TopK":               upTopK,
	"Softmax":            upSoftmax,
	"LogSoftmax":         upSoftmax,
	"Hardmax":            upSoftmax,
	"Upsample":           upUpsample,
	"Resize":             upResize,
	"Scatter":            upScatter,
	"ConvTranspose":      upConvTranspose,
	"RoiAlign":           upRoiAlign,
	"GRU":                upRecurrent,
	"LSTM":               upRecurrent,
	"RNN":                upRecurrent,
}

func one(n *onnxpb.NodeProto) []*onnxpb.NodeProto { return []*onnxpb.NodeProto{n} }

func attrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, S: []byte(v), Type: onnxpb.AttributeProto_STRING}
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, I: v, Type: onnxpb.AttributeProto_INT}
}

// setAttrString sets (or adds) a string attribute.
func setAttrString(n *onnxpb.NodeProto, name, v string) {
	DeleteAttr(n, name)
	n.Attribute = append(n.Attribute, attrString(name, v))
}

// input returns input k of a node, or "" when it has fewer inputs.
func input(n *onnxpb.NodeProto, k int) string {
	if k < len(n.GetInput()) {
		return n.GetInput()[k]
	}
	return ""
}

// trimInputs drops trailing empty (absent optional) inputs.
func trimInputs(ins []string) []string {
	for len(ins) > 0 && ins[len(ins)-1] == "" {
		ins = ins[:len(ins)-1]
	}
	return ins
}

// unsqueezeInput inserts an Unsqueeze of input k of n (adding axes) before
// n and makes n read its result.
func (u *upgrader) unsqueezeInput(n *onnxpb.NodeProto, k int, axes []int64, what string) *onnxpb.NodeProto {
	y := u.fresh(n, what)
	un := u.emit(n, "Unsqueeze", what, []string{n.Input[k], u.constInts(n, what+"_axes", []int64{int64(len(axes))}, axes)}, []string{y})
	n.Input[k] = y
	return un
}

// upBroadcast: before opset 7, Add, Mul, … broadcast B onto A only with
// broadcast=1, aligning B's dimensions with A's from axis (default: from
// the end, as numpy does). An axis that is not numpy's alignment becomes
// an Unsqueeze of B's trailing dimensions.
func upBroadcast(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	bc, ax := Attr(n, "broadcast"), Attr(n, "axis")
	if v >= 7 || (bc == nil && ax == nil) {
		return nil, nil
	}
	DeleteAttr(n, "broadcast")
	DeleteAttr(n, "axis")
	if bc.GetI() == 0 || ax == nil || len(n.GetInput()) != 2 {
		return one(n), nil
	}
	ra, rb := u.metaOf(n.Input[0]).rank, u.metaOf(n.Input[1]).rank
	if ra < 0 || rb < 0 {
		return nil, u.refuse(n, "broadcast axis %d needs the ranks of both inputs, which the model does not declare", ax.GetI())
	}
	axis := int(ax.GetI())
	if axis < 0 {
		axis += ra
	}
	trailing := ra - axis - rb
	if axis < 0 || trailing < 0 {
		return nil, fmt.Errorf("onnxio: %s: node %q: broadcast axis %d does not fit inputs of rank %d and %d: %w", u.m.Name, n.GetName(), ax.GetI(), ra, rb, ErrInvalidModel)
	}
	if trailing == 0 {
		return one(n), nil
	}
	axes := make([]int64, trailing)
	for i := range axes {
		axes[i] = int64(rb + i)
	}
	return []*onnxpb.NodeProto{u.unsqueezeInput(n, 1, axes, "broadcast"), n}, nil
}

// upGemm: Gemm of opset 6 had a broadcast attribute for C; from opset 7 C
// broadcasts (unidirectionally) without it.
func upGemm(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 7 || Attr(n, "broadcast") == nil {
		return nil, nil
	}
	DeleteAttr(n, "broadcast")
	return one(n), nil
}

// upPRelu: PRelu of opset 6 applied a slope of C values per channel (axis
// 1); from opset 7 the slope broadcasts numpy-style from the end, so a
// 1-D slope on an input of rank 3 or more gets trailing unit dimensions.
func upPRelu(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 7 || len(n.GetInput()) != 2 {
		return nil, nil
	}
	x, s := u.metaOf(n.Input[0]), u.metaOf(n.Input[1])
	if len(s.dims) > 0 {
		if size, err := NumElements(s.dims); err == nil && size == 1 {
			return nil, nil
		}
	}
	switch {
	case x.rank < 0 || s.rank < 0:
		return nil, u.refuse(n, "its slope's broadcast needs the ranks of X and slope, which the model does not declare")
	case s.rank == x.rank || x.rank <= 2:
		return nil, nil
	case s.rank != 1:
		return nil, u.refuse(n, "a slope of rank %d on an input of rank %d", s.rank, x.rank)
	}
	axes := make([]int64, x.rank-2)
	for i := range axes {
		axes[i] = int64(i + 1)
	}
	return []*onnxpb.NodeProto{u.unsqueezeInput(n, 1, axes, "slope"), n}, nil
}

// upBatchNorm: opset 7 dropped is_test (the mode follows the outputs: Y
// alone is inference, Y with the statistics outputs training), opset 9
// dropped spatial (non-spatial BN is refused), opset 14 made the mode an
// attribute (training_mode) and left three outputs (Y, running mean,
// running variance). saved_mean and saved_var are dropped when nothing
// reads them.
func upBatchNorm(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	changed := false
	outs := n.GetOutput()
	training := false
	for _, o := range outs[1:] {
		training = training || o != ""
	}
	if v < 7 {
		if a := Attr(n, "is_test"); a != nil {
			training = a.GetI() == 0
			DeleteAttr(n, "is_test")
			changed = true
		} else {
			training = true // is_test defaults to 0
		}
	}
	if v < 9 && Attr(n, "spatial") != nil {
		if AttrInt(n, "spatial", 1) == 0 {
			return nil, u.refuse(n, "non-spatial BatchNormalization (spatial=0), with statistics per activation")
		}
		DeleteAttr(n, "spatial")
		changed = true
	}
	keep := 3
	if !training {
		keep = 1
	} else if u.to < 14 {
		keep = 5 // BN-9's training form stands at opset 13
	}
	for k := keep; k < len(outs); k++ {
		if outs[k] == "" {
			continue
		}
		if u.read(outs[k]) {
			return nil, u.refuse(n, "its output %d (%q) is read, which the node has no more at opset %d", k, outs[k], u.to)
		}
		u.dropped[outs[k]] = true
		changed = true
	}
	if len(outs) > keep {
		outs = outs[:keep]
	}
	if training {
		for len(outs) < 3 { // the statistics outputs say "training" until opset 14
			outs = append(outs, "")
			changed = true
		}
		for k := 1; k < 3; k++ {
			if outs[k] == "" {
				outs[k] = u.fresh(n, []string{"", "running_mean", "running_var"}[k])
				changed = true
			}
		}
		if u.to >= 14 {
			SetAttrInt(n, "training_mode", 1)
			changed = true
		}
	}
	n.Output = outs
	if !changed {
		return nil, nil
	}
	return one(n), nil
}

// upDropout: opset 7 dropped is_test, opset 10 made the mask boolean,
// opset 12 turned ratio into an input and added training_mode (absent:
// inference, the identity, which is what the old definitions left to the
// runtime). The mask output is dropped; a graph that reads it is refused,
// since before opset 12 the definition does not say what the mask holds in
// inference (ONNX Runtime writes all false, opset 12 all true).
func upDropout(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 12 {
		return nil, nil
	}
	outs := n.GetOutput()
	if len(outs) > 1 && u.read(outs[1]) {
		return nil, u.refuse(n, "its mask output is read, whose inference value opset 12 defined differently")
	}
	if len(outs) > 1 && outs[1] != "" {
		u.dropped[outs[1]] = true
	}
	DeleteAttr(n, "is_test")
	ratio := AttrFloat(n, "ratio", 0.5)
	DeleteAttr(n, "ratio")
	n.Output = outs[:1]
	n.Input = []string{n.Input[0], u.constFloats(n, "ratio", nil, []float32{ratio})}
	return one(n), nil
}

// upClip: opset 11 turned the min and max attributes into inputs of the
// input's element type (absent: no bound, as the old defaults were).
func upClip(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	lo, hi := Attr(n, "min"), Attr(n, "max")
	if v >= 11 || (lo == nil && hi == nil) {
		return nil, nil
	}
	DeleteAttr(n, "min")
	DeleteAttr(n, "max")
	dt := u.metaOf(n.Input[0]).elem
	ins := []string{n.Input[0], "", ""}
	for k, a := range []*onnxpb.AttributeProto{lo, hi} {
		if a == nil {
			continue
		}
		c, err := u.constScalar(n, a.GetName(), dt, a.GetF())
		if err != nil {
			return nil, err
		}
		ins[k+1] = c
	}
	n.Input = trimInputs(ins)
	return one(n), nil
}

// upPad: opset 11 turned the pads and value attributes into inputs (pads
// as INT64, value of the data's element type); mode stays an attribute.
func upPad(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 11 {
		return nil, nil
	}
	pa := Attr(n, "pads")
	if pa == nil {
		return nil, fmt.Errorf("onnxio: %s: node %q: Pad of opset %d has no pads attribute: %w", u.m.Name, n.GetName(), v, ErrInvalidModel)
	}
	value := Attr(n, "value")
	DeleteAttr(n, "pads")
	DeleteAttr(n, "value")
	ins := []string{n.Input[0], u.constInts(n, "pads", []int64{int64(len(pa.GetInts()))}, pa.GetInts())}
	if value != nil && value.GetF() != 0 {
		c, err := u.constScalar(n, "value", u.metaOf(n.Input[0]).elem, value.GetF())
		if err != nil {
			return nil, err
		}
		ins = append(ins, c)
	}
	n.Input = ins
	return one(n), nil
}

// upSplit: opset 13 turned the split attribute into an input.
func upSplit(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	a := Attr(n, "split")
	if v >= 13 || a == nil {
		return nil, nil
	}
	DeleteAttr(n, "split")
	n.Input = []string{n.Input[0], u.constInts(n, "split", []int64{int64(len(a.GetInts()))}, a.GetInts())}
	return one(n), nil
}

// upAxes: opset 13 turned the axes attribute of Squeeze, Unsqueeze and
// ReduceSum into an input (absent or empty: all axes, as before).
func upAxes(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	a := Attr(n, "axes")
	if v >= 13 {
		return nil, nil
	}
	if a == nil && n.GetOpType() == "Unsqueeze" {
		return nil, fmt.Errorf("onnxio: %s: node %q: Unsqueeze of opset %d has no axes attribute: %w", u.m.Name, n.GetName(), v, ErrInvalidModel)
	}
	if a == nil {
		return nil, nil
	}
	DeleteAttr(n, "axes")
	n.Input = n.Input[:1]
	if len(a.GetInts()) > 0 {
		n.Input = append(n.Input, u.constInts(n, "axes", []int64{int64(len(a.GetInts()))}, a.GetInts()))
	}
	return one(n), nil
}

// upSlice: opset 10 turned starts, ends and axes into inputs.
func upSlice(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 10 {
		return nil, nil
	}
	starts, ends := Attr(n, "starts"), Attr(n, "ends")
	if starts == nil || ends == nil {
		return nil, fmt.Errorf("onnxio: %s: node %q: Slice of opset %d needs starts and ends: %w", u.m.Name, n.GetName(), v, ErrInvalidModel)
	}
	ins := []string{n.Input[0]}
	for _, name := range []string{"starts", "ends", "axes"} {
		a := Attr(n, name)
		DeleteAttr(n, name)
		if a != nil {
			ins = append(ins, u.constInts(n, name, []int64{int64(len(a.GetInts()))}, a.GetInts()))
		}
	}
	n.Input = ins
	return one(n), nil
}

// upTopK: opset 10 turned k into an input.
func upTopK(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 10 {
		return nil, nil
	}
	k := Attr(n, "k")
	if k == nil {
		return nil, fmt.Errorf("onnxio: %s: node %q: TopK of opset %d has no k: %w", u.m.Name, n.GetName(), v, ErrInvalidModel)
	}
	DeleteAttr(n, "k")
	n.Input = []string{n.Input[0], u.constInts(n, "k", []int64{1}, []int64{k.GetI()})}
	return one(n), nil
}

// upSoftmax: before opset 13, Softmax, LogSoftmax and Hardmax coerced the
// input to 2-D, [d0·…·d(axis−1), d(axis)·…·d(n−1)], and normalized each
// row; from opset 13 they work on the one axis. Where axis is the last
// one (or every dimension after it is 1) the two agree and only the axis
// is written out; elsewhere the old meaning is written as Flatten at axis,
// the op on the last axis, and Reshape back to the input's shape.
func upSoftmax(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 13 {
		return nil, nil
	}
	axis := AttrInt(n, "axis", 1)
	x := u.metaOf(n.Input[0])
	if x.rank > 0 {
		a := int(axis)
		if a < 0 {
			a += x.rank
		}
		last := a == x.rank-1
		if !last && len(x.dims) == x.rank && a >= 0 && a < x.rank {
			last = true
			for _, d := range x.dims[a+1:] {
				last = last && d == 1
			}
		}
		if last {
			SetAttrInt(n, "axis", int64(a))
			return one(n), nil
		}
	}
	flat, rows, shape := u.fresh(n, "flat"), u.fresh(n, "rows"), u.fresh(n, "shape")
	flatten := u.emit(n, "Flatten", "flatten", []string{n.Input[0]}, []string{flat}, attrInt("axis", axis))
	shapeOf := u.emit(n, "Shape", "shape", []string{n.Input[0]}, []string{shape})
	y := n.Output[0]
	n.Input, n.Output = []string{flat}, []string{rows}
	SetAttrInt(n, "axis", 1)
	reshape := u.emit(n, "Reshape", "reshape", []string{rows, shape}, []string{y})
	return []*onnxpb.NodeProto{flatten, shapeOf, n, reshape}, nil
}

// toResize writes an Upsample (scales as an attribute in opset 7, an input
// from opset 9) or a Resize of opset 10 as a Resize of opset 11 or later:
// their index mapping is x_in = x_out / scale ("asymmetric"), and nearest
// takes the floor of it.
func (u *upgrader) toResize(n *onnxpb.NodeProto, scales string) ([]*onnxpb.NodeProto, error) {
	mode := "nearest"
	if a := Attr(n, "mode"); a != nil {
		mode = string(a.GetS())
	}
	if mode != "nearest" && mode != "linear" {
		return nil, u.refuse(n, "mode %q", mode)
	}
	n.OpType = "Resize"
	n.Input = []string{n.Input[0], "", scales}
	n.Attribute = []*onnxpb.AttributeProto{attrString("mode", mode), attrString("coordinate_transformation_mode", "asymmetric")}
	if mode == "nearest" {
		n.Attribute = append(n.Attribute, attrString("nearest_mode", "floor"))
	}
	return one(n), nil
}

// upUpsample: Upsample left the default domain in opset 10; Resize took
// its place.
func upUpsample(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	switch {
	case v < 7:
		return nil, u.refuse(n, "the experimental Upsample of opset 1")
	case v == 7:
		a := Attr(n, "scales")
		if a == nil {
			return nil, fmt.Errorf("onnxio: %s: node %q: Upsample of opset 7 has no scales: %w", u.m.Name, n.GetName(), ErrInvalidModel)
		}
		return u.toResize(n, u.constFloats(n, "scales", []int64{int64(len(a.GetFloats()))}, a.GetFloats()))
	}
	if input(n, 1) == "" {
		return nil, fmt.Errorf("onnxio: %s: node %q: Upsample of opset %d has no scales input: %w", u.m.Name, n.GetName(), v, ErrInvalidModel)
	}
	return u.toResize(n, n.Input[1])
}

// upResize: Resize of opset 10 had inputs X and scales and Upsample's
// mapping; opset 11 added roi and the coordinate modes, and opset 13
// removed the mode tf_half_pixel_for_nn.
func upResize(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	switch {
	case v == 10:
		if input(n, 1) == "" {
			return nil, fmt.Errorf("onnxio: %s: node %q: Resize of opset 10 has no scales input: %w", u.m.Name, n.GetName(), ErrInvalidModel)
		}
		return u.toResize(n, n.Input[1])
	case v < 13 && u.to >= 13:
		if a := Attr(n, "coordinate_transformation_mode"); a != nil && string(a.GetS()) == "tf_half_pixel_for_nn" {
			return nil, u.refuse(n, "coordinate_transformation_mode tf_half_pixel_for_nn, which opset 13 removed")
		}
	}
	return nil, nil
}

// upScatter: Scatter left the default domain in opset 11 for
// ScatterElements, which has its definition.
func upScatter(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	n.OpType = "ScatterElements"
	return one(n), nil
}

// upConvTranspose: opset 11 swapped which side SAME_UPPER and SAME_LOWER
// give the odd padding element to when the output shape is derived.
func upConvTranspose(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if a := Attr(n, "auto_pad"); v < 11 && a != nil {
		if p := string(a.GetS()); p == "SAME_UPPER" || p == "SAME_LOWER" {
			return nil, u.refuse(n, "auto_pad %s, whose padding split opset 11 changed", p)
		}
	}
	return nil, nil
}

// upRoiAlign: opset 16 added coordinate_transformation_mode with the
// default half_pixel; the old mapping is output_half_pixel.
func upRoiAlign(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v >= 16 || u.to < 16 {
		return nil, nil
	}
	setAttrString(n, "coordinate_transformation_mode", "output_half_pixel")
	return one(n), nil
}

// upRecurrent: opset 7 removed output_sequence from RNN, GRU and LSTM;
// later changes (layout, opset 14) keep the old default.
func upRecurrent(u *upgrader, n *onnxpb.NodeProto, v int64) ([]*onnxpb.NodeProto, error) {
	if v < 7 {
		return nil, u.refuse(n, "its output_sequence attribute, which opset 7 removed")
	}
	return nil, nil
}
