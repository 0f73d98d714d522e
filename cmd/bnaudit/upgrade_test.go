package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Models of opsets 9 and 11 (testdata/models/make_old_opsets.py) go
// through the commands that train: they are upgraded, said once, and the
// upgraded graphs compute what ORT computes for the original.

// mnistInputs is the first n committed MNIST images, normalized as the
// fixtures were.
func mnistInputs(t *testing.T, n int) *ort.Tensor {
	t.Helper()
	img, err := dataset.ReadIDX("../../testdata/mnist/t10k-64-images-idx3-ubyte.gz")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, n*784)
	for i := range x {
		x[i] = float32((float64(img.Data[i])/255 - 0.2860) / 0.3530)
	}
	return ort.Float32Tensor([]int64{int64(n), 1, 28, 28}, x)
}

func runModel(t *testing.T, m *onnxio.Model, in map[string]*ort.Tensor) map[string]*ort.Tensor {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ort.RunOnce(b, in, ort.SessionOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTrainExportOldOpsets: train export of the opset-9 and opset-11
// exports succeeds, says it upgraded, and its evaluation graph, fed the
// written state, gives the logits ORT computes for the original model in
// inference mode.
func TestTrainExportOldOpsets(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	x := mnistInputs(t, 8)
	for _, c := range []struct {
		file  string
		opset int64
	}{{"old_cnn.op9.training.onnx", 9}, {"old_cnn.op11.training.onnx", 11}} {
		t.Run(c.file, func(t *testing.T) {
			out := filepath.Join(dir, strings.TrimSuffix(c.file, ".onnx")+".step.onnx")
			code, stdout, stderr := bnaudit(t, "train", "export", filepath.Join(models, c.file), "-o", out, "--batch", "8", "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var r exportResult
			if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.UpgradedFrom != c.opset || len(r.Masks) != 1 {
				t.Fatalf("%v %+v; want upgraded_from_opset %d and one dropout mask", err, r, c.opset)
			}
			code, stdout, _ = bnaudit(t, "train", "export", filepath.Join(models, c.file), "-o", out, "--batch", "8")
			if code != 0 || strings.Count(stdout, "upgraded from opset") != 1 {
				t.Fatalf("exit %d; want the upgrade said once:\n%s", code, stdout)
			}
			orig, err := onnxio.Load(filepath.Join(models, c.file))
			if err != nil {
				t.Fatal(err)
			}
			origEval, err := onnxio.EvalMode(orig)
			if err != nil {
				t.Fatal(err)
			}
			want := runModel(t, origEval, map[string]*ort.Tensor{"input": x})["logits"].Float32
			state, err := onnxio.Load(r.State)
			if err != nil {
				t.Fatal(err)
			}
			if state.Opset("") != 17 {
				t.Fatalf("state of opset %d, want the upgraded model (17)", state.Opset(""))
			}
			eval, err := onnxio.Load(r.Eval)
			if err != nil {
				t.Fatal(err)
			}
			in := map[string]*ort.Tensor{"input": x, "labels": ort.Int64Tensor([]int64{8}, make([]int64, 8))}
			ix, err := onnxio.NewIndex(state)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range append(append([]string{}, r.Params...), r.Stats...) {
				v, err := state.Floats(ix.Initializers[p])
				if err != nil {
					t.Fatal(err)
				}
				in[p] = ort.Float32Tensor(ix.Initializers[p].GetDims(), v)
			}
			got := runModel(t, eval, in)["logits"].Float32
			worst, scale := 0.0, 0.0
			for i, w := range want {
				worst = math.Max(worst, math.Abs(float64(got[i])-float64(w)))
				scale = math.Max(scale, math.Abs(float64(w)))
			}
			if worst > 1e-5*scale {
				t.Fatalf("exported evaluation graph vs the original on ORT: max |diff| %.3g at scale %.3g", worst, scale)
			}
		})
	}
}

// TestOldOpsetCommands: ablate, train and audit with reference models take
// an opset-9 export; train and audit say once that they work on an
// upgraded copy.
func TestOldOpsetCommands(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	op9 := filepath.Join(models, "old_cnn.op9.training.onnx")
	code, stdout, stderr := bnaudit(t, "--threads", "2", "ablate", op9, "--mode", "fold", "-o", filepath.Join(dir, "fold.onnx"), "--verify",
		"--verify-data", "../../testdata/mnist/t10k-64-images-idx3-ubyte.gz", "--verify-batch", "16", "--json")
	var ab ablateResult
	if err := json.Unmarshal([]byte(stdout), &ab); code != 0 || err != nil || ab.Verify == nil || !ab.Verify.Passed || len(ab.Layers) != 2 {
		t.Fatalf("ablate fold --verify: exit %d, %v, %+v: %s", code, err, ab, stderr)
	}

	out := filepath.Join(dir, "trained.onnx")
	code, _, stderr = bnaudit(t, "--threads", "2", "train", op9, "--data", "../../testdata/fashion-mnist", "--max-samples", "64",
		"--epochs", "1", "--batch", "32", "--lr", "0.01", "-o", out, "--quiet")
	if code != 0 || strings.Count(stderr, "has opset 9; bnaudit builds its training and evaluation graphs from a copy") != 1 {
		t.Fatalf("train: exit %d; want the upgrade said once on stderr:\n%s", code, stderr)
	}
	log, err := os.ReadFile(strings.TrimSuffix(out, ".onnx") + ".jsonl")
	if err != nil || strings.Count(string(log), `"opset_upgrade"`) != 1 {
		t.Fatalf("train log (%v) should say once that the model was upgraded:\n%s", err, log)
	}
	if m, err := onnxio.Load(out); err != nil || m.Opset("") != 17 {
		t.Fatalf("trained model: %v", err)
	}

	rep := filepath.Join(dir, "audit")
	code, _, stderr = bnaudit(t, "--threads", "2", "audit", filepath.Join(models, "old_cnn.op9.preserve.onnx"), "--members", fmnist, "--nonmembers", fmnist,
		"--max-samples", "60", "--norm", "0.2860/0.3530", "--ref-models", "2", "--ref-epochs", "1", "--bootstrap", "10", "--no-cache", "-o", rep)
	if code != 0 || strings.Count(stderr, "has opset 9") != 1 {
		t.Fatalf("audit --ref-models: exit %d; want the upgrade said once on stderr:\n%s", code, stderr)
	}
	f, err := os.Open(filepath.Join(rep, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(r.Notes, "\n"), "has opset 9"); n != 1 {
		t.Fatalf("the report's notes mention the upgrade %d times, want once: %q", n, r.Notes)
	}
}
