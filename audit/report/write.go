package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/internal/atomicfile"
)

// The files Write creates.
const (
	JSONFile     = "report.json"
	MarkdownFile = "report.md"
	HTMLFile     = "report.html"
	ScoresFile   = "scores.csv"
	SignalsFile  = "signals.npz"
	// SamplesDir holds each run's scores and signals in a comparison of
	// several runs (report.json's sample_files lists them).
	SamplesDir = "samples"
)

// fileSafe keeps letters, digits, '-', '_' and '.' of a variant name for a
// file name; anything else becomes '_'.
func fileSafe(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok || (c == '.' && i == 0) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// Write writes the report into dir, creating dir if needed: report.json,
// report.md and report.html always, scores.csv and signals.npz when the
// report has a sample table (Report.Samples), and samples/ with each run's
// table in a comparison of several runs. Every file is rendered in memory
// first, then written atomically (a temporary file in dir renamed over the
// final name), so that a failure leaves no partial file and no temporary
// one. report.json, the manifest of the set (it lists the sample files),
// is written last; then files a previous report left in samples/ that
// this one does not list are removed, so that the folder holds only what
// its report.json names. r is not modified.
//
// report.json carries the schema audit.ReportSchema; a report that names
// another schema is refused.
func Write(dir string, r *audit.Report) error {
	if r == nil {
		return fmt.Errorf("report: no report to write")
	}
	if r.Schema != "" && r.Schema != audit.ReportSchema {
		return fmt.Errorf("report: the report has schema %q; this writer writes %q", r.Schema, audit.ReportSchema)
	}
	type file struct {
		name string
		data []byte
	}
	var files []file
	add := func(name string, data []byte, err error) error {
		if err != nil {
			return err
		}
		files = append(files, file{name, data})
		return nil
	}
	// Each run's own table when the report has several (a comparison):
	// samples/VARIANT-seedK.csv and .npz, listed in report.json.
	var sampleFiles []audit.SampleFile
	if len(r.Runs) > 1 {
		for _, run := range r.Runs {
			if run.Table == nil {
				continue
			}
			base := fmt.Sprintf("%s-seed%d", fileSafe(run.Variant), run.Seed)
			sf := audit.SampleFile{Variant: run.Variant, Seed: run.Seed,
				Scores: SamplesDir + "/" + base + ".csv", Signals: SamplesDir + "/" + base + ".npz"}
			data, err := encodeCSV(run.Table)
			if err := add(sf.Scores, data, err); err != nil {
				return err
			}
			data, err = encodeNPZ(run.Table)
			if err := add(sf.Signals, data, err); err != nil {
				return err
			}
			sampleFiles = append(sampleFiles, sf)
		}
	}
	withFiles := *r
	withFiles.SampleFiles = sampleFiles
	data, err := encodeJSON(&withFiles)
	if err := add(JSONFile, data, err); err != nil {
		return err
	}
	var md bytes.Buffer
	err = WriteMarkdown(&md, r)
	if err := add(MarkdownFile, md.Bytes(), err); err != nil {
		return err
	}
	data, err = encodeHTML(r)
	if err := add(HTMLFile, data, err); err != nil {
		return err
	}
	if r.Samples != nil {
		data, err = encodeCSV(r.Samples)
		if err := add(ScoresFile, data, err); err != nil {
			return err
		}
		data, err = encodeNPZ(r.Samples)
		if err := add(SignalsFile, data, err); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: cannot create the report folder: %w", err)
	}
	if len(sampleFiles) > 0 {
		if err := os.MkdirAll(filepath.Join(dir, SamplesDir), 0o755); err != nil {
			return fmt.Errorf("report: cannot create the samples folder: %w", err)
		}
	}
	// report.json last: a reader that finds it finds every file it lists.
	slices.SortStableFunc(files, func(a, b file) int {
		return cmpBool(a.name == JSONFile, b.name == JSONFile)
	})
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := atomicfile.WriteFile(path, f.data); err != nil {
			return fmt.Errorf("report: writing %s: %w", path, err)
		}
	}
	return removeStaleSamples(dir, sampleFiles)
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// removeStaleSamples deletes the files of dir/samples that keep are not
// (a previous report's runs), and the folder when it is left empty.
func removeStaleSamples(dir string, keep []audit.SampleFile) error {
	sd := filepath.Join(dir, SamplesDir)
	ents, err := os.ReadDir(sd)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	listed := map[string]bool{}
	for _, sf := range keep {
		listed[filepath.Base(sf.Scores)] = true
		listed[filepath.Base(sf.Signals)] = true
	}
	left := 0
	for _, e := range ents {
		if listed[e.Name()] || e.IsDir() {
			left++
			continue
		}
		if err := os.Remove(filepath.Join(sd, e.Name())); err != nil {
			return fmt.Errorf("report: removing a previous report's %s: %w", e.Name(), err)
		}
	}
	if left == 0 {
		if err := os.Remove(sd); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}

// encodeJSON returns report.json: the report with its schema, indented,
// NaN and ±Inf as null, and empty lists and maps as [] and {} rather than
// null.
func encodeJSON(r *audit.Report) ([]byte, error) {
	c := *r
	c.Schema = audit.ReportSchema
	if c.Variants == nil {
		c.Variants = []audit.VariantReport{}
	}
	if c.Notes == nil {
		c.Notes = []string{}
	}
	if c.Definitions == nil {
		c.Definitions = map[string]string{}
	}
	return marshalJSON(&c)
}

// ReadJSON reads a report.json written by Write. A null where the report
// has a number (Write's form of NaN and ±Inf) reads as NaN. Samples stays
// nil: the per-sample data lives in scores.csv and signals.npz.
func ReadJSON(rd io.Reader) (*audit.Report, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("report: reading JSON: %w", err)
	}
	var r audit.Report
	if err := unmarshalJSON(data, &r); err != nil {
		return nil, err
	}
	if r.Schema != audit.ReportSchema {
		return nil, fmt.Errorf("report: the file has schema %q; this reader reads %q", r.Schema, audit.ReportSchema)
	}
	return &r, nil
}
