// Package contracttest runs bnaudit's training-step graph the way another
// program would: with onnxruntime_go alone (not bnaudit's ONNX Runtime
// wrapper), addressing inputs and outputs only by the names the README's
// training-step contract documents. It lives in its own package so that its
// test binary initializes ONNX Runtime by itself.
package contracttest

import (
	"os"
	"path/filepath"
	"testing"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func library(t *testing.T) string {
	p := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "bnaudit", "onnxruntime-1.30.0", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("BNAUDIT_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime library not found at %s", p)
		}
		t.Skipf("needs the ONNX Runtime library (scripts/install-ort.sh or ONNXRUNTIME_SHARED_LIBRARY_PATH)")
	}
	return p
}

func TestStepGraphRunsWithPlainOnnxruntimeGo(t *testing.T) {
	onnxruntime.SetSharedLibraryPath(library(t))
	if err := onnxruntime.InitializeEnvironment(); err != nil {
		t.Fatal(err)
	}
	defer onnxruntime.DestroyEnvironment()

	// bnaudit's part: export the step graph (what `bnaudit train export` writes).
	const batch = 16
	src, err := onnxio.Load("../../../testdata/models/small_resnet.training.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, err := trainer.BuildStep(src, trainer.StepConfig{Batch: batch, Optimizer: trainer.SGD(0.9, 5e-4, false)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stepPath := filepath.Join(dir, "step.onnx")
	if err := g.Model.Save(stepPath); err != nil {
		t.Fatal(err)
	}

	// The other program's part: documented names only.
	state := map[string][]float32{}
	shapes := map[string][]int64{}
	for _, init := range src.Graph().GetInitializer() {
		v, err := src.Floats(init)
		if err != nil {
			continue
		}
		state[init.GetName()] = v
		shapes[init.GetName()] = init.GetDims()
	}
	// The step's inputs and outputs, as the file declares them.
	raw, err := os.ReadFile(stepPath)
	if err != nil {
		t.Fatal(err)
	}
	inInfo, outInfo, err := onnxruntime.GetInputOutputInfoWithONNXData(raw)
	if err != nil {
		t.Fatal(err)
	}
	var inputNames, outputNames []string
	for _, in := range inInfo {
		inputNames = append(inputNames, in.Name)
		if hasSuffix(in.Name, ".m") { // momentum buffers start at zero
			state[in.Name] = make([]float32, len(state[in.Name[:len(in.Name)-2]]))
			shapes[in.Name] = shapes[in.Name[:len(in.Name)-2]]
		}
	}
	for _, o := range outInfo {
		outputNames = append(outputNames, o.Name)
	}
	for _, want := range []string{"loss", "loss_per_sample", "logits", "step.next", "conv1.weight.next", "conv1.weight.m.next", "bn1.running_mean.next"} {
		if !containsStr(outputNames, want) {
			t.Fatalf("the step graph has no output %q (outputs %v)", want, outputNames)
		}
	}
	sess, err := onnxruntime.NewDynamicAdvancedSessionWithONNXData(raw, inputNames, outputNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Destroy()

	img, _ := dataset.ReadIDX("../../../testdata/mnist/t10k-64-images-idx3-ubyte.gz")
	lab, _ := dataset.ReadIDX("../../../testdata/mnist/t10k-64-labels-idx1-ubyte.gz")
	x := make([]float32, batch*784)
	for i := range x {
		x[i] = (float32(img.Data[i])/255 - 0.286) / 0.353
	}
	y := make([]int64, batch)
	for i := range y {
		y[i] = int64(lab.Data[i])
	}
	var losses []float32
	step := float32(0)
	for it := 0; it < 5; it++ {
		var ins []onnxruntime.Value
		for _, name := range inputNames {
			var v onnxruntime.Value
			var err error
			switch name {
			case "input":
				v, err = onnxruntime.NewTensor(onnxruntime.NewShape(batch, 1, 28, 28), x)
			case "labels":
				v, err = onnxruntime.NewTensor(onnxruntime.NewShape(batch), y)
			case "lr":
				v, err = onnxruntime.NewScalar(float32(0.05))
			case "step":
				v, err = onnxruntime.NewScalar(step)
			default:
				v, err = onnxruntime.NewTensor(onnxruntime.NewShape(shapes[name]...), state[name])
			}
			if err != nil {
				t.Fatal(err)
			}
			ins = append(ins, v)
		}
		outs := make([]onnxruntime.Value, len(outputNames))
		for k, name := range outputNames {
			if name == "loss" || name == "step.next" {
				s, err := onnxruntime.NewEmptyScalar[float32]()
				if err != nil {
					t.Fatal(err)
				}
				outs[k] = s
			}
		}
		if err := sess.Run(ins, outs); err != nil {
			t.Fatal(err)
		}
		for k, name := range outputNames {
			switch {
			case name == "loss":
				losses = append(losses, outs[k].(*onnxruntime.Scalar[float32]).GetData())
			case name == "step.next":
				step = outs[k].(*onnxruntime.Scalar[float32]).GetData()
			case hasSuffix(name, ".next"):
				// feed P.next back as P, P.m.next as P.m, S.next as S
				state[name[:len(name)-5]] = append([]float32(nil), outs[k].(*onnxruntime.Tensor[float32]).GetData()...)
			}
			outs[k].Destroy()
		}
		for _, v := range ins {
			v.Destroy()
		}
	}
	if step != 5 {
		t.Fatalf("step.next after 5 steps = %v", step)
	}
	// Five SGD steps on one batch must fit it better.
	if !(losses[4] < losses[0]) {
		t.Fatalf("loss did not decrease: %v", losses)
	}
	t.Logf("losses over 5 steps on one batch: %v", losses)
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
