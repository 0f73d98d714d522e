package onnxio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fixtureDir holds the models exported by testdata/models/make_fixtures.py.
const fixtureDir = "../testdata/models"

// reference is the part of reference.json these tests read; it was written
// by PyTorch from the model definitions, independently of this package.
type reference struct {
	Models map[string]struct {
		Opset      int64 `json:"opset"`
		BatchNorms []struct {
			Module        string  `json:"module"`
			Channels      int64   `json:"channels"`
			Eps           float32 `json:"eps"`
			OnnxMomentum  float32 `json:"onnx_momentum"`
			TorchMomentum float32 `json:"torch_momentum"`
			Scale         string  `json:"scale"`
			Bias          string  `json:"bias"`
			Mean          string  `json:"mean"`
			Var           string  `json:"var"`
		} `json:"batchnorms"`
		OnnxBNNodes []string `json:"onnx_bn_nodes"`
	} `json:"models"`
}

func loadReference(t testing.TB) reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Models) == 0 {
		t.Fatal("reference.json lists no models")
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestFixtureBatchNorms: FindBatchNorms lists the BN layers of the PyTorch
// definition, with their channels, eps and momentum.
func TestFixtureBatchNorms(t *testing.T) {
	ref := loadReference(t)
	for _, file := range sortedKeys(ref.Models) {
		want := ref.Models[file]
		t.Run(file, func(t *testing.T) {
			m, err := Load(filepath.Join(fixtureDir, file))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Opset(""); got != want.Opset {
				t.Fatalf("opset %d want %d", got, want.Opset)
			}
			bns, err := FindBatchNorms(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(bns) != len(want.BatchNorms) || len(bns) != len(want.OnnxBNNodes) {
				t.Fatalf("found %d BN nodes, the model defines %d", len(bns), len(want.BatchNorms))
			}
			byScale := map[string]BatchNorm{}
			for i, b := range bns {
				if b.Name != want.OnnxBNNodes[i] {
					t.Errorf("BN %d is %q, want %q", i, b.Name, want.OnnxBNNodes[i])
				}
				byScale[b.Scale.Name] = b
			}
			training := strings.Contains(file, ".training.")
			for _, w := range want.BatchNorms {
				b, ok := byScale[w.Scale]
				if !ok {
					t.Fatalf("no BN reads scale %q (module %s)", w.Scale, w.Module)
				}
				if b.Channels != w.Channels || b.Epsilon != w.Eps || b.Momentum != w.OnnxMomentum || b.TrainingMode != training {
					t.Errorf("%s: got channels %d eps %g momentum %g training %v; want %d %g %g %v",
						w.Module, b.Channels, b.Epsilon, b.Momentum, b.TrainingMode, w.Channels, w.Eps, w.OnnxMomentum, training)
				}
				if 1-w.TorchMomentum != w.OnnxMomentum {
					t.Errorf("%s: reference momentum torch %g onnx %g", w.Module, w.TorchMomentum, w.OnnxMomentum)
				}
				if b.Bias.Name != w.Bias || b.Mean.Name != w.Mean || b.Var.Name != w.Var {
					t.Errorf("%s: sources %v %v %v", w.Module, b.Bias, b.Mean, b.Var)
				}
				for _, s := range []Source{b.Scale, b.Bias, b.Mean, b.Var} {
					if s.Kind != "initializer" {
						t.Errorf("%s: %s comes from %s", w.Module, s.Name, s.Kind)
					}
				}
				if !b.Foldable || (b.ProducerKind != "Conv" && b.ProducerKind != "Gemm") {
					t.Errorf("%s: producer %s foldable %v (%s)", w.Module, b.ProducerKind, b.Foldable, b.FoldNote)
				}
			}
		})
	}
}

// noUnknownFields walks a message and fails on any field the schema does not
// know: for files written by torch/onnx at IR 7–8, an unknown field would
// mean a wrong field number in onnx.proto.
func noUnknownFields(t *testing.T, path string, m protoreflect.Message) {
	t.Helper()
	if u := m.GetUnknown(); len(u) > 0 {
		t.Fatalf("%s: %s has %d bytes of unknown fields", path, m.Descriptor().FullName(), len(u))
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				noUnknownFields(t, path, l.Get(i).Message())
			}
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			noUnknownFields(t, path, v.Message())
		}
		return true
	})
}

func fixtureFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.onnx"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s", fixtureDir)
	}
	return files
}

func TestFixturesDecodeFullyAndRoundTrip(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		m, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		noUnknownFields(t, f, m.Proto.ProtoReflect())
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(b, m.Dir, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m.Proto, back.Proto) {
			t.Fatalf("%s: round trip changed the model", f)
		}
	}
}

// TestONNXTestData decodes the ONNX project's own test models when Debian's
// libonnx-testdata is installed (.ci/run installs it).
func TestONNXTestData(t *testing.T) {
	root := "/usr/share/libonnx-testdata/data"
	files, _ := filepath.Glob(filepath.Join(root, "*", "*", "model.onnx"))
	if len(files) == 0 {
		t.Skip("libonnx-testdata not installed (apt-get install libonnx-testdata)")
	}
	loaded := 0
	for _, f := range files {
		m, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		loaded++
		if m.Proto.GetIrVersion() <= 10 {
			noUnknownFields(t, f, m.Proto.ProtoReflect())
		}
		if _, err := FindBatchNorms(m); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	t.Logf("decoded %d ONNX test models", loaded)
}

// TestFixtureAblations: every mode on every fixture with BN gives a valid
// model at the original opset; fold leaves no BN.
func TestFixtureAblations(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		m, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		bns, _ := FindBatchNorms(m)
		if len(bns) == 0 {
			continue
		}
		for _, mode := range Modes {
			res, err := Ablate(m, AblateOptions{Mode: mode})
			if err != nil {
				t.Fatalf("%s %s: %v", filepath.Base(f), mode, err)
			}
			if res.Model.Opset("") != m.Opset("") || len(res.Layers) != len(bns) {
				t.Fatalf("%s %s: opset %d layers %d", filepath.Base(f), mode, res.Model.Opset(""), len(res.Layers))
			}
			after, _ := FindBatchNorms(res.Model)
			switch mode {
			case ModeFreeze:
				if len(after) != len(bns) || !after[0].Frozen || after[0].TrainingMode {
					t.Fatalf("%s freeze: %+v", filepath.Base(f), after)
				}
			default:
				if len(after) != 0 {
					t.Fatalf("%s %s: %d BN left", filepath.Base(f), mode, len(after))
				}
			}
		}
	}
}
