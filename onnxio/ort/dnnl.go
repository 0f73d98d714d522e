package ort

import (
	"os"
	"path/filepath"
	"strings"
)

// DNNLEnv chooses the oneDNN custom-op library (trainer/dnnl) bnaudit's
// CPU training sessions register: unset, "on" (or "1", "true", "auto")
// use the library at DNNLDefaultPath when it is installed; "off" (or "0",
// "false") never use one; any other value names a library file.
const DNNLEnv = "BNAUDIT_DNNL"

// DNNLDefaultPath is where scripts/build-dnnl.sh installs the oneDNN
// custom-op library: bnaudit/dnnl/libbnaudit_dnnl.so under the user's
// cache folder ("" when there is none).
func DNNLDefaultPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "bnaudit", "dnnl", "libbnaudit_dnnl.so")
}

// ResolveDNNL reads a value of BNAUDIT_DNNL: the library to register (""
// for none) and whether the user turned the library off. The default
// (unset or "on") with nothing installed gives ("", false): wanted but
// absent.
func ResolveDNNL(env string) (path string, off bool) {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "off", "0", "false":
		return "", true
	case "", "on", "1", "true", "auto":
		if p := DNNLDefaultPath(); p != "" {
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, false
			}
		}
		return "", false
	}
	return strings.TrimSpace(env), false
}
