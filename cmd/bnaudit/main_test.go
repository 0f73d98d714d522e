package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
	"github.com/bnaudit/bnaudit/onnxio/ort"
)

const models = "../../testdata/models"

// bnaudit runs the CLI in-process and returns exit code, stdout and stderr.
func bnaudit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"bnaudit"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// bnauditProcess runs the command as a process of its own, with this
// process's environment.
func bnauditProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func requireORT(t *testing.T) {
	t.Helper()
	err := ort.Init("")
	switch {
	case err == nil:
	case errors.Is(err, ort.ErrNoLibrary) && os.Getenv("BNAUDIT_REQUIRE_ORT") == "":
		t.Skipf("needs the ONNX Runtime library: run scripts/install-ort.sh or set %s (%v)", ort.LibraryEnv, err)
	default:
		t.Fatal(err)
	}
}

// reference.json's BN list, written by PyTorch from the model definitions.
type refModels struct {
	Models map[string]struct {
		BatchNorms []struct {
			Channels     int64   `json:"channels"`
			Eps          float32 `json:"eps"`
			OnnxMomentum float32 `json:"onnx_momentum"`
			Scale        string  `json:"scale"`
		} `json:"batchnorms"`
	} `json:"models"`
}

func TestInspectJSONMatchesPyTorchDefinition(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(models, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref refModels
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for file, want := range ref.Models {
		code, stdout, stderr := bnaudit(t, "inspect", "--json", filepath.Join(models, file))
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", file, code, stderr)
		}
		var got struct {
			BatchNorms []onnxio.BatchNorm `json:"batchnorms"`
			Warnings   []string           `json:"warnings"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%s: invalid JSON: %v", file, err)
		}
		if got.BatchNorms == nil {
			t.Fatalf("%s: no batchnorms array in %s", file, stdout)
		}
		if len(got.BatchNorms) != len(want.BatchNorms) {
			t.Fatalf("%s: %d BN layers, the model defines %d", file, len(got.BatchNorms), len(want.BatchNorms))
		}
		byScale := map[string]onnxio.BatchNorm{}
		for _, bn := range got.BatchNorms {
			byScale[bn.Scale.Name] = bn
		}
		for _, w := range want.BatchNorms {
			g := byScale[w.Scale]
			if g.Channels != w.Channels || g.Epsilon != w.Eps || g.Momentum != w.OnnxMomentum {
				t.Errorf("%s %s: got %d/%g/%g want %d/%g/%g", file, w.Scale, g.Channels, g.Epsilon, g.Momentum, w.Channels, w.Eps, w.OnnxMomentum)
			}
		}
		if len(want.BatchNorms) == 0 && !strings.Contains(strings.Join(got.Warnings, " "), "TrainingMode.PRESERVE") {
			t.Errorf("%s: no export advice among warnings %v", file, got.Warnings)
		}
	}
	// The text form of the eval export prints the advice too.
	code, stdout, _ := bnaudit(t, "inspect", filepath.Join(models, "small_cnn.eval_default.onnx"))
	if code != 0 || !strings.Contains(stdout, "TrainingMode.PRESERVE") {
		t.Fatalf("exit %d, output %s", code, stdout)
	}
}

// TestBadInputs: each bad input exits 2 with one line on stderr.
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(models, "small_cnn.preserve.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rnd := make([]byte, 3000)
	for i := range rnd {
		rnd[i] = byte(i*7919 + i*i)
	}
	// A model whose external data points outside its folder.
	m, err := onnxio.Load(filepath.Join(models, "mlp.preserve.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	w := m.Graph().Initializer[0]
	w.RawData = nil
	w.DataLocation = onnxpb.TensorProto_EXTERNAL
	w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: "../../etc/passwd"}}
	outside, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"truncated", []string{"inspect", write("truncated.onnx", good[:len(good)/3])}, "truncated"},
		{"random", []string{"inspect", write("random.onnx", rnd)}, "not an ONNX model"},
		{"empty", []string{"inspect", write("empty.onnx", nil)}, "empty file"},
		{"outside folder", []string{"inspect", write("outside.onnx", outside)}, "leaves the folder"},
		{"missing file", []string{"inspect", filepath.Join(dir, "nope.onnx")}, "no such file"},
		{"json error", []string{"inspect", "--json", write("empty2.onnx", nil)}, "empty file"},
		{"no argument", []string{"inspect"}, "exactly one MODEL"},
		{"unknown flag", []string{"inspect", "--frobnicate", "x"}, "not defined"},
		{"bad mode", []string{"ablate", filepath.Join(models, "small_cnn.preserve.onnx"), "--mode", "squash", "-o", filepath.Join(dir, "o.onnx")}, "unknown ablation mode"},
		{"no BN", []string{"ablate", filepath.Join(models, "mlp.preserve.onnx"), "--mode", "fold", "-o", filepath.Join(dir, "o.onnx")}, "TrainingMode.PRESERVE"},
		{"unknown layer", []string{"ablate", filepath.Join(models, "small_cnn.preserve.onnx"), "--mode", "fold", "--layers", "bn9", "-o", filepath.Join(dir, "o.onnx")}, "no BatchNormalization layer"},
		{"bad groups", []string{"ablate", filepath.Join(models, "small_cnn.preserve.onnx"), "--mode", "groupnorm", "--groups", "5", "-o", filepath.Join(dir, "o.onnx")}, "cannot be split"},
		{"population without reference models", []string{"audit", filepath.Join(models, "small_cnn.preserve.onnx"), "--members", "../../testdata/fashion-mnist", "--nonmembers", "../../testdata/fashion-mnist", "--population", "../../testdata/fashion-mnist", "--norm", "0.286/0.353", "-o", filepath.Join(dir, "rep")}, "--ref-models"},
		{"one reference model", []string{"compare", filepath.Join(models, "small_cnn.training.onnx"), "--data", "../../testdata/fashion-mnist", "--members", "64", "--non-members", "64", "--ref-models", "1", "-o", filepath.Join(dir, "rep2")}, "at least 2 reference models"},
		{"unknown LiRA variance", []string{"compare", filepath.Join(models, "small_cnn.training.onnx"), "--data", "../../testdata/fashion-mnist", "--lira-variance", "median", "-o", filepath.Join(dir, "rep6")}, "--lira-variance must be"},
		{"unknown optimizer", []string{"compare", filepath.Join(models, "small_cnn.training.onnx"), "--data", "../../testdata/fashion-mnist", "--optimizer", "rmsprop", "-o", filepath.Join(dir, "rep4")}, "sgd or adamw"},
		{"fit target above 1", []string{"compare", filepath.Join(models, "small_cnn.training.onnx"), "--data", "../../testdata/fashion-mnist", "--members", "64", "--non-members", "64", "--fit-to", "1.5", "-o", filepath.Join(dir, "rep3")}, "--fit-to"},
		{"missing library", []string{"--ort-lib", filepath.Join(dir, "libnothing.so"), "ablate", filepath.Join(models, "small_cnn.preserve.onnx"), "--mode", "fold", "--verify", "-o", filepath.Join(dir, "o.onnx")}, "install-ort.sh"},
		// After the missing library: compare starts ORT before loading data.
		{"relabeled canaries without spare samples", []string{"compare", filepath.Join(models, "small_cnn.training.onnx"), "--data", "../../testdata/fashion-mnist", "--members", "0", "--non-members", "64", "--ood", "relabel", "--canaries", "50", "-o", filepath.Join(dir, "rep5")}, "lower --members or --canaries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := bnaudit(t, c.args...)
			if c.name == "missing library" {
				// in a process of its own: this one may have loaded ONNX
				// Runtime already (requireORT in another test)
				code, stdout, stderr = bnauditProcess(t, c.args...)
			}
			if code != exitBadInput {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitBadInput, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "bnaudit: ") || !strings.Contains(lines[0], c.want) {
				t.Fatalf("stderr should be one line containing %q, got %q", c.want, stderr)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Fatalf("stack trace on stderr: %s", stderr)
			}
			if c.name == "json error" {
				var e struct {
					Error    string `json:"error"`
					ExitCode int    `json:"exit_code"`
				}
				if err := json.Unmarshal([]byte(stdout), &e); err != nil || e.ExitCode != 2 || !strings.Contains(e.Error, "empty") {
					t.Fatalf("--json should carry the error: %q", stdout)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "o.onnx")); err == nil {
		t.Fatal("a failed ablation wrote its output")
	}
}

func TestAblateCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(models, "small_cnn.training.onnx")
	for _, mode := range onnxio.Modes {
		out := filepath.Join(dir, string(mode)+".onnx")
		// Flags after the model argument, as users write them.
		code, stdout, stderr := bnaudit(t, "ablate", src, "--mode", string(mode), "-o", out, "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, code, stderr)
		}
		var r ablateResult
		if err := json.Unmarshal([]byte(stdout), &r); err != nil || !r.Written || len(r.Layers) != 2 {
			t.Fatalf("%s: %v %+v", mode, err, r)
		}
		m, err := onnxio.Load(out)
		if err != nil {
			t.Fatalf("%s: written model does not load: %v", mode, err)
		}
		if m.Opset("") != 14 {
			t.Fatalf("%s: opset %d", mode, m.Opset(""))
		}
	}
	// --layers by index and by name.
	out := filepath.Join(dir, "one.onnx")
	code, _, stderr := bnaudit(t, "ablate", src, "--mode", "remove", "--layers", "1", "-o", out)
	if code != 0 {
		t.Fatal(stderr)
	}
	m, _ := onnxio.Load(out)
	bns, _ := onnxio.FindBatchNorms(m)
	if len(bns) != 1 || bns[0].Name != "/bn1/BatchNormalization" {
		t.Fatalf("after removing layer 1: %+v", bns)
	}
}

func TestAblateVerifyOnORT(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	for _, f := range []string{"small_cnn.training.onnx", "small_resnet.preserve.onnx", "mlp_bn.training.onnx"} {
		out := filepath.Join(dir, f)
		code, stdout, stderr := bnaudit(t, "--threads", "2", "ablate", filepath.Join(models, f), "--mode", "fold", "-o", out, "--verify",
			"--verify-data", "../../testdata/mnist/t10k-64-images-idx3-ubyte.gz", "--verify-batch", "64", "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", f, code, stderr)
		}
		var r ablateResult
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		if r.Verify == nil || !r.Verify.Passed || r.Verify.Inputs != 64 || len(r.Verify.Differences) != 1 || r.Verify.Differences[0].Relative > 1e-5 {
			t.Fatalf("%s: verify %+v", f, r.Verify)
		}
		t.Logf("%s: fold on 64 MNIST images: relative difference %.3g", f, r.Verify.Differences[0].Relative)
	}
	// remove changes the function: --verify reports it without failing.
	code, stdout, stderr := bnaudit(t, "ablate", filepath.Join(models, "small_cnn.preserve.onnx"), "--mode", "remove", "-o", filepath.Join(dir, "r.onnx"), "--verify")
	if code != 0 || !strings.Contains(stdout, "relative") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
}

func TestReorderArgs(t *testing.T) {
	app := newApp(nil, nil)
	got := reorderArgs(app, strings.Fields("bnaudit ablate m.onnx --mode fold --threads 2 -o out.onnx --verify --json"))
	want := "bnaudit --threads 2 ablate --mode fold -o out.onnx --verify --json m.onnx"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %q\nwant %q", strings.Join(got, " "), want)
	}
	got = reorderArgs(app, strings.Fields("bnaudit inspect -- --weird-name.onnx"))
	if strings.Join(got, " ") != "bnaudit inspect -- --weird-name.onnx" {
		t.Fatalf("-- not respected: %q", got)
	}
}
