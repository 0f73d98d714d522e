package ort

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// ONNX Runtime reports a graph input or output whose TypeProto has no shape
// (unknown rank) with zero dimensions, exactly like a declared 0-d scalar.
// The difference matters: a 0-d output must be pre-allocated (onnxruntime_go
// cannot wrap an ORT-allocated 0-d value), while an unknown-rank one must
// not. shapeDeclared reads just enough of the ModelProto to tell them apart.
//
// Field numbers from onnx.proto: ModelProto.graph = 7; GraphProto.input = 11,
// output = 12; ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1;
// TypeProto.Tensor.shape = 2.

// shapeDeclared maps each graph input and output name to whether its tensor
// type carries a shape field. Malformed bytes give a partial (possibly empty)
// map: ORT rejects such a model anyway.
func shapeDeclared(model []byte) map[string]bool {
	out := map[string]bool{}
	forEachField(model, func(num protowire.Number, v []byte) {
		if num != 7 {
			return
		}
		forEachField(v, func(num protowire.Number, v []byte) {
			if num == 11 || num == 12 {
				name, has := valueInfoShape(v)
				out[name] = has
			}
		})
	})
	return out
}

func valueInfoShape(vi []byte) (name string, hasShape bool) {
	forEachField(vi, func(num protowire.Number, v []byte) {
		switch num {
		case 1:
			name = string(v)
		case 2:
			forEachField(v, func(num protowire.Number, v []byte) {
				if num != 1 {
					return
				}
				forEachField(v, func(num protowire.Number, _ []byte) {
					if num == 2 {
						hasShape = true
					}
				})
			})
		}
	})
	return name, hasShape
}

// forEachField calls fn for every length-delimited field of the message b
// and skips the others. It stops quietly at the first malformed field.
func forEachField(b []byte, fn func(protowire.Number, []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return
			}
			fn(num, v)
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return
		}
		b = b[m:]
	}
}
