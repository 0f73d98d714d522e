// Package onnxio reads, checks, indexes and writes ONNX models, locates
// and ablates their BatchNormalization layers, and upgrades models of old
// opsets.
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
//
// # Old opsets
//
// Upgrade rewrites a model of opset 6 to 12 into one of opset 13 to 17
// with the same outputs (upgrade.go, with one rule per changed op in
// upgrade_rules.go, written from the ONNX operator changelog): attributes
// that became inputs (axes, split, pads, clip bounds, Dropout's ratio,
// Slice's bounds, TopK's k), BatchNormalization's and Dropout's old
// outputs and mode attributes, Softmax's old 2-D coercion, Upsample and
// Resize-10 as Resize, opset 6's broadcast attributes. Ops whose definitions
// only widened keep their nodes; any other changed op is refused with
// ErrCannotUpgrade, naming the node, the op and the opset. The trainer
// trains old models through it.
package onnxio
