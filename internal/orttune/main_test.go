package orttune

import (
	"os"
	"path/filepath"
	"testing"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

var envErr error

func TestMain(m *testing.M) {
	lib := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH")
	if lib == "" {
		home, _ := os.UserHomeDir()
		lib = filepath.Join(home, ".cache", "bnaudit", "onnxruntime-1.30.0", "libonnxruntime.so.1")
	}
	if _, envErr = os.Stat(lib); envErr == nil {
		onnxruntime.SetSharedLibraryPath(lib)
		envErr = onnxruntime.InitializeEnvironment()
	}
	code := m.Run()
	if envErr == nil {
		onnxruntime.DestroyEnvironment()
	}
	os.Exit(code)
}

func requireORT(tb testing.TB) {
	if envErr != nil {
		tb.Skipf("needs the ONNX Runtime library (scripts/install-ort.sh): %v", envErr)
	}
}
