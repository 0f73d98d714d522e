package onnxio

import (
	"path/filepath"
	"testing"
)

// TestFoldedBatchNorm: PyTorch's default eval export (BN folded) is flagged,
// its PRESERVE export (BN kept) is not, nor is a model without BN whose
// producer does not fold on export.
func TestFoldedBatchNorm(t *testing.T) {
	load := func(name string) *Model {
		m, err := Load(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	other := load("small_cnn.eval_default.onnx")
	other.Proto.ProducerName = "someframework"
	cases := []struct {
		name     string
		m        *Model
		folded   bool
		producer string
	}{
		{"eval default", load("small_cnn.eval_default.onnx"), true, "pytorch 1.13.0"},
		{"preserve", load("small_cnn.preserve.onnx"), false, ""},
		{"mlp without BN, from pytorch", load("mlp.preserve.onnx"), true, "pytorch 1.13.0"},
		{"another producer", other, false, ""},
	}
	for _, c := range cases {
		producer, folded, err := FoldedBatchNorm(c.m)
		if err != nil || folded != c.folded || producer != c.producer {
			t.Errorf("%s: got %q, %v, %v; want %q, %v", c.name, producer, folded, err, c.producer, c.folded)
		}
	}
}
