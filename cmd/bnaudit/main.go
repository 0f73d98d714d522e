// Command bnaudit audits ONNX models for memorization and membership-inference
// risk, with a focus on Batch Normalization. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/internal/lockfile"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Exit codes, documented in every command's help.
const (
	exitOK          = 0
	exitCheckFailed = 1
	exitBadInput    = 2
	exitRuntime     = 3
)

const exitCodesHelp = `Exit codes: 0 success; 1 a check failed; 2 bad usage, bad input, a missing
ONNX Runtime library or an output folder in use by another run; 3 an internal or runtime error.`

// inputError marks bad usage or bad input (exit 2): a flag, an argument or a
// file the command cannot work with. Library errors that say the same wrap
// their own sentinels, which exitCode knows too.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// checkFailure marks a check that did not hold (exit 1).
type checkFailure struct{ err error }

func (e *checkFailure) Error() string { return e.err.Error() }
func (e *checkFailure) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

// badInput marks err, whatever it wraps, as an error about the input.
func badInput(err error) error { return &inputError{err} }

func checkFailedf(format string, args ...any) error {
	return &checkFailure{fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process exit code in one place.
func exitCode(err error) int {
	var ie *inputError
	var cf *checkFailure
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &cf):
		return exitCheckFailed
	case errors.As(err, &ie):
		return exitBadInput
	case errors.Is(err, trainer.ErrInterrupted):
		return exitRuntime
	case errors.Is(err, onnxio.ErrNotONNX), errors.Is(err, onnxio.ErrInvalidModel),
		errors.Is(err, onnxio.ErrTooLarge), errors.Is(err, onnxio.ErrUnsafePath),
		errors.Is(err, dataset.ErrBadData), errors.Is(err, fs.ErrNotExist),
		errors.Is(err, fs.ErrPermission), errors.Is(err, ort.ErrNoLibrary),
		errors.Is(err, ort.ErrNoCUDA), errors.Is(err, trainer.ErrUnsupported), errors.Is(err, audit.ErrInvalidInput),
		errors.Is(err, lockfile.ErrLocked):
		return exitBadInput
	}
	return exitRuntime
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "bnaudit",
		Usage: "audit ONNX models for memorization and membership-inference risk, with a focus on BatchNorm",
		Description: "bnaudit imports an ONNX model, locates and ablates its BatchNormalization layers, trains the\n" +
			"variants with its own ONNX training graphs on ONNX Runtime, and audits them: memorization of\n" +
			"out-of-distribution canaries, per-sample gradient norms, membership-inference attacks with\n" +
			"intervals, and a verdict on what BatchNorm contributes. See README.md.\n\n" + exitCodesHelp,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     globalFlags(),
		Commands: []*cli.Command{
			inspectCommand(),
			ablateCommand(),
			trainCommand(),
			compareCommand(),
			auditCommand(),
			checkCommand(),
			demoCommand(),
			setupCommand(),
			workerCommand(),
			statusCommand(),
			versionCommand(),
		},
		HideHelpCommand: true,
		// Reached without a command, or with one that does not exist.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("unknown command %q; see bnaudit --help", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		// Actions return errors; main maps them to exit codes, so urfave/cli
		// must never exit by itself (it would skip deferred cleanup).
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErrorf("%v; see bnaudit --help", err)
		},
	}
}

// run is main without os.Exit, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "bnaudit: internal error: %s (please report it)\n", onnxio.CleanMessage(fmt.Sprint(r)))
			code = exitRuntime
		}
	}()
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, reorderArgs(app, args))
	if err != nil {
		fmt.Fprintln(stderr, "bnaudit: "+onnxio.CleanMessage(strings.TrimPrefix(err.Error(), "bnaudit: ")))
	}
	return exitCode(err)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
