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

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
)

// TestProfile prints where a training step of BNAUDIT_PROFILE_MODEL (a file
// in testdata/models) spends its time, by op type and by node, from ONNX
// Runtime's profiler (which inflates small ops; compare totals with the
// benchmarks, not with this), on BNAUDIT_PROFILE_THREADS threads (default 2).
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
	threads := 2
	if v, err := strconv.Atoi(os.Getenv("BNAUDIT_PROFILE_THREADS")); err == nil && v > 0 {
		threads = v
	}
	raw, err := trainer.SessionModel(g, ort.SessionOptions{Threads: threads}).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := ort.SessionOptions{Threads: threads, ProfilePrefix: filepath.Join(dir, "prof")}
	if strings.Contains(string(raw), "bnaudit.dnnl") { // the oneDNN custom ops, as the trainer registers them
		opts.CustomOpsLibrary, _ = ort.ResolveDNNL(os.Getenv(ort.DNNLEnv))
	}
	s, err := ort.NewSessionAuto(raw, opts)
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := onnxio.NewIndex(m)
	vals := map[string]*ort.Tensor{}
	for _, x := range s.Inputs() {
		switch x.Name {
		case "input":
			vals[x.Name] = ort.Float32Tensor([]int64{128, 1, 28, 28}, make([]float32, 128*784))
		case "labels":
			vals[x.Name] = ort.Int64Tensor([]int64{128}, make([]int64, 128))
		case "lr", "step":
			vals[x.Name] = ort.Float32Tensor([]int64{}, []float32{0.01})
		default:
			init := ix.Initializers[strings.TrimSuffix(x.Name, ".m")]
			fl, _ := m.Floats(init)
			vals[x.Name] = ort.Float32Tensor(init.GetDims(), fl)
		}
	}
	for i := 0; i < 6; i++ {
		if _, err := s.Run(vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
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
