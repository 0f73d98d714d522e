package ort

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// initErr is the result of the one Init in TestMain.
var initErr error

func TestMain(m *testing.M) {
	initErr = Init("")
	code := m.Run()
	if initErr == nil {
		if err := Close(); err != nil {
			fmt.Fprintln(os.Stderr, "ort.Close:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// requireORT skips the test when the ONNX Runtime library is missing, the
// one capability these tests need, and fails it when the library was found
// but could not be loaded. With BNAUDIT_REQUIRE_ORT set (as .ci/run does)
// a missing library fails the test instead of skipping it.
func requireORT(t testing.TB) {
	t.Helper()
	switch {
	case initErr == nil:
	case errors.Is(initErr, ErrNoLibrary) && os.Getenv("BNAUDIT_REQUIRE_ORT") != "":
		t.Fatalf("BNAUDIT_REQUIRE_ORT is set but the ONNX Runtime library is missing: %v", initErr)
	case errors.Is(initErr, ErrNoLibrary):
		t.Skipf("needs the ONNX Runtime library: run scripts/install-ort.sh or set %s (%v)", LibraryEnv, initErr)
	default:
		t.Fatalf("Init: %v", initErr)
	}
}
