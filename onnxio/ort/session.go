package ort

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNoCUDA is wrapped by the error NewSession returns when the CUDA
// execution provider cannot be used with the loaded library; GPU tests skip
// on it.
var ErrNoCUDA = errors.New("ort: CUDA execution provider not available")

// SessionOptions configures a Session. The zero value runs on the CPU with
// ONNX Runtime's default number of threads.
type SessionOptions struct {
	// Threads is the number of intra-op threads; 0 leaves ORT's default
	// (one per physical core). Inter-op parallelism is always 1.
	Threads int
	// Device is "cpu" (the default when empty) or "cuda".
	Device string
	// DeviceID selects the GPU when Device is "cuda".
	DeviceID int
	// NCHWc is how much of the blocked channel layout bnaudit's trainer
	// writes into the graphs it runs on the CPU (see NCHWc). Session itself
	// runs the bytes it is given; the trainer reads this field once per
	// graph (trainer.SessionModel).
	NCHWc NCHWc
	// ProfilePrefix, when set, makes ORT profile every run of the session
	// and write the profile (a Chrome trace, JSON) when the session closes,
	// to a file whose path starts with this prefix.
	ProfilePrefix string
	// CustomOpsLibrary, when set, is the path of a shared library of custom
	// operators (ORT's RegisterCustomOps entry point) that ORT loads into
	// the session, such as bnaudit's trainer/dnnl/libbnaudit_dnnl.so.
	CustomOpsLibrary string
}

// NCHWc chooses how far bnaudit's trainer rewrites a graph for ONNX
// Runtime's blocked-layout CPU kernels (NCHWcDomain) before running it. The
// zero value is the default, NCHWcAll.
type NCHWc int

const (
	// NCHWcAll blocks the eligible convolutions and weight gradients and
	// keeps the activations between convolutions in the blocked layout.
	NCHWcAll NCHWc = iota
	// NCHWcConv blocks the convolutions and weight gradients only; each is
	// reordered in and out of the blocked layout on its own.
	NCHWcConv
	// NCHWcOff runs the graphs as built.
	NCHWcOff
)

var nchwcNames = [...]string{NCHWcAll: "all", NCHWcConv: "conv", NCHWcOff: "off"}

func (n NCHWc) String() string {
	if n >= 0 && int(n) < len(nchwcNames) {
		return nchwcNames[n]
	}
	return "nchwc(" + strconv.Itoa(int(n)) + ")"
}

// ParseNCHWc reads a layout choice as a user writes it (case and
// surrounding spaces ignored): "all", "default" or "" for NCHWcAll, "conv"
// for NCHWcConv, and "off", "0" or "false" for NCHWcOff.
func ParseNCHWc(s string) (NCHWc, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "all", "default":
		return NCHWcAll, nil
	case "conv":
		return NCHWcConv, nil
	case "off", "0", "false":
		return NCHWcOff, nil
	}
	return NCHWcAll, fmt.Errorf("ort: unknown NCHWc layout %q (want all, conv or off)", s)
}

// IOInfo describes one graph input or output as ONNX Runtime sees it.
type IOInfo struct {
	Name string
	// Type is the element type, TypeUndefined for values that are not
	// tensors (sequences, maps).
	Type ElemType
	// Shape has -1 for a dynamic or symbolic dimension. It is empty both for
	// a 0-d scalar and for a tensor whose rank the model leaves unknown;
	// ShapeKnown tells them apart.
	Shape []int64
	// ShapeKnown reports whether the model declares a shape (rank) at all.
	ShapeKnown bool
}

func (i IOInfo) String() string {
	shape := "unknown shape"
	if i.ShapeKnown {
		shape = fmt.Sprint(i.Shape)
	}
	return fmt.Sprintf("%s %s %s", i.Name, i.Type, shape)
}

// ModelInfo lists the graph inputs (initializers excluded) and outputs of an
// ONNX model, in graph order. It builds a throwaway ORT session, so Init must
// have succeeded.
func ModelInfo(model []byte) (inputs, outputs []IOInfo, err error) {
	if err := ready(); err != nil {
		return nil, nil, err
	}
	return modelInfo(model, "")
}

// modelInfo reads the model's inputs and outputs; customOps, when set, is a
// custom-op library the model needs to load (SessionOptions.CustomOpsLibrary).
func modelInfo(model []byte, customOps string) (inputs, outputs []IOInfo, err error) {
	if len(model) == 0 {
		return nil, nil, errors.New("ort: empty model")
	}
	var ins, outs []ort.InputOutputInfo
	if customOps != "" {
		ins, outs, err = infoWithCustomOps(model, customOps)
	} else {
		ins, outs, err = ort.GetInputOutputInfoWithONNXData(model)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ort: load model: %v", err)
	}
	declared := shapeDeclared(model)
	convert := func(infos []ort.InputOutputInfo) []IOInfo {
		out := make([]IOInfo, len(infos))
		for i, in := range infos {
			out[i].Name = in.Name
			if in.OrtValueType != ort.ONNXTypeTensor {
				continue
			}
			out[i].Type = ElemType(in.DataType)
			out[i].Shape = shapeOf(in.Dimensions)
			out[i].ShapeKnown = len(in.Dimensions) > 0 || declared[in.Name]
		}
		return out
	}
	return convert(ins), convert(outs), nil
}

// Session runs one ONNX model with fixed input and output names. Run and
// RunValues may be called from several goroutines at once; Close must not
// race with them.
type Session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []IOInfo // in the order of the session's input names
	outputs []IOInfo // in the order of the session's output names
	once    sync.Once
	closed  atomic.Bool
}

// NewSession creates a session for the ONNX model bytes. inputNames must
// name every graph input (in any order, each once); outputNames any
// non-empty subset of the graph outputs. A model without graph inputs is
// rejected: onnxruntime_go cannot run it.
func NewSession(model []byte, inputNames, outputNames []string, opts SessionOptions) (*Session, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	defer lockCustomOps(opts)()
	ins, outs, err := modelInfo(model, opts.CustomOpsLibrary)
	if err != nil {
		return nil, err
	}
	return newSession(model, ins, outs, inputNames, outputNames, opts)
}

// NewSessionAuto creates a session that feeds every graph input and fetches
// every graph output, in graph order; Session.Inputs and Session.Outputs
// list them.
func NewSessionAuto(model []byte, opts SessionOptions) (*Session, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	defer lockCustomOps(opts)()
	ins, outs, err := modelInfo(model, opts.CustomOpsLibrary)
	if err != nil {
		return nil, err
	}
	return newSession(model, ins, outs, names(ins), names(outs), opts)
}

// customOpsMu makes sessions that register a custom-op library open one at
// a time: ONNX Runtime enters the library's domain in a process-wide table
// at the first registration, check-then-add, and two sessions doing it at
// once made one fail (TestCustomOpsSessionsAtOnce).
var customOpsMu sync.Mutex

// lockCustomOps holds customOpsMu while a session with a custom-op library
// opens; it returns the unlock.
func lockCustomOps(opts SessionOptions) func() {
	if opts.CustomOpsLibrary == "" {
		return func() {}
	}
	customOpsMu.Lock()
	return customOpsMu.Unlock
}

// RunOnce opens a session for model (every input fed, every output
// fetched), runs it once on inputs and closes it: for one-off checks, where
// a session's set-up is not worth keeping.
func RunOnce(model []byte, inputs map[string]*Tensor, opts SessionOptions) (map[string]*Tensor, error) {
	s, err := NewSessionAuto(model, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(inputs)
}

func names(infos []IOInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	return out
}

func newSession(model []byte, ins, outs []IOInfo, inputNames, outputNames []string, opts SessionOptions) (*Session, error) {
	if len(ins) == 0 {
		return nil, errors.New("ort: model has no graph inputs; onnxruntime_go cannot run a model without inputs (add a dummy input)")
	}
	if len(outs) == 0 {
		return nil, errors.New("ort: model has no graph outputs")
	}
	selIn, err := selectIO("input", inputNames, ins)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if !slices.Contains(inputNames, in.Name) {
			return nil, fmt.Errorf("ort: graph input %q missing from input names %q", in.Name, inputNames)
		}
	}
	selOut, err := selectIO("output", outputNames, outs)
	if err != nil {
		return nil, err
	}
	so, err := sessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := acquire(); err != nil {
		return nil, err
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inputNames, outputNames, so)
	if err != nil {
		release()
		return nil, fmt.Errorf("ort: create session: %v", err)
	}
	return &Session{s: s, inputs: selIn, outputs: selOut}, nil
}

// selectIO returns the infos of the named values, in the order of names.
func selectIO(kind string, names []string, infos []IOInfo) ([]IOInfo, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("ort: no %s names given", kind)
	}
	out := make([]IOInfo, len(names))
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			return nil, fmt.Errorf("ort: %s %q named twice", kind, name)
		}
		j := slices.IndexFunc(infos, func(in IOInfo) bool { return in.Name == name })
		if j < 0 {
			return nil, fmt.Errorf("ort: model has no %s %q (it has %s)", kind, name, strings.Join(quoted(infos), ", "))
		}
		out[i] = infos[j]
	}
	return out, nil
}

func quoted(infos []IOInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = strconv.Quote(in.Name)
	}
	return out
}

// validate checks the options without touching ORT.
func (opts SessionOptions) validate() error {
	switch strings.ToLower(opts.Device) {
	case "", "cpu", "cuda":
	default:
		return fmt.Errorf("ort: unknown device %q (want cpu or cuda)", opts.Device)
	}
	if opts.Threads < 0 {
		return fmt.Errorf("ort: threads must be >= 0, got %d", opts.Threads)
	}
	if opts.DeviceID < 0 {
		return fmt.Errorf("ort: device id must be >= 0, got %d", opts.DeviceID)
	}
	if opts.NCHWc < NCHWcAll || opts.NCHWc > NCHWcOff {
		return fmt.Errorf("ort: unknown NCHWc layout %d", int(opts.NCHWc))
	}
	return nil
}

func sessionOptions(opts SessionOptions) (*ort.SessionOptions, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	device := strings.ToLower(opts.Device)
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: session options: %v", err)
	}
	if err := configure(so, opts, device); err != nil {
		so.Destroy()
		return nil, err
	}
	return so, nil
}

func configure(so *ort.SessionOptions, opts SessionOptions, device string) error {
	if opts.Threads > 0 {
		if err := so.SetIntraOpNumThreads(opts.Threads); err != nil {
			return fmt.Errorf("ort: set %d threads: %v", opts.Threads, err)
		}
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return fmt.Errorf("ort: set inter-op threads: %v", err)
	}
	if opts.ProfilePrefix != "" {
		if err := so.EnableProfiling(opts.ProfilePrefix); err != nil {
			return fmt.Errorf("ort: enable profiling: %v", err)
		}
	}
	if opts.CustomOpsLibrary != "" {
		if err := registerCustomOps(so, opts.CustomOpsLibrary); err != nil {
			return err
		}
	}
	if device == "cuda" {
		return appendCUDA(so, opts.DeviceID)
	}
	return nil
}

// cudaProviderLib is the provider library ORT loads, from the directory of
// libonnxruntime, when the CUDA execution provider is appended.
const cudaProviderLib = "libonnxruntime_providers_cuda.so"

func appendCUDA(so *ort.SessionOptions, deviceID int) error {
	lib := LibraryPath()
	noCUDA := func(reason string) error {
		return fmt.Errorf("%w in %s: %s; install a GPU build of ONNX Runtime", ErrNoCUDA, lib, reason)
	}
	// Without the provider library ORT fails anyway, after printing a long
	// error of its own to stderr; say it more plainly first.
	if !providerNextTo(lib, cudaProviderLib) {
		return noCUDA(cudaProviderLib + " is not next to it")
	}
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return noCUDA(err.Error())
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(deviceID)}); err != nil {
		return noCUDA(err.Error())
	}
	if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
		return noCUDA(err.Error())
	}
	return nil
}

// providerNextTo reports whether the provider library sits beside lib, or
// beside the file lib links to.
func providerNextTo(lib, provider string) bool {
	dirs := []string{filepath.Dir(lib)}
	if real, err := filepath.EvalSymlinks(lib); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, provider)); err == nil {
			return true
		}
	}
	return false
}

// Inputs describes the session's inputs in the order of its input names,
// which is the order RunValues expects.
func (s *Session) Inputs() []IOInfo { return slices.Clone(s.inputs) }

// Outputs describes the session's outputs in the order of its output names,
// which is the order RunValues expects.
func (s *Session) Outputs() []IOInfo { return slices.Clone(s.outputs) }

// Close releases the session. Calling it again does nothing.
func (s *Session) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		if e := s.s.Destroy(); e != nil {
			err = fmt.Errorf("ort: close session: %v", e)
		}
		release()
	})
	return err
}

// Run feeds inputs, keyed by input name, and returns every session output
// keyed by output name. Inputs are checked against the model's declared
// types and shapes first. Input data is shared with ORT for the call, not
// copied; outputs are fresh Go memory.
func (s *Session) Run(inputs map[string]*Tensor) (map[string]*Tensor, error) {
	return s.RunContext(context.Background(), inputs)
}

// RunContext is Run that stops when ctx is done: ORT is told to terminate
// (it checks between nodes) and the error wraps ctx's cause.
func (s *Session) RunContext(ctx context.Context, inputs map[string]*Tensor) (map[string]*Tensor, error) {
	if err := s.checkInputs(inputs); err != nil {
		return nil, err
	}
	for _, out := range s.outputs {
		switch out.Type {
		case TypeFloat32, TypeInt64, TypeBool:
		case TypeUndefined:
			return nil, fmt.Errorf("ort: output %q is not a tensor; use RunValues", out.Name)
		default:
			return nil, fmt.Errorf("ort: output %q has element type %s, which Tensor cannot hold; use RunValues", out.Name, out.Type)
		}
	}

	inVals := make([]ort.Value, len(s.inputs))
	outVals := make([]ort.Value, len(s.outputs))
	defer func() {
		for _, v := range inVals {
			destroy(v)
		}
		for _, v := range outVals {
			destroy(v)
		}
	}()
	for i, in := range s.inputs {
		v, err := newValue(inputs[in.Name])
		if err != nil {
			return nil, fmt.Errorf("ort: input %q: %v", in.Name, err)
		}
		inVals[i] = v
	}
	// onnxruntime_go cannot wrap a 0-d output that ORT allocated, so 0-d
	// outputs get buffers here; the rest ORT allocates to its actual shape.
	for i, out := range s.outputs {
		if out.ShapeKnown && len(out.Shape) == 0 {
			v, err := newScalarOutput(out.Type)
			if err != nil {
				return nil, fmt.Errorf("ort: output %q: %v", out.Name, err)
			}
			outVals[i] = v
		}
	}
	if err := s.run(ctx, inVals, outVals); err != nil {
		if strings.Contains(err.Error(), "The shape has no dimensions") {
			return nil, fmt.Errorf("ort: an output is a 0-d scalar but the model leaves its shape undeclared; declare it with an empty shape: %w", err)
		}
		return nil, err
	}
	result := make(map[string]*Tensor, len(s.outputs))
	for i, out := range s.outputs {
		t, err := fromValue(outVals[i])
		if err != nil {
			return nil, fmt.Errorf("ort: output %q: %v", out.Name, err)
		}
		result[out.Name] = t
	}
	return result, nil
}

func (s *Session) checkInputs(inputs map[string]*Tensor) error {
	for name := range inputs {
		if !slices.ContainsFunc(s.inputs, func(in IOInfo) bool { return in.Name == name }) {
			return fmt.Errorf("ort: unknown input %q (inputs: %s)", name, strings.Join(quoted(s.inputs), ", "))
		}
	}
	for _, in := range s.inputs {
		t, ok := inputs[in.Name]
		if !ok {
			return fmt.Errorf("ort: missing input %q", in.Name)
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("ort: input %q: %v", in.Name, err)
		}
		if err := checkAgainst(in, t); err != nil {
			return fmt.Errorf("ort: input %q: %v", in.Name, err)
		}
	}
	return nil
}

// checkAgainst compares a valid tensor with the model's declaration.
func checkAgainst(in IOInfo, t *Tensor) error {
	if in.Type == TypeUndefined {
		return errors.New("the model's input is not a tensor; use RunValues")
	}
	if t.Type() != in.Type {
		return fmt.Errorf("model wants %s, got %s", in.Type, t.Type())
	}
	if !in.ShapeKnown {
		return nil
	}
	if len(t.Shape) != len(in.Shape) {
		return fmt.Errorf("model wants shape %v (rank %d), got %v", in.Shape, len(in.Shape), t.Shape)
	}
	for i, want := range in.Shape {
		if want >= 0 && t.Shape[i] != want {
			return fmt.Errorf("model wants shape %v, got %v (dimension %d)", in.Shape, t.Shape, i)
		}
	}
	return nil
}

// isNil reports whether v is nil or an interface holding a nil pointer:
// onnxruntime_go stores the latter into outputs it failed to convert.
func isNil(v ort.Value) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// destroy frees v unless it is nil.
func destroy(v ort.Value) {
	if !isNil(v) {
		v.Destroy()
	}
}

// run calls ORT, wiring ctx to ORT's terminate flag when ctx can be done.
func (s *Session) run(ctx context.Context, inputs, outputs []ort.Value) error {
	if s.closed.Load() {
		return errors.New("ort: run: session closed")
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("ort: run: %w", err)
	}
	if ctx.Done() == nil {
		if err := s.s.Run(inputs, outputs); err != nil {
			return fmt.Errorf("ort: run: %v", err)
		}
		return nil
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("ort: run options: %v", err)
	}
	defer ro.Destroy()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			ro.Terminate()
		case <-stop:
		}
	})
	err = s.s.RunWithOptions(inputs, outputs, ro)
	close(stop)
	wg.Wait()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("ort: run: %w (%v)", cause, err)
		}
		return fmt.Errorf("ort: run: %v", err)
	}
	return nil
}
