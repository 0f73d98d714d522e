package onnxio

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

func floatsOf(t *testing.T, m *Model, name string) []float32 {
	t.Helper()
	ix, err := NewIndex(m)
	if err != nil {
		t.Fatal(err)
	}
	tt := ix.Initializers[name]
	if tt == nil {
		t.Fatalf("no initializer %q", name)
	}
	v, err := m.Floats(tt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func opCount(m *Model, op string) int {
	c := 0
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == op {
			c++
		}
	}
	return c
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// TestFoldGemmHand checks fold against numbers worked out by hand:
// s = γ/√(σ²+ε) = [2/√4, 1/√9] = [1, 1/3]; W' rows (transB) scale by s;
// b' = (b−μ)·s + β = [(1−1)·1+0.5, (−1−0)/3−1] = [0.5, −4/3].
func TestFoldGemmHand(t *testing.T) {
	in := gemmBN()
	before := mustBytes(t, in)
	res, err := Ablate(in, AblateOptions{Mode: ModeFold})
	if err != nil {
		t.Fatal(err)
	}
	if string(mustBytes(t, in)) != string(before) {
		t.Fatal("Ablate modified its input model")
	}
	m := res.Model
	if opCount(m, "BatchNormalization") != 0 {
		t.Fatal("BN still present after fold")
	}
	w := floatsOf(t, m, "fc.weight")
	b := floatsOf(t, m, "fc.bias")
	wantW := []float64{1, 2, 1, 4.0 / 3}
	wantB := []float64{0.5, -4.0 / 3}
	for i := range wantW {
		if !near(float64(w[i]), wantW[i], 1e-6) {
			t.Fatalf("W'[%d] = %v want %v", i, w[i], wantW[i])
		}
	}
	for i := range wantB {
		if !near(float64(b[i]), wantB[i], 1e-6) {
			t.Fatalf("b'[%d] = %v want %v", i, b[i], wantB[i])
		}
	}
	// The Gemm now writes the graph output directly, and BN's parameters are gone.
	g := m.Graph()
	if len(g.Node) != 1 || g.Node[0].Output[0] != "y" {
		t.Fatalf("graph after fold: %v", g.Node)
	}
	for _, init := range g.Initializer {
		if strings.HasPrefix(init.Name, "bn.") {
			t.Fatalf("unused BN initializer %q kept", init.Name)
		}
	}
	if v, _ := m.Metadata(MetaAblation); !strings.Contains(v, `"fold"`) {
		t.Fatalf("ablation not recorded: %q", v)
	}
}

// conv2d is a naive reference convolution (NCHW, one input image, stride 1,
// symmetric padding) written for this test.
func conv2d(x []float64, cin, h, w int, wt []float32, cout, k, pad int, bias []float32) []float64 {
	out := make([]float64, cout*h*w)
	for o := 0; o < cout; o++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				s := 0.0
				if bias != nil {
					s = float64(bias[o])
				}
				for c := 0; c < cin; c++ {
					for di := 0; di < k; di++ {
						for dj := 0; dj < k; dj++ {
							ii, jj := i+di-pad, j+dj-pad
							if ii < 0 || jj < 0 || ii >= h || jj >= w {
								continue
							}
							s += x[(c*h+ii)*w+jj] * float64(wt[((o*cin+c)*k+di)*k+dj])
						}
					}
				}
				out[(o*h+i)*w+j] = s
			}
		}
	}
	return out
}

// TestFoldConvMatchesBN compares conv→BN on the original parameters with the
// folded conv, both evaluated by the naive reference above.
func TestFoldConvMatchesBN(t *testing.T) {
	in := convBNRelu()
	res, err := Ablate(in, AblateOptions{Mode: ModeFold, Layers: []string{"bn1"}})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 16)
	for i := range x {
		x[i] = math.Sin(float64(i)) * 2
	}
	w0 := floatsOf(t, in, "conv1.weight")
	g, b := floatsOf(t, in, "bn1.weight"), floatsOf(t, in, "bn1.bias")
	mu, v := floatsOf(t, in, "bn1.running_mean"), floatsOf(t, in, "bn1.running_var")
	ref := conv2d(x, 1, 4, 4, w0, 2, 3, 1, nil)
	for c := 0; c < 2; c++ {
		for p := 0; p < 16; p++ {
			ref[c*16+p] = (ref[c*16+p]-float64(mu[c]))/math.Sqrt(float64(v[c])+1e-5)*float64(g[c]) + float64(b[c])
		}
	}
	got := conv2d(x, 1, 4, 4, floatsOf(t, res.Model, "conv1.weight"), 2, 3, 1, floatsOf(t, res.Model, "conv1.bias"))
	for i := range ref {
		if !near(got[i], ref[i], 1e-5) {
			t.Fatalf("output %d: folded %v, conv+BN %v", i, got[i], ref[i])
		}
	}
	conv := res.Model.Graph().Node[0]
	if conv.OpType != "Conv" || len(conv.Input) != 3 || conv.Input[2] != "conv1.bias" || conv.Output[0] != "b1" {
		t.Fatalf("folded conv node: %v", conv)
	}
}

func TestFoldRefusesNonFoldable(t *testing.T) {
	m := convBNRelu()
	g := m.Graph()
	// Put a Relu between the Conv and the BN.
	g.Node = []*onnxpb.NodeProto{
		g.Node[0],
		node("Relu", "relu0", []string{"c1"}, []string{"r0"}),
		node("BatchNormalization", "bn1", []string{"r0", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"}, []string{"y"}),
	}
	mustValid(t, m)
	bns, err := FindBatchNorms(m)
	if err != nil {
		t.Fatal(err)
	}
	if bns[0].Foldable || bns[0].ProducerKind != "other" || bns[0].ProducerOp != "Relu" || !strings.Contains(bns[0].FoldNote, "Relu") {
		t.Fatalf("BN after Relu reported as %+v", bns[0])
	}
	_, err = Ablate(m, AblateOptions{Mode: ModeFold})
	if err == nil || !strings.Contains(err.Error(), "cannot fold") || !strings.Contains(err.Error(), "Relu") {
		t.Fatalf("want a clear fold error, got %v", err)
	}
	// Other modes still work on it.
	for _, mode := range []Mode{ModeRemove, ModeFreeze, ModeGroupNorm} {
		if _, err := Ablate(m, AblateOptions{Mode: mode}); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
	}
}

func TestRemove(t *testing.T) {
	res, err := Ablate(convBNRelu(), AblateOptions{Mode: ModeRemove})
	if err != nil {
		t.Fatal(err)
	}
	g := res.Model.Graph()
	if len(g.Node) != 2 || g.Node[1].OpType != "Relu" || g.Node[1].Input[0] != "c1" {
		t.Fatalf("graph after remove: %v", g.Node)
	}
	if len(g.Initializer) != 1 {
		t.Fatalf("BN parameters should be pruned, have %d initializers", len(g.Initializer))
	}
	// When the BN writes a graph output, an Identity keeps the output's name.
	res, err = Ablate(gemmBN(), AblateOptions{Mode: ModeRemove})
	if err != nil {
		t.Fatal(err)
	}
	g = res.Model.Graph()
	if len(g.Node) != 2 || g.Node[1].OpType != "Identity" || g.Node[1].Output[0] != "y" || g.Node[1].Name != "bn/identity" {
		t.Fatalf("graph after remove: %v", g.Node)
	}
}

// trainingBN turns the model's BN into a training-mode node with 3 outputs,
// as torch exports it with TrainingMode.TRAINING.
func trainingBN(m *Model) *Model {
	for _, n := range m.Graph().Node {
		if n.OpType == "BatchNormalization" {
			n.Attribute = append(n.Attribute, attrI("training_mode", 1), attrF("momentum", 0.9))
			n.Output = append(n.Output, n.Name+".rm", n.Name+".rv")
		}
	}
	return m
}

func TestFreezeRecordsAndStripsTraining(t *testing.T) {
	in := trainingBN(convBNRelu())
	mustValid(t, in)
	bns, _ := FindBatchNorms(in)
	if !bns[0].TrainingMode || bns[0].Momentum != 0.9 || bns[0].Frozen {
		t.Fatalf("before freeze: %+v", bns[0])
	}
	res, err := Ablate(in, AblateOptions{Mode: ModeFreeze})
	if err != nil {
		t.Fatal(err)
	}
	bn := res.Model.Graph().Node[1]
	if AttrInt(bn, "training_mode", 0) != 0 || len(bn.Output) != 1 {
		t.Fatalf("frozen BN still in training mode: %v", bn)
	}
	var names []string
	v, _ := res.Model.Metadata(MetaFrozenBN)
	if err := json.Unmarshal([]byte(v), &names); err != nil || len(names) != 1 || names[0] != "bn1" {
		t.Fatalf("frozen metadata: %q", v)
	}
	bns, _ = FindBatchNorms(res.Model)
	if !bns[0].Frozen || bns[0].TrainingMode {
		t.Fatalf("after freeze: %+v", bns[0])
	}
	// γ and β stay initializers (trainable).
	if floatsOf(t, res.Model, "bn1.weight") == nil {
		t.Fatal("scale disappeared")
	}
}

func TestStatOutputsInUseRefused(t *testing.T) {
	m := trainingBN(convBNRelu())
	m.Graph().Output = append(m.Graph().Output, vi("bn1.rm", 2))
	mustValid(t, m)
	for _, mode := range []Mode{ModeFold, ModeRemove, ModeGroupNorm, ModeFreeze} {
		if _, err := Ablate(m, AblateOptions{Mode: mode}); err == nil || !strings.Contains(err.Error(), "running-statistics output") {
			t.Fatalf("%s: want refusal, got %v", mode, err)
		}
	}
}

func TestGroupNormStructure(t *testing.T) {
	res, err := Ablate(convBNRelu(), AblateOptions{Mode: ModeGroupNorm, CopyAffine: true})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Model
	if opCount(m, "BatchNormalization") != 0 || opCount(m, "InstanceNormalization") != 1 {
		t.Fatal("groupnorm did not replace BN by InstanceNormalization")
	}
	// gcd(32, 2) = 2 groups of one channel: InstanceNorm, warned about.
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "one channel per group, where GroupNorm is InstanceNorm") {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	if g := floatsOf(t, m, "bn1.gn.weight"); g[0] != 1.5 || g[1] != 0.5 {
		t.Fatalf("copied scale: %v", g)
	}
	if b := floatsOf(t, m, "bn1.gn.bias"); b[0] != 0.1 || b[1] != -0.2 {
		t.Fatalf("copied bias: %v", b)
	}
	// Without --copy-affine: γ = 1, β = 0.
	res, err = Ablate(convBNRelu(), AblateOptions{Mode: ModeGroupNorm, Groups: 1})
	if err != nil {
		t.Fatal(err)
	}
	if g := floatsOf(t, res.Model, "bn1.gn.weight"); g[0] != 1 || g[1] != 1 {
		t.Fatalf("fresh scale: %v", g)
	}
	if len(res.Warnings) != 0 {
		t.Fatalf("one group of 2 channels should not warn: %v", res.Warnings)
	}
	// Rank-2 input with one channel per group normalizes a single value.
	res, err = Ablate(gemmBN(), AblateOptions{Mode: ModeGroupNorm})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "single value") {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	if _, err := Ablate(convBNRelu(), AblateOptions{Mode: ModeGroupNorm, Groups: 3}); err == nil || !strings.Contains(err.Error(), "cannot be split") {
		t.Fatalf("want a groups error, got %v", err)
	}
}

func TestGroupCount(t *testing.T) {
	for c, want := range map[int64]int64{16: 16, 32: 32, 64: 32, 48: 16, 3: 1, 96: 32, 24: 8} {
		if got := GroupCount(c); got != want {
			t.Errorf("gcd(32, %d) = %d want %d", c, got, want)
		}
	}
}

func TestSelectBatchNorms(t *testing.T) {
	bns := []BatchNorm{{Index: 0, Name: "a"}, {Index: 1, Name: "b"}, {Index: 2, Name: "c"}}
	got, err := SelectBatchNorms(bns, []string{"c", "0", "a"})
	if err != nil || len(got) != 2 || got[0].Name != "a" || got[1].Name != "c" {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := SelectBatchNorms(bns, []string{"zz"}); err == nil || !strings.Contains(err.Error(), "0=a") {
		t.Fatalf("unknown layer error should list the layers: %v", err)
	}
	if _, err := SelectBatchNorms(bns, []string{"3"}); err == nil {
		t.Fatal("index out of range accepted")
	}
}

func TestEvalMode(t *testing.T) {
	m := trainingBN(convBNRelu())
	g := m.Graph()
	g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: "train", DataType: TypeBool, RawData: []byte{1}},
		FloatTensor("ratio", nil, []float32{0.5}))
	g.Node = append(g.Node, node("Dropout", "drop", []string{"y", "ratio", "train"}, []string{"z"}))
	g.Output[0].Name = "z"
	mustValid(t, m)
	e, err := EvalMode(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range e.Graph().Node {
		switch n.OpType {
		case "BatchNormalization":
			if AttrInt(n, "training_mode", 0) != 0 || len(n.Output) != 1 {
				t.Fatalf("BN not in inference mode: %v", n)
			}
		case "Dropout":
			if len(n.Input) != 2 {
				t.Fatalf("Dropout keeps its training_mode input: %v", n.Input)
			}
		}
	}
	for _, init := range e.Graph().Initializer {
		if init.Name == "train" {
			t.Fatal("unused training flag kept")
		}
	}
	if bns, _ := FindBatchNorms(e); bns[0].Frozen {
		t.Fatal("EvalMode must not mark BN as frozen")
	}
}

func TestNoBatchNorm(t *testing.T) {
	m := convBNRelu()
	g := m.Graph()
	g.Node = []*onnxpb.NodeProto{g.Node[0], node("Relu", "relu1", []string{"c1"}, []string{"y"})}
	g.Initializer = g.Initializer[:1]
	mustValid(t, m)
	_, err := Ablate(m, AblateOptions{Mode: ModeRemove})
	if err == nil || !strings.Contains(err.Error(), "TrainingMode.PRESERVE") {
		t.Fatalf("want export advice, got %v", err)
	}
}
