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
// when its context is done.
//
// # Buffers reused across runs
//
// A training loop runs the same session thousands of times and should not
// copy its tensors each time. A Value (NewFloat32, NewInt64) hands ORT a Go
// slice once: ORT reads inputs from it and writes outputs into it on every
// Session.RunValues, which takes Values in the order of Session.Inputs and
// Session.Outputs and stops through the terminate flag as RunContext does.
// A 0-d Value keeps its element apart from the caller's memory; SetScalar
// changes it between runs.
//
//	x, _ := ort.NewFloat32([]int64{b, 1, 28, 28}, xbuf) // refill xbuf, run again
//	defer x.Destroy()
//	err := s.RunValues(ctx, []*ort.Value{x, ...}, []*ort.Value{loss, ...})
//
// # Choices made for the trainer
//
// SessionOptions.NCHWc says how far bnaudit's trainer rewrites its graphs
// for ORT's blocked-layout CPU kernels (NCHWcAll by default, NCHWcConv,
// NCHWcOff; ParseNCHWc reads a user's spelling). It is set by the program
// at its edge, never read from the environment; Session itself runs the
// bytes it is given. NCHWcBlock says whether the loaded library has those
// kernels on this CPU. SessionOptions.ProfilePrefix turns on ORT's profiler.
//
// All of bnaudit's ONNX Runtime calls go through this package: no other
// package imports onnxruntime_go (onnxio/ort/contracttest, which checks that a
// plain onnxruntime_go program can run the exported step graph, is the
// deliberate exception).
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
