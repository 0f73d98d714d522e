package onnxio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

func writeModel(t *testing.T, dir, name string, m *Model) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, mustBytes(t, m), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripKeepsGraphAndUnknownFields(t *testing.T) {
	m := gemmBN()
	// Fields this code does not know: a model-level field 26 (a newer IR's
	// configuration) and a node-level field 10.
	var unkModel, unkNode []byte
	unkModel = protowire.AppendTag(unkModel, 26, protowire.BytesType)
	unkModel = protowire.AppendBytes(unkModel, []byte("future model field"))
	unkNode = protowire.AppendTag(unkNode, 10, protowire.VarintType)
	unkNode = protowire.AppendVarint(unkNode, 12345)
	m.Proto.ProtoReflect().SetUnknown(unkModel)
	m.Graph().Node[0].ProtoReflect().SetUnknown(unkNode)

	dir := t.TempDir()
	p := writeModel(t, dir, "in.onnx", m)
	a, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.onnx")
	if err := a.Save(out); err != nil {
		t.Fatal(err)
	}
	b, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m.Proto, b.Proto) {
		t.Fatalf("round trip changed the model")
	}
	if got := b.Proto.ProtoReflect().GetUnknown(); !bytes.Equal(got, unkModel) {
		t.Fatalf("model unknown fields: got %x want %x", got, unkModel)
	}
	if got := b.Graph().Node[0].ProtoReflect().GetUnknown(); !bytes.Equal(got, unkNode) {
		t.Fatalf("node unknown fields: got %x want %x", got, unkNode)
	}
	// No temporary files are left behind by the atomic write.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("want 2 files in %s, got %d", dir, len(ents))
	}
}

// TestLoadRejects checks every kind of bad input gives the right sentinel
// error with one line that says what is wrong.
func TestLoadRejects(t *testing.T) {
	good := mustBytes(t, convBNRelu())
	mutate := func(f func(m *Model)) []byte {
		m := convBNRelu()
		f(m)
		return mustBytes(t, m)
	}
	rnd := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(rnd)
	cases := []struct {
		name  string
		data  []byte
		lim   *Limits
		want  error
		words string
	}{
		{"empty", nil, nil, ErrNotONNX, "empty"},
		{"random bytes", rnd, nil, ErrNotONNX, "not an ONNX model"},
		{"text", []byte("hello, this is not a model\n"), nil, ErrNotONNX, "not an ONNX model"},
		{"truncated", good[:len(good)/2], nil, ErrNotONNX, "truncated"},
		{"over the size cap", good, &Limits{MaxFileBytes: 100}, ErrTooLarge, "limit"},
		{"dangling input", mutate(func(m *Model) { m.Graph().Node[2].Input[0] = "nowhere" }), nil, ErrInvalidModel, `"nowhere"`},
		{"cycle", mutate(func(m *Model) {
			m.Graph().Node[0].Input[0] = "y"
		}), nil, ErrInvalidModel, "cycle"},
		{"duplicate value", mutate(func(m *Model) { m.Graph().Node[2].Output[0] = "c1" }), nil, ErrInvalidModel, "defined twice"},
		{"duplicate node name", mutate(func(m *Model) { m.Graph().Node[2].Name = "conv1" }), nil, ErrInvalidModel, "two nodes"},
		{"duplicate initializer", mutate(func(m *Model) {
			m.Graph().Initializer = append(m.Graph().Initializer, FloatTensor("bn1.bias", []int64{2}, []float32{0, 0}))
		}), nil, ErrInvalidModel, "defined twice"},
		{"raw size mismatch", mutate(func(m *Model) { m.Graph().Initializer[1].RawData = m.Graph().Initializer[1].RawData[:4] }), nil, ErrInvalidModel, "holds 4 bytes"},
		{"float_data count", mutate(func(m *Model) {
			t := m.Graph().Initializer[2]
			t.RawData = nil
			t.FloatData = []float32{1, 2, 3}
		}), nil, ErrInvalidModel, "float_data holds 3"},
		{"dims overflow", mutate(func(m *Model) { m.Graph().Initializer[1].Dims = []int64{1 << 40, 1 << 40} }), nil, ErrInvalidModel, "overflow"},
		{"negative dim", mutate(func(m *Model) { m.Graph().Initializer[1].Dims = []int64{-2} }), nil, ErrInvalidModel, "negative"},
		{"huge declared tensor", mutate(func(m *Model) { m.Graph().Initializer[1].Dims = []int64{1 << 20, 1 << 20} }), nil, ErrTooLarge, "limit"},
		{"node without outputs", mutate(func(m *Model) { m.Graph().Node[1].Output = nil }), nil, ErrInvalidModel, "produces no output"},
		{"node with empty outputs", mutate(func(m *Model) { m.Graph().Node[1].Output = []string{"", ""} }), nil, ErrInvalidModel, "produces no output"},
		{"missing output", mutate(func(m *Model) { m.Graph().Output[0].Name = "zzz" }), nil, ErrInvalidModel, "not produced"},
		{"no opset", mutate(func(m *Model) { m.Proto.OpsetImport = nil }), nil, ErrInvalidModel, "opset"},
		{"too many nodes", good, &Limits{MaxNodes: 2}, ErrTooLarge, "nodes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "m.onnx")
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			lim := DefaultLimits()
			if c.lim != nil {
				lim = *c.lim
			}
			_, err := LoadWithLimits(p, lim)
			if err == nil {
				t.Fatalf("want error %v, got none", c.want)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("want %v, got %v", c.want, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, c.words) || !strings.HasPrefix(msg, "onnxio: ") || !strings.Contains(msg, "m.onnx") {
				t.Fatalf("message should be one line starting with onnxio:, name the file, and contain %q: %q", c.words, msg)
			}
		})
	}
}

// externalModel returns a model whose conv weight lives in an external file.
func externalModel(loc string, offset, length int64) *Model {
	m := convBNRelu()
	w := m.Graph().Initializer[0]
	w.RawData = nil
	w.DataLocation = onnxpb.TensorProto_EXTERNAL
	w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: loc}}
	if offset >= 0 {
		w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: "offset", Value: strconv.FormatInt(offset, 10)})
	}
	if length >= 0 {
		w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: "length", Value: strconv.FormatInt(length, 10)})
	}
	return m
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	want := convBNRelu().Graph().Initializer[0].RawData // 18 floats = 72 bytes
	// 8 bytes of padding before the tensor, to exercise the offset.
	blob := append(make([]byte, 8), want...)
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	p := writeModel(t, dir, "ext.onnx", externalModel("weights.bin", 8, int64(len(want))))
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasExternalData() {
		t.Fatal("external tensor not detected")
	}
	got, err := m.Floats(m.Graph().Initializer[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if w := math.Float32frombits(binary.LittleEndian.Uint32(want[4*i:])); v != w {
			t.Fatalf("value %d: got %v want %v", i, v, w)
		}
	}
	// Saving elsewhere inlines the data: the copy stands alone.
	other := t.TempDir()
	if err := m.Save(filepath.Join(other, "copy.onnx")); err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join(other, "copy.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HasExternalData() || !bytes.Equal(c.Graph().Initializer[0].RawData, want) {
		t.Fatal("saved copy should hold the external data inline")
	}
	// The original model was not changed by Save.
	if !m.HasExternalData() {
		t.Fatal("Save modified its model")
	}
}

func TestExternalDataRejects(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(parent, "secret.bin")
	if err := os.WriteFile(secret, make([]byte, 72), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "short.bin"), make([]byte, 40), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, loc      string
		offset, length int64
		want           error
		words          string
	}{
		{"parent folder", "../secret.bin", -1, -1, ErrUnsafePath, "leaves the folder"},
		{"nested climb", "a/../../secret.bin", -1, -1, ErrUnsafePath, "leaves the folder"},
		{"absolute", secret, -1, -1, ErrUnsafePath, "absolute"},
		{"symlink out", "link.bin", -1, -1, ErrUnsafePath, "links outside"},
		{"missing file", "nothere.bin", -1, -1, ErrInvalidModel, "cannot be opened"},
		{"past the end", "short.bin", 0, 72, ErrInvalidModel, "past the end"},
		{"length mismatch", "short.bin", 0, 40, ErrInvalidModel, "holds 40 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeModel(t, dir, "m.onnx", externalModel(c.loc, c.offset, c.length))
			_, err := Load(p)
			if !errors.Is(err, c.want) {
				t.Fatalf("want %v, got %v", c.want, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, c.words) {
				t.Fatalf("message should be one line containing %q: %q", c.words, msg)
			}
		})
	}
	// A model decoded from bytes has no folder: external data is refused.
	_, err := Decode(mustBytes(t, externalModel("weights.bin", -1, -1)), "", DefaultLimits())
	if !errors.Is(err, ErrInvalidModel) {
		t.Fatalf("want ErrInvalidModel for external data without a folder, got %v", err)
	}
}

func TestIndex(t *testing.T) {
	m := convBNRelu()
	// Shuffle the nodes: the index must still find a topological order.
	g := m.Graph()
	g.Node[0], g.Node[2] = g.Node[2], g.Node[0]
	mustValid(t, m)
	ix, err := NewIndex(m)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for k, i := range ix.Order {
		pos[ix.Node(i).GetName()] = k
	}
	if !(pos["conv1"] < pos["bn1"] && pos["bn1"] < pos["relu1"]) {
		t.Fatalf("bad topological order %v", pos)
	}
	if p := ix.ProducerOf("c1"); p == nil || p.GetName() != "conv1" {
		t.Fatalf("producer of c1: %v", p)
	}
	if c := ix.Consumers["b1"]; len(c) != 1 || ix.Node(c[0]).GetName() != "relu1" {
		t.Fatalf("consumers of b1: %v", c)
	}
	if ix.Initializers["conv1.weight"] == nil || ix.Inputs["x"] == nil || !ix.Outputs["y"] {
		t.Fatal("index misses initializers, inputs or outputs")
	}
	if ix.Opsets[""] != 14 {
		t.Fatalf("opset: %v", ix.Opsets)
	}
	if d, ok := ix.Shape("x"); !ok || len(d) != 4 || d[0] != -1 || d[1] != 1 {
		t.Fatalf("shape of x: %v %v", d, ok)
	}
	if c := ix.OpCounts(); c["Conv"] != 1 || c["BatchNormalization"] != 1 || c["Relu"] != 1 {
		t.Fatalf("op counts: %v", c)
	}
}

func TestHalfToFloat(t *testing.T) {
	// Values from the IEEE 754 binary16 definition.
	cases := map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x3555: 0.333251953125, 0x0001: 5.9604645e-08, 0x7bff: 65504, 0x0000: 0}
	for h, want := range cases {
		if got := halfToFloat(h); got != want {
			t.Errorf("half %#04x: got %v want %v", h, got, want)
		}
	}
	if !math.IsInf(float64(halfToFloat(0x7c00)), 1) {
		t.Error("0x7c00 should be +Inf")
	}
}
