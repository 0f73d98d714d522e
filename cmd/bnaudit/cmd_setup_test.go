package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNPM puts an npm on PATH (and nothing else) that answers `npm view`
// with registrySHA1 and `npm pack` with a copy of tarball, and logs its
// calls to the returned file.
func fakeNPM(t *testing.T, tarball, registrySHA1 string) string {
	t.Helper()
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	script := "#!/bin/sh\n" +
		"echo \"$*\" >> '" + calls + "'\n" +
		"case \"$1\" in\n" +
		"view) echo \"'" + registrySHA1 + "'\" ;;\n" +
		"pack) cat '" + tarball + "' > " + ortTarball + " ;;\n" +
		"*) echo \"npm ERR! unknown command $1\" >&2; exit 1 ;;\n" +
		"esac\n"
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":/usr/bin:/bin")
	return calls
}

// fakeTarball is a gzipped tarball like onnxruntime-node's, holding lib as
// its Linux x64 library, and its sha1.
func fakeTarball(t *testing.T, lib []byte) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		body []byte
	}{{"package/package.json", []byte(`{"name":"onnxruntime-node"}`)}, {ortMember, lib}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fake.tgz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(buf.Bytes())
	return path, hex.EncodeToString(sum[:])
}

func setupRun(t *testing.T, dest, sha string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	o := setupOptions{global: globalOptions{Stderr: &errb}, Dest: dest, sha1: sha}
	err := runSetup(context.Background(), o, &out)
	return out.String(), errb.String(), err
}

// TestSetupInstallsLibrary: setup with a fake npm installs the tarball's
// library at the install path and prints the path; run again, it prints
// the path without calling npm.
func TestSetupInstallsLibrary(t *testing.T) {
	lib := []byte("not really ELF, but the bytes setup must copy")
	tarball, sum := fakeTarball(t, lib)
	calls := fakeNPM(t, tarball, sum)
	dest := filepath.Join(t.TempDir(), "ort", "libonnxruntime.so.1")
	out, stderr, err := setupRun(t, dest, sum)
	if err != nil {
		t.Fatalf("setup: %v (%s)", err, stderr)
	}
	if out != dest+"\n" {
		t.Errorf("stdout %q, want the path alone", out)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, lib) {
		t.Fatalf("installed %q (%v), want %q", got, err, lib)
	}
	if b, _ := os.ReadFile(calls); !strings.Contains(string(b), "view "+ortNPMPackage+" dist.shasum") || !strings.Contains(string(b), "pack "+ortNPMPackage) {
		t.Errorf("npm calls %q", b)
	}
	os.Remove(calls)
	if out, _, err := setupRun(t, dest, sum); err != nil || out != dest+"\n" {
		t.Errorf("second setup: %q, %v", out, err)
	}
	if _, err := os.Stat(calls); err == nil {
		t.Errorf("the second setup called npm although the library was installed")
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 1 {
		t.Errorf("the install folder holds %d entries, want the library alone", len(entries))
	}
}

// TestSetupRefuses: a registry checksum or a tarball that does not match
// the pinned sha1, and a missing npm, are one-line errors with exit 2 that
// install nothing.
func TestSetupRefuses(t *testing.T) {
	tarball, sum := fakeTarball(t, []byte("library"))
	wrong := strings.Repeat("0", 40)
	for _, c := range []struct {
		name             string
		registry, pinned string
		noNPM            bool
		want             string
	}{
		{"registry differs from the pin", sum, wrong, false, "the registry's sha1"},
		{"tarball differs from the pin", wrong, wrong, false, "checksum mismatch"},
		{"no npm", sum, sum, true, "npm not found"},
	} {
		fakeNPM(t, tarball, c.registry)
		if c.noNPM {
			t.Setenv("PATH", t.TempDir())
		}
		dest := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
		out, _, err := setupRun(t, dest, c.pinned)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || exitCode(err) != exitBadInput {
			t.Errorf("%s: error %v (exit %d), want one line mentioning %q with exit 2", c.name, err, exitCode(err), c.want)
		}
		if out != "" {
			t.Errorf("%s: stdout %q, want nothing", c.name, out)
		}
		if _, err := os.Stat(dest); err == nil {
			t.Errorf("%s: the library was installed", c.name)
		}
	}
}

// TestSetupCommand: `bnaudit setup` installs into $BNAUDIT_ORT_DIR (the
// folder the library lookup reads) and takes no arguments.
func TestSetupCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("BNAUDIT_ORT_DIR", dir)
	lib := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.WriteFile(lib, []byte("installed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := bnaudit(t, "setup"); code != exitOK || out != lib+"\n" {
		t.Errorf("setup with the library installed: exit %d, stdout %q, stderr %q; want the path", code, out, stderr)
	}
	if code, _, stderr := bnaudit(t, "setup", "now"); code != exitBadInput || !strings.Contains(stderr, "no arguments") {
		t.Errorf("setup now: exit %d, stderr %q; want 2", code, stderr)
	}
}
