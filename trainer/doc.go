// Package trainer trains ONNX models with ONNX graphs: it writes a model's
// whole training step — forward pass, softmax cross-entropy (or, for a
// regression, the Gaussian NLL of float targets: Loss), backward pass and
// optimizer update — as one standard ONNX graph, and runs it on ONNX
// Runtime (package onnxio/ort), on CPU or GPU.
//
// # Graphs
//
// BuildStep writes the step under the naming contract of the README (P,
// P.next, P.m, S.next, loss, labels, lr, step); BuildEval the evaluation
// graph (BatchNorm on running statistics); BuildGradNorms per-sample
// gradient norms, eval-mode and in-batch. They are pure graph building:
// static shape inference (infer.go) for a fixed batch size, then
// reverse-mode autodiff (autodiff.go) with one gradient rule per op. Each
// op is registered once, with its arity, shape rule, gradient rule and the
// rest of what the trainer knows about it, in the ops_*.go file of its
// family (ops.go). BatchNorm with batch statistics and the loss are
// composites with closed-form backward.
// Initialize re-draws weights with PyTorch's default rules. A model of an
// opset before 13 is first upgraded to opset 17 (Upgrade, onnxio.Upgrade):
// every builder does it, and Train trains and returns the upgraded model
// and says so once in its log.
//
// # Runs
//
// Train runs a training run (seeded data order, partial last batch,
// schedules, augmentation, checkpoints with bit-identical resume,
// cancellation between steps); Evaluate and GradNorms run the evaluation
// and gradient-norm graphs over a data set. Subpackage dataset reads the
// data.
//
// # The CPU session's graph
//
// What bnaudit runs on the CPU is not quite the graph it builds and
// exports: SessionModel rewrites it for ONNX Runtime's blocked NCHWc
// kernels (nchwc.go, nchwc_layout.go) — convolutions, weight gradients
// from the blocked tensors, activations kept blocked between convolutions —
// because ORT does this by itself only for constant weights. The rewrite
// uses ORT's com.microsoft.nchwc operators; ort.SessionOptions.NCHWc (the CLI's --nchwc, or BNAUDIT_NCHWC) turns it off (off) or keeps only the convolutions (conv).
// Where the custom-op library built from trainer/dnnl is installed (scripts/build-dnnl.sh) and BNAUDIT_DNNL does not turn it off, the eligible weight gradients of those CPU sessions, the input gradients of strided convolutions and BatchNorm's backward are computed by oneDNN instead (nchwc_dnnl.go); not installed, the first session says once that they run as standard graphs.
package trainer
