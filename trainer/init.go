package trainer

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Init says where the starting weights of a training run come from.
type Init string

const (
	// InitPretrained keeps the model's weights.
	InitPretrained Init = "pretrained"
	// InitScratch re-draws them with PyTorch's default rules.
	InitScratch Init = "scratch"
)

// ParseInit reads "pretrained" or "scratch".
func ParseInit(s string) (Init, error) {
	switch Init(s) {
	case InitPretrained, InitScratch:
		return Init(s), nil
	}
	return "", fmt.Errorf("trainer: unknown --init %q (want pretrained or scratch)", s)
}

// InitReport says what Initialize did to each parameter.
type InitReport struct {
	// Rules maps each parameter to the rule that set it
	// ("kaiming_uniform(a=√5)", "bias_uniform", "ones", "zeros", "kept").
	Rules map[string]string
}

// Initialize returns a copy of the model with its weights re-drawn the way a
// freshly constructed PyTorch module draws them (torch.nn.Conv2d/Linear's
// reset_parameters: weight ~ kaiming_uniform(a=√5), i.e. U(±1/√fan_in);
// bias ~ U(±1/√fan_in); BatchNorm, LayerNorm and GroupNorm scale 1 and
// bias 0; running mean 0 and variance 1). Parameters of other ops are kept
// and reported. Each parameter's stream is seeded from seed and its name,
// so the result does not depend on the order of the initializers.
func Initialize(m *onnxio.Model, seed uint64) (*onnxio.Model, *InitReport, error) {
	out := m.Clone()
	ix, err := onnxio.NewIndex(out)
	if err != nil {
		return nil, nil, err
	}
	rep := &InitReport{Rules: map[string]string{}}
	set := func(name, rule string, f func(i int) float32) error {
		t := ix.Initializers[name]
		if t == nil || t.GetDataType() != onnxio.TypeFloat {
			return nil
		}
		if _, done := rep.Rules[name]; done {
			return nil
		}
		n, err := onnxio.NumElements(t.GetDims())
		if err != nil {
			return err
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = f(i)
		}
		nt := onnxio.FloatTensor(name, t.GetDims(), vals)
		t.RawData, t.FloatData, t.ExternalData, t.DataLocation = nt.RawData, nil, nil, onnxpb.TensorProto_DEFAULT
		rep.Rules[name] = rule
		return nil
	}
	uniform := func(name string, bound float64) func(int) float32 {
		h := fnv.New64a()
		h.Write([]byte(name))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		return func(int) float32 { return float32((r.Float64()*2 - 1) * bound) }
	}
	constant := func(v float32) func(int) float32 { return func(int) float32 { return v } }
	for _, n := range out.Graph().GetNode() {
		in := n.GetInput()
		get := func(k int) string {
			if k < len(in) {
				return in[k]
			}
			return ""
		}
		var fanIn int64
		w := ix.Initializers[get(1)]
		switch n.GetOpType() {
		case "Conv":
			if w != nil && len(w.GetDims()) >= 3 {
				fanIn = numel(w.GetDims()[1:])
			}
		case "ConvTranspose":
			// PyTorch computes ConvTranspose's fan_in from weight dim 1.
			if w != nil && len(w.GetDims()) >= 3 {
				fanIn = w.GetDims()[1] * numel(w.GetDims()[2:])
			}
		case "Gemm":
			if w != nil && len(w.GetDims()) == 2 {
				fanIn = w.GetDims()[0]
				if onnxio.AttrInt(n, "transB", 0) != 0 {
					fanIn = w.GetDims()[1]
				}
			}
		case "MatMul":
			if w != nil && len(w.GetDims()) == 2 {
				fanIn = w.GetDims()[0]
			}
		case "BatchNormalization":
			for k, v := range map[int]float32{1: 1, 2: 0, 3: 0, 4: 1} {
				rule := map[float32]string{1: "ones", 0: "zeros"}[v]
				if err := set(get(k), rule, constant(v)); err != nil {
					return nil, nil, err
				}
			}
			continue
		case "LayerNormalization", "InstanceNormalization":
			if err := set(get(1), "ones", constant(1)); err != nil {
				return nil, nil, err
			}
			if err := set(get(2), "zeros", constant(0)); err != nil {
				return nil, nil, err
			}
			continue
		default:
			continue
		}
		if fanIn <= 0 {
			continue
		}
		bound := 1 / math.Sqrt(float64(fanIn))
		if err := set(get(1), "kaiming_uniform(a=√5)", uniform(get(1), bound)); err != nil {
			return nil, nil, err
		}
		if err := set(get(2), "bias_uniform", uniform(get(2), bound)); err != nil {
			return nil, nil, err
		}
	}
	// GroupNorm written by ablation: its affine follows the BN's naming.
	for _, t := range out.Graph().GetInitializer() {
		name := t.GetName()
		if _, done := rep.Rules[name]; done || t.GetDataType() != onnxio.TypeFloat {
			continue
		}
		switch {
		case hasSuffix(name, ".gn.weight"):
			if err := set(name, "ones", constant(1)); err != nil {
				return nil, nil, err
			}
		case hasSuffix(name, ".gn.bias"):
			if err := set(name, "zeros", constant(0)); err != nil {
				return nil, nil, err
			}
		}
	}
	return out, rep, nil
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }
