package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// version is bnaudit's release; builds from a checkout add the commit.
const version = "0.1.0-dev"

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print bnaudit's version and the ONNX Runtime it finds",
		Description: "Prints bnaudit's version, the Go version it was built with, and the ONNX Runtime\n" +
			"library it resolves (or why none was found). Missing ONNX Runtime is reported, not an error.\n\n" + exitCodesHelp,
		OnUsageError: commandUsageError,
		Action:       action(func(c *cli.Context) versionOptions { return versionOptions{ORTLib: c.String("ort-lib")} }, runVersion),
	}
}

// versionOptions are the options of version.
type versionOptions struct {
	// ORTLib is --ort-lib: the ONNX Runtime library to look for first.
	ORTLib string
}

func (versionOptions) validate() error { return nil }

func runVersion(_ context.Context, o versionOptions, w io.Writer) error {
	fmt.Fprintf(w, "bnaudit %s%s (%s, %s/%s)\n", version, revision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if err := ort.Init(o.ORTLib); err != nil {
		fmt.Fprintf(w, "onnxruntime: not available: %s\n", onnxio.CleanMessage(err.Error()))
		return nil
	}
	fmt.Fprintf(w, "onnxruntime: %s (%s)\n", ort.Version(), ort.LibraryPath())
	return nil
}

// revision is the VCS commit the binary was built from, when Go recorded it.
func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	if dirty {
		rev += "-dirty"
	}
	return " " + rev
}
