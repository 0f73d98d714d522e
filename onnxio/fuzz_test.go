package onnxio

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the FuzzLoad seed corpus in testdata/fuzz/FuzzLoad")

// seedModels are small valid models that exercise every code path of Load
// and the transforms; the fuzzer mutates them.
func seedModels() map[string]*Model {
	ext := externalModel("weights.bin", 0, 72)
	return map[string]*Model{
		"gemm_bn":          gemmBN(),
		"conv_bn_relu":     convBNRelu(),
		"conv_bn_training": trainingBN(convBNRelu()),
		"external":         ext,
		"old_cnn_opset9":   oldCNN(),
	}
}

// TestWriteFuzzSeeds regenerates the committed seed corpus with -update-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite the corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzLoad")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, m := range seedModels() {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", mustBytes(t, m))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzLoad feeds arbitrary bytes to Decode and, when they decode, to every
// transform. Nothing may panic, and every error must be one line.
func FuzzLoad(f *testing.F) {
	for _, m := range seedModels() {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), make([]byte, 72), 0o644); err != nil {
		f.Fatal(err)
	}
	lim := Limits{MaxFileBytes: 1 << 20, MaxTensorBytes: 1 << 20, MaxNodes: 1000}
	oneLine := func(t *testing.T, err error) {
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, dir, lim)
		oneLine(t, err)
		if err != nil {
			return
		}
		bns, err := FindBatchNorms(m)
		oneLine(t, err)
		if err != nil {
			return
		}
		for _, mode := range Modes {
			_, err := Ablate(m, AblateOptions{Mode: mode})
			oneLine(t, err)
		}
		if len(bns) > 0 {
			_, err := Ablate(m, AblateOptions{Mode: ModeGroupNorm, Groups: 1, CopyAffine: true, Layers: []string{"0"}})
			oneLine(t, err)
		}
		_, err = EvalMode(m)
		oneLine(t, err)
		for _, to := range []int64{MinUpgradeTarget, MaxUpgradeTarget} {
			_, _, err := Upgrade(m, to)
			oneLine(t, err)
		}
		if _, err := m.Bytes(); err != nil {
			oneLine(t, err)
		}
	})
}

// TestMalformedBNArity: a BatchNormalization node without outputs (found by
// FuzzLoad in CI, where it panicked in planFold) or with too few inputs is
// reported as not foldable and refused by every ablation, without a panic.
func TestMalformedBNArity(t *testing.T) {
	for name, edit := range map[string]func(m *Model){
		"no outputs":   func(m *Model) { m.Graph().Node[1].Output = nil },
		"empty output": func(m *Model) { m.Graph().Node[1].Output = []string{""} },
		"four outputs": func(m *Model) { m.Graph().Node[1].Output = []string{"y", "a", "b", "c"} },
		"three inputs": func(m *Model) { m.Graph().Node[1].Input = m.Graph().Node[1].Input[:3] },
	} {
		t.Run(name, func(t *testing.T) {
			m := gemmBN()
			edit(m)
			bns, err := FindBatchNorms(m)
			if err != nil {
				t.Fatalf("FindBatchNorms: %v", err)
			}
			if len(bns) != 1 || bns[0].Foldable || !strings.Contains(bns[0].FoldNote, "ONNX defines 5 inputs") {
				t.Fatalf("got %+v, want one BN, not foldable, with an arity note", bns)
			}
			for _, mode := range Modes {
				if _, err := Ablate(m, AblateOptions{Mode: mode}); err == nil {
					t.Errorf("%s: ablation of a malformed BN succeeded", mode)
				}
			}
		})
	}
}
