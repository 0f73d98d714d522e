package ort

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLib writes a non-empty file standing in for the library.
func fakeLib(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not really ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withSystemDirs points the system search at dirs for one test.
func withSystemDirs(t *testing.T, dirs ...string) {
	t.Helper()
	old := systemDirs
	systemDirs = dirs
	t.Cleanup(func() { systemDirs = old })
}

func TestDefaultInstallPath(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"install dir wins", map[string]string{"BNAUDIT_ORT_DIR": "/opt/ort", "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/opt/ort/libonnxruntime.so.1"},
		{"xdg cache", map[string]string{"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/bnaudit/onnxruntime-1.30.0/libonnxruntime.so.1"},
		{"empty xdg falls back to home", map[string]string{"XDG_CACHE_HOME": "", "HOME": "/home/u"}, "/home/u/.cache/bnaudit/onnxruntime-1.30.0/libonnxruntime.so.1"},
		{"nothing set", map[string]string{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := defaultInstallPath(func(k string) string { return tc.env[k] })
			if got != tc.want {
				t.Errorf("want %q, got %q", tc.want, got)
			}
		})
	}
}

func TestDefaultInstallPathReadsEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(InstallDirEnv, dir)
	if got, want := DefaultInstallPath(), filepath.Join(dir, "libonnxruntime.so.1"); got != want {
		t.Errorf("want %q, got %q", want, got)
	}
}

func TestResolveLibraryOrder(t *testing.T) {
	root := t.TempDir()
	explicit := fakeLib(t, filepath.Join(root, "explicit", "libonnxruntime.so"))
	fromEnv := fakeLib(t, filepath.Join(root, "env", "libonnxruntime.so"))
	installDir := filepath.Join(root, "install")
	installed := fakeLib(t, filepath.Join(installDir, "libonnxruntime.so.1"))
	sys1 := filepath.Join(root, "sys1")
	sys2 := filepath.Join(root, "sys2")
	sys2Lib := fakeLib(t, filepath.Join(sys2, "libonnxruntime.so.1"))
	if err := os.MkdirAll(sys1, 0o755); err != nil {
		t.Fatal(err)
	}
	withSystemDirs(t, sys1, sys2)

	tests := []struct {
		name     string
		explicit string
		env      string
		install  string
		want     string
	}{
		{"explicit first", explicit, fromEnv, installDir, explicit},
		{"then environment", "", fromEnv, installDir, fromEnv},
		{"then install location", "", "", installDir, installed},
		{"then system dirs", "", "", filepath.Join(root, "nowhere"), sys2Lib},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(LibraryEnv, tc.env)
			t.Setenv(InstallDirEnv, tc.install)
			got, err := ResolveLibrary(tc.explicit)
			if err != nil || got != tc.want {
				t.Errorf("want %q, got %q (err %v)", tc.want, got, err)
			}
		})
	}
}

func TestResolveLibrarySystemNames(t *testing.T) {
	dir := t.TempDir()
	withSystemDirs(t, dir)
	t.Setenv(LibraryEnv, "")
	t.Setenv(InstallDirEnv, filepath.Join(dir, "nowhere"))
	so1 := fakeLib(t, filepath.Join(dir, "libonnxruntime.so.1"))
	if got, err := ResolveLibrary(""); err != nil || got != so1 {
		t.Errorf("only .so.1 present: want %q, got %q (err %v)", so1, got, err)
	}
	so := fakeLib(t, filepath.Join(dir, "libonnxruntime.so"))
	if got, err := ResolveLibrary(""); err != nil || got != so {
		t.Errorf("both present: want the unversioned %q first, got %q (err %v)", so, got, err)
	}
}

// A path the user names must exist; the search must not quietly fall back.
func TestResolveLibraryNamedPathMustExist(t *testing.T) {
	root := t.TempDir()
	installDir := filepath.Join(root, "install")
	fakeLib(t, filepath.Join(installDir, "libonnxruntime.so.1"))
	empty := filepath.Join(root, "empty.so")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	withSystemDirs(t)
	t.Setenv(InstallDirEnv, installDir)

	tests := []struct {
		name     string
		explicit string
		env      string
		wantIn   []string
	}{
		{"explicit missing", filepath.Join(root, "typo.so"), "", []string{"typo.so", "given with --ort-lib", "does not exist"}},
		{"explicit directory", root, "", []string{"is a directory"}},
		{"explicit empty file", empty, "", []string{"is empty"}},
		{"environment missing", "", filepath.Join(root, "gone.so"), []string{"gone.so", LibraryEnv, "does not exist"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(LibraryEnv, tc.env)
			got, err := ResolveLibrary(tc.explicit)
			if err == nil {
				t.Fatalf("want an error, got path %q", got)
			}
			if !errors.Is(err, ErrNoLibrary) {
				t.Errorf("error does not wrap ErrNoLibrary: %v", err)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestResolveLibraryNotFound(t *testing.T) {
	root := t.TempDir()
	sys := filepath.Join(root, "sys")
	withSystemDirs(t, sys)
	t.Setenv(LibraryEnv, "")
	t.Setenv(InstallDirEnv, filepath.Join(root, "install"))

	_, err := ResolveLibrary("")
	if err == nil {
		t.Fatal("want an error")
	}
	if !errors.Is(err, ErrNoLibrary) {
		t.Errorf("error does not wrap ErrNoLibrary: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, s := range []string{"ort: ", filepath.Join(root, "install", "libonnxruntime.so.1"), sys, "scripts/install-ort.sh", LibraryEnv, "--ort-lib"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
}
