package report

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
)

// TestWriteRunSamples: a report with several runs gets each run's own
// scores and signals under samples/, named by variant and seed, listed in
// report.json; a hostile variant name stays inside samples/.
func TestWriteRunSamples(t *testing.T) {
	r := fixtureReport()
	a, b := fixtureSamples(), fixtureSamples()
	// The second run differs: its labels are shifted by 3, so the files
	// can be told apart.
	for i := range b.Label {
		b.Label[i] += 3
	}
	r.Runs = []audit.RunSamples{{Variant: "original", Seed: 0, Table: a}, {Variant: "../remove", Seed: 1, Table: b}}
	dir := t.TempDir()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	want := []string{"_._remove-seed1.csv", "_._remove-seed1.npz", "original-seed0.csv", "original-seed0.npz"}
	if got := dirNames(t, filepath.Join(dir, SamplesDir)); !slices.Equal(got, want) {
		t.Fatalf("samples/ holds %q, want %q", got, want)
	}
	var js struct {
		SampleFiles []audit.SampleFile `json:"sample_files"`
	}
	data, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &js); err != nil {
		t.Fatal(err)
	}
	wantFiles := []audit.SampleFile{
		{Variant: "original", Seed: 0, Scores: "samples/original-seed0.csv", Signals: "samples/original-seed0.npz"},
		{Variant: "../remove", Seed: 1, Scores: "samples/_._remove-seed1.csv", Signals: "samples/_._remove-seed1.npz"},
	}
	if !slices.Equal(js.SampleFiles, wantFiles) {
		t.Fatalf("sample_files %+v, want %+v", js.SampleFiles, wantFiles)
	}
	// Each CSV holds its own run's labels.
	for k, tab := range []*audit.SampleTable{a, b} {
		f, err := os.Open(filepath.Join(dir, wantFiles[k].Scores))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1+len(tab.Label) || rows[0][1] != "label" {
			t.Fatalf("%s: %d rows, header %q", wantFiles[k].Scores, len(rows), rows[0])
		}
		for i, row := range rows[1:] {
			if got := row[1]; got != strconv.FormatInt(tab.Label[i], 10) {
				t.Errorf("%s row %d: label %s, want %d", wantFiles[k].Scores, i, got, tab.Label[i])
			}
		}
		npz, err := os.ReadFile(filepath.Join(dir, wantFiles[k].Signals))
		if err != nil {
			t.Fatal(err)
		}
		arrays, _ := readTestNPZ(t, npz)
		if _, ok := arrays["loss"]; !ok {
			t.Errorf("%s has no loss array", wantFiles[k].Signals)
		}
	}
}

// TestWriteOneRunNoSamplesDir: one run's table is scores.csv itself; no
// samples/ folder and no sample_files.
func TestWriteOneRunNoSamplesDir(t *testing.T) {
	r := fixtureReport()
	r.Runs = []audit.RunSamples{{Variant: "original", Table: fixtureSamples()}}
	dir := t.TempDir()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SamplesDir)); !os.IsNotExist(err) {
		t.Errorf("samples/ exists for one run (err %v)", err)
	}
}

// TestWriteRemovesStaleSamples: a report written over a previous one with
// more runs leaves only the files its own report.json lists; one run only
// removes samples/ altogether.
func TestWriteRemovesStaleSamples(t *testing.T) {
	dir := t.TempDir()
	three := fixtureReport()
	three.Runs = []audit.RunSamples{{Variant: "original", Table: fixtureSamples()}, {Variant: "remove", Table: fixtureSamples()}, {Variant: "freeze", Table: fixtureSamples()}}
	if err := Write(dir, three); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, filepath.Join(dir, SamplesDir)); len(got) != 6 {
		t.Fatalf("first report: samples/ holds %q, want 6 files", got)
	}
	two := fixtureReport()
	two.Runs = []audit.RunSamples{{Variant: "original", Table: fixtureSamples()}, {Variant: "groupnorm", Table: fixtureSamples()}}
	if err := Write(dir, two); err != nil {
		t.Fatal(err)
	}
	want := []string{"groupnorm-seed0.csv", "groupnorm-seed0.npz", "original-seed0.csv", "original-seed0.npz"}
	if got := dirNames(t, filepath.Join(dir, SamplesDir)); !slices.Equal(got, want) {
		t.Fatalf("after a smaller report: samples/ holds %q, want %q", got, want)
	}
	one := fixtureReport()
	one.Runs = []audit.RunSamples{{Variant: "original", Table: fixtureSamples()}}
	if err := Write(dir, one); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SamplesDir)); !os.IsNotExist(err) {
		t.Errorf("samples/ left after a one-run report (err %v)", err)
	}
}
