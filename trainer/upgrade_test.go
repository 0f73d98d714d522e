package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Models of old opsets (testdata/models/make_old_opsets.py: a BN CNN
// exported by torch at opsets 9 and 11) train through an upgraded copy.
// The expected logits are PyTorch's (old_opsets.json).

var oldOpsetFiles = []string{"old_cnn.op9.training.onnx", "old_cnn.op9.preserve.onnx", "old_cnn.op11.training.onnx", "old_cnn.op11.preserve.onnx"}

type oldOpsetLogits struct {
	Models map[string]struct {
		EvalLogits  [][]float64 `json:"eval_logits"`
		TrainLogits [][]float64 `json:"train_logits"`
	} `json:"models"`
}

func loadOldOpsetLogits(t *testing.T) oldOpsetLogits {
	t.Helper()
	b, err := os.ReadFile(fixtureDir + "/old_opsets.json")
	if err != nil {
		t.Fatal(err)
	}
	var r oldOpsetLogits
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// logitsErr is max |got − want| / max |want|.
func logitsErr(got []float32, want [][]float64) float64 {
	num, den := 0.0, 0.0
	k := 0
	for _, row := range want {
		for _, w := range row {
			num = math.Max(num, math.Abs(float64(got[k])-w))
			den = math.Max(den, math.Abs(w))
			k++
		}
	}
	if k != len(got) {
		return math.Inf(1)
	}
	return num / den
}

func TestBuildStepOnOldOpsets(t *testing.T) {
	requireORT(t)
	ref := loadOldOpsetLogits(t)
	x, y := mnistBatch(t, 8)
	params := []string{"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "conv2.weight", "conv2.bias", "bn2.weight", "bn2.bias", "fc.weight", "fc.bias"}
	for _, f := range oldOpsetFiles {
		t.Run(f, func(t *testing.T) {
			m := loadFixture(t, f)
			g, err := BuildStep(m, StepConfig{Batch: 8, Optimizer: SGD(0.9, 0, false)})
			if err != nil {
				t.Fatal(err)
			}
			if g.Model.Opset("") != graphOpset || g.src == m || g.src.Opset("") != graphOpset {
				t.Fatalf("step graph of opset %d built from a model of opset %d; want both %d", g.Model.Opset(""), g.src.Opset(""), graphOpset)
			}
			if !slices.Equal(g.Params, params) || len(g.Stats) != 4 {
				t.Fatalf("params %v, stats %v; want torch's parameter names and 4 statistics", g.Params, g.Stats)
			}
			training := strings.Contains(f, "training")
			var mask string
			if training {
				if len(g.Masks) != 1 || g.MaskRatios[g.Masks[0]] != 0.25 {
					t.Fatalf("masks %v %v; want the one Dropout with its ratio 0.25", g.Masks, g.MaskRatios)
				}
				mask = g.Masks[0]
			} else if len(g.Masks) != 0 {
				t.Fatalf("masks %v in an export without Dropout", g.Masks)
			}
			// Evaluation: the frozen evaluation graph gives PyTorch's eval() logits.
			ev, err := BuildFrozenEval(m, 8)
			if err != nil {
				t.Fatal(err)
			}
			evOut := runGraph(t, ev, map[string]*ort.Tensor{ev.Input: ort.Float32Tensor(ev.Shapes[ev.Input], x), NameLabels: ort.Int64Tensor([]int64{8}, y)})
			if d := logitsErr(evOut[ev.Logits].Float32, ref.Models[f].EvalLogits); d > 1e-5 {
				t.Errorf("evaluation graph vs PyTorch eval(): relative error %.3g", d)
			}
			if !training {
				return
			}
			// The step's forward uses batch statistics; a mask of 1−p
			// everywhere turns Dropout off, which is PyTorch's train() with
			// the Dropout module in eval().
			r := newStepRunner(t, g, g.src)
			defer r.s.Close()
			ones := make([]float32, numel(g.Shapes[mask]))
			for i := range ones {
				ones[i] = 1 - 0.25
			}
			r.values[mask] = ones
			out := r.run(t, x, y, 0, 0)
			if d := logitsErr(out[g.Logits].Float32, ref.Models[f].TrainLogits); d > 1e-5 {
				t.Errorf("step forward vs PyTorch train(): relative error %.3g", d)
			}
			if l := out[NameLoss].Float32[0]; math.IsNaN(float64(l)) || l <= 0 {
				t.Errorf("loss %v", l)
			}
		})
	}
}

// runGraph runs a built graph as is on ORT.
func runGraph(t *testing.T, g *Graph, in map[string]*ort.Tensor) map[string]*ort.Tensor {
	t.Helper()
	b, err := g.Model.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ort.RunOnce(b, in, ort.SessionOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTrainOldOpset: a training run on an opset-9 export says once in its
// log that the model was upgraded, and returns the upgraded model.
func TestTrainOldOpset(t *testing.T) {
	requireORT(t)
	img, err := dataset.ReadIDX("../testdata/mnist/t10k-64-images-idx3-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := dataset.ReadIDX("../testdata/mnist/t10k-64-labels-idx1-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	labels := make([]int64, 16)
	for i := range labels {
		labels[i] = int64(lab.Data[i])
	}
	d, err := dataset.FromUint8("mnist", []int64{1, 28, 28}, img.Data[:16*784], labels)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	res, err := Train(context.Background(), Config{Model: loadFixture(t, "old_cnn.op9.training.onnx"), Train: d, Epochs: 1, Batch: 8,
		Optimizer: SGD(0.9, 0, false), LR: 0.01, Seed: 1, Log: &log, Session: ort.SessionOptions{Threads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Upgrade == nil || res.Upgrade.From != 9 || res.Upgrade.To != graphOpset || res.Model.Opset("") != graphOpset {
		t.Fatalf("upgrade %v, trained model of opset %d; want 9 → %d", res.Upgrade, res.Model.Opset(""), graphOpset)
	}
	if n := strings.Count(log.String(), `"opset_upgrade"`); n != 1 || !strings.Contains(log.String(), `"from":9`) {
		t.Fatalf("the log says %d times that the model was upgraded; want once:\n%s", n, log.String())
	}
	if bns, _ := onnxio.FindBatchNorms(res.Model); len(bns) != 2 {
		t.Fatalf("trained model has %d BN layers, want 2", len(bns))
	}
}

func TestOldOpsetRefusalIsUnsupported(t *testing.T) {
	m := loadFixture(t, "old_cnn.op9.preserve.onnx").Clone()
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Dropout" || n.GetOpType() == "Clip" {
			n.OpType = "Scan" // stands for any op whose change Upgrade does not convert
			n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: "body", G: &onnxpb.GraphProto{Name: "b"}, Type: onnxpb.AttributeProto_GRAPH})
		}
	}
	_, err := BuildStep(m, StepConfig{Batch: 4, Optimizer: SGD(0, 0, false)})
	if err == nil || !errors.Is(err, ErrUnsupported) || !errors.Is(err, onnxio.ErrCannotUpgrade) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "cannot upgrade op Scan from opset 9") {
		t.Fatalf("error %v; want one line naming the op and opset, wrapping ErrUnsupported and onnxio.ErrCannotUpgrade", err)
	}
	if _, _, err := Upgrade(loadFixture(t, "small_cnn.training.onnx")); err != nil {
		t.Fatal(err)
	}
}

// TestFoldSliceAndTranspose: torch's opset-11 Pad export computes its pads
// from a 2-D table reversed with Slice and transposed; the graph builder
// folds both, so the Pad gets constant pads.
func TestFoldSliceAndTranspose(t *testing.T) {
	// [[1,2],[0,0]] → reversed rows [[0,0],[1,2]] → transposed [[0,1],[0,2]]
	// → flattened pads [0,1,0,2]: one column before, two after, on axis 1.
	table := onnxio.Int64Tensor("table", []int64{2, 2}, []int64{1, 2, 0, 0})
	g := &onnxpb.GraphProto{
		Name:   "pads",
		Input:  []*onnxpb.ValueInfoProto{fvi("x", -1, 4)},
		Output: []*onnxpb.ValueInfoProto{fvi("y", -1, 7)},
		Initializer: []*onnxpb.TensorProto{table, onnxio.Int64Tensor("s", []int64{1}, []int64{-1}), onnxio.Int64Tensor("e", []int64{1}, []int64{math.MinInt64}),
			onnxio.Int64Tensor("ax", []int64{1}, []int64{0}), onnxio.Int64Tensor("st", []int64{1}, []int64{-1}), onnxio.Int64Tensor("flat", []int64{1}, []int64{-1}),
			onnxio.FloatTensor("w", []int64{4, 4}, make([]float32, 16))},
		Node: []*onnxpb.NodeProto{
			{OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"h"}},
			{OpType: "Slice", Input: []string{"table", "s", "e", "ax", "st"}, Output: []string{"rev"}},
			{OpType: "Transpose", Input: []string{"rev"}, Output: []string{"tr"}, Attribute: []*onnxpb.AttributeProto{{Name: "perm", Ints: []int64{1, 0}, Type: onnxpb.AttributeProto_INTS}}},
			{OpType: "Reshape", Input: []string{"tr", "flat"}, Output: []string{"pads"}},
			{OpType: "Pad", Input: []string{"h", "pads"}, Output: []string{"y"}},
		},
	}
	m := &onnxio.Model{Name: "pads.onnx", Proto: &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 13}}, Graph: g}}
	// A wrong fold gives another shape: without the reversal [6 4], without
	// the transposition [4 6].
	ev, err := BuildFrozenEval(m, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s := ev.Shapes[ev.Logits]; !slices.Equal(s, []int64{3, 7}) {
		t.Fatalf("logits of shape %v, want [3 7]", s)
	}
	requireORT(t)
	out := runGraph(t, ev, map[string]*ort.Tensor{"x": ort.Float32Tensor([]int64{3, 4}, make([]float32, 12)), NameLabels: ort.Int64Tensor([]int64{3}, []int64{0, 1, 2})})
	if s := out[ev.Logits].Shape; !slices.Equal(s, []int64{3, 7}) {
		t.Fatalf("ORT's logits have shape %v, the builder's [3 7]", s)
	}
}
