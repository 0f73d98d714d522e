package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/internal/lockfile"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Checks that every command's validate() makes of its flags and paths
// before any work starts, and the output folder every report-writing
// command holds while it runs.

// checkPositive refuses an integer flag below 1.
func checkPositive(flag string, v int) error {
	if v < 1 {
		return usageErrorf("%s must be 1 or more, not %d", flag, v)
	}
	return nil
}

// checkNonNegative refuses a negative integer flag.
func checkNonNegative(flag string, v int) error {
	if v < 0 {
		return usageErrorf("%s must be 0 or more, not %d", flag, v)
	}
	return nil
}

// checkRange refuses a float flag that is not a finite number in [lo, hi)
// (hi +Inf: no upper limit; open: lo itself refused too).
func checkRange(flag string, v, lo, hi float64, open bool) error {
	bad := math.IsNaN(v) || math.IsInf(v, 0) || v < lo || (open && v == lo) || v >= hi
	if !bad {
		return nil
	}
	switch {
	case math.IsInf(hi, 1) && open:
		return usageErrorf("%s must be a finite number above %g, not %g", flag, lo, v)
	case math.IsInf(hi, 1):
		return usageErrorf("%s must be a finite number of %g or more, not %g", flag, lo, v)
	}
	return usageErrorf("%s must be a number in [%g, %g), not %g", flag, lo, hi, v)
}

// checkLabelSmoothing refuses a label smoothing outside [0, 1).
func checkLabelSmoothing(v float64) error { return checkRange("--label-smoothing", v, 0, 1, false) }

// checkOutputFile refuses an output file path that cannot be written: a
// folder, a path under something that is not a folder, or a folder where
// no file can be created (the OS's reason is given).
func checkOutputFile(flag, path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return usageErrorf("%s %s is a folder; give the path of a file", flag, path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageErrorf("%s %s: folder %s does not exist", flag, path, dir)
	case err != nil:
		return usageErrorf("%s %s cannot be written: %v", flag, path, osReason(err))
	case !st.IsDir():
		return usageErrorf("%s %s: %s is not a folder", flag, path, dir)
	}
	probe, err := os.CreateTemp(dir, ".bnaudit-probe-*")
	if err != nil {
		return usageErrorf("%s %s cannot be written: cannot create a file in %s: %v", flag, path, dir, osReason(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// checkOutputDir refuses an output folder path that names a file, or lies
// under a file.
func checkOutputDir(flag, path string) error {
	for p := path; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				if p == path {
					return usageErrorf("%s %s is a file, not a folder", flag, path)
				}
				return usageErrorf("%s %s: %s is not a folder", flag, path, p)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return usageErrorf("%s %s cannot be used: %v", flag, path, osReason(err))
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// osReason is the OS's own words for a file-system error ("permission
// denied"), without the operation and path Go adds.
func osReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkLibraryFile refuses an --ort-lib that exists but is not a shared
// library (ELF, Mach-O or PE). A missing file is left to ort.Init, whose
// error says where it looked.
func checkLibraryFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	for _, magic := range [][]byte{{0x7f, 'E', 'L', 'F'}, {0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf},
		{0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe}, {0xca, 0xfe, 0xba, 0xbe}, {'M', 'Z'}} {
		if bytes.HasPrefix(head, magic) {
			return nil
		}
	}
	return usageErrorf("--ort-lib %s is not a shared library; give the path of libonnxruntime (or run scripts/install-ort.sh)", path)
}

// outputDir is a command's report folder, created if needed and locked
// for the run, so that a second run into it is refused.
type outputDir struct {
	path string
	// created is the topmost folder this run created ("": none).
	created string
	lock    *lockfile.Lock
}

// openOutputDir creates and locks path; what (the command line) is shown
// to a second run that finds it locked.
func openOutputDir(path, what string) (*outputDir, error) {
	d := &outputDir{path: path}
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		d.created = p
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", path, err)
	}
	var err error
	if d.lock, err = lockfile.Acquire(path, what); err != nil {
		d.close(err)
		return nil, err
	}
	return d, nil
}

// close releases the lock; after a failed run (err != nil) it removes the
// folders the run created that it left empty.
func (d *outputDir) close(err error) {
	d.lock.Release()
	if err != nil && d.created != "" {
		removeEmptyDirs(d.created)
	}
}

// removeEmptyDirs removes dir and the folders under it that hold no file.
func removeEmptyDirs(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeEmptyDirs(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir) // fails, as it should, when something is left
}

// jsonOptions are the options of a command with --json.
type jsonOptions interface {
	options
	jsonOutput() bool
}

// jsonAction is action for a command with --json: an error, from
// validation or the run, that left stdout empty is printed there as JSON
// with its exit code, as inspect does.
func jsonAction[O jsonOptions](read func(*cli.Context) O, run func(context.Context, O, io.Writer) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		opts := read(c)
		cw := &countingWriter{w: c.App.Writer}
		err := opts.validate()
		if err == nil {
			err = run(c.Context, opts, cw)
		}
		if err != nil && opts.jsonOutput() && cw.n == 0 {
			writeJSONError(c.App.Writer, err)
		}
		return err
	}
}

// writeJSONError prints err as {"error": ..., "exit_code": ...}.
func writeJSONError(w io.Writer, err error) {
	_ = writeJSON(w, map[string]any{"error": onnxio.CleanMessage(err.Error()), "exit_code": exitCode(err)})
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// prepareModel readies a model for the data sets (study.PrepareClassifier)
// and says once on stderr what it changed; the notes are the report's.
func prepareModel(g globalOptions, m *onnxio.Model, sets ...*dataset.Dataset) (*onnxio.Model, []string, error) {
	m, notes, err := study.PrepareClassifier(m, sets...)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range notes {
		fmt.Fprintln(g.Stderr, "bnaudit: note: "+onnxio.CleanMessage(n))
	}
	return m, notes, nil
}
