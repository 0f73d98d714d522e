package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// These tests call the commands' run functions directly, with options
// structs, and compare their whole output.

func TestRunInspect(t *testing.T) {
	var out bytes.Buffer
	opts := inspectOptions{modelPath: modelPath{Model: filepath.Join(models, "small_cnn.training.onnx")}}
	if err := runInspect(context.Background(), opts, &out); err != nil {
		t.Fatal(err)
	}
	want := `model      small_cnn.training.onnx
producer   pytorch 1.13.0, IR version 7, opsets ai.onnx 14
input      input float [batch,1,28,28]
output     logits float [batch,10]
parameters 67626 in 10 tensors (+ 96 BatchNorm running statistics)
nodes      9: BatchNormalization 2, Conv 2, Relu 2, Flatten 1, Gemm 1, MaxPool 1

BatchNorm layers: 2
#  name                     channels  eps    momentum  mode      stats/affine  after             foldable
0  /bn1/BatchNormalization  16        1e-05  0.9       training  initializers  Conv /conv1/Conv  yes
1  /bn2/BatchNormalization  32        0.001  0.8       training  initializers  Conv /conv2/Conv  yes

warnings:
  - 2 BatchNorm layer(s) are in training mode (training_mode=1): run as they are, they normalize with the batch's statistics; bnaudit evaluates them with their running statistics
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}

	// With --json an error is printed as JSON too, with its exit code.
	out.Reset()
	opts = inspectOptions{modelPath: modelPath{Model: filepath.Join(t.TempDir(), "none.onnx")}, JSON: true}
	err := runInspect(context.Background(), opts, &out)
	if exitCode(err) != exitBadInput {
		t.Fatalf("missing model: %v (exit %d), want exit %d", err, exitCode(err), exitBadInput)
	}
	wantJSON := fmt.Sprintf("{\n  \"error\": %q,\n  \"exit_code\": 2\n}\n", "onnxio: open "+opts.Model+": no such file or directory")
	if out.String() != wantJSON {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), wantJSON)
	}
}

func TestRunCheck(t *testing.T) {
	dir := checkFixture(t)
	limit := func(v float64) *float64 { return &v }
	cases := []struct {
		name string
		opts checkOptions
		want string
		exit int
	}{
		{"one rule fails", checkOptions{Input: dir, MaxAUC: limit(0.6), MaxCanaryGap: limit(0.95), DefaultTPRAtFPR: 0.01},
			"FAIL max_auc                original     0.62 (limit 0.6): best membership-inference AUC (loss)\n" +
				"ok   max_canary_gap         original     0.9 (limit 0.95): canary memorization gap (accuracy, inserted − held out)\n",
			exitCheckFailed},
		{"conservative", checkOptions{Input: filepath.Join(dir, "report.json"), MaxAUC: limit(0.65), Conservative: true, DefaultTPRAtFPR: 0.01},
			"FAIL max_auc                original     0.66 (limit 0.65): best membership-inference AUC (loss)\n",
			exitCheckFailed},
		{"json", checkOptions{Input: dir, MaxAUC: limit(0.65), MaxTPR: limit(0.05), DefaultTPRAtFPR: 0.01, JSON: true}, `{
  "passed": true,
  "rules": [
    {
      "rule": "max_auc",
      "variant": "original",
      "limit": 0.65,
      "value": 0.62,
      "passed": true,
      "detail": "best membership-inference AUC (loss)"
    },
    {
      "rule": "max_tpr",
      "variant": "original",
      "limit": 0.05,
      "value": 0.03,
      "passed": true,
      "detail": "best TPR at 1% FPR (loss)"
    }
  ]
}
`, exitOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runCheck(context.Background(), c.opts, &out)
			if exitCode(err) != c.exit {
				t.Fatalf("error %v (exit %d), want exit %d", err, exitCode(err), c.exit)
			}
			if out.String() != c.want {
				t.Fatalf("got\n%s\nwant\n%s", out.String(), c.want)
			}
		})
	}
	var out bytes.Buffer
	err := runCheck(context.Background(), checkOptions{Input: dir, MaxAUC: limit(0.6), DefaultTPRAtFPR: 0.01}, &out)
	if err == nil || err.Error() != "check: 1 of 1 rules failed" {
		t.Fatalf("error %v, want check: 1 of 1 rules failed", err)
	}
	// A model to audit needs the audit's data.
	err = checkOptions{Input: "m.onnx", nargs: 1}.validate()
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "needs --members and --nonmembers") {
		t.Fatalf("check of a model without data: %v", err)
	}
}

// TestRunVersion initializes ONNX Runtime, so it lives in a file that sorts
// after main_test.go: TestBadInputs's missing-library case needs a process
// where no library was loaded yet.
func TestRunVersion(t *testing.T) {
	requireORT(t)
	var out bytes.Buffer
	if err := runVersion(context.Background(), versionOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("bnaudit 0.1.0-dev%s (%s, %s/%s)\nonnxruntime: %s (%s)\n", revision(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		ort.Version(), ort.LibraryPath())
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestExitCodes: the one switch maps every kind of error the commands
// return.
func TestExitCodes(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{checkFailedf("check: 1 of 2 rules failed"), exitCheckFailed},
		{fmt.Errorf("wrapped: %w", checkFailedf("x")), exitCheckFailed},
		{usageErrorf("--batch must be positive"), exitBadInput},
		{badInput(errors.New("onnxio: cannot fold")), exitBadInput},
		{fmt.Errorf("dataset: x: %w", dataset.ErrBadData), exitBadInput},
		{fmt.Errorf("x: %w", audit.ErrInvalidInput), exitBadInput},
		{fmt.Errorf("%w; rerun with --resume", trainer.ErrInterrupted), exitRuntime},
		{errors.New("something broke"), exitRuntime},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
