package study

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// SignalCache keeps each model's logits on each data set on disk, keyed by
// the SHA-256 of the model's encoding and the data set's fingerprint
// (dataset.Fingerprint: samples, labels, normalization), so that a second
// audit of the same model and data, or a resumed comparison, evaluates
// nothing twice. The zero value (Dir "") caches nothing.
type SignalCache struct {
	Dir string
}

// cacheMagic opens every cache file; the version changes with the layout.
const cacheMagic = "bnaudit.logits/v1\n"

// ModelHash is the hex SHA-256 of the model's deterministic encoding.
func ModelHash(m *onnxio.Model) (string, error) {
	raw, err := m.Bytes()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:]), nil
}

func (c SignalCache) path(modelHash, dataHash string) string {
	return filepath.Join(c.Dir, modelHash[:32]+"-"+dataHash[:32]+".logits")
}

// Logits returns the model's logits on d ([N·classes] row-major) and the
// class count, from the cache when it holds them, else through ORT (and
// then stored).
func (c SignalCache) Logits(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, batch int, opts ort.SessionOptions) ([]float32, int, error) {
	var path string
	if c.Dir != "" {
		mh, err := ModelHash(m)
		if err != nil {
			return nil, 0, err
		}
		path = c.path(mh, d.Fingerprint())
		if lg, k, ok := readLogits(path, d.Len()); ok {
			return lg, k, nil
		}
	}
	o, err := trainer.Evaluate(ctx, m, d, batch, opts)
	if err != nil {
		return nil, 0, err
	}
	if path != "" {
		if err := c.store(path, encodeLogits(o.Logits, o.Classes, d.Len())); err != nil {
			return nil, 0, err
		}
	}
	return o.Logits, o.Classes, nil
}

// Signals evaluates (or loads) the model on d and derives the signals.
func (c SignalCache) Signals(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, opts ort.SessionOptions) (audit.Signals, error) {
	lg, k, err := c.Logits(ctx, m, d, signalBatch, opts)
	if err != nil {
		return audit.Signals{}, err
	}
	return audit.ComputeSignalsFlat(lg, k, d.Labels())
}

// seal frames a cache file: magic, body, then the SHA-256 of both.
func seal(magic string, body []byte) []byte {
	b := append([]byte(magic), body...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// unseal returns the body of a sealed file, or false when the file is
// missing, of another kind or damaged (a cache miss: recompute).
func unseal(path, magic string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < len(magic)+32 || string(b[:len(magic)]) != magic {
		return nil, false
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if got := sha256.Sum256(body); string(got[:]) != string(sum) {
		return nil, false
	}
	return body[len(magic):], true
}

// store writes a cache file atomically.
func (c SignalCache) store(path string, data []byte) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("study: signal cache: %w", err)
	}
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("study: signal cache: %w", err)
	}
	return nil
}

func encodeLogits(lg []float32, classes, n int) []byte {
	b := make([]byte, 0, 16+4*len(lg))
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	b = binary.LittleEndian.AppendUint64(b, uint64(classes))
	for _, v := range lg {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return seal(cacheMagic, b)
}

// readLogits loads a cache file; any mismatch (other size, damaged file)
// counts as a miss, and the values are recomputed.
func readLogits(path string, n int) ([]float32, int, bool) {
	p, ok := unseal(path, cacheMagic)
	if !ok || len(p) < 16 {
		return nil, 0, false
	}
	rows, classes := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])
	p = p[16:]
	if rows != uint64(n) || classes == 0 || classes > 1<<20 || uint64(len(p)) != 4*rows*classes {
		return nil, 0, false
	}
	lg := make([]float32, rows*classes)
	for i := range lg {
		lg[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return lg, int(classes), true
}

// GradNorms returns per-sample gradient norms of the model on d (see
// trainer.GradNorms), from the cache when it holds them. The key adds the
// mode and, for in-batch norms, the batch size, which decides each
// sample's batch companions (the fingerprint already fixes their order).
func (c SignalCache) GradNorms(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, mode trainer.GradNormMode, batch int, opts ort.SessionOptions) ([]float64, error) {
	var path string
	if c.Dir != "" {
		mh, err := ModelHash(m)
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%s|%d", mh, d.Fingerprint(), mode, batch)))
		path = filepath.Join(c.Dir, hex.EncodeToString(h[:16])+".gradnorms")
		if v, ok := readFloat64s(path, d.Len()); ok {
			return v, nil
		}
	}
	v, err := trainer.GradNorms(ctx, m, d, mode, batch, opts)
	if err != nil {
		return nil, err
	}
	if path != "" {
		if err := c.store(path, encodeFloat64s(v)); err != nil {
			return nil, err
		}
	}
	return v, nil
}

const normsMagic = "bnaudit.gradnorms/v1\n"

func encodeFloat64s(v []float64) []byte {
	b := make([]byte, 0, 8+8*len(v))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return seal(normsMagic, b)
}

func readFloat64s(path string, n int) ([]float64, bool) {
	p, ok := unseal(path, normsMagic)
	if !ok || len(p) < 8 || binary.LittleEndian.Uint64(p) != uint64(n) || len(p) != 8+8*n {
		return nil, false
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8+8*i:]))
	}
	return out, true
}
