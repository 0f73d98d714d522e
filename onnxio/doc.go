// Package onnxio reads, checks, indexes and writes ONNX models, and locates
// and ablates their BatchNormalization layers.
//
// It is pure Go: the message types come from package onnxpb, generated from
// a schema bnaudit wrote from the ONNX IR specification, and decoding uses
// google.golang.org/protobuf. Nothing here needs ONNX Runtime; package
// onnxio/ort runs the models this package produces.
//
// # Loading untrusted files
//
// Load and LoadWithLimits treat every file as hostile: a size cap is checked
// before reading, protobuf decoding errors become ErrNotONNX, and Validate
// refuses models with dangling inputs, cycles, names defined twice, tensors
// whose declared shape does not match their data, and external-data
// locations that leave the model's folder (ErrUnsafePath). Every error is
// one line that names the file and says what is wrong.
//
// # Transforms
//
// Ablate (modes fold, remove, freeze, groupnorm) and EvalMode take a model
// and return a new one; they never modify their input. Names they create are
// derived from the BN node's name ("bn1/groupnorm/normalize", "bn1.gn.weight").
// A freeze ablation records the frozen nodes in the model's metadata under
// MetaFrozenBN so that the trainer keeps them on running statistics.
package onnxio
