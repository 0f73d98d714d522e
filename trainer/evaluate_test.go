package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// evaluateFed is the evaluation as it ran before the weights became
// constants: every parameter and statistic fed as an input on each batch.
// It is the reference Evaluate must equal.
func evaluateFed(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, batch int, opts ort.SessionOptions) (*Outputs, error) {
	gs, g, w, err := openSweep(m, d, batch, opts, func(b int) (*Graph, error) { return BuildEval(m, b) })
	if err != nil {
		return nil, err
	}
	defer gs.close()
	defer w.destroy()
	n, full := d.Len(), min(batch, d.Len())
	sample := g.Shapes[g.Input][1:]
	classes := int(g.Shapes[g.Logits][1])
	out := &Outputs{Logits: make([]float32, n*classes), Classes: classes, Loss: make([]float32, n)}
	for lo := 0; lo < n; lo += full {
		b := min(full, n-lo)
		s, err := gs.get(b)
		if err != nil {
			return nil, err
		}
		x, y, free, err := dataBatch(d, lo, b, sample)
		if err != nil {
			return nil, err
		}
		err = s.run(ctx, w.inputs(s.g, x, y), nil)
		free()
		if err != nil {
			return nil, fmt.Errorf("trainer: evaluation: %w", err)
		}
		copy(out.Logits[lo*classes:], s.data(s.g.Logits))
		copy(out.Loss[lo:], s.data(NamePerSampleLoss))
	}
	return out, nil
}

// withRandomStats returns a copy of m whose BatchNorm running statistics
// are random (means N(0, 0.3), variances in [0.5, 2]), so that folding
// them is exercised on values other than the fixtures' 0 and 1.
func withRandomStats(t testing.TB, m *onnxio.Model, seed uint64) *onnxio.Model {
	t.Helper()
	out := m.Clone()
	g, err := BuildEval(out, 1)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := onnxio.NewIndex(out)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	gp := out.Graph()
	for k, init := range gp.GetInitializer() {
		for si, s := range g.Stats {
			if init.GetName() != s {
				continue
			}
			v, err := out.Floats(ix.Initializers[s])
			if err != nil {
				t.Fatal(err)
			}
			for i := range v {
				if si%2 == 0 {
					v[i] = float32(0.3 * rng.NormFloat64())
				} else {
					v[i] = float32(0.5 + 1.5*rng.Float64())
				}
			}
			gp.Initializer[k] = onnxio.FloatTensor(s, init.GetDims(), v)
		}
	}
	return out
}

// TestEvaluateFrozenMatchesFed: the evaluation with constant weights gives
// today's logits and losses within float32 tolerance (ORT folds BatchNorm
// into the convolutions, which reorders the arithmetic), on full and
// remainder batches.
func TestEvaluateFrozenMatchesFed(t *testing.T) {
	requireORT(t)
	d := fashion(t, "t10k", 300)
	for _, f := range []string{"mlp_bn.training.onnx", "small_cnn.training.onnx", "small_resnet.training.onnx"} {
		t.Run(f, func(t *testing.T) {
			m := withRandomStats(t, loadFixture(t, f), 3)
			opts := ort.SessionOptions{Threads: 2}
			want, err := evaluateFed(t.Context(), m, d, 128, opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Evaluate(t.Context(), m, d, 128, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Classes != want.Classes || len(got.Logits) != len(want.Logits) {
				t.Fatalf("shape %d×%d, want %d×%d", len(got.Logits)/got.Classes, got.Classes, len(want.Logits)/want.Classes, want.Classes)
			}
			worst := func(a, b []float32) (w float64) {
				for i := range a {
					e := math.Abs(float64(a[i]-b[i])) / max(1, math.Abs(float64(b[i])))
					w = max(w, e)
				}
				return w
			}
			if e := worst(got.Logits, want.Logits); e > 1e-4 {
				t.Errorf("logits differ by %g (relative) from the fed evaluation", e)
			}
			if e := worst(got.Loss, want.Loss); e > 1e-4 {
				t.Errorf("losses differ by %g (relative) from the fed evaluation", e)
			}
			t.Logf("logits within %.2g, losses within %.2g", worst(got.Logits, want.Logits), worst(got.Loss, want.Loss))
		})
	}
}

// TestEvaluateStopsOnCancel: a cancelled evaluation returns the error and
// leaves no batch behind (the prefetching goroutine ends).
func TestEvaluateStopsOnCancel(t *testing.T) {
	requireORT(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, loadFixture(t, "small_cnn.training.onnx"), fashion(t, "t10k", 300), 64, ort.SessionOptions{Threads: 1}); err == nil {
		t.Fatal("cancelled evaluation succeeded")
	}
}

// BenchmarkEvaluate compares, at batch 128 on 2 threads over 4,000
// samples, Evaluate (constant weights, data decoded while the previous
// batch runs), the fed evaluation it replaced, and ORT's forward-only pass
// of the same model in inference mode (onnxio.EvalMode, no loss, one
// prepared input tensor: the ceiling). samples/s is the metric.
func BenchmarkEvaluate(b *testing.B) {
	requireORT(b)
	d := fashion(b, "train", 4000)
	opts := ort.SessionOptions{Threads: 2}
	for _, f := range []string{"small_cnn.training.onnx", "small_resnet.training.onnx"} {
		m := withRandomStats(b, loadFixture(b, f), 3)
		run := func(b *testing.B, eval func(context.Context, *onnxio.Model, *dataset.Dataset, int, ort.SessionOptions) (*Outputs, error)) {
			for b.Loop() {
				if _, err := eval(b.Context(), m, d, 128, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(d.Len())*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		}
		b.Run(f+"/frozen", func(b *testing.B) { run(b, Evaluate) })
		b.Run(f+"/fed", func(b *testing.B) { run(b, evaluateFed) })
		b.Run(f+"/ort-forward", func(b *testing.B) {
			em, err := onnxio.EvalMode(m)
			if err != nil {
				b.Fatal(err)
			}
			raw, err := em.Bytes()
			if err != nil {
				b.Fatal(err)
			}
			s, err := ort.NewSessionAuto(raw, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			x, _ := mnistBatch(b, 64)
			x = append(x, x...)
			in := map[string]*ort.Tensor{s.Inputs()[0].Name: ort.Float32Tensor([]int64{128, 1, 28, 28}, x)}
			if _, err := s.Run(in); err != nil {
				b.Fatal(err)
			}
			batches := 0
			start := time.Now()
			for b.Loop() {
				for range (d.Len() + 127) / 128 {
					if _, err := s.Run(in); err != nil {
						b.Fatal(err)
					}
					batches++
				}
			}
			b.ReportMetric(float64(batches*128)/time.Since(start).Seconds(), "samples/s")
		})
	}
}
