package ort

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRunValuesReusesBuffers runs a session twice on the same Values: the
// second run sees the refilled input slice and writes into the same output
// slice, with no copy in between.
func TestRunValuesReusesBuffers(t *testing.T) {
	requireORT(t)
	s := newAuto(t, addModel([]dim{sym("N")}), SessionOptions{})
	xs, zs := []float32{1, 2}, make([]float32, 2)
	x, err := NewFloat32([]int64{2}, xs)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	z, err := NewFloat32([]int64{2}, zs)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Destroy()
	for _, c := range []struct{ x, want []float32 }{{[]float32{1, 2}, []float32{2, 4}}, {[]float32{5, -1}, []float32{10, -2}}} {
		copy(xs, c.x)
		if err := s.RunValues(context.Background(), []*Value{x, x}, []*Value{z}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(zs, c.want) {
			t.Errorf("x = %v: want z = %v in the caller's slice, got %v", c.x, c.want, zs)
		}
		if got := z.Float32(); &got[0] != &zs[0] {
			t.Error("Float32 of a tensor Value is not the slice it was made over")
		}
	}
	// A nil output is allocated by ORT and handed back.
	outs := []*Value{nil}
	if err := s.RunValues(context.Background(), []*Value{x, z}, outs); err != nil {
		t.Fatal(err)
	}
	defer outs[0].Destroy()
	if got := outs[0].Float32(); !slices.Equal(got, []float32{15, -3}) {
		t.Errorf("want [15 -3] in the allocated output, got %v", got)
	}
	if got := outs[0].Shape(); !slices.Equal(got, []int64{2}) {
		t.Errorf("allocated output's shape: want [2], got %v", got)
	}
	dead, err := NewFloat32([]int64{2}, make([]float32, 2))
	if err != nil {
		t.Fatal(err)
	}
	dead.Destroy()
	dead.Destroy() // a second Destroy does nothing
	for _, tc := range []struct {
		ins, outs []*Value
		wantErr   string
	}{
		{[]*Value{x}, []*Value{z}, "1 input values for 2 inputs"},
		{[]*Value{x, x}, nil, "0 output values for 1 outputs"},
		{[]*Value{x, nil}, []*Value{z}, `input "y": nil value`},
		{[]*Value{x, dead}, []*Value{z}, `input "y": nil value`},
		{[]*Value{x, x}, []*Value{dead}, `output "z": destroyed value`},
	} {
		if err := s.RunValues(context.Background(), tc.ins, tc.outs); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("want an error containing %q, got %v", tc.wantErr, err)
		}
	}
}

// TestScalarValues: a 0-d input takes a new value with SetScalar, and a 0-d
// output given to RunValues receives the result.
func TestScalarValues(t *testing.T) {
	requireORT(t)
	model := graph{
		nodes:   []node{{op: "Mul", inputs: []string{"a", "b"}, outputs: []string{"c"}}},
		inputs:  []valueInfo{{name: "a", elemType: onnxFloat, shape: dims()}, {name: "b", elemType: onnxFloat, shape: dims()}},
		outputs: []valueInfo{{name: "c", elemType: onnxFloat, shape: dims()}},
	}.encode()
	s := newAuto(t, model, SessionOptions{})
	a, err := NewFloat32(nil, []float32{3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Destroy()
	c, err := NewFloat32([]int64{}, []float32{0})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	for _, v := range []float32{2, -0.5} {
		if err := a.SetScalar(v); err != nil {
			t.Fatal(err)
		}
		if err := s.RunValues(context.Background(), []*Value{a, a}, []*Value{c}); err != nil {
			t.Fatal(err)
		}
		if got := c.Float32(); !slices.Equal(got, []float32{v * v}) {
			t.Errorf("a = %v: want c = [%v], got %v", v, v*v, got)
		}
	}
	if len(c.Shape()) != 0 || c.Type() != TypeFloat32 {
		t.Errorf("0-d output: shape %v, type %s", c.Shape(), c.Type())
	}
	if c.Int64() != nil {
		t.Error("Int64 of a float32 Value is not nil")
	}
}

func TestNewValueErrors(t *testing.T) {
	requireORT(t)
	for _, tc := range []struct {
		name    string
		shape   []int64
		n       int
		wantErr string
	}{
		{"too little data", []int64{2, 3}, 5, "shape [2 3] needs 6 elements, data has 5"},
		{"too much data", []int64{2}, 3, "needs 2 elements, data has 3"},
		{"0-d without data", nil, 0, "needs 1 elements, data has 0"},
		{"negative dimension", []int64{-1}, 0, "negative dimension"},
	} {
		if v, err := NewFloat32(tc.shape, make([]float32, tc.n)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			v.Destroy()
			t.Errorf("%s: want an error containing %q, got %v", tc.name, tc.wantErr, err)
		}
	}
	y, err := NewInt64([]int64{3}, []int64{4, 5, 6})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Destroy()
	if y.Type() != TypeInt64 || !slices.Equal(y.Int64(), []int64{4, 5, 6}) || y.Float32() != nil {
		t.Errorf("int64 Value: type %s, Int64 %v, Float32 %v", y.Type(), y.Int64(), y.Float32())
	}
	if err := y.SetScalar(1); err == nil {
		t.Error("SetScalar on an int64 tensor: want an error")
	}
}

func TestParseNCHWc(t *testing.T) {
	for _, c := range []struct {
		in   string
		want NCHWc
	}{
		{"", NCHWcAll}, {"all", NCHWcAll}, {"default", NCHWcAll}, {" ALL ", NCHWcAll},
		{"conv", NCHWcConv}, {"Conv", NCHWcConv},
		{"off", NCHWcOff}, {"0", NCHWcOff}, {"false", NCHWcOff}, {"FALSE", NCHWcOff},
	} {
		got, err := ParseNCHWc(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseNCHWc(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if back, err := ParseNCHWc(got.String()); err != nil || back != got {
			t.Errorf("%v does not read back from its String %q", got, got.String())
		}
	}
	if _, err := ParseNCHWc("1"); err == nil || !strings.Contains(err.Error(), `unknown NCHWc layout "1"`) {
		t.Errorf(`ParseNCHWc("1"): want an error, got %v`, err)
	}
	if s := NCHWc(9).String(); s != "nchwc(9)" {
		t.Errorf("String of an unknown value: %q", s)
	}
	var zero SessionOptions
	if zero.NCHWc != NCHWcAll {
		t.Error("the zero SessionOptions does not choose NCHWcAll")
	}
}

func TestProfilePrefix(t *testing.T) {
	requireORT(t)
	prefix := filepath.Join(t.TempDir(), "prof")
	s, err := NewSessionAuto(addModel(dims(2)), SessionOptions{ProfilePrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	x := Float32Tensor([]int64{2}, []float32{1, 2})
	run(t, s, map[string]*Tensor{"x": x, "y": x})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) != 1 {
		t.Fatalf("want one profile next to %s, got %v", prefix, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil || !strings.Contains(string(b), `"cat"`) {
		t.Errorf("the profile does not look like a Chrome trace (%v): %.200s", err, b)
	}
}
