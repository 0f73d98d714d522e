package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bnaudit/bnaudit/onnxio"
)

// buildBinary compiles bnaudit once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bnaudit")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func trainArgs(out, ckpt string) []string {
	args := []string{"train", "../../testdata/models/small_cnn.training.onnx", "--data", "../../testdata/fashion-mnist",
		"--max-samples", "1000", "--epochs", "2", "--batch", "64", "--lr", "0.02", "--seed", "5", "--threads", "2", "-o", out, "--quiet"}
	if ckpt != "" {
		args = append(args, "--checkpoint", ckpt, "--checkpoint-every", "3", "--resume")
	}
	return args
}

func modelWeights(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	m, err := onnxio.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := map[string][]float32{}
	for _, init := range m.Graph().GetInitializer() {
		if init.GetDataType() == onnxio.TypeFloat {
			v, err := m.Floats(init)
			if err != nil {
				t.Fatal(err)
			}
			w[init.GetName()] = v
		}
	}
	return w
}

func equalWeights(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || len(va) != len(vb) {
			return false
		}
		for i := range va {
			if va[i] != vb[i] {
				return false
			}
		}
	}
	return true
}

// waitForCheckpoint returns once the run has written a checkpoint.
func waitForCheckpoint(t *testing.T, cmd *exec.Cmd, ckpt string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(ckpt, "checkpoint.bnaudit")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no checkpoint appeared")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTrainSurvivesSIGKILL: a run killed with SIGKILL mid-epoch and resumed
// ends with the weights of an uninterrupted run with the same seed.
func TestTrainSurvivesSIGKILL(t *testing.T) {
	requireORT(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.onnx")
	if out, err := exec.Command(bin, trainArgs(ref, "")...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	out, ckpt := filepath.Join(dir, "out.onnx"), filepath.Join(dir, "ckpt")
	cmd := exec.Command(bin, trainArgs(out, ckpt)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it as soon as a checkpoint exists (16 steps per epoch, one every 3).
	waitForCheckpoint(t, cmd, ckpt)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(out); err == nil {
		t.Skip("the run finished before it could be killed; nothing to test on this machine")
	}
	res, err := exec.Command(bin, append(trainArgs(out, ckpt), "--log", filepath.Join(dir, "resumed.jsonl"))...).CombinedOutput()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, res)
	}
	if !bytes.Contains(res, []byte("resumed")) {
		t.Fatalf("the second run did not resume: %s", res)
	}
	if !equalWeights(modelWeights(t, ref), modelWeights(t, out)) {
		t.Fatal("killed and resumed run ended with other weights than the uninterrupted run")
	}
}

// TestTrainInterruptSavesCheckpoint: SIGINT stops after the current step,
// leaves a checkpoint, says how to resume, and exits non-zero.
func TestTrainInterruptSavesCheckpoint(t *testing.T) {
	requireORT(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	out, ckpt := filepath.Join(dir, "out.onnx"), filepath.Join(dir, "ckpt")
	args := append(trainArgs(out, ckpt), "--epochs", "20")
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForCheckpoint(t, cmd, ckpt)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if err == nil || code != exitRuntime {
		t.Fatalf("exit code %d (%v), want %d", code, err, exitRuntime)
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "interrupted") || !strings.Contains(msg, "--resume") {
		t.Fatalf("want one line saying how to resume, got %q", msg)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an interrupted run wrote its output model")
	}
}
