package onnxio

import (
	"slices"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// opVersions lists, for every operator of the default ONNX domain in
// opsets 1 to 17, the opset versions that introduced a new definition of it
// (its since_version values), as the ONNX operator changelog
// (docs/Changelog.md of ONNX 1.12) lists them.
var opVersions = map[string][]int64{
	"Abs": {1, 6, 13}, "Acos": {7}, "Acosh": {9}, "Add": {1, 6, 7, 13, 14}, "And": {1, 7},
	"ArgMax": {1, 11, 12, 13}, "ArgMin": {1, 11, 12, 13}, "Asin": {7}, "Asinh": {9}, "Atan": {7}, "Atanh": {9},
	"AveragePool": {1, 7, 10, 11}, "BatchNormalization": {1, 6, 7, 9, 14, 15}, "Bernoulli": {15},
	"BitShift": {11}, "BlackmanWindow": {17}, "Cast": {1, 6, 9, 13}, "CastLike": {15}, "Ceil": {1, 6, 13},
	"Celu": {12}, "Clip": {1, 6, 11, 12, 13}, "Compress": {9, 11}, "Concat": {1, 4, 11, 13},
	"ConcatFromSequence": {11}, "Constant": {1, 9, 11, 12, 13}, "ConstantOfShape": {9}, "Conv": {1, 11},
	"ConvInteger": {10}, "ConvTranspose": {1, 11}, "Cos": {7}, "Cosh": {9}, "CumSum": {11, 14}, "DFT": {17},
	"DepthToSpace": {1, 11, 13}, "DequantizeLinear": {10, 13}, "Det": {11}, "Div": {1, 6, 7, 13, 14},
	"Dropout": {1, 6, 7, 10, 12, 13}, "DynamicQuantizeLinear": {11}, "Einsum": {12}, "Elu": {1, 6},
	"Equal": {1, 7, 11, 13}, "Erf": {9, 13}, "Exp": {1, 6, 13}, "Expand": {8, 13}, "EyeLike": {9},
	"Flatten": {1, 9, 11, 13}, "Floor": {1, 6, 13}, "GRU": {1, 3, 7, 14}, "Gather": {1, 11, 13},
	"GatherElements": {11, 13}, "GatherND": {11, 12, 13}, "Gemm": {1, 6, 7, 9, 11, 13},
	"GlobalAveragePool": {1}, "GlobalLpPool": {1, 2}, "GlobalMaxPool": {1}, "Greater": {1, 7, 9, 13},
	"GreaterOrEqual": {12, 16}, "GridSample": {16}, "HammingWindow": {17}, "HannWindow": {17},
	"HardSigmoid": {1, 6}, "HardSwish": {14}, "Hardmax": {1, 11, 13}, "Identity": {1, 13, 14, 16},
	"If": {1, 11, 13, 16}, "InstanceNormalization": {1, 6}, "IsInf": {10}, "IsNaN": {9, 13}, "LRN": {1, 13},
	"LSTM": {1, 7, 14}, "LayerNormalization": {17}, "LeakyRelu": {1, 6, 16}, "Less": {1, 7, 9, 13},
	"LessOrEqual": {12, 16}, "Log": {1, 6, 13}, "LogSoftmax": {1, 11, 13}, "Loop": {1, 11, 13, 16},
	"LpNormalization": {1}, "LpPool": {1, 2, 11}, "MatMul": {1, 9, 13}, "MatMulInteger": {10},
	"Max": {1, 6, 8, 12, 13}, "MaxPool": {1, 8, 10, 11, 12}, "MaxRoiPool": {1}, "MaxUnpool": {9, 11},
	"Mean": {1, 6, 8, 13}, "MeanVarianceNormalization": {9, 13}, "MelWeightMatrix": {17},
	"Min": {1, 6, 8, 12, 13}, "Mod": {10, 13}, "Mul": {1, 6, 7, 13, 14}, "Multinomial": {7}, "Neg": {1, 6, 13},
	"NegativeLogLikelihoodLoss": {12, 13}, "NonMaxSuppression": {10, 11}, "NonZero": {9, 13}, "Not": {1},
	"OneHot": {9, 11}, "Optional": {15}, "OptionalGetElement": {15}, "OptionalHasElement": {15}, "Or": {1, 7},
	"PRelu": {1, 6, 7, 9, 16}, "Pad": {1, 2, 11, 13}, "Pow": {1, 7, 12, 13, 15}, "QLinearConv": {10},
	"QLinearMatMul": {10}, "QuantizeLinear": {10, 13}, "RNN": {1, 7, 14}, "RandomNormal": {1},
	"RandomNormalLike": {1}, "RandomUniform": {1}, "RandomUniformLike": {1}, "Range": {11},
	"Reciprocal": {1, 6, 13}, "ReduceL1": {1, 11, 13}, "ReduceL2": {1, 11, 13}, "ReduceLogSum": {1, 11, 13},
	"ReduceLogSumExp": {1, 11, 13}, "ReduceMax": {1, 11, 12, 13}, "ReduceMean": {1, 11, 13},
	"ReduceMin": {1, 11, 12, 13}, "ReduceProd": {1, 11, 13}, "ReduceSum": {1, 11, 13},
	"ReduceSumSquare": {1, 11, 13}, "Relu": {1, 6, 13, 14}, "Reshape": {1, 5, 13, 14}, "Resize": {10, 11, 13},
	"ReverseSequence": {10}, "RoiAlign": {10, 16}, "Round": {11}, "STFT": {17}, "Scan": {8, 9, 11, 16},
	"Scatter": {9, 11}, "ScatterElements": {11, 13, 16}, "ScatterND": {11, 13, 16}, "Selu": {1, 6},
	"SequenceAt": {11}, "SequenceConstruct": {11}, "SequenceEmpty": {11}, "SequenceErase": {11},
	"SequenceInsert": {11}, "SequenceLength": {11}, "SequenceMap": {17}, "Shape": {1, 13, 15}, "Shrink": {9},
	"Sigmoid": {1, 6, 13}, "Sign": {9, 13}, "Sin": {7}, "Sinh": {9}, "Size": {1, 13}, "Slice": {1, 10, 11, 13},
	"Softmax": {1, 11, 13}, "SoftmaxCrossEntropyLoss": {12, 13}, "Softplus": {1}, "Softsign": {1},
	"SpaceToDepth": {1, 13}, "Split": {1, 2, 11, 13}, "SplitToSequence": {11}, "Sqrt": {1, 6, 13},
	"Squeeze": {1, 11, 13}, "StringNormalizer": {10}, "Sub": {1, 6, 7, 13, 14}, "Sum": {1, 6, 8, 13},
	"Tan": {7}, "Tanh": {1, 6, 13}, "TfIdfVectorizer": {9}, "ThresholdedRelu": {10}, "Tile": {1, 6, 13},
	"TopK": {1, 10, 11}, "Transpose": {1, 13}, "Trilu": {14}, "Unique": {11}, "Unsqueeze": {1, 11, 13},
	"Upsample": {1, 7, 9, 10}, "Where": {9, 16}, "Xor": {1, 7},
}

// deprecatedSince holds the ops that left the default domain, with the
// opset whose definition only marks them deprecated: from there on a model
// may not use them.
var deprecatedSince = map[string]int64{"Upsample": 10, "Scatter": 11}

// sinceVersion is the since_version of the definition of op in effect at
// opset, or 0 when op is not defined there.
func sinceVersion(op string, opset int64) int64 {
	v := int64(0)
	for _, s := range opVersions[op] {
		if s <= opset {
			v = s
		}
	}
	return v
}

// deprecated reports whether definition v of op is the deprecation marker.
func deprecated(op string, v int64) bool {
	d, ok := deprecatedSince[op]
	return ok && v >= d
}

// valueMeta is what the upgrade knows of a value: its rank (−1 unknown),
// its element type (0 unknown) and, for constants and fully declared
// shapes, its dims.
type valueMeta struct {
	rank int
	elem int32
	dims []int64
}

var unknownMeta = valueMeta{rank: -1}

// metaOf returns what is known of a value.
func (u *upgrader) metaOf(name string) valueMeta {
	if m, ok := u.meta[name]; ok {
		return m
	}
	return unknownMeta
}

// inferMeta records the declared ranks and types of the graph's values and
// propagates them through the nodes in topological order, for the rules
// that depend on a rank (Softmax's axis, opset 6 broadcasting, PRelu's
// slope) or a type (Clip's bounds, Pad's value).
func (u *upgrader) inferMeta() {
	g := u.m.Graph()
	for _, t := range g.GetInitializer() {
		u.meta[t.GetName()] = valueMeta{rank: len(t.GetDims()), elem: t.GetDataType(), dims: t.GetDims()}
	}
	for name, vi := range u.ix.ValueInfo {
		if _, isInit := u.meta[name]; isInit {
			continue
		}
		tt := vi.GetType().GetTensorType()
		if tt == nil {
			continue
		}
		m := valueMeta{rank: -1, elem: tt.GetElemType()}
		if dims, ok := u.ix.Shape(name); ok {
			m.rank = len(dims)
			if !slices.Contains(dims, -1) {
				m.dims = dims
			}
		}
		u.meta[name] = m
	}
	for _, i := range u.ix.Order {
		n := u.ix.Node(i)
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			continue
		}
		for k, m := range u.inferNode(n) {
			if k >= len(n.GetOutput()) || n.GetOutput()[k] == "" {
				continue
			}
			name := n.GetOutput()[k]
			old, ok := u.meta[name]
			if !ok {
				u.meta[name] = m
				continue
			}
			// A declaration wins; inference fills what it leaves open.
			if old.rank < 0 {
				old.rank = m.rank
			}
			if old.elem == 0 {
				old.elem = m.elem
			}
			u.meta[name] = old
		}
	}
}

// sameShapeOps keep the rank and element type of their first input.
var sameShapeOps = map[string]bool{}

func init() {
	for _, op := range []string{"Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "AveragePool", "Ceil",
		"Celu", "Clip", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "Elu", "Erf", "Exp",
		"Floor", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "HardSigmoid", "HardSwish", "Hardmax",
		"Identity", "InstanceNormalization", "LRN", "LeakyRelu", "Log", "LogSoftmax", "LpNormalization", "LpPool",
		"MeanVarianceNormalization", "Neg", "PRelu", "Pad", "Reciprocal", "Relu", "Resize", "Round", "Selu",
		"Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth",
		"Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Tile", "Transpose", "Upsample", "Concat", "Split",
		"BatchNormalization", "Dropout", "MaxPool", "TopK", "LRN", "Not"} {
		sameShapeOps[op] = true
	}
}

// broadcastOps give the rank of their widest input; compareOps do too,
// with boolean elements.
var (
	broadcastOps = map[string]bool{"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true,
		"Min": true, "Sum": true, "Mean": true, "Mod": true}
	compareOps = map[string]bool{"Equal": true, "Greater": true, "Less": true, "GreaterOrEqual": true,
		"LessOrEqual": true, "And": true, "Or": true, "Xor": true}
)

// inferNode returns the meta of a node's outputs (as far as known), in
// output order, under the node's definition at the model's own opset.
func (u *upgrader) inferNode(n *onnxpb.NodeProto) []valueMeta {
	in := func(k int) valueMeta {
		if k < len(n.GetInput()) {
			return u.metaOf(n.GetInput()[k])
		}
		return unknownMeta
	}
	x := in(0)
	all := func(m valueMeta) []valueMeta {
		out := make([]valueMeta, len(n.GetOutput()))
		for k := range out {
			out[k] = m
		}
		return out
	}
	op := n.GetOpType()
	switch {
	case op == "Constant":
		if t := constantValue(n); t != nil {
			return []valueMeta{{rank: len(t.GetDims()), elem: t.GetDataType(), dims: t.GetDims()}}
		}
		return nil
	case op == "Shape":
		return []valueMeta{{rank: 1, elem: TypeInt64}}
	case op == "Size":
		return []valueMeta{{rank: 0, elem: TypeInt64}}
	case op == "Gemm" || op == "Flatten":
		return []valueMeta{{rank: 2, elem: x.elem}}
	case op == "Cast":
		return []valueMeta{{rank: x.rank, elem: int32(AttrInt(n, "to", 0))}}
	case op == "MaxPool" || op == "TopK":
		return []valueMeta{{rank: x.rank, elem: x.elem}, {rank: x.rank, elem: TypeInt64}}
	case op == "BatchNormalization":
		return []valueMeta{{rank: x.rank, elem: x.elem}, {rank: 1, elem: x.elem}, {rank: 1, elem: x.elem}, {rank: 1, elem: x.elem}, {rank: 1, elem: x.elem}}
	case sameShapeOps[op]:
		return all(valueMeta{rank: x.rank, elem: x.elem})
	case broadcastOps[op] || compareOps[op]:
		m := valueMeta{rank: -1, elem: x.elem}
		for k := range n.GetInput() {
			r := in(k).rank
			if r < 0 {
				m.rank = -1
				break
			}
			m.rank = max(m.rank, r)
		}
		if compareOps[op] {
			m.elem = TypeBool
		}
		return []valueMeta{m}
	case op == "MatMul":
		a, b := x.rank, in(1).rank
		if a < 1 || b < 1 {
			return []valueMeta{{rank: -1, elem: x.elem}}
		}
		r := max(a, b)
		if a == 1 || b == 1 {
			r = max(a, b) - 1
		}
		return []valueMeta{{rank: r, elem: x.elem}}
	case op == "Gather":
		if x.rank < 0 || in(1).rank < 0 {
			return []valueMeta{{rank: -1, elem: x.elem}}
		}
		return []valueMeta{{rank: x.rank - 1 + in(1).rank, elem: x.elem}}
	case op == "Reshape":
		if a := Attr(n, "shape"); a != nil { // Reshape-1
			return []valueMeta{{rank: len(a.GetInts()), elem: x.elem}}
		}
		if s := in(1); len(s.dims) == 1 {
			return []valueMeta{{rank: int(s.dims[0]), elem: x.elem}}
		}
		return []valueMeta{{rank: -1, elem: x.elem}}
	case op == "Squeeze" || op == "Unsqueeze":
		axes := AttrInts(n, "axes")
		if x.rank < 0 || axes == nil {
			return []valueMeta{{rank: -1, elem: x.elem}}
		}
		if op == "Squeeze" {
			return []valueMeta{{rank: x.rank - len(axes), elem: x.elem}}
		}
		return []valueMeta{{rank: x.rank + len(axes), elem: x.elem}}
	case len(op) > 6 && op[:6] == "Reduce", op == "ArgMax", op == "ArgMin":
		m := valueMeta{rank: x.rank, elem: x.elem}
		if op == "ArgMax" || op == "ArgMin" {
			m.elem = TypeInt64
		}
		if AttrInt(n, "keepdims", 1) == 0 && x.rank >= 0 {
			switch axes := AttrInts(n, "axes"); {
			case op == "ArgMax" || op == "ArgMin":
				m.rank = x.rank - 1
			case axes == nil:
				m.rank = 0
			default:
				m.rank = x.rank - len(axes)
			}
		}
		return []valueMeta{m}
	}
	return nil
}

// constantValue returns the tensor a Constant node outputs, or nil when it
// holds something else (a sparse tensor, strings).
func constantValue(n *onnxpb.NodeProto) *onnxpb.TensorProto {
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "value":
			return a.GetT()
		case "value_float":
			return FloatTensor("", nil, []float32{a.GetF()})
		case "value_floats":
			return FloatTensor("", []int64{int64(len(a.GetFloats()))}, a.GetFloats())
		case "value_int":
			return Int64Tensor("", nil, []int64{a.GetI()})
		case "value_ints":
			return Int64Tensor("", []int64{int64(len(a.GetInts()))}, a.GetInts())
		}
	}
	return nil
}
