package orttune

import (
	"os"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/ort"
)

var envErr error

// TestMain loads ONNX Runtime through onnxio/ort (the library it finds:
// ONNXRUNTIME_SHARED_LIBRARY_PATH, or scripts/install-ort.sh's cache), so
// that the trainer's session rewrites, which ask it about the CPU, apply
// here as in bnaudit.
func TestMain(m *testing.M) {
	envErr = ort.Init("")
	code := m.Run()
	if envErr == nil {
		ort.Close()
	}
	os.Exit(code)
}

func requireORT(tb testing.TB) {
	if envErr != nil {
		tb.Skipf("needs the ONNX Runtime library (scripts/install-ort.sh): %v", envErr)
	}
}
