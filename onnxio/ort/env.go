package ort

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNotInitialized is returned by functions that need the ORT environment
// when Init has not succeeded.
var ErrNotInitialized = errors.New("ort: environment not initialized; call ort.Init first")

// ErrClosed is returned by Init after Close: ONNX Runtime's environment is
// process-global and this package does not load the library a second time.
var ErrClosed = errors.New("ort: environment closed")

// env is the process-wide ORT environment this package owns.
var env struct {
	mu       sync.Mutex
	done     bool   // Init has run (successfully or not)
	err      error  // Init's result, returned to every later caller
	closed   bool   // Close has destroyed the environment
	path     string // the library loaded
	version  string // its version string, read while it was loaded
	sessions int    // open Sessions; Close refuses while any are open
}

// Init resolves the ONNX Runtime library with ResolveLibrary(explicit), loads
// it and creates the process-wide ORT environment. Only the first call that
// finds a library does the work; later calls return its result, error
// included, so a program can call Init from every entry point. A call that
// finds no library (ErrNoLibrary) loads nothing and leaves a later call free
// to try another path. A later call with a non-empty explicit
// path that differs from the library already loaded is an error.
//
// ORT's own logging is set to errors only, so warnings such as unused
// initializers do not reach stderr.
func Init(explicit string) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.closed {
		return ErrClosed
	}
	if env.done {
		if env.err == nil && explicit != "" && !samePath(explicit, env.path) {
			return fmt.Errorf("ort: environment already initialized with %s, cannot switch to %s", env.path, explicit)
		}
		return env.err
	}
	err := initLocked(explicit)
	if errors.Is(err, ErrNoLibrary) {
		return err
	}
	env.done = true
	env.err = err
	return env.err
}

func initLocked(explicit string) error {
	path, err := ResolveLibrary(explicit)
	if err != nil {
		return err
	}
	if ort.IsInitialized() {
		return errors.New("ort: onnxruntime_go was initialized outside package ort; only package ort may initialize it")
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("ort: load %s: %s", path, describeInitError(err))
	}
	env.path = path
	env.version = ort.GetVersion()
	return nil
}

// describeInitError rewrites onnxruntime_go's terse failure for a library
// older than its C API into something a user can act on.
func describeInitError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "Platform-specific initialization failed: ")
	if strings.Contains(msg, "Error looking up OrtGetApiBase") {
		return "not an ONNX Runtime library (it has no OrtGetApiBase symbol)"
	}
	if strings.Contains(msg, "Error setting ORT API base") {
		return msg + " (the library is older than the ONNX Runtime C API version 24 that onnxruntime_go v1.27 needs; install ONNX Runtime " + InstallVersion + " with scripts/install-ort.sh)"
	}
	return msg
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}

// Close destroys the ORT environment and unloads the library. It fails while
// Sessions are still open. After Close, Init returns ErrClosed. Close without
// a successful Init does nothing.
func Close() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if !env.done || env.err != nil || env.closed {
		return nil
	}
	if env.sessions > 0 {
		return fmt.Errorf("ort: close: %d session(s) still open", env.sessions)
	}
	env.closed = true
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("ort: close: %v", err)
	}
	return nil
}

// Version returns the loaded ONNX Runtime's version ("1.30.0"), or "" before
// a successful Init.
func Version() string {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.version
}

// LibraryPath returns the path of the loaded library, or "" before a
// successful Init.
func LibraryPath() string {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.path
}

// acquire registers a new session; it fails unless the environment is up.
func acquire() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.closed {
		return ErrClosed
	}
	if !env.done || env.err != nil {
		return ErrNotInitialized
	}
	env.sessions++
	return nil
}

func release() {
	env.mu.Lock()
	env.sessions--
	env.mu.Unlock()
}

// ready reports whether the environment is up, as an error.
func ready() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.closed {
		return ErrClosed
	}
	if !env.done || env.err != nil {
		return ErrNotInitialized
	}
	return nil
}
