// Package ort owns bnaudit's ONNX Runtime environment and runs ONNX models
// through github.com/yalue/onnxruntime_go. It is the only package of the
// project that needs cgo; everything else hands it model bytes and plain Go
// tensors.
//
// # Library and environment
//
// onnxruntime_go loads the ONNX Runtime shared library with dlopen at run
// time, so building needs cgo but not the library. ResolveLibrary finds it:
// an explicit path (the CLI's --ort-lib), then $ONNXRUNTIME_SHARED_LIBRARY_PATH,
// then the project install location (DefaultInstallPath, filled by
// scripts/install-ort.sh), then /usr/lib, /usr/local/lib and
// /usr/lib/x86_64-linux-gnu. When nothing is found the error wraps
// ErrNoLibrary and says in one line what to do.
//
// Init resolves, loads and creates the process-wide ORT environment once; a
// failed Init keeps returning its error. Close destroys the environment when
// no Session is open; the library cannot be loaded again afterwards.
//
//	if err := ort.Init(libFlag); err != nil {
//		return err // errors.Is(err, ort.ErrNoLibrary) when it is missing
//	}
//	defer ort.Close()
//
// # Sessions
//
// NewSession builds a Session from ONNX bytes with chosen input and output
// names; NewSessionAuto uses every graph input and output, and ModelInfo
// lists them with their element types and shapes. SessionOptions picks the
// number of intra-op threads and the device: "cpu", or "cuda", which fails
// with an error wrapping ErrNoCUDA when the loaded library lacks the CUDA
// execution provider (the npm CPU build does).
//
// Session.Run takes and returns Tensor values, plain Go slices of float32,
// int64 or bool, and checks inputs against the model's declared types and
// shapes before calling ORT, so mistakes come back as errors naming the
// input. Session.RunContext stops a long run through ORT's terminate flag
// when its context is done. Session.RunValues is the low-level path taking
// onnxruntime_go values, for callers that reuse buffers.
//
// # onnxruntime_go traps handled here
//
//   - A model without graph inputs makes onnxruntime_go's Run index an empty
//     slice and panic; NewSession rejects such models.
//   - onnxruntime_go cannot wrap a 0-d output that ORT allocated ("The shape
//     has no dimensions"), so Run pre-allocates 0-d outputs. ORT reports an
//     unknown-rank value with zero dimensions too; the package reads the
//     model's declarations to tell the two apart (IOInfo.ShapeKnown).
//   - InitializeEnvironment is process-global and fails when called twice;
//     Init is the single caller.
//   - The version string points into the loaded library, which Close
//     unloads; Version returns a copy taken at Init.
package ort
