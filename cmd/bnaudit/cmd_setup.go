package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// The ONNX Runtime library setup installs, as scripts/install-ort.sh does:
// the npm package onnxruntime-node carries the Linux x86_64 CPU library.
const (
	ortNPMPackage = "onnxruntime-node@" + ort.InstallVersion
	ortTarball    = "onnxruntime-node-" + ort.InstallVersion + ".tgz"
	// ortTarballSHA1 is the tarball's sha1, pinned (scripts/install-ort.sh
	// pins the same value).
	ortTarballSHA1 = "8d4c4a75f31088ec846f08cccb62f3272a7bf44a"
	ortMember      = "package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
)

func setupCommand() *cli.Command {
	return &cli.Command{
		Name:  "setup",
		Usage: "install the ONNX Runtime library bnaudit needs (Linux x86_64, with npm)",
		Description: "Downloads onnxruntime-node@" + ort.InstallVersion + " with `npm pack`, checks the tarball's sha1 against the\n" +
			"registry's and the value pinned in bnaudit, and installs its libonnxruntime.so.1 where bnaudit looks\n" +
			"for it: $BNAUDIT_ORT_DIR, else $XDG_CACHE_HOME/bnaudit/onnxruntime-" + ort.InstallVersion + " ($HOME/.cache when unset).\n" +
			"Prints the library's path on stdout (progress on stderr). Does nothing but print the path when the\n" +
			"library is installed already. Needs npm (Node.js); elsewhere install ONNX Runtime " + ort.InstallVersion + "\n" +
			"yourself and set " + ort.LibraryEnv + ".\n\n" + exitCodesHelp,
		OnUsageError: commandUsageError,
		Action:       action(readSetup, runSetup),
	}
}

// setupOptions are the options of setup.
type setupOptions struct {
	global globalOptions
	nargs  int
	// Dest is the library's install path (ort.DefaultInstallPath).
	Dest string
	// sha1 is the tarball's expected sha1: ortTarballSHA1 except in tests.
	sha1 string
}

func readSetup(c *cli.Context) setupOptions {
	return setupOptions{global: readGlobal(c), nargs: c.NArg(), Dest: ort.DefaultInstallPath(), sha1: ortTarballSHA1}
}

func (o setupOptions) validate() error {
	if o.nargs != 0 {
		return usageErrorf("setup takes no arguments; see bnaudit setup --help")
	}
	if o.Dest == "" {
		return usageErrorf("setup: neither %s, XDG_CACHE_HOME nor HOME is set; set %s to the install folder", ort.InstallDirEnv, ort.InstallDirEnv)
	}
	return nil
}

// runSetup installs the library unless it is there, and prints its path.
// Every failure is one line and bad input (exit 2): a missing npm, a
// refused download, a checksum that does not match.
func runSetup(ctx context.Context, o setupOptions, w io.Writer) error {
	if st, err := os.Stat(o.Dest); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		_, err := fmt.Fprintln(w, o.Dest)
		return err
	}
	if err := installORT(ctx, o); err != nil {
		return badInput(fmt.Errorf("setup: %w", err))
	}
	_, err := fmt.Fprintln(w, o.Dest)
	return err
}

func installORT(ctx context.Context, o setupOptions) error {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return fmt.Errorf("unsupported platform %s/%s: setup installs the Linux x86_64 library only; install ONNX Runtime %s yourself and set %s",
			runtime.GOOS, runtime.GOARCH, ort.InstallVersion, ort.LibraryEnv)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm not found: install Node.js and npm (e.g. apt-get install npm), or install ONNX Runtime %s yourself and set %s", ort.InstallVersion, ort.LibraryEnv)
	}
	work, err := os.MkdirTemp("", "bnaudit-setup-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	logf := func(format string, args ...any) { fmt.Fprintf(o.global.Stderr, "setup: "+format+"\n", args...) }

	logf("asking the npm registry for the checksum of %s", ortNPMPackage)
	out, err := runNPM(ctx, npm, work, "view", ortNPMPackage, "dist.shasum")
	if err != nil {
		return err
	}
	if registry := strings.Trim(strings.TrimSpace(out), `'"`); registry != o.sha1 {
		return fmt.Errorf("the registry's sha1 for %s is %q, expected %s; refusing to install", ortNPMPackage, registry, o.sha1)
	}
	logf("downloading %s (about 113 MB)", ortNPMPackage)
	if _, err := runNPM(ctx, npm, work, "pack", ortNPMPackage); err != nil {
		return err
	}
	tarball := filepath.Join(work, ortTarball)
	sum, err := fileSHA1(tarball)
	if err != nil {
		return fmt.Errorf("npm pack did not produce %s: %w", ortTarball, err)
	}
	if sum != o.sha1 {
		return fmt.Errorf("checksum mismatch for %s: sha1 %s, expected %s; refusing to install", ortTarball, sum, o.sha1)
	}
	logf("sha1 %s verified", sum)
	if err := extractMember(tarball, ortMember, o.Dest); err != nil {
		return err
	}
	logf("installed ONNX Runtime %s", ort.InstallVersion)
	return nil
}

// runNPM runs npm in dir and returns its stdout; a failure names the
// command and npm's last line of diagnostics.
func runNPM(ctx context.Context, npm, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("npm %s failed: %s", strings.Join(args, " "), msg)
	}
	return stdout.String(), nil
}

func fileSHA1(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extractMember copies the regular file member of the gzipped tarball to
// dest (atomically: dest is whole or absent), creating its folder.
func extractMember(tarball, member, dest string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(tarball), err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s is missing from %s", member, filepath.Base(tarball))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(tarball), err)
		}
		if h.Name != member {
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			return fmt.Errorf("%s in %s is not a non-empty regular file", member, filepath.Base(tarball))
		}
		lib, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(tarball), err)
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", filepath.Dir(dest), err)
		}
		return atomicfile.WriteFile(dest, lib)
	}
}
