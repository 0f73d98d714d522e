package report

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestWriteFiles: Write creates the folder (and its parents) and leaves
// exactly the five files, no temporary file, readable by everyone.
func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "a", "report")
	if err := Write(dir, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	want := []string{HTMLFile, JSONFile, MarkdownFile, ScoresFile, SignalsFile}
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	for _, name := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 || fi.Size() == 0 {
			t.Errorf("%s: mode %v, size %d", name, fi.Mode(), fi.Size())
		}
	}
}

// TestWriteOverwrites: writing again replaces the files.
func TestWriteOverwrites(t *testing.T) {
	dir := writeFixture(t)
	r := fixtureReport()
	r.Verdict = "second run"
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "**Verdict: second run**") {
		t.Error("report.md was not replaced")
	}
	if got := len(dirNames(t, dir)); got != 5 {
		t.Errorf("%d files after a second write, want 5", got)
	}
}

// TestWriteWithoutSamples: no sample table, no scores.csv or signals.npz.
func TestWriteWithoutSamples(t *testing.T) {
	dir := t.TempDir()
	r := fixtureReport()
	r.Samples = nil
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	want := []string{HTMLFile, JSONFile, MarkdownFile}
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
}

// TestWriteDoesNotModifyReport: Write fills in the schema and empty lists
// on a copy.
func TestWriteDoesNotModifyReport(t *testing.T) {
	r := fixtureReport()
	r.Schema, r.Notes = "", nil
	before := *r
	if err := Write(t.TempDir(), r); err != nil {
		t.Fatal(err)
	}
	if !deepEqualNaN(reflect.ValueOf(*r), reflect.ValueOf(before)) || r.Schema != "" || r.Notes != nil {
		t.Error("Write modified the report")
	}
}

// TestWriteErrors: a folder that cannot be made or written gives an error
// that names the path, and no temporary file is left behind.
func TestWriteErrors(t *testing.T) {
	t.Run("folder under a file", func(t *testing.T) {
		base := t.TempDir()
		file := filepath.Join(base, "taken")
		if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Write(filepath.Join(file, "report"), fixtureReport())
		if err == nil || !strings.HasPrefix(err.Error(), "report: cannot create the report folder") || !strings.Contains(err.Error(), file) {
			t.Errorf("error %v, want one naming %s", err, file)
		}
	})
	t.Run("target is a folder", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, MarkdownFile), 0o755); err != nil {
			t.Fatal(err)
		}
		err := Write(dir, fixtureReport())
		if err == nil || !strings.HasPrefix(err.Error(), "report: ") || !strings.Contains(err.Error(), MarkdownFile) {
			t.Errorf("error %v, want one naming %s", err, MarkdownFile)
		}
		for _, name := range dirNames(t, dir) {
			if strings.Contains(name, ".tmp") {
				t.Errorf("temporary file %s left behind", name)
			}
		}
	})
	t.Run("read-only folder", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only folders")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		err := Write(dir, fixtureReport())
		if err == nil || !strings.Contains(err.Error(), JSONFile) {
			t.Errorf("error %v, want one naming %s", err, JSONFile)
		}
	})
}

// TestWriteRefuses: a report of another schema, a nil report and a broken
// sample table are refused before anything is written.
func TestWriteRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := fixtureReport()
	r.Schema = "bnaudit.report/v2"
	if err := Write(dir, r); err == nil || !strings.Contains(err.Error(), "bnaudit.report/v2") {
		t.Errorf("other schema: error %v", err)
	}
	if err := Write(dir, nil); err == nil {
		t.Error("nil report: no error")
	}
	r = fixtureReport()
	r.Samples.Member = r.Samples.Member[:2]
	if err := Write(dir, r); err == nil || !strings.Contains(err.Error(), "member has 2 values") {
		t.Errorf("broken samples: error %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("a refused report created its folder")
	}
}

// TestWriteDeterministic: the same report gives the same bytes.
func TestWriteDeterministic(t *testing.T) {
	a, b := writeFixture(t), writeFixture(t)
	for _, name := range []string{JSONFile, MarkdownFile, HTMLFile, ScoresFile, SignalsFile} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two writes of one report", name)
		}
	}
}
