package ort

// A minimal ONNX writer for tests, encoding just the fields the test models
// need with protowire. Field numbers follow onnx.proto3.

import (
	"encoding/binary"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// ONNX TensorProto.DataType values used by the test models.
const (
	onnxFloat = 1
	onnxInt64 = 7
	onnxBool  = 9
)

// dim is one dimension of a value's declared shape: a fixed size when
// param is empty, a named symbolic dimension otherwise.
type dim struct {
	value int64
	param string
}

func d(v int64) dim    { return dim{value: v} }
func sym(p string) dim { return dim{param: p} }
func dims(vs ...int64) []dim {
	out := make([]dim, len(vs))
	for i, v := range vs {
		out[i] = d(v)
	}
	return out
}

// valueInfo declares a graph input or output. A nil shape (with noShape set)
// leaves the TypeProto's shape field out entirely: unknown rank.
type valueInfo struct {
	name     string
	elemType int
	shape    []dim
	noShape  bool
}

type attr struct {
	name string
	i    int64
}

type node struct {
	op      string
	inputs  []string
	outputs []string
	attrs   []attr
}

type initializer struct {
	name  string
	dims  []int64
	f32   []float32
	int64 []int64
}

type graph struct {
	nodes        []node
	inputs       []valueInfo
	outputs      []valueInfo
	initializers []initializer
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func encodeValueInfo(v valueInfo) []byte {
	var tensorType []byte
	tensorType = appendVarintField(tensorType, 1, uint64(v.elemType))
	if !v.noShape {
		shape := []byte{} // present even when empty: rank 0
		for _, dm := range v.shape {
			var dd []byte
			if dm.param != "" {
				dd = appendStringField(dd, 2, dm.param)
			} else {
				dd = appendVarintField(dd, 1, uint64(dm.value))
			}
			shape = appendBytesField(shape, 1, dd)
		}
		tensorType = appendBytesField(tensorType, 2, shape)
	}
	typ := appendBytesField(nil, 1, tensorType)
	var b []byte
	b = appendStringField(b, 1, v.name)
	b = appendBytesField(b, 2, typ)
	return b
}

func encodeNode(n node, idx int) []byte {
	var b []byte
	for _, in := range n.inputs {
		b = appendStringField(b, 1, in)
	}
	for _, out := range n.outputs {
		b = appendStringField(b, 2, out)
	}
	b = appendStringField(b, 3, "node"+strconv.Itoa(idx))
	b = appendStringField(b, 4, n.op)
	for _, a := range n.attrs {
		var ab []byte
		ab = appendStringField(ab, 1, a.name)
		ab = appendVarintField(ab, 3, uint64(a.i))
		ab = appendVarintField(ab, 20, 2) // AttributeProto.INT
		b = appendBytesField(b, 5, ab)
	}
	return b
}

func encodeInitializer(in initializer) []byte {
	var b []byte
	for _, dv := range in.dims {
		b = appendVarintField(b, 1, uint64(dv))
	}
	var raw []byte
	switch {
	case in.f32 != nil:
		b = appendVarintField(b, 2, onnxFloat)
		for _, f := range in.f32 {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
	default:
		b = appendVarintField(b, 2, onnxInt64)
		for _, v := range in.int64 {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	}
	b = appendStringField(b, 8, in.name)
	b = appendBytesField(b, 9, raw)
	return b
}

// encode returns the ModelProto bytes of g at IR version 8, opset 17.
func (g graph) encode() []byte {
	var gb []byte
	for i, n := range g.nodes {
		gb = appendBytesField(gb, 1, encodeNode(n, i))
	}
	gb = appendStringField(gb, 2, "test")
	for _, in := range g.initializers {
		gb = appendBytesField(gb, 5, encodeInitializer(in))
	}
	for _, v := range g.inputs {
		gb = appendBytesField(gb, 11, encodeValueInfo(v))
	}
	for _, v := range g.outputs {
		gb = appendBytesField(gb, 12, encodeValueInfo(v))
	}
	var opset []byte
	opset = appendStringField(opset, 1, "")
	opset = appendVarintField(opset, 2, 17)
	var m []byte
	m = appendVarintField(m, 1, 8)
	m = appendBytesField(m, 7, gb)
	m = appendBytesField(m, 8, opset)
	return m
}
