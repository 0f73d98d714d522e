package orttune

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	onnxruntime "github.com/yalue/onnxruntime_go"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
)

// TestProfile prints where a training step of BNAUDIT_PROFILE_MODEL (a file
// in testdata/models) spends its time, by op type and by node, from ONNX
// Runtime's profiler (which inflates small ops; compare totals with the
// benchmarks, not with this).
func TestProfile(t *testing.T) {
	name := os.Getenv("BNAUDIT_PROFILE_MODEL")
	if name == "" {
		t.Skip("set BNAUDIT_PROFILE_MODEL to a model in testdata/models")
	}
	requireORT(t)
	m, err := onnxio.Load("../../testdata/models/" + name)
	if err != nil {
		t.Fatal(err)
	}
	g, err := trainer.BuildStep(m, trainer.StepConfig{Batch: 128, Optimizer: trainer.SGD(0.9, 5e-4, false)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := trainer.SessionModel(g, ort.SessionOptions{Threads: 2}).Bytes()
	dir := t.TempDir()
	so, _ := onnxruntime.NewSessionOptions()
	so.SetIntraOpNumThreads(2)
	so.SetInterOpNumThreads(1)
	so.EnableProfiling(filepath.Join(dir, "prof"))
	ins, outs, _ := onnxruntime.GetInputOutputInfoWithONNXData(raw)
	var in, on []string
	for _, x := range ins {
		in = append(in, x.Name)
	}
	for _, x := range outs {
		on = append(on, x.Name)
	}
	s, err := onnxruntime.NewDynamicAdvancedSessionWithONNXData(raw, in, on, so)
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := onnxio.NewIndex(m)
	vals := []onnxruntime.Value{}
	for _, x := range ins {
		var v onnxruntime.Value
		switch x.Name {
		case "input":
			v, _ = onnxruntime.NewTensor(onnxruntime.NewShape(128, 1, 28, 28), make([]float32, 128*784))
		case "labels":
			v, _ = onnxruntime.NewTensor(onnxruntime.NewShape(128), make([]int64, 128))
		case "lr", "step":
			v, _ = onnxruntime.NewScalar(float32(0.01))
		default:
			name := strings.TrimSuffix(x.Name, ".m")
			fl, _ := m.Floats(ix.Initializers[name])
			v, _ = onnxruntime.NewTensor(onnxruntime.NewShape(ix.Initializers[name].Dims...), fl)
		}
		vals = append(vals, v)
	}
	for i := 0; i < 6; i++ {
		o := make([]onnxruntime.Value, len(on))
		for k, n := range on {
			if n == "loss" || n == "step.next" {
				o[k], _ = onnxruntime.NewEmptyScalar[float32]()
			}
		}
		if err := s.Run(vals, o); err != nil {
			t.Fatal(err)
		}
	}
	s.Destroy()
	files, _ := filepath.Glob(filepath.Join(dir, "prof*.json"))
	b, _ := os.ReadFile(files[0])
	var ev []struct {
		Cat  string         `json:"cat"`
		Name string         `json:"name"`
		Dur  float64        `json:"dur"`
		Args map[string]any `json:"args"`
	}
	json.Unmarshal(b, &ev)
	byOp := map[string]float64{}
	byNode := map[string]float64{}
	total := 0.0
	for _, e := range ev {
		if e.Cat != "Node" || !strings.HasSuffix(e.Name, "_kernel_time") {
			continue
		}
		op, _ := e.Args["op_name"].(string)
		byOp[op] += e.Dur / 6000
		byNode[strings.TrimSuffix(e.Name, "_kernel_time")+" "+op] += e.Dur / 6000
		total += e.Dur / 6000
	}
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range byOp {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	fmt.Printf("total %.1f ms per step\n", total)
	for _, x := range l[:min(15, len(l))] {
		fmt.Printf("%-25s %7.2f ms\n", x.k, x.v)
	}
	l = l[:0]
	for k, v := range byNode {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	for _, x := range l[:min(nodesShown(), len(l))] {
		fmt.Printf("%-90s %7.2f ms\n", x.k, x.v)
	}
}

// nodesShown is how many of the slowest nodes TestProfile lists
// (BNAUDIT_PROFILE_NODES, default 25).
func nodesShown() int {
	if v, err := strconv.Atoi(os.Getenv("BNAUDIT_PROFILE_NODES")); err == nil && v > 0 {
		return v
	}
	return 25
}
