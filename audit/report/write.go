package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
)

// The files Write creates.
const (
	JSONFile     = "report.json"
	MarkdownFile = "report.md"
	HTMLFile     = "report.html"
	ScoresFile   = "scores.csv"
	SignalsFile  = "signals.npz"
)

// Write writes the report into dir, creating dir if needed: report.json,
// report.md and report.html always, scores.csv and signals.npz when the
// report has a sample table (Report.Samples). Every file is rendered in
// memory first, then written atomically (a temporary file in dir renamed
// over the final name), so that a failure leaves no partial file and no
// temporary one; files written before a failing one stay. r is not
// modified.
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
	data, err := encodeJSON(r)
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
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := onnxio.WriteFileAtomic(path, f.data); err != nil {
			return fmt.Errorf("report: writing %s: %w", path, err)
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
