package study

import (
	"errors"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// wantInvalid fails unless err wraps audit.ErrInvalidInput and reads as a
// bnaudit library error.
func wantInvalid(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want one wrapping ErrInvalidInput", name)
		return
	}
	if !errors.Is(err, audit.ErrInvalidInput) {
		t.Errorf("%s: error %q does not wrap ErrInvalidInput", name, err)
	}
	if !strings.HasPrefix(err.Error(), "audit: ") && !strings.HasPrefix(err.Error(), "study: ") {
		t.Errorf("%s: error %q lacks the package prefix", name, err)
	}
}
