// Package onnxpb holds the Go types of the ONNX serialization format,
// generated from onnx.proto, which bnaudit wrote from the ONNX IR
// specification. Use package onnxio to read and write models; this package
// only carries the message types.
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto
