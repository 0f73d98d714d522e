package ort

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LibraryEnv is the environment variable that names the ONNX Runtime shared
// library. It is the variable onnxruntime_go's own tests use.
const LibraryEnv = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// InstallDirEnv overrides the directory scripts/install-ort.sh installs into
// and DefaultInstallPath points at.
const InstallDirEnv = "BNAUDIT_ORT_DIR"

// InstallVersion is the ONNX Runtime version scripts/install-ort.sh installs.
const InstallVersion = "1.30.0"

// libraryName is the file name scripts/install-ort.sh installs.
const libraryName = "libonnxruntime.so.1"

// ErrNoLibrary is wrapped by every error that means the ONNX Runtime shared
// library could not be found. Callers branch on it with errors.Is.
var ErrNoLibrary = errors.New("ort: ONNX Runtime library not found")

// systemDirs and systemNames are searched, in order, after the explicit path,
// the environment variable and the install location. Tests replace them.
var (
	systemDirs  = []string{"/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu"}
	systemNames = []string{"libonnxruntime.so", "libonnxruntime.so.1"}
)

// DefaultInstallPath returns where scripts/install-ort.sh installs the
// library: $BNAUDIT_ORT_DIR/libonnxruntime.so.1 when that variable is set,
// otherwise $XDG_CACHE_HOME/bnaudit/onnxruntime-1.30.0/libonnxruntime.so.1,
// with $HOME/.cache standing in for an unset or empty XDG_CACHE_HOME. It
// returns "" when neither variable nor HOME is set. The file may not exist.
func DefaultInstallPath() string {
	return defaultInstallPath(os.Getenv)
}

func defaultInstallPath(getenv func(string) string) string {
	if dir := getenv(InstallDirEnv); dir != "" {
		return filepath.Join(dir, libraryName)
	}
	cache := getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			return ""
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "bnaudit", "onnxruntime-"+InstallVersion, libraryName)
}

// ResolveLibrary returns the path of the ONNX Runtime shared library to load.
// It tries, in order:
//
//  1. explicit, when non-empty (the CLI's --ort-lib);
//  2. $ONNXRUNTIME_SHARED_LIBRARY_PATH, when non-empty;
//  3. DefaultInstallPath;
//  4. libonnxruntime.so and libonnxruntime.so.1 in /usr/lib, /usr/local/lib
//     and /usr/lib/x86_64-linux-gnu.
//
// A path named by 1 or 2 must exist: a missing one is an error, not a reason
// to look further, so a typo never silently loads another library. Every
// candidate must be a non-empty regular file (symbolic links are followed).
// When nothing is found the error wraps ErrNoLibrary and is one line saying
// where it looked and what to do.
func ResolveLibrary(explicit string) (string, error) {
	return resolveLibrary(explicit, os.Getenv)
}

func resolveLibrary(explicit string, getenv func(string) string) (string, error) {
	if explicit != "" {
		if err := checkLibraryFile(explicit); err != nil {
			return "", fmt.Errorf("%w: %s (given with --ort-lib) %v; fix the path or run bnaudit setup (or scripts/install-ort.sh)", ErrNoLibrary, explicit, err)
		}
		return explicit, nil
	}
	if p := getenv(LibraryEnv); p != "" {
		if err := checkLibraryFile(p); err != nil {
			return "", fmt.Errorf("%w: %s (from %s) %v; fix the variable or run bnaudit setup (or scripts/install-ort.sh)", ErrNoLibrary, p, LibraryEnv, err)
		}
		return p, nil
	}
	var looked []string
	if p := defaultInstallPath(getenv); p != "" {
		if checkLibraryFile(p) == nil {
			return p, nil
		}
		looked = append(looked, p)
	}
	for _, dir := range systemDirs {
		for _, name := range systemNames {
			p := filepath.Join(dir, name)
			if checkLibraryFile(p) == nil {
				return p, nil
			}
		}
		looked = append(looked, filepath.Join(dir, "libonnxruntime.so{,.1}"))
	}
	return "", fmt.Errorf("%w (looked in %s); run bnaudit setup (or scripts/install-ort.sh) or set %s / --ort-lib",
		ErrNoLibrary, strings.Join(looked, ", "), LibraryEnv)
}

// checkLibraryFile reports, as a short phrase, why path cannot be the library.
func checkLibraryFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("does not exist")
	case err != nil:
		return fmt.Errorf("cannot be read: %v", unwrapPathError(err))
	case fi.IsDir():
		return errors.New("is a directory, not the library file")
	case !fi.Mode().IsRegular():
		return errors.New("is not a regular file")
	case fi.Size() == 0:
		return errors.New("is empty")
	}
	return nil
}

// unwrapPathError drops the "stat <path>:" prefix the caller already prints.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
