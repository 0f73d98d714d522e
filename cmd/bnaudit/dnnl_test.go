package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// TestDNNLAbsentSaidOnce: with the oneDNN library not installed (an empty
// cache folder) bnaudit still trains and audits, and says once per run
// that it trains with the standard graphs: on stderr for train, in the
// report's notes for an audit with reference models (two models, one
// note); BNAUDIT_DNNL=off says nothing.
func TestDNNLAbsentSaidOnce(t *testing.T) {
	requireORT(t)
	if ort.NCHWcBlock() == 0 {
		t.Skip("this ONNX Runtime library has no NCHWc kernels on this CPU: the oneDNN path never applies")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const note = "oneDNN backward kernels are not installed"
	runWith := func(dnnl string, args ...string) string {
		t.Helper()
		// the ORT library this process found, named: the empty cache
		// folder has none
		cmd := exec.Command(bin, append([]string{"--ort-lib", ort.LibraryPath()}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), ort.DNNLEnv+"="+dnnl)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bnaudit %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, c := range []struct {
		env  string
		want int
	}{{"", 1}, {"on", 1}, {"off", 0}} {
		out := runWith(c.env, trainArgs(filepath.Join(dir, "m-"+c.env+".onnx"), "")...)
		if n := strings.Count(out, note); n != c.want {
			t.Errorf("train with %s=%q says %d times that the library is absent, want %d:\n%s", ort.DNNLEnv, c.env, n, c.want, out)
		}
	}
	for _, c := range []struct {
		env  string
		want int
	}{{"", 1}, {"off", 0}} {
		rep := filepath.Join(dir, "rep-"+c.env)
		runWith(c.env, "--threads", "2", "audit", filepath.Join(models, "small_cnn.preserve.onnx"), "--members", fmnist, "--nonmembers", fmnist,
			"--max-samples", "100", "--norm", "0.2860/0.3530", "--bootstrap", "10", "--ref-models", "2", "--ref-epochs", "1", "-o", rep)
		n := 0
		for _, s := range readReport(t, rep).Notes {
			n += strings.Count(s, note)
		}
		if n != c.want {
			t.Errorf("audit with %s=%q: the report says %d times that the library is absent, want %d", ort.DNNLEnv, c.env, n, c.want)
		}
	}
}
