package trainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
)

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestLogLine: a failed write is an error; a number JSON cannot hold is
// written as null, the line staying JSON.
func TestLogLine(t *testing.T) {
	cfg := Config{Log: failingWriter{}}
	if err := cfg.logLine(map[string]any{"step": 1}); err == nil {
		t.Fatal("failed write: no error")
	}
	var buf bytes.Buffer
	cfg.Log = &buf
	if err := cfg.logLine(EpochStats{Epoch: 2, TrainLoss: math.NaN(), TrainAcc: 0.5, LR: float32(math.Inf(1))}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("line %q is not JSON: %v", buf.String(), err)
	}
	if got["train_loss"] != nil || got["lr"] != nil || got["train_acc"] != 0.5 || got["epoch"] != 2.0 {
		t.Fatalf("got %v", got)
	}
	if _, ok := got["test_loss"]; ok {
		t.Fatalf("omitempty field written: %v", got)
	}
}
