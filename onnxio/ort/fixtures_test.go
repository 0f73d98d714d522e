package ort

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// These tests run the PyTorch exports of testdata/models on ONNX Runtime and
// compare with the logits PyTorch computed (reference.json, written by
// testdata/models/make_fixtures.py), then check each ablation mode on them.

const fixtureDir = "../../testdata/models"

type fixtureRef struct {
	Inputs struct {
		Shape []int64   `json:"shape"`
		Data  []float32 `json:"data"`
	} `json:"inputs"`
	Models map[string]struct {
		EvalLogits  [][]float64 `json:"eval_logits"`
		TrainLogits [][]float64 `json:"train_logits"`
	} `json:"models"`
}

func loadFixtureRef(t *testing.T) fixtureRef {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r fixtureRef
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// runModel runs a model on the reference batch and returns its logits.
func runModel(t *testing.T, m *onnxio.Model, x *Tensor) []float32 {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSessionAuto(b, SessionOptions{Threads: 2})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	defer s.Close()
	out, err := s.Run(map[string]*Tensor{"input": x})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	y := out["logits"]
	if y == nil || len(y.Shape) != 2 || y.Shape[0] != x.Shape[0] || y.Shape[1] != 10 {
		t.Fatalf("%s: logits %+v", m.Name, y)
	}
	for _, v := range y.Float32 {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s: non-finite logit", m.Name)
		}
	}
	return y.Float32
}

// relDiff is max|a−b| / max|b|: the error relative to the output's scale.
func relDiff(a []float32, b []float64) float64 {
	num, den := 0.0, 0.0
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-b[i]))
		den = math.Max(den, math.Abs(b[i]))
	}
	return num / den
}

func flat(rows [][]float64) []float64 {
	var out []float64
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestFixturesMatchPyTorch(t *testing.T) {
	requireORT(t)
	ref := loadFixtureRef(t)
	x := Float32Tensor(ref.Inputs.Shape, ref.Inputs.Data)
	names := make([]string, 0, len(ref.Models))
	for k := range ref.Models {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		want := ref.Models[name]
		t.Run(name, func(t *testing.T) {
			m, err := onnxio.Load(filepath.Join(fixtureDir, name))
			if err != nil {
				t.Fatal(err)
			}
			got := runModel(t, m, x)
			training := strings.Contains(name, ".training.")
			direct := want.EvalLogits
			if training {
				// ORT runs a training-mode export with batch statistics.
				direct = want.TrainLogits
			}
			// docs/FACTS.md: exports run in ORT within 2.9e-6 of torch.
			if d := relDiff(got, flat(direct)); d > 1e-5 {
				t.Fatalf("ORT vs PyTorch: relative difference %.3g", d)
			}
			ev, err := onnxio.EvalMode(m)
			if err != nil {
				t.Fatal(err)
			}
			eval := runModel(t, ev, x)
			if d := relDiff(eval, flat(want.EvalLogits)); d > 1e-5 {
				t.Fatalf("eval mode vs PyTorch eval(): relative difference %.3g", d)
			}
			bns, _ := onnxio.FindBatchNorms(m)
			if len(bns) == 0 {
				return
			}
			for _, mode := range onnxio.Modes {
				res, err := onnxio.Ablate(m, onnxio.AblateOptions{Mode: mode})
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				out := runModel(t, res.Model, x)
				switch mode {
				case onnxio.ModeFold:
					// The bar: folded outputs equal the original's
					// inference outputs within 1e-5 relative.
					d := relDiff(out, widen(eval))
					t.Logf("fold vs original (eval mode): relative difference %.3g", d)
					if d > 1e-5 {
						t.Errorf("fold vs original (eval mode): relative difference %.3g", d)
					}
					if d := relDiff(out, flat(want.EvalLogits)); d > 1e-5 {
						t.Errorf("fold vs PyTorch eval(): relative difference %.3g", d)
					}
				case onnxio.ModeFreeze:
					// A frozen BN computes what inference mode computes.
					if d := relDiff(out, widen(eval)); d != 0 {
						t.Errorf("freeze vs eval mode: relative difference %.3g", d)
					}
				}
			}
		})
	}
}

// TestGroupNormMatchesDefinition checks the GroupNorm that ablation writes
// against GroupNorm computed directly from its definition (Wu & He 2018):
// per sample and group, subtract the mean and divide by √(var+ε) over the
// group's channels and positions, then apply the per-channel affine.
func TestGroupNormMatchesDefinition(t *testing.T) {
	requireORT(t)
	const n, c, h, w, groups = 3, 6, 4, 5, 2
	eps := float32(1e-3)
	gamma := []float32{1.5, 0.5, -1, 2, 0.25, 1}
	beta := []float32{0.1, -0.2, 0.3, 0, 1, -1}
	vi := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		sh := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: onnxio.TypeFloat, Shape: sh}}}}
	}
	mp := &onnxpb.ModelProto{IrVersion: 7, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 14}}, Graph: &onnxpb.GraphProto{
		Name:   "bn",
		Input:  []*onnxpb.ValueInfoProto{vi("input", n, c, h, w)},
		Output: []*onnxpb.ValueInfoProto{vi("out", n, c, h, w)},
		Initializer: []*onnxpb.TensorProto{
			onnxio.FloatTensor("bn.weight", []int64{c}, gamma),
			onnxio.FloatTensor("bn.bias", []int64{c}, beta),
			onnxio.FloatTensor("bn.running_mean", []int64{c}, make([]float32, c)),
			onnxio.FloatTensor("bn.running_var", []int64{c}, []float32{1, 1, 1, 1, 1, 1}),
		},
		Node: []*onnxpb.NodeProto{{Name: "bn", OpType: "BatchNormalization",
			Input:     []string{"input", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"},
			Output:    []string{"out"},
			Attribute: []*onnxpb.AttributeProto{{Name: "epsilon", F: eps, Type: onnxpb.AttributeProto_FLOAT}}}},
	}}
	raw, err := (&onnxio.Model{Proto: mp}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxio.Decode(raw, "", onnxio.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	res, err := onnxio.Ablate(m, onnxio.AblateOptions{Mode: onnxio.ModeGroupNorm, Groups: groups, CopyAffine: true})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.7)*3 + float64(i%7))
	}
	b, _ := res.Model.Bytes()
	s, err := NewSessionAuto(b, SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(map[string]*Tensor{"input": Float32Tensor([]int64{n, c, h, w}, x)})
	if err != nil {
		t.Fatal(err)
	}
	got := out["out"].Float32
	per := c / groups * h * w
	worst := 0.0
	for i := 0; i < n; i++ {
		for g := 0; g < groups; g++ {
			base := (i*c + g*c/groups) * h * w
			mean, sq := 0.0, 0.0
			for k := 0; k < per; k++ {
				mean += float64(x[base+k])
			}
			mean /= float64(per)
			for k := 0; k < per; k++ {
				d := float64(x[base+k]) - mean
				sq += d * d
			}
			std := math.Sqrt(sq/float64(per) + float64(eps))
			for k := 0; k < per; k++ {
				ch := g*c/groups + k/(h*w)
				want := (float64(x[base+k])-mean)/std*float64(gamma[ch]) + float64(beta[ch])
				worst = math.Max(worst, math.Abs(float64(got[base+k])-want))
			}
		}
	}
	if worst > 1e-5 {
		t.Fatalf("GroupNorm differs from its definition by %.3g", worst)
	}
}
