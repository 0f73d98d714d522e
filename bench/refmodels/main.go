// Command refmodels measures the workload issue 14 names as the benchmark
// of record: training K reference models of a fixture with the recipe
// `bnaudit audit --ref-models` uses (SGD momentum 0.9, weight decay 5e-4,
// cosine schedule, batch 64, learning rate 0.02, fresh initialization),
// each on its seeded half of a pool of Fashion-MNIST training images, and
// evaluating every model on the whole pool afterwards, through bnaudit's
// own reference-training path (study.TrainReferences). It prints one JSON
// object: wall seconds, models per hour, peak RSS and the machine.
//
//	go run ./bench/refmodels --model testdata/models/small_cnn.training.onnx \
//	    --pool 40000 --models 4 --epochs 2 --threads 2 --jobs 1
//
// bench/torch_train.py --mode refmodels is the PyTorch side of the same
// workload; bench/run.sh runs both in one go.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/study"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

type result struct {
	Framework   string   `json:"framework"`
	Model       string   `json:"model"`
	Models      int      `json:"models"`
	Pool        int      `json:"pool"`
	Epochs      int      `json:"epochs"`
	Batch       int      `json:"batch"`
	Threads     int      `json:"threads"`
	Jobs        int      `json:"jobs"`
	NCHWc       string   `json:"nchwc"`
	Seconds     float64  `json:"seconds"`
	ModelsPerHr float64  `json:"models_per_hour"`
	PeakRSSMiB  float64  `json:"peak_rss_mib"`
	MeanPoolAcc float64  `json:"mean_pool_accuracy"`
	CPU         string   `json:"cpu"`
	NumCPU      int      `json:"nproc"`
	Date        string   `json:"date"`
	Notes       []string `json:"notes,omitempty"`
}

func main() {
	data := flag.String("data", "/usr/share/datasets/fashion-mnist", "folder with Fashion-MNIST's IDX files")
	model := flag.String("model", "testdata/models/small_cnn.training.onnx", "architecture of the reference models")
	pool := flag.Int("pool", 40000, "pool size (first N training images); each model trains on a seeded half")
	models := flag.Int("models", 4, "reference models K")
	epochs := flag.Int("epochs", 2, "epochs per model")
	batch := flag.Int("batch", 64, "batch size (audit --ref-batch default)")
	lr := flag.Float64("lr", 0.02, "learning rate (audit --ref-lr default)")
	threads := flag.Int("threads", 2, "threads in all")
	jobs := flag.Int("jobs", 1, "models trained at once (threads split between them)")
	seed := flag.Uint64("seed", 1, "seed")
	nchwc := flag.String("nchwc", "all", "blocked-layout rewrite: all, conv or off")
	out := flag.String("json", "", "also write the result here")
	flag.Parse()
	if err := run(*data, *model, *pool, *models, *epochs, *batch, *lr, *threads, *jobs, *seed, *nchwc, *out); err != nil {
		fmt.Fprintln(os.Stderr, "refmodels:", err)
		os.Exit(1)
	}
}

func run(data, modelPath string, pool, models, epochs, batch int, lr float64, threads, jobs int, seed uint64, nchwc, out string) error {
	if err := ort.Init(""); err != nil {
		return err
	}
	layout, err := ort.ParseNCHWc(nchwc)
	if err != nil {
		return err
	}
	m, err := onnxio.Load(modelPath)
	if err != nil {
		return err
	}
	d, err := dataset.Load(data, dataset.LoadOptions{Split: "train", MaxSamples: pool})
	if err != nil {
		return err
	}
	if d, err = d.WithNorm(dataset.Normalization{Mean: []float32{0.2860}, Std: []float32{0.3530}}); err != nil {
		return err
	}
	sess := ort.SessionOptions{Threads: threads, NCHWc: layout}
	cfg := study.ReferenceConfig{
		Train: trainer.Config{Model: m, Init: trainer.InitScratch, Epochs: epochs, Batch: batch,
			Optimizer: trainer.SGD(0.9, 5e-4, false), LR: float32(lr), Schedule: trainer.Cosine, Session: sess},
		Population: d, Models: models, Seed: seed, Session: sess, Jobs: jobs,
	}
	start := time.Now()
	sig, err := study.TrainReferences(context.Background(), cfg)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	for _, n := range sig.Notes { // a faster form refused, or the oneDNN library absent: part of the result
		fmt.Fprintln(os.Stderr, "note:", n)
	}
	acc := 0.0
	for _, c := range sig.Correct {
		n := 0
		for _, ok := range c {
			if ok {
				n++
			}
		}
		acc += float64(n) / float64(len(c)) / float64(len(sig.Correct))
	}
	r := result{Framework: "bnaudit", Model: strings.TrimSuffix(baseName(modelPath), ".training.onnx"), Models: models,
		Pool: d.Len(), Epochs: epochs, Batch: batch, Threads: threads, Jobs: max(jobs, 1), NCHWc: layout.String(), Seconds: secs,
		ModelsPerHr: float64(models) / secs * 3600, PeakRSSMiB: peakRSSMiB(), MeanPoolAcc: acc,
		CPU: cpuName(), NumCPU: runtime.NumCPU(), Date: time.Now().UTC().Format(time.RFC3339), Notes: sig.Notes}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	if out != "" {
		return os.WriteFile(out, append(b, '\n'), 0o644)
	}
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// peakRSSMiB is the process's peak resident memory (VmHWM) in MiB.
func peakRSSMiB() float64 {
	return procField("/proc/self/status", "VmHWM:") / 1024
}

func procField(path, key string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			var v float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, key), "kB")), &v)
			return v
		}
	}
	return 0
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.IndexByte(line, ':'); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return ""
}
