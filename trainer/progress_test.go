package trainer

import (
	"slices"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// TestEvaluateProgress: under WithEvalProgress, Evaluate reports after
// every batch, counts rising to the number of samples (300 at batch 128:
// 128, 256, 300), and computes the same outputs as without it.
func TestEvaluateProgress(t *testing.T) {
	requireORT(t)
	d := fashion(t, "t10k", 300)
	m := loadFixture(t, "small_cnn.training.onnx")
	opts := ort.SessionOptions{Threads: 1}
	want, err := Evaluate(t.Context(), m, d, 128, opts)
	if err != nil {
		t.Fatal(err)
	}
	var seen []int
	ctx := WithEvalProgress(t.Context(), func(done, total int) {
		if total != 300 {
			t.Errorf("total %d, want 300", total)
		}
		seen = append(seen, done)
	})
	got, err := Evaluate(ctx, m, d, 128, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []int{128, 256, 300}) {
		t.Errorf("progress %v, want [128 256 300]", seen)
	}
	if !slices.Equal(got.Logits, want.Logits) || !slices.Equal(got.Loss, want.Loss) {
		t.Error("outputs changed with a progress hook")
	}
}
