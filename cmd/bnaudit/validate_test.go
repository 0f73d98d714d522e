package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/internal/lockfile"
	"github.com/bnaudit/bnaudit/onnxio"
)

const (
	smallCNN = models + "/small_cnn.training.onnx"
	fmnist   = "../../testdata/fashion-mnist"
)

// wantUsage runs args and wants exit 2 with one line on stderr.
func wantUsage(t *testing.T, want string, args ...string) {
	t.Helper()
	code, _, stderr := bnaudit(t, args...)
	if code != exitBadInput || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", args, code, stderr, want)
	}
}

// TestUsageRefusedBeforeWork: bad flags and output paths are exit 2 with
// one line, found before anything is loaded or written (issue 17, items
// 5–7).
func TestUsageRefusedBeforeWork(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	garbage := filepath.Join(dir, "libonnxruntime.so")
	for _, p := range []string{file, garbage} {
		if err := os.WriteFile(p, []byte("not a library\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "m.onnx")
	train := func(extra ...string) []string {
		return append([]string{"train", smallCNN, "--data", fmnist, "-o", out}, extra...)
	}
	cmpOut := filepath.Join(dir, "report")
	compare := func(extra ...string) []string {
		return append([]string{"compare", smallCNN, "--data", fmnist, "-o", cmpOut}, extra...)
	}
	export := func(extra ...string) []string {
		return append([]string{"train", "export", smallCNN, "-o", filepath.Join(dir, "step.onnx")}, extra...)
	}
	cases := []struct {
		want string
		args []string
	}{
		{"--batch must be 1 or more", train("--batch", "0")},
		{"--epochs must be 1 or more", train("--epochs", "0")},
		{"--epochs must be 1 or more", train("--epochs", "-1")},
		{"--lr must be a finite number above 0, not NaN", train("--lr", "nan")},
		{"--lr must be", train("--lr", "-1")},
		{"--lr must be a finite number above 0, not +Inf", train("--lr", "inf")},
		{"--augment-crop must be 0 or more", train("--augment-crop", "-2")},
		{"--label-smoothing must be a number in [0, 1)", train("--label-smoothing", "1.5")},
		{"--label-smoothing must be a number in [0, 1)", train("--label-smoothing", "-1")},
		{"--momentum must be", train("--momentum", "nan")},
		{"--weight-decay must be", train("--weight-decay", "-1")},
		{"/proc/version is not a folder", []string{"train", smallCNN, "--data", fmnist, "-o", "/proc/version/m.onnx"}},
		{"is a folder", []string{"train", smallCNN, "--data", fmnist, "-o", dir}},
		{"--checkpoint " + file + " is a file", train("--checkpoint", file)},
		{"is not a shared library", append([]string{"--ort-lib", garbage}, train()...)},
		{"--label-smoothing must be", export("--label-smoothing", "1.5")},
		{"--momentum must be", export("--momentum", "nan")},
		{"--weight-decay must be", export("--weight-decay", "nan")},
		{"is a folder", []string{"train", "export", smallCNN, "-o", dir}},
		{"unknown variant \"bogus\"", compare("--variants", "original,bogus")},
		{"names \"original\" twice", compare("--variants", "original,original")},
		{"16 channels cannot be split into 5 groups", compare("--variants", "original,groupnorm", "--groups", "5")},
		{"--bootstrap must be 0 or more", compare("--bootstrap", "-1")},
		{"--canaries must be 0 or more", compare("--canaries", "-3")},
		{"--seeds must be 1 or more", compare("--seeds", "0")},
		{"is a file, not a folder", []string{"compare", smallCNN, "--data", fmnist, "-o", file}},
		{"--verify-std must be", []string{"ablate", smallCNN, "-m", "fold", "-o", out, "--verify", "--verify-std", "nan"}},
		{"is a folder", []string{"ablate", smallCNN, "-m", "fold", "-o", dir}},
		{"unknown command \"frobnicate\"", []string{"frobnicate"}},
		{"cannot be written: cannot create a file in /proc", []string{"check", dir, "--max-auc", "0.5", "--junit", "/proc/x.xml"}},
	}
	for _, c := range cases {
		wantUsage(t, c.want, c.args...)
	}
	// Nothing was written or created.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the refused runs left files: %v", entries)
	}
}

// TestJSONCarriesErrors: with --json an error is printed on stdout as JSON
// with its exit code (issue 17, item 11).
func TestJSONCarriesErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"check", filepath.Join(dir, "none"), "--max-auc", "0.5", "--json"},
		{"ablate", filepath.Join(dir, "none.onnx"), "-m", "remove", "-o", filepath.Join(dir, "a.onnx"), "--json"},
		{"ablate", smallCNN, "-m", "fold", "-o", filepath.Join(dir, "a.onnx"), "--verify", "--verify-std", "nan", "--json"},
		{"train", "export", smallCNN, "-o", filepath.Join(dir, "s.onnx"), "--batch", "0", "--json"},
	} {
		code, stdout, _ := bnaudit(t, args...)
		var got struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Error == "" || got.ExitCode != code || code != exitBadInput {
			t.Errorf("%v: exit %d, stdout %q (%v)", args, code, stdout, err)
		}
	}
}

// TestCheckRefusesMissingOrImpossibleAUC: the gate fails closed on a
// number it needs (issue 17, item 3), and a rule that does not apply to a
// report is bad usage.
func TestCheckRefusesMissingOrImpossibleAUC(t *testing.T) {
	dir := checkFixture(t)
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(a map[string]any){
		"deleted": func(a map[string]any) { delete(a, "auc") },
		"empty":   func(a map[string]any) { a["auc"] = map[string]any{} },
		"-3":      func(a map[string]any) { a["auc"] = map[string]any{"estimate": -3, "lo": -3, "hi": -3} },
		"1.5":     func(a map[string]any) { a["auc"] = map[string]any{"estimate": 1.5, "lo": 1.5, "hi": 1.5} },
	} {
		var r map[string]any
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		for _, v := range r["variants"].([]any) {
			for _, a := range v.(map[string]any)["attacks"].([]any) {
				edit(a.(map[string]any))
			}
		}
		tampered, _ := json.Marshal(r)
		p := filepath.Join(t.TempDir(), "report.json")
		if err := os.WriteFile(p, tampered, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := bnaudit(t, "check", p, "--max-auc", "0.6"); code != exitBadInput {
			t.Errorf("auc %s: exit %d (%s), want 2", name, code, stderr)
		}
	}
	// --max-canary-gap on a report without canaries does not apply: bad
	// usage, not a failed check.
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	r["kind"] = "audit"
	for _, v := range r["variants"].([]any) {
		delete(v.(map[string]any), "memorization")
	}
	noCanaries, _ := json.Marshal(r)
	p := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(p, noCanaries, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := bnaudit(t, "check", p, "--max-canary-gap", "0.5"); code != exitBadInput {
		t.Errorf("--max-canary-gap on an audit report: exit %d (%s), want 2", code, stderr)
	}
}

// TestLockedOutputRefused: a folder another run holds is refused, naming
// the holder (issue 17, item 10); a failed run leaves no folder it
// created (item 9).
func TestLockedOutputRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := lockfile.Acquire(dir, "bnaudit compare the-first-run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	wantUsage(t, "the-first-run", "compare", smallCNN, "--data", fmnist, "-o", dir)
	wantUsage(t, "the-first-run", "audit", smallCNN, "--members", fmnist, "--nonmembers", fmnist, "--norm", "0.2860/0.3530", "-o", dir)
	if !errors.Is(errorsLocked(dir), lockfile.ErrLocked) {
		t.Fatal("the first run lost its lock")
	}
	// A compare that fails (no such data) removes the folder it made.
	fresh := filepath.Join(t.TempDir(), "new", "report")
	code, _, stderr := bnaudit(t, "compare", smallCNN, "--data", filepath.Join(dir, "none"), "-o", fresh)
	if code != exitBadInput {
		t.Fatalf("compare on missing data: exit %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Dir(fresh)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed compare left %s (%v)", filepath.Dir(fresh), err)
	}
}

// errorsLocked tries to take dir's lock and gives it back.
func errorsLocked(dir string) error {
	l, err := lockfile.Acquire(dir, "probe")
	l.Release()
	return err
}

// TestTrainExportWritesAllOrNone: a failed write leaves none of the
// three files and no temporary file (issue 17, item 9).
func TestTrainExportWritesAllOrNone(t *testing.T) {
	for fail := 1; fail <= 3; fail++ {
		dir := t.TempDir()
		calls := 0
		saveModel = func(m *onnxio.Model, path string) error {
			if calls++; calls == fail {
				return errors.New("no space left on device")
			}
			return m.Save(path)
		}
		opts := trainExportOptions{modelPath: modelPath{Model: smallCNN, nargs: 1}, Output: filepath.Join(dir, "step.onnx"),
			Init: "pretrained", Batch: 8, Optimizer: optimizerOptions{Optimizer: "sgd", Momentum: 0.9}}
		err := runTrainExport(context.Background(), opts, &strings.Builder{})
		saveModel = (*onnxio.Model).Save
		if err == nil {
			t.Fatalf("write %d failing: no error", fail)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("write %d failing left %v", fail, entries)
		}
	}
}

func TestJSONFloatsNeverNonJSON(t *testing.T) {
	nan := float32(0)
	nan /= nan
	if got := jsonFloats([]float32{0.5, nan}); got != "[0.5,null]" {
		t.Errorf("got %s", got)
	}
}
