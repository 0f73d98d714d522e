package main

import (
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/audit/report"
	"github.com/bnaudit/bnaudit/internal/lockfile"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// writeIDXPair writes n 28×28 samples (pixel value i+j of sample i) and
// their labels as an uncompressed IDX images file and the labels file
// beside it; it returns the images file.
func writeIDXPair(t *testing.T, dir string, labels []byte) string {
	t.Helper()
	n := len(labels)
	img := binary.BigEndian.AppendUint32(nil, 0x803)
	for _, d := range []uint32{uint32(n), 28, 28} {
		img = binary.BigEndian.AppendUint32(img, d)
	}
	for i := range n {
		for j := range 28 * 28 {
			img = append(img, byte(i*7+j))
		}
	}
	lab := binary.BigEndian.AppendUint32(nil, 0x801)
	lab = binary.BigEndian.AppendUint32(lab, uint32(n))
	lab = append(lab, labels...)
	p := filepath.Join(dir, "x-images-idx3-ubyte")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x-labels-idx1-ubyte"), lab, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInputsRefusedByContent: members and non-members that are the same
// samples under other names are refused (item 4); a label beyond the
// model's outputs names its own file (item 13); an output that is not one
// logit per class is refused (item 14).
func TestInputsRefusedByContent(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	// The Fashion-MNIST train split under another name.
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"} {
		copyFile(t, filepath.Join(fmnist, f), filepath.Join(other, strings.Replace(f, "train", "t10k", 1)))
	}
	wantUsage(t, "are also members", "audit", smallCNN, "--members", fmnist, "--nonmembers", other, "--max-samples", "200",
		"--norm", "0.2860/0.3530", "-o", filepath.Join(dir, "a"))
	wantUsage(t, "are also members", "--threads", "1", "compare", smallCNN, "--data", fmnist, "--test", other, "--members", "200",
		"--non-members", "200", "-o", filepath.Join(dir, "c"))
	// A test file with a label 255.
	labels := make([]byte, 40)
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	labels[7] = 255
	bad := filepath.Join(dir, "bad")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	test := writeIDXPair(t, bad, labels)
	wantUsage(t, "x-images-idx3-ubyte: sample 7 has label 255", "--threads", "1", "compare", smallCNN, "--data", fmnist, "--test", test,
		"--members", "100", "-o", filepath.Join(dir, "c"))
	// The small CNN cut after its Flatten: [batch, 6272] on 10 classes.
	m, err := onnxio.Load(smallCNN)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph()
	var nodes []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Gemm" {
			g.GetOutput()[0].Name = n.GetInput()[0]
			g.GetOutput()[0].GetType().GetTensorType().Shape = nil
			continue
		}
		nodes = append(nodes, n)
	}
	g.Node = nodes
	flat := filepath.Join(dir, "flat.onnx")
	if err := m.Save(flat); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, "outputs 6272 values per sample", "audit", flat, "--members", fmnist, "--nonmembers", fmnist, "--max-samples", "50",
		"--norm", "0.2860/0.3530", "-o", filepath.Join(dir, "a"))
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("refused runs left output folders: %v", entries)
	}
}

// TestSoftmaxModelAuditedOnLogits: a model ending in Softmax is audited
// through its logits, saying so once on stderr and in the report, with
// the numbers of the same model without the Softmax (item 14).
func TestSoftmaxModelAuditedOnLogits(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	m, err := onnxio.Load(filepath.Join(models, "small_cnn.preserve.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph()
	logits := g.GetOutput()[0].GetName()
	for _, n := range g.GetNode() {
		for i, o := range n.GetOutput() {
			if o == logits {
				n.Output[i] = logits + "_pre"
			}
		}
	}
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: "Softmax", Name: "final_softmax", Input: []string{logits + "_pre"}, Output: []string{logits},
		Attribute: []*onnxpb.AttributeProto{{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1}}})
	soft := filepath.Join(dir, "soft.onnx")
	if err := m.Save(soft); err != nil {
		t.Fatal(err)
	}
	auc := func(model, out string) (float64, []string, string) {
		code, _, stderr := bnaudit(t, "--threads", "1", "audit", model, "--members", fmnist, "--nonmembers", fmnist, "--max-samples", "100",
			"--norm", "0.2860/0.3530", "--bootstrap", "10", "--no-cache", "-o", out)
		if code != 0 {
			t.Fatalf("audit %s: exit %d: %s", model, code, stderr)
		}
		f, err := os.Open(filepath.Join(out, report.JSONFile))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := report.ReadJSON(f)
		if err != nil {
			t.Fatal(err)
		}
		return bestAUC(r), r.Notes, stderr
	}
	want, _, _ := auc(filepath.Join(models, "small_cnn.preserve.onnx"), filepath.Join(dir, "plain"))
	got, notes, stderr := auc(soft, filepath.Join(dir, "soft"))
	if got != want {
		t.Errorf("softmax model: best AUC %v, the model without it %v", got, want)
	}
	if strings.Count(stderr, "ends in a Softmax") != 1 || !strings.Contains(strings.Join(notes, "\n"), "ends in a Softmax") {
		t.Errorf("stderr %q, notes %q: want the Softmax said once on stderr and in the notes", stderr, notes)
	}
}

func bestAUC(r *audit.Report) float64 {
	best := 0.0
	for _, a := range r.Variants[0].Attacks {
		best = max(best, a.AUC.Estimate)
	}
	return best
}

// TestImageFoldersFitTheModel: RGB 32×32 PNGs are converted and resized
// for the 1-channel 28×28 model (item 12).
func TestImageFoldersFitTheModel(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	for _, set := range []string{"members", "non"} {
		for c := range 10 {
			cd := filepath.Join(dir, set, string(rune('a'+c)))
			if err := os.MkdirAll(cd, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := range 3 {
				img := image.NewRGBA(image.Rect(0, 0, 32, 32))
				for y := range 32 {
					for x := range 32 {
						v := byte(x*7 + y*3 + c*11 + k*29 + len(set)*5)
						img.Set(x, y, color.RGBA{v, v / 2, 255 - v, 255})
					}
				}
				f, err := os.Create(filepath.Join(cd, string(rune('0'+k))+".png"))
				if err != nil {
					t.Fatal(err)
				}
				if err := png.Encode(f, img); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
		}
	}
	code, _, stderr := bnaudit(t, "--threads", "1", "audit", smallCNN, "--members", filepath.Join(dir, "members"), "--nonmembers", filepath.Join(dir, "non"),
		"--norm", "0.5/0.25", "--bootstrap", "10", "-o", filepath.Join(dir, "report"))
	if code != 0 {
		t.Fatalf("audit of RGB 32×32 image folders: exit %d: %s", code, stderr)
	}
}

// TestTrainLogFailures: a log that cannot be written fails the run; a
// failed run leaves no log it created; a checkpoint folder in use is
// refused (items 8 and 10).
func TestTrainLogFailures(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "m.onnx")
	args := []string{"--threads", "1", "train", smallCNN, "--data", fmnist, "--max-samples", "64", "--epochs", "1", "-o", out, "--quiet"}
	if _, err := os.Stat("/dev/full"); err == nil {
		code, _, stderr := bnaudit(t, append(args, "--log", "/dev/full")...)
		if code != exitRuntime || !strings.Contains(stderr, "no space left on device") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--log /dev/full: exit %d, %q; want exit 3 naming the disk full", code, stderr)
		}
	}
	// An interrupted run without a checkpoint: its log goes with it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := readTrainForTest(args)
	err := runTrain(ctx, opts, io.Discard)
	if err == nil {
		t.Fatal("cancelled run: no error")
	}
	if _, serr := os.Stat(filepath.Join(dir, "m.jsonl")); !os.IsNotExist(serr) {
		t.Errorf("the failed run (%v) left its log (%v)", err, serr)
	}
	ckpt := filepath.Join(dir, "ckpt")
	if err := os.Mkdir(ckpt, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := lockfile.Acquire(ckpt, "bnaudit train the-other-run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	wantUsage(t, "the-other-run", append(args, "--checkpoint", ckpt)...)
}

// readTrainForTest parses train's command line into its options.
func readTrainForTest(args []string) trainOptions {
	var opts trainOptions
	app := newApp(io.Discard, io.Discard)
	for _, c := range app.Commands {
		if c.Name == "train" {
			c.Action = func(ctx *cli.Context) error { opts = readTrain(ctx); return nil }
		}
	}
	app.RunContext(context.Background(), reorderArgs(app, append([]string{"bnaudit"}, args...)))
	opts.global.Stderr = io.Discard
	return opts
}
