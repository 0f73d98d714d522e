package ort

import (
	"math"
	"strings"
	"testing"
)

func TestTensorValidate(t *testing.T) {
	tests := []struct {
		name    string
		tensor  *Tensor
		wantErr string // "" for valid
	}{
		{"float32 matrix", Float32Tensor([]int64{2, 3}, make([]float32, 6)), ""},
		{"int64 vector", Int64Tensor([]int64{4}, make([]int64, 4)), ""},
		{"bool scalar", BoolTensor(nil, []bool{true}), ""},
		{"zero elements", Float32Tensor([]int64{0, 3}, nil), ""},
		{"nil tensor", nil, "nil"},
		{"no data", &Tensor{Shape: []int64{1}}, "no data"},
		{"two slices", &Tensor{Shape: []int64{1}, Float32: []float32{1}, Int64: []int64{1}}, "2 data slices"},
		{"too few elements", Float32Tensor([]int64{2, 3}, make([]float32, 5)), "needs 6 elements, data has 5"},
		{"scalar needs one element", Int64Tensor(nil, nil), "needs 1 elements, data has 0"},
		{"negative dimension", Float32Tensor([]int64{-1}, nil), "negative dimension"},
		{"overflow", Float32Tensor([]int64{math.MaxInt64, 2}, nil), "too many elements"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tensor.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("want valid, got %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("want error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestTensorType(t *testing.T) {
	tests := []struct {
		tensor *Tensor
		want   ElemType
	}{
		{Float32Tensor(nil, nil), TypeFloat32},
		{Int64Tensor(nil, nil), TypeInt64},
		{BoolTensor(nil, nil), TypeBool},
		{&Tensor{}, TypeUndefined},
		{&Tensor{Float32: []float32{}, Bool: []bool{}}, TypeUndefined},
	}
	for i, tc := range tests {
		if got := tc.tensor.Type(); got != tc.want {
			t.Errorf("case %d: want %s, got %s", i, tc.want, got)
		}
	}
}

func TestElemTypeString(t *testing.T) {
	tests := []struct {
		typ  ElemType
		want string
	}{
		{TypeFloat32, "float32"}, {TypeInt64, "int64"}, {TypeBool, "bool"},
		{11, "float64"}, {6, "int32"}, {99, "elem_type(99)"},
	}
	for _, tc := range tests {
		if got := tc.typ.String(); got != tc.want {
			t.Errorf("ElemType(%d): want %q, got %q", int32(tc.typ), tc.want, got)
		}
	}
}

func TestShapeDeclared(t *testing.T) {
	model := graph{
		nodes:   []node{{op: "Identity", inputs: []string{"a"}, outputs: []string{"b"}}},
		inputs:  []valueInfo{{name: "a", elemType: onnxFloat, noShape: true}},
		outputs: []valueInfo{{name: "b", elemType: onnxFloat, shape: []dim{}}},
	}.encode()
	got := shapeDeclared(model)
	if len(got) != 2 || got["a"] || !got["b"] {
		t.Errorf("want map[a:false b:true], got %v", got)
	}
	// Malformed bytes must not panic.
	for n := range model {
		shapeDeclared(model[:n])
	}
	shapeDeclared([]byte{0xff, 0xff, 0xff})
}
