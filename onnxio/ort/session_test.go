package ort

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// addModel: z = x + y, all float32 with the given declared shape.
func addModel(shape []dim) []byte {
	return graph{
		nodes:   []node{{op: "Add", inputs: []string{"x", "y"}, outputs: []string{"z"}}},
		inputs:  []valueInfo{{name: "x", elemType: onnxFloat, shape: shape}, {name: "y", elemType: onnxFloat, shape: shape}},
		outputs: []valueInfo{{name: "z", elemType: onnxFloat, shape: shape}},
	}.encode()
}

func newAuto(t *testing.T, model []byte, opts SessionOptions) *Session {
	t.Helper()
	s, err := NewSessionAuto(model, opts)
	if err != nil {
		t.Fatalf("NewSessionAuto: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func run(t *testing.T, s *Session, inputs map[string]*Tensor) map[string]*Tensor {
	t.Helper()
	out, err := s.Run(inputs)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}

func checkTensor(t *testing.T, name string, got, want *Tensor) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: missing", name)
	}
	if !slices.Equal(got.Shape, want.Shape) || got.Type() != want.Type() ||
		!slices.Equal(got.Float32, want.Float32) || !slices.Equal(got.Int64, want.Int64) || !slices.Equal(got.Bool, want.Bool) {
		t.Errorf("%s:\nwant %+v\ngot  %+v", name, *want, *got)
	}
}

func TestVersionAndLibrary(t *testing.T) {
	requireORT(t)
	if Version() == "" || LibraryPath() == "" {
		t.Fatalf("want a version and a path, got %q and %q", Version(), LibraryPath())
	}
	t.Logf("ONNX Runtime %s from %s", Version(), LibraryPath())
	if err := Init(""); err != nil {
		t.Errorf("second Init: %v", err)
	}
	if err := Init(LibraryPath()); err != nil {
		t.Errorf("Init with the loaded path: %v", err)
	}
	other := fakeLib(t, t.TempDir()+"/libonnxruntime.so")
	if err := Init(other); err == nil || !strings.Contains(err.Error(), "already initialized") {
		t.Errorf("Init with another library: want an 'already initialized' error, got %v", err)
	}
	if ort.InitializeEnvironment() == nil {
		t.Error("onnxruntime_go accepted a second InitializeEnvironment")
	}
}

func TestAdd(t *testing.T) {
	requireORT(t)
	s := newAuto(t, addModel(dims(2, 3)), SessionOptions{})
	wantIO := []IOInfo{{Name: "x", Type: TypeFloat32, Shape: []int64{2, 3}, ShapeKnown: true}, {Name: "y", Type: TypeFloat32, Shape: []int64{2, 3}, ShapeKnown: true}}
	for i, got := range s.Inputs() {
		if got.String() != wantIO[i].String() {
			t.Errorf("input %d: want %v, got %v", i, wantIO[i], got)
		}
	}
	if outs := s.Outputs(); len(outs) != 1 || outs[0].String() != "z float32 [2 3]" {
		t.Errorf("outputs: want [z float32 [2 3]], got %v", outs)
	}
	out := run(t, s, map[string]*Tensor{
		"x": Float32Tensor([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		"y": Float32Tensor([]int64{2, 3}, []float32{0.5, -2, 10, 0, -4.25, 100}),
	})
	checkTensor(t, "z", out["z"], Float32Tensor([]int64{2, 3}, []float32{1.5, 0, 13, 4, 0.75, 106}))
}

func TestSymbolicDimensions(t *testing.T) {
	requireORT(t)
	s := newAuto(t, addModel([]dim{sym("N"), d(2)}), SessionOptions{})
	if got := s.Inputs()[0].Shape; !slices.Equal(got, []int64{-1, 2}) {
		t.Errorf("symbolic dimension: want [-1 2], got %v", got)
	}
	for _, n := range []int64{1, 3, 0} {
		x := make([]float32, 2*n)
		y := make([]float32, 2*n)
		want := make([]float32, 2*n)
		for i := range x {
			x[i], y[i] = float32(i), float32(10*i)
			want[i] = float32(11 * i)
		}
		out := run(t, s, map[string]*Tensor{"x": Float32Tensor([]int64{n, 2}, x), "y": Float32Tensor([]int64{n, 2}, y)})
		checkTensor(t, "z (N="+strconv.Itoa(int(n))+")", out["z"], Float32Tensor([]int64{n, 2}, want))
	}
}

// ReduceSum over all axes with keepdims=0 gives a 0-d output, which
// onnxruntime_go cannot wrap when ORT allocates it; a 0-d input scales it.
func TestScalarInputAndOutput(t *testing.T) {
	requireORT(t)
	model := graph{
		nodes: []node{
			{op: "ReduceSum", inputs: []string{"x"}, outputs: []string{"sum"}, attrs: []attr{{"keepdims", 0}}},
			{op: "Mul", inputs: []string{"sum", "k"}, outputs: []string{"scaled"}},
		},
		inputs:  []valueInfo{{name: "x", elemType: onnxFloat, shape: dims(2, 2)}, {name: "k", elemType: onnxFloat, shape: []dim{}}},
		outputs: []valueInfo{{name: "scaled", elemType: onnxFloat, shape: []dim{}}, {name: "sum", elemType: onnxFloat, shape: []dim{}}},
	}.encode()
	s := newAuto(t, model, SessionOptions{})
	for _, io := range append(s.Inputs()[1:], s.Outputs()...) {
		if !io.ShapeKnown || len(io.Shape) != 0 {
			t.Errorf("%s: want a known 0-d shape, got %v", io.Name, io)
		}
	}
	out := run(t, s, map[string]*Tensor{
		"x": Float32Tensor([]int64{2, 2}, []float32{1, 2, 3, 4.5}),
		"k": Float32Tensor(nil, []float32{-2}),
	})
	checkTensor(t, "sum", out["sum"], Float32Tensor([]int64{}, []float32{10.5}))
	checkTensor(t, "scaled", out["scaled"], Float32Tensor([]int64{}, []float32{-21}))
}

// ORT reports a value without a declared shape like a 0-d one. An
// undeclared input must accept any rank; an undeclared non-scalar output
// must come back whole; an undeclared 0-d output gives an error naming the
// fix rather than a panic.
func TestUndeclaredShapes(t *testing.T) {
	requireORT(t)
	model := graph{
		nodes: []node{
			{op: "Neg", inputs: []string{"x"}, outputs: []string{"neg"}},
			{op: "ReduceSum", inputs: []string{"x"}, outputs: []string{"sum"}, attrs: []attr{{"keepdims", 0}}},
		},
		inputs:  []valueInfo{{name: "x", elemType: onnxFloat, noShape: true}},
		outputs: []valueInfo{{name: "neg", elemType: onnxFloat, noShape: true}, {name: "sum", elemType: onnxFloat, noShape: true}},
	}.encode()
	ins, outs, err := ModelInfo(model)
	if err != nil {
		t.Fatal(err)
	}
	for _, io := range append(ins, outs...) {
		if io.ShapeKnown || len(io.Shape) != 0 {
			t.Errorf("%s: want an unknown shape, got %v", io.Name, io)
		}
	}
	x := Float32Tensor([]int64{3}, []float32{1, 2, 3.5})

	neg, err := NewSession(model, []string{"x"}, []string{"neg"}, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer neg.Close()
	out := run(t, neg, map[string]*Tensor{"x": x})
	checkTensor(t, "neg", out["neg"], Float32Tensor([]int64{3}, []float32{-1, -2, -3.5}))

	sum, err := NewSession(model, []string{"x"}, []string{"sum"}, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sum.Close()
	_, err = sum.Run(map[string]*Tensor{"x": x})
	if err == nil || !strings.Contains(err.Error(), "declare it with an empty shape") {
		t.Errorf("undeclared 0-d output: want an error explaining the fix, got %v", err)
	}
}

func TestArgMaxInt64(t *testing.T) {
	requireORT(t)
	model := graph{
		nodes:   []node{{op: "ArgMax", inputs: []string{"x"}, outputs: []string{"idx"}, attrs: []attr{{"axis", 1}, {"keepdims", 0}}}},
		inputs:  []valueInfo{{name: "x", elemType: onnxFloat, shape: dims(3, 4)}},
		outputs: []valueInfo{{name: "idx", elemType: onnxInt64, shape: dims(3)}},
	}.encode()
	s := newAuto(t, model, SessionOptions{})
	out := run(t, s, map[string]*Tensor{"x": Float32Tensor([]int64{3, 4}, []float32{
		0, 5, 1, 2,
		-1, -3, -0.5, -2,
		7, 7, 1, 8.5,
	})})
	checkTensor(t, "idx", out["idx"], Int64Tensor([]int64{3}, []int64{1, 2, 3}))
}

// Bool and int64 inputs, a bool output, and an int64 initializer.
func TestBoolAndInt64(t *testing.T) {
	requireORT(t)
	model := graph{
		nodes: []node{
			{op: "Greater", inputs: []string{"n", "limit"}, outputs: []string{"big"}},
			{op: "Xor", inputs: []string{"big", "flip"}, outputs: []string{"out"}},
		},
		initializers: []initializer{{name: "limit", dims: []int64{}, int64: []int64{10}}},
		inputs:       []valueInfo{{name: "n", elemType: onnxInt64, shape: dims(4)}, {name: "flip", elemType: onnxBool, shape: dims(4)}},
		outputs:      []valueInfo{{name: "out", elemType: onnxBool, shape: dims(4)}, {name: "big", elemType: onnxBool, shape: dims(4)}},
	}.encode()
	s := newAuto(t, model, SessionOptions{})
	if len(s.Inputs()) != 2 {
		t.Errorf("the initializer must not be an input: %v", s.Inputs())
	}
	out := run(t, s, map[string]*Tensor{
		"n":    Int64Tensor([]int64{4}, []int64{3, 11, 10, 1 << 40}),
		"flip": BoolTensor([]int64{4}, []bool{false, false, true, true}),
	})
	checkTensor(t, "big", out["big"], BoolTensor([]int64{4}, []bool{false, true, false, true}))
	checkTensor(t, "out", out["out"], BoolTensor([]int64{4}, []bool{false, true, true, false}))
}

func TestModelWithoutInputs(t *testing.T) {
	requireORT(t)
	model := graph{
		nodes:        []node{{op: "Identity", inputs: []string{"w"}, outputs: []string{"out"}}},
		initializers: []initializer{{name: "w", dims: []int64{2}, f32: []float32{1, 2}}},
		outputs:      []valueInfo{{name: "out", elemType: onnxFloat, shape: dims(2)}},
	}.encode()
	ins, outs, err := ModelInfo(model)
	if err != nil || len(ins) != 0 || len(outs) != 1 {
		t.Fatalf("ModelInfo: want 0 inputs and 1 output, got %v, %v, %v", ins, outs, err)
	}
	s, err := NewSessionAuto(model, SessionOptions{})
	if err == nil {
		s.Close()
		t.Fatal("want an error for a model without inputs")
	}
	if !strings.Contains(err.Error(), "no graph inputs") {
		t.Errorf("want an error about graph inputs, got %v", err)
	}
	if _, err := NewSession(model, nil, []string{"out"}, SessionOptions{}); err == nil {
		t.Error("NewSession: want an error for a model without inputs")
	}
}

func TestRunRejectsBadInputs(t *testing.T) {
	requireORT(t)
	s := newAuto(t, addModel(dims(2, 3)), SessionOptions{})
	good := Float32Tensor([]int64{2, 3}, make([]float32, 6))
	tests := []struct {
		name    string
		x       *Tensor
		extra   map[string]*Tensor
		wantErr []string
	}{
		{"wrong shape", Float32Tensor([]int64{3, 2}, make([]float32, 6)), nil, []string{`input "x"`, "[2 3]", "[3 2]"}},
		{"wrong rank", Float32Tensor([]int64{6}, make([]float32, 6)), nil, []string{`input "x"`, "rank 2"}},
		{"wrong type", Int64Tensor([]int64{2, 3}, make([]int64, 6)), nil, []string{`input "x"`, "wants float32, got int64"}},
		{"short data", Float32Tensor([]int64{2, 3}, make([]float32, 5)), nil, []string{`input "x"`, "needs 6 elements"}},
		{"no data", &Tensor{Shape: []int64{2, 3}}, nil, []string{`input "x"`, "no data"}},
		{"nil tensor", nil, nil, []string{`input "x"`, "nil"}},
		{"missing input", nil, map[string]*Tensor{"y": good}, []string{`missing input "x"`}},
		{"unknown input", good, map[string]*Tensor{"y": good, "w": good}, []string{`unknown input "w"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inputs := map[string]*Tensor{"x": tc.x, "y": good}
			if tc.extra != nil {
				inputs = tc.extra
				if tc.x != nil {
					inputs["x"] = tc.x
				}
			}
			_, err := s.Run(inputs)
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.HasPrefix(err.Error(), "ort: ") {
				t.Errorf("error %q lacks the ort: prefix", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewSessionNames(t *testing.T) {
	requireORT(t)
	model := graph{
		nodes: []node{
			{op: "Add", inputs: []string{"x", "y"}, outputs: []string{"sum"}},
			{op: "Sub", inputs: []string{"x", "y"}, outputs: []string{"diff"}},
		},
		inputs:  []valueInfo{{name: "x", elemType: onnxFloat, shape: dims(2)}, {name: "y", elemType: onnxFloat, shape: dims(2)}},
		outputs: []valueInfo{{name: "sum", elemType: onnxFloat, shape: dims(2)}, {name: "diff", elemType: onnxFloat, shape: dims(2)}},
	}.encode()

	s, err := NewSession(model, []string{"y", "x"}, []string{"diff"}, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := names(s.Inputs()); !slices.Equal(got, []string{"y", "x"}) {
		t.Errorf("inputs follow the given order: want [y x], got %v", got)
	}
	out := run(t, s, map[string]*Tensor{"x": Float32Tensor([]int64{2}, []float32{5, 1}), "y": Float32Tensor([]int64{2}, []float32{2, 3})})
	if len(out) != 1 {
		t.Errorf("want only diff, got %v", out)
	}
	checkTensor(t, "diff", out["diff"], Float32Tensor([]int64{2}, []float32{3, -2}))

	bad := []struct {
		name      string
		ins, outs []string
		wantErr   string
	}{
		{"unknown input", []string{"x", "y", "z"}, []string{"sum"}, `no input "z"`},
		{"missing input", []string{"x"}, []string{"sum"}, `graph input "y" missing`},
		{"duplicate input", []string{"x", "x", "y"}, []string{"sum"}, `"x" named twice`},
		{"unknown output", []string{"x", "y"}, []string{"prod"}, `no output "prod"`},
		{"no outputs", []string{"x", "y"}, nil, "no output names"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(model, tc.ins, tc.outs, SessionOptions{})
			if err == nil {
				s.Close()
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("want an error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestBadModelBytes(t *testing.T) {
	requireORT(t)
	for _, model := range [][]byte{nil, []byte("definitely not onnx")} {
		if s, err := NewSessionAuto(model, SessionOptions{}); err == nil {
			s.Close()
			t.Errorf("%q: want an error", model)
		} else if !strings.HasPrefix(err.Error(), "ort: ") {
			t.Errorf("error %q lacks the ort: prefix", err)
		}
	}
}

func TestSessionOptions(t *testing.T) {
	requireORT(t)
	model := addModel(dims(3))
	x := Float32Tensor([]int64{3}, []float32{1, 2, 3})
	for _, opts := range []SessionOptions{{Threads: 1}, {Threads: 2, Device: "cpu"}, {Device: "CPU"}} {
		s := newAuto(t, model, opts)
		out := run(t, s, map[string]*Tensor{"x": x, "y": x})
		checkTensor(t, "z", out["z"], Float32Tensor([]int64{3}, []float32{2, 4, 6}))
	}
	for _, tc := range []struct {
		opts    SessionOptions
		wantErr string
	}{
		{SessionOptions{Threads: -1}, "threads"},
		{SessionOptions{Device: "tpu"}, `unknown device "tpu"`},
		{SessionOptions{Device: "cuda", DeviceID: -1}, "device id"},
		{SessionOptions{NCHWc: NCHWcOff + 1}, "unknown NCHWc layout 3"},
		{SessionOptions{NCHWc: -1}, "unknown NCHWc layout -1"},
	} {
		s, err := NewSessionAuto(model, tc.opts)
		if err == nil {
			s.Close()
			t.Errorf("%+v: want an error", tc.opts)
		} else if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%+v: want an error containing %q, got %v", tc.opts, tc.wantErr, err)
		}
	}
}

func TestCUDA(t *testing.T) {
	requireORT(t)
	s, err := NewSessionAuto(addModel(dims(3)), SessionOptions{Device: "cuda"})
	if err == nil {
		defer s.Close()
		x := Float32Tensor([]int64{3}, []float32{1, 2, 3})
		out := run(t, s, map[string]*Tensor{"x": x, "y": x})
		checkTensor(t, "z on cuda", out["z"], Float32Tensor([]int64{3}, []float32{2, 4, 6}))
		t.Skip("the CUDA execution provider is available; the missing-provider error cannot be checked")
	}
	if !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("want an error wrapping ErrNoCUDA, got %v", err)
	}
	for _, s := range []string{LibraryPath(), "install a GPU build"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	t.Logf("cuda: %v", err)
}

// chainModel multiplies a [n,n] input by an n×n initializer k times, slow
// enough for a cancellation to land mid-run (ORT checks between nodes).
func chainModel(n, k int) []byte {
	w := make([]float32, n*n)
	for i := range w {
		w[i] = 1 / float32(n)
	}
	g := graph{
		initializers: []initializer{{name: "w", dims: []int64{int64(n), int64(n)}, f32: w}},
		inputs:       []valueInfo{{name: "x", elemType: onnxFloat, shape: dims(int64(n), int64(n))}},
		outputs:      []valueInfo{{name: "y", elemType: onnxFloat, shape: dims(int64(n), int64(n))}},
	}
	prev := "x"
	for i := range k {
		out := "h" + strconv.Itoa(i)
		if i == k-1 {
			out = "y"
		}
		g.nodes = append(g.nodes, node{op: "MatMul", inputs: []string{prev, "w"}, outputs: []string{out}})
		prev = out
	}
	return g.encode()
}

func TestRunContext(t *testing.T) {
	requireORT(t)
	const n = 384
	s := newAuto(t, chainModel(n, 300), SessionOptions{Threads: 1})
	ones := make([]float32, n*n)
	for i := range ones {
		ones[i] = 1
	}
	inputs := map[string]*Tensor{"x": Float32Tensor([]int64{n, n}, ones)}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.RunContext(ctx, inputs); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before the run: want context.Canceled, got %v", err)
	}

	start := time.Now()
	out, err := s.RunContext(context.Background(), inputs)
	full := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if y := out["y"].Float32; math.Abs(float64(y[0]-1)) > 1e-3 || math.Abs(float64(y[len(y)-1]-1)) > 1e-3 {
		t.Errorf("want all ones, got %v ... %v", y[0], y[len(y)-1])
	}

	ctx, cancel = context.WithTimeout(context.Background(), full/10)
	defer cancel()
	start = time.Now()
	_, err = s.RunContext(ctx, inputs)
	stopped := time.Since(start)
	if err == nil {
		t.Skipf("the run (%v) ended before its deadline (%v)", stopped, full/10)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded, got %v", err)
	}
	t.Logf("full run %v; stopped after %v: %v", full, stopped, err)
	if stopped > full/2 {
		t.Errorf("terminate took %v of a %v run", stopped, full)
	}
}

func TestSessionLifecycle(t *testing.T) {
	requireORT(t)
	s, err := NewSessionAuto(addModel(dims(1)), SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Close(); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Fatalf("closing the environment under an open session: want a 'still open' error, got %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	one := Float32Tensor([]int64{1}, []float32{1})
	if _, err := s.Run(map[string]*Tensor{"x": one, "y": one}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Run after Close: want a 'closed' error, got %v", err)
	}
}

// rssBytes reads the resident set size from /proc; 0 where unavailable.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Many runs with 4 MB tensors: leaked ORT values or buffers would show up
// as hundreds of MB of resident memory.
func TestRunDoesNotLeak(t *testing.T) {
	requireORT(t)
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 1 << 20
	s := newAuto(t, addModel([]dim{sym("N")}), SessionOptions{Threads: 1})
	x := Float32Tensor([]int64{n}, make([]float32, n))
	runs := func(k int) {
		for range k {
			if _, err := s.Run(map[string]*Tensor{"x": x, "y": x}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Run(map[string]*Tensor{"x": x}); err == nil {
				t.Fatal("want a missing-input error")
			}
		}
	}
	runs(20)
	before := rssBytes()
	runs(200)
	after := rssBytes()
	t.Logf("RSS %d MB -> %d MB over 200 runs", before>>20, after>>20)
	if before > 0 && after-before > 200<<20 {
		t.Errorf("RSS grew by %d MB over 200 runs of 4 MB tensors", (after-before)>>20)
	}
}

func TestConcurrentRun(t *testing.T) {
	requireORT(t)
	s := newAuto(t, addModel([]dim{sym("N")}), SessionOptions{Threads: 1})
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				v := float32(g*1000 + i)
				out, err := s.Run(map[string]*Tensor{"x": Float32Tensor([]int64{2}, []float32{v, 1}), "y": Float32Tensor([]int64{2}, []float32{v, 2})})
				if err != nil {
					errs <- err
					return
				}
				if got := out["z"].Float32; got[0] != 2*v || got[1] != 3 {
					errs <- errors.New("goroutine " + strconv.Itoa(g) + ": wrong sum")
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestRunOnce: one run of a model without keeping its session; a missing
// input is an error, not a panic.
func TestRunOnce(t *testing.T) {
	requireORT(t)
	out, err := RunOnce(addModel(dims(2)), map[string]*Tensor{
		"x": Float32Tensor([]int64{2}, []float32{1, 2.5}), "y": Float32Tensor([]int64{2}, []float32{-4, 0.25}),
	}, SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "z", out["z"], Float32Tensor([]int64{2}, []float32{-3, 2.75}))
	if _, err := RunOnce(addModel(dims(2)), map[string]*Tensor{"x": Float32Tensor([]int64{2}, []float32{1, 2})}, SessionOptions{}); err == nil {
		t.Error("a run without input y succeeded")
	}
}
