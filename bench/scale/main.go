// Command scale measures how an audit's cost grows with the number of
// samples (issue 18): for each n it times the parts of a threshold-attack
// audit (load, evaluate, signals, attacks, bootstrap, slices, report)
// beside ONNX Runtime's forward-only pass of the same model over the same
// samples, and the peak RSS, each n in a child process of its own.
//
// The samples are Fashion-MNIST's 70,000 images (train then t10k), the
// first half members and the rest non-members; beyond 70,000 they repeat,
// each repeat with every pixel moved by a seeded ±2 (PCG, seed 1), made
// in memory and not stored.
//
//	go run ./bench/scale --data /usr/share/datasets/fashion-mnist \
//	    --model testdata/models/small_cnn.training.onnx --n 10000,70000,1000000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func main() {
	data := flag.String("data", "/usr/share/datasets/fashion-mnist", "folder with Fashion-MNIST's four IDX files")
	model := flag.String("model", "testdata/models/small_cnn.training.onnx", "model to audit")
	ns := flag.String("n", "10000,70000,1000000", "sample counts, comma-separated")
	threads := flag.Int("threads", 2, "ORT intra-op threads")
	batch := flag.Int("batch", 256, "evaluation batch (the audit's)")
	reps := flag.Int("replicates", audit.DefaultReplicates, "bootstrap replicates")
	one := flag.Int("one", 0, "measure this n in this process (used by the parent)")
	flag.Parse()
	if *one > 0 {
		if err := measure(*data, *model, *one, *threads, *batch, *reps); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Println("| n | load | evaluate | ORT forward-only | evaluate / forward throughput | signals | attacks | bootstrap | slices | report | peak RSS (MiB) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range strings.Split(*ns, ",") {
		cmd := exec.Command(os.Args[0], "--one", s, "--data", *data, "--model", *model, "--threads", strconv.Itoa(*threads),
			"--batch", strconv.Itoa(*batch), "--replicates", strconv.Itoa(*reps))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "scale: n =", s+":", err)
			os.Exit(1)
		}
	}
}

// load makes the n samples.
func load(dir string, n int) (*dataset.Dataset, error) {
	var x []byte
	var y []int64
	for _, split := range []string{"train", "t10k"} {
		img, err := dataset.ReadIDX(filepath.Join(dir, split+"-images-idx3-ubyte.gz"))
		if err != nil {
			return nil, err
		}
		lab, err := dataset.ReadIDX(filepath.Join(dir, split+"-labels-idx1-ubyte.gz"))
		if err != nil {
			return nil, err
		}
		x = append(x, img.Data...)
		for _, l := range lab.Data {
			y = append(y, int64(l))
		}
	}
	const size = 784
	base := len(y)
	xs, ys := make([]byte, n*size), make([]int64, n)
	rng := rand.New(rand.NewPCG(1, 0))
	for i := range n {
		src := i % base
		copy(xs[i*size:(i+1)*size], x[src*size:(src+1)*size])
		ys[i] = y[src]
		if i < base {
			continue
		}
		for k := i * size; k < (i+1)*size; k++ {
			v := int(xs[k]) + rng.IntN(5) - 2
			xs[k] = byte(min(max(v, 0), 255))
		}
	}
	d, err := dataset.FromUint8(fmt.Sprintf("fashion-mnist×%d", n), []int64{1, 28, 28}, xs, ys)
	if err != nil {
		return nil, err
	}
	return d.WithNorm(dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}})
}

// forward times ORT's forward-only pass of the model in inference mode
// over d in batches of the given size; decoding the batches is not timed.
func forward(m *onnxio.Model, d *dataset.Dataset, batch int, opts ort.SessionOptions) (time.Duration, error) {
	em, err := onnxio.EvalMode(m)
	if err != nil {
		return 0, err
	}
	raw, err := em.Bytes()
	if err != nil {
		return 0, err
	}
	var spent time.Duration
	sessions := map[int]*ort.Session{}
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	x := make([]float32, batch*784)
	for lo := 0; lo < d.Len(); lo += batch {
		b := min(batch, d.Len()-lo)
		idx := make([]int, b)
		for i := range idx {
			idx[i] = lo + i
		}
		if err := d.Batch(idx, x[:b*784]); err != nil {
			return 0, err
		}
		s := sessions[b]
		if s == nil {
			if s, err = ort.NewSessionAuto(raw, opts); err != nil {
				return 0, err
			}
			sessions[b] = s
		}
		t := time.Now()
		if _, err := s.Run(map[string]*ort.Tensor{s.Inputs()[0].Name: ort.Float32Tensor([]int64{int64(b), 1, 28, 28}, x[:b*784])}); err != nil {
			return 0, err
		}
		spent += time.Since(t)
	}
	return spent, nil
}

func measure(dir, modelPath string, n, threads, batch, reps int) error {
	ctx := context.Background()
	if err := ort.Init(""); err != nil {
		return err
	}
	opts := ort.SessionOptions{Threads: threads}
	lap := time.Now()
	took := func() time.Duration { t := time.Since(lap); lap = time.Now(); return t }
	m, err := onnxio.Load(modelPath)
	if err != nil {
		return err
	}
	d, err := load(dir, n)
	if err != nil {
		return err
	}
	tLoad := took()
	logits, classes, err := study.SignalCache{}.Logits(ctx, m, d, batch, opts) // trainer.Evaluate, no cache
	if err != nil {
		return err
	}
	tEval := took()
	tFwd, err := forward(m, d, batch, opts)
	if err != nil {
		return err
	}
	took()
	sig, err := audit.ComputeSignalsFlat(logits, classes, d.Labels())
	if err != nil {
		return err
	}
	member := make([]bool, n)
	for i := range n / 2 {
		member[i] = true
	}
	tSig := took()
	scores := map[string][]float64{audit.AttackLoss: audit.LossScores(sig), audit.AttackConfidence: audit.ConfidenceScores(sig),
		audit.AttackEntropy: audit.EntropyScores(sig), audit.AttackModifiedEntropy: audit.ModEntropyScores(sig)}
	names := []string{audit.AttackLoss, audit.AttackConfidence, audit.AttackEntropy, audit.AttackModifiedEntropy}
	var reports []audit.AttackReport
	for _, a := range names {
		if _, err := audit.Evaluate(scores[a], member); err != nil {
			return err
		}
	}
	tAtt := took()
	bs := audit.BootstrapOptions{Replicates: reps}
	for _, a := range names {
		rep, err := audit.NewAttackReport(a, scores[a], member, bs)
		if err != nil {
			return err
		}
		reports = append(reports, rep)
	}
	tBoot := took()
	strongest := audit.StrongestAttack(reports)
	sl, err := audit.ComputeSlices(audit.SliceInput{Attack: strongest, Scores: scores[strongest], Member: member, Label: d.Labels(), Correct: sig.Correct}, bs)
	if err != nil {
		return err
	}
	tSlices := took()
	if err := json.NewEncoder(io.Discard).Encode(struct {
		Attacks []audit.AttackReport
		Slices  []audit.SliceReport
	}{reports, sl}); err != nil {
		return err
	}
	tReport := took()
	evalRate, fwdRate := float64(n)/tEval.Seconds(), float64(n)/tFwd.Seconds()
	fmt.Printf("| %d | %s | %s (%.0f/s) | %s (%.0f/s) | %.2f | %s | %s | %s | %s | %s | %d |\n", n, sec(tLoad), sec(tEval), evalRate, sec(tFwd), fwdRate,
		evalRate/fwdRate, sec(tSig), sec(tAtt), sec(tBoot), sec(tSlices), sec(tReport), peakRSS()>>20)
	return nil
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// peakRSS reads the process's peak resident set (VmHWM) from /proc.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
