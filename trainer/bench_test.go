package trainer

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// peakRSSMiB is the process's peak resident memory (VmHWM), in MiB; run
// one benchmark per process to attribute it.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmHWM:"), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkStep measures one training step (forward, backward, SGD) of the
// fixture models at batch 128 on 2 threads: see BENCHMARKS.md.
func BenchmarkStep(b *testing.B) {
	requireORT(b)
	for _, f := range []string{"small_cnn.training.onnx", "small_resnet.training.onnx"} {
		b.Run(f, func(b *testing.B) {
			m := loadFixture(b, f)
			g, err := BuildStep(m, StepConfig{Batch: 128, Optimizer: SGD(0.9, 5e-4, false)})
			if err != nil {
				b.Fatal(err)
			}
			r := newStepRunner(b, g, m)
			defer r.s.Close()
			// one batch of real Fashion-MNIST training images, as bench/torch_train.py uses
			d := fashion(b, "train", 128)
			x := make([]float32, 128*784)
			idx := make([]int, 128)
			for i := range idx {
				idx[i] = i
			}
			if err := d.Batch(idx, x); err != nil {
				b.Fatal(err)
			}
			y := d.Labels()
			r.run(b, x, y, 0.01, 0) // warm up
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.run(b, x, y, 0.01, float32(i))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
			b.ReportMetric(peakRSSMiB(), "peak-MiB")
		})
	}
}

// BenchmarkForward measures ORT's forward-only throughput on the fixture
// models at batch 128 (the source model as exported, BN in training mode):
// the ceiling a training step is compared with.
func BenchmarkForward(b *testing.B) {
	requireORT(b)
	for _, f := range []string{"small_cnn.training.onnx", "small_resnet.training.onnx"} {
		b.Run(f, func(b *testing.B) {
			m := loadFixture(b, f)
			raw, err := m.Bytes()
			if err != nil {
				b.Fatal(err)
			}
			s, err := ort.NewSessionAuto(raw, ort.SessionOptions{Threads: 2})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			x, _ := mnistBatch(b, 64)
			x = append(x, x...)
			in := map[string]*ort.Tensor{"input": ort.Float32Tensor([]int64{128, 1, 28, 28}, x)}
			s.Run(in)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Run(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
		})
	}
}

// BenchmarkTrainLoop measures the training loop itself (Train: batches
// filled from the data set, buffers reused, one session run per step) on
// the small CNN at batch 128 on 2 threads; steps/s counts the steps' own
// time (EpochStats.StepsPerSec), not the sessions' creation.
func BenchmarkTrainLoop(b *testing.B) {
	requireORT(b)
	cfg := Config{Model: loadFixture(b, "small_cnn.training.onnx"), Train: fashion(b, "train", 1024), Epochs: 1, Batch: 128,
		Optimizer: SGD(0.9, 5e-4, false), LR: 0.01, Seed: 1, Session: ort.SessionOptions{Threads: 2}}
	steps, seconds := 0, 0.0
	for i := 0; i < b.N; i++ {
		res, err := Train(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		steps += res.Steps
		seconds += res.Epochs[0].Seconds
	}
	b.ReportMetric(float64(steps)/seconds, "steps/s")
}
