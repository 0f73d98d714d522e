package trainer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/onnxio"
)

// A checkpoint is one file, written atomically (temporary file, rename):
// the magic line, a little-endian uint64 header length, a JSON header, then
// every state tensor as little-endian float32 in header order. The random
// state needs no saving: every random choice is a pure function of the seed
// and the (epoch, step) position, which the header holds.

const (
	checkpointFile  = "checkpoint.bnaudit"
	checkpointMagic = "BNAUDIT-CHECKPOINT 1\n"
)

type checkpointHeader struct {
	Fingerprint string       `json:"fingerprint"`
	Epoch       int          `json:"epoch"`
	StepInEpoch int          `json:"step_in_epoch"`
	GlobalStep  int          `json:"global_step"`
	Acc         epochAcc     `json:"epoch_so_far"`
	History     []EpochStats `json:"history"`
	Tensors     []ckptTensor `json:"tensors"`
}

type ckptTensor struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// fingerprint identifies what a checkpoint may be resumed with: the model,
// the data and every setting that changes the result.
func fingerprint(m *onnxio.Model, cfg Config) string {
	h := sha256.New()
	if b, err := m.Marshal(); err == nil {
		h.Write(b)
	}
	fmt.Fprintf(h, "|train %s %d", cfg.Train.Name(), cfg.Train.Len())
	for _, y := range cfg.Train.Labels() {
		fmt.Fprintf(h, ",%d", y)
	}
	if cfg.Test != nil {
		fmt.Fprintf(h, "|test %s %d", cfg.Test.Name(), cfg.Test.Len())
	}
	n := cfg.Train.Norm()
	fmt.Fprintf(h, "|norm %v %v|epochs %d batch %d opt %+v lr %v sched %s ls %v aug %+v seed %d init %s",
		n.Mean, n.Std, cfg.Epochs, cfg.Batch, cfg.Optimizer, cfg.LR, cfg.Schedule, cfg.LabelSmoothing, cfg.Augment, cfg.Seed, cfg.Init)
	h.Write([]byte(cfg.lossFingerprint()))
	return hex.EncodeToString(h.Sum(nil))
}

func (t *trainer) saveCheckpoint() error {
	if err := os.MkdirAll(t.cfg.CheckpointDir, 0o755); err != nil {
		return fmt.Errorf("trainer: checkpoint folder: %w", err)
	}
	hdr := checkpointHeader{Fingerprint: t.fingerprint, Epoch: t.epoch, StepInEpoch: t.stepInEpoch,
		GlobalStep: t.globalStep, Acc: t.acc, History: t.history}
	for _, name := range t.persistent {
		hdr.Tensors = append(hdr.Tensors, ckptTensor{Name: name, Count: len(t.state[name])})
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(checkpointMagic)
	binary.Write(&buf, binary.LittleEndian, uint64(len(js)))
	buf.Write(js)
	for _, name := range t.persistent {
		b := make([]byte, 4*len(t.state[name]))
		for i, v := range t.state[name] {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		buf.Write(b)
	}
	return atomicfile.WriteFile(filepath.Join(t.cfg.CheckpointDir, checkpointFile), buf.Bytes())
}

// loadCheckpoint restores a checkpoint when there is one; false means the
// run starts from the beginning.
func (t *trainer) loadCheckpoint() (bool, error) {
	path := filepath.Join(t.cfg.CheckpointDir, checkpointFile)
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("trainer: %w", err)
	}
	bad := func(why string) error {
		return fmt.Errorf("trainer: %s is not a usable checkpoint (%s); remove it to start over", path, why)
	}
	if !bytes.HasPrefix(raw, []byte(checkpointMagic)) || len(raw) < len(checkpointMagic)+8 {
		return false, bad("bad header")
	}
	rest := raw[len(checkpointMagic):]
	n := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if n > uint64(len(rest)) {
		return false, bad("truncated")
	}
	var hdr checkpointHeader
	if err := json.Unmarshal(rest[:n], &hdr); err != nil {
		return false, bad("unreadable header")
	}
	if hdr.Fingerprint != t.fingerprint {
		return false, fmt.Errorf("trainer: the checkpoint in %s was made with another model, data set or settings; resume with the same command, or use another --checkpoint folder", t.cfg.CheckpointDir)
	}
	data := rest[n:]
	off := 0
	for _, ct := range hdr.Tensors {
		dst, ok := t.state[ct.Name]
		if !ok || len(dst) != ct.Count || off+4*ct.Count > len(data) {
			return false, bad("tensor " + ct.Name + " does not fit")
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off+4*i:]))
		}
		off += 4 * ct.Count
	}
	if off != len(data) || len(hdr.Tensors) != len(t.persistent) {
		return false, bad("size mismatch")
	}
	t.epoch, t.stepInEpoch, t.globalStep, t.acc, t.history = hdr.Epoch, hdr.StepInEpoch, hdr.GlobalStep, hdr.Acc, hdr.History
	return true, nil
}
