// Package bnaudit holds what the bnaudit binary carries with it: the
// bundled model and the demo's data subsets, embedded from testdata so that
// `bnaudit demo` works without a clone of the repository. The command and
// the library live in cmd/bnaudit, study, audit, trainer and onnxio.
//
// The embedding package sits at the module root because go:embed cannot
// reach a parent folder, and the files live in testdata beside the scripts
// that made them (the go tool skips testdata when it looks for packages,
// but embeds files from it).
package bnaudit

import (
	"embed"
	"io/fs"
)

//go:embed testdata/models/small_cnn.training.onnx
//go:embed testdata/fashion-mnist/*-ubyte.gz
//go:embed testdata/mnist-canaries/*-ubyte.gz
var bundle embed.FS

// The bundled files' paths, relative to the bundle's root (and to the
// repository's).
const (
	// BundleModel is the small CNN with BatchNorm (training export).
	BundleModel = "testdata/models/small_cnn.training.onnx"
	// BundleData is the Fashion-MNIST subset (IDX, gzip).
	BundleData = "testdata/fashion-mnist"
	// BundleCanaries is the MNIST digits used as canaries (IDX, gzip).
	BundleCanaries = "testdata/mnist-canaries"
)

// Bundle returns the bundled files, at the paths they have in the
// repository.
func Bundle() fs.FS { return bundle }
