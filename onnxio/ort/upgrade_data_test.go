package ort

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Upgrades of real models: torch exports at opsets 9 and 11
// (testdata/models/make_old_opsets.py) and the ONNX project's own test
// models (Debian's libonnx-testdata), whose stored outputs are an
// independent reference.

type oldOpsetRef struct {
	Models map[string]struct {
		EvalLogits  [][]float64 `json:"eval_logits"`
		TrainLogits [][]float64 `json:"train_logits"`
		Opset       int64       `json:"opset"`
	} `json:"models"`
}

func TestUpgradeTorchExports(t *testing.T) {
	requireORT(t)
	b, err := os.ReadFile(filepath.Join(fixtureDir, "old_opsets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref oldOpsetRef
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	inputs := loadFixtureRef(t).Inputs // the same 8 images
	xin := Float32Tensor(inputs.Shape, inputs.Data)
	if len(ref.Models) != 4 {
		t.Fatalf("old_opsets.json has %d models, want 4", len(ref.Models))
	}
	for name, want := range ref.Models {
		t.Run(name, func(t *testing.T) {
			m, err := onnxio.Load(filepath.Join(fixtureDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if m.Opset("") != want.Opset {
				t.Fatalf("opset %d, want %d", m.Opset(""), want.Opset)
			}
			orig := runOutputs(t, m, map[string]*Tensor{"input": xin})
			// ORT runs the file as torch does: batch statistics in a
			// TRAINING export (with Dropout off), running ones otherwise.
			torch := want.EvalLogits
			if want.TrainLogits != nil {
				torch = want.TrainLogits
			}
			if d := relDiff(orig["logits"].Float32, flat(torch)); d > 1e-5 {
				t.Fatalf("original on ORT vs PyTorch: relative difference %.3g", d)
			}
			for _, to := range []int64{13, 17} {
				up, rep, err := onnxio.Upgrade(m, to)
				if err != nil {
					t.Fatalf("to %d: %v", to, err)
				}
				t.Logf("to %d: %s", to, rep)
				compareOutputs(t, orig, runOutputs(t, up, map[string]*Tensor{"input": xin}))
				ev, err := onnxio.EvalMode(up)
				if err != nil {
					t.Fatalf("to %d: EvalMode: %v", to, err)
				}
				if d := relDiff(runOutputs(t, ev, map[string]*Tensor{"input": xin})["logits"].Float32, flat(want.EvalLogits)); d > 1e-5 {
					t.Errorf("to %d: upgraded model in eval mode vs PyTorch eval(): relative difference %.3g", to, d)
				}
			}
		})
	}
}

// onnxTestData is where Debian's libonnx-testdata puts the ONNX test models.
const onnxTestData = "/usr/share/libonnx-testdata/data"

// readTensorFile reads a TensorProto file of the ONNX test data as a
// Tensor; ok is false for element types Tensor cannot hold.
func readTensorFile(path string) (*Tensor, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	tp := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(b, tp); err != nil {
		return nil, false, fmt.Errorf("%s: %v", path, err)
	}
	shape := slices.Clone(tp.GetDims())
	if n, err := onnxio.NumElements(shape); err != nil || n > 1<<24 {
		return nil, false, nil // not a tensor (a sequence, a map) or not one to read here
	}
	var m onnxio.Model
	switch tp.GetDataType() {
	case onnxio.TypeFloat:
		v, err := m.Floats(tp)
		return Float32Tensor(shape, v), err == nil, err
	case onnxio.TypeInt64:
		v, err := m.Int64s(tp)
		return Int64Tensor(shape, v), err == nil, err
	case onnxio.TypeBool:
		raw := tp.GetRawData()
		v := make([]bool, len(raw))
		for i, c := range raw {
			v[i] = c != 0
		}
		if raw == nil {
			v = make([]bool, len(tp.GetInt32Data()))
			for i, c := range tp.GetInt32Data() {
				v[i] = c != 0
			}
		}
		return BoolTensor(shape, v), true, nil
	}
	return nil, false, nil
}

// testDataCase is one model of the ONNX test data with its first data set.
type testDataCase struct {
	dir     string
	inputs  map[string]*Tensor
	outputs map[string]*Tensor
}

// loadTestDataCase reads a model's first data set, matching the files
// input_k.pb and output_k.pb to the graph's data inputs and outputs in order.
func loadTestDataCase(dir string, m *onnxio.Model) (*testDataCase, bool, error) {
	ix, err := onnxio.NewIndex(m)
	if err != nil {
		return nil, false, err
	}
	c := &testDataCase{dir: dir, inputs: map[string]*Tensor{}, outputs: map[string]*Tensor{}}
	var ins []string
	for _, in := range m.Graph().GetInput() {
		if ix.Inputs[in.GetName()] != nil {
			ins = append(ins, in.GetName())
		}
	}
	for kind, names := range map[string][]string{"input": ins} {
		for k, name := range names {
			tt, ok, err := readTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("%s_%d.pb", kind, k)))
			if err != nil || !ok {
				return nil, false, err
			}
			c.inputs[name] = tt
		}
	}
	for k, o := range m.Graph().GetOutput() {
		tt, ok, err := readTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("output_%d.pb", k)))
		if err != nil || !ok {
			return nil, false, err
		}
		c.outputs[o.GetName()] = tt
	}
	return c, true, nil
}

// matches compares outputs with the ONNX backend tests' default tolerance
// (|got − want| ≤ 1e-7 + 1e-3·|want| elementwise); it returns "" or why not.
func matches(want, got map[string]*Tensor) string {
	for name, w := range want {
		g := got[name]
		switch {
		case g == nil:
			return "no output " + name
		case !slices.Equal(w.Shape, g.Shape):
			return fmt.Sprintf("output %s has shape %v, want %v", name, g.Shape, w.Shape)
		case w.Float32 != nil:
			if g.Float32 == nil {
				return "output " + name + " is not float"
			}
			for i, a := range w.Float32 {
				b := g.Float32[i]
				if math.IsNaN(float64(a)) && math.IsNaN(float64(b)) {
					continue
				}
				if !(math.Abs(float64(a)-float64(b)) <= 1e-7+1e-3*math.Abs(float64(a))) {
					return fmt.Sprintf("output %s[%d] = %g, want %g", name, i, b, a)
				}
			}
		case w.Int64 != nil:
			if !slices.Equal(w.Int64, g.Int64) {
				return "output " + name + " differs"
			}
		case w.Bool != nil:
			if !slices.Equal(w.Bool, g.Bool) {
				return "output " + name + " differs"
			}
		}
	}
	return ""
}

// tryRun runs a model and returns its outputs or the error.
func tryRun(m *onnxio.Model, in map[string]*Tensor) (map[string]*Tensor, error) {
	b, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	s, err := NewSessionAuto(b, SessionOptions{Threads: 1})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(in)
}

// TestUpgradeONNXTestData upgrades every test model of opset 12 or older to
// opset 13 and runs it on ONNX Runtime with the inputs stored with it.
// Where ORT runs the original, the upgrade must run and give the same
// outputs; where ORT cannot (opset 6, and old ops ORT no longer has), the
// upgrade must match the outputs stored with the model whenever ORT runs
// it.
func TestUpgradeONNXTestData(t *testing.T) {
	requireORT(t)
	files, _ := filepath.Glob(filepath.Join(onnxTestData, "*", "*", "model.onnx"))
	if len(files) == 0 {
		t.Skip("libonnx-testdata not installed (apt-get install libonnx-testdata)")
	}
	counts := map[string]int{}
	refusals := map[string]int{}
	for _, f := range files {
		dir := filepath.Dir(f)
		label := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		m, err := onnxio.Load(f)
		if err != nil {
			t.Errorf("%s: %v", label, err)
			continue
		}
		if op := m.Opset(""); op >= 13 || op == 0 {
			continue
		}
		counts["old"]++
		up, _, err := onnxio.Upgrade(m, 13)
		if err != nil {
			counts["refused"]++
			refusals[refusalKey(err.Error())]++
			continue
		}
		counts["upgraded"]++
		c, ok, err := loadTestDataCase(dir, m)
		if err != nil {
			t.Errorf("%s: %v", label, err)
			continue
		}
		if !ok {
			counts["types Tensor cannot hold"]++
			continue
		}
		origOut, origErr := tryRun(m, c.inputs)
		upOut, upErr := tryRun(up, c.inputs)
		switch {
		case origErr == nil && upErr != nil:
			t.Errorf("%s: ORT runs the original but not the upgrade: %v", label, upErr)
		case origErr == nil:
			if why := matches(origOut, upOut); why != "" {
				t.Errorf("%s: the upgrade's outputs differ from the original's on ORT: %s", label, why)
				continue
			}
			counts["equal to the original on ORT"]++
			if matches(c.outputs, upOut) == "" {
				counts["equal to the original, and both match the stored outputs"]++
			}
		case upErr != nil:
			counts["ORT runs neither"]++
			t.Logf("%s: ORT runs neither the original (%v) nor the upgrade (%v)", label, origErr, upErr)
		default:
			if why := matches(c.outputs, upOut); why != "" {
				t.Errorf("%s: ORT cannot run the original (%v); the upgrade runs but does not match the stored outputs: %s", label, origErr, why)
				continue
			}
			counts["matching the stored outputs where ORT cannot run the original"]++
		}
	}
	keys := make([]string, 0, len(refusals))
	for k := range refusals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("refused ×%d: %s", refusals[k], k)
	}
	t.Logf("libonnx-testdata models below opset 13: %v", counts)
	if counts["equal to the original on ORT"] == 0 || counts["matching the stored outputs where ORT cannot run the original"] == 0 {
		t.Error("no upgraded test model was checked against a reference")
	}
}

// refusalKey shortens a refusal to what it says about the op.
func refusalKey(msg string) string {
	if i := strings.Index(msg, "cannot upgrade op "); i >= 0 {
		msg = msg[i:]
	} else if i := strings.Index(msg, " has opset "); i >= 0 {
		msg = "opset" + msg[i+len(" has opset"):]
	}
	if i := strings.Index(msg, "; re-export"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
