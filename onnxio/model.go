package onnxio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bnaudit/bnaudit/internal/atomicfile"

	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Sentinel errors that callers can branch on with errors.Is.
var (
	// ErrNotONNX: the bytes are not an ONNX model (empty, not protobuf, or
	// protobuf without a graph).
	ErrNotONNX = errors.New("not an ONNX model")
	// ErrTooLarge: the file or one of its tensors is over a configured limit.
	ErrTooLarge = errors.New("over the size limit")
	// ErrInvalidModel: the model decodes but breaks a structural rule
	// (dangling input, cycle, duplicate name, bad tensor size, …).
	ErrInvalidModel = errors.New("invalid model")
	// ErrUnsafePath: an external-data location leaves the model's folder.
	ErrUnsafePath = errors.New("unsafe external data path")
)

// Limits bound what Load accepts from an untrusted file.
type Limits struct {
	// MaxFileBytes caps the size of the .onnx file itself.
	MaxFileBytes int64
	// MaxTensorBytes caps the bytes of any single tensor (inline or external).
	MaxTensorBytes int64
	// MaxNodes caps the number of nodes, summed over the main graph and all subgraphs.
	MaxNodes int
}

// DefaultLimits are generous for real models and still refuse absurd inputs:
// protobuf itself cannot encode a message of 2 GiB or more.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:   2<<30 - 1,
		MaxTensorBytes: 4 << 30,
		MaxNodes:       1 << 20,
	}
}

// Model is a decoded ONNX model and the folder its external data is read from.
type Model struct {
	Proto *onnxpb.ModelProto
	// Dir is the folder of the model file; external-data locations are
	// resolved inside it. Empty for a model decoded from bytes with no folder.
	Dir string
	// Name is a label for error messages (the file name when loaded from disk).
	Name   string
	limits Limits
}

// Load reads, decodes and validates an ONNX file with DefaultLimits.
func Load(path string) (*Model, error) { return LoadWithLimits(path, DefaultLimits()) }

// LoadWithLimits reads, decodes and validates an ONNX file. Every failure is
// returned as one line that names the file and says what is wrong.
func LoadWithLimits(path string, lim Limits) (*Model, error) {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("onnxio: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("onnxio: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("onnxio: %s is a folder, not an ONNX file", path)
	}
	if lim.MaxFileBytes > 0 && st.Size() > lim.MaxFileBytes {
		return nil, fmt.Errorf("onnxio: %s: file is %d bytes, limit is %d (raise --max-model-bytes if you trust it): %w", name, st.Size(), lim.MaxFileBytes, ErrTooLarge)
	}
	// Read at most the limit plus one byte, in case the file grows meanwhile.
	r := io.Reader(f)
	if lim.MaxFileBytes > 0 {
		r = io.LimitReader(f, lim.MaxFileBytes+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("onnxio: reading %s: %w", name, err)
	}
	if lim.MaxFileBytes > 0 && int64(len(data)) > lim.MaxFileBytes {
		return nil, fmt.Errorf("onnxio: %s: file is over the limit of %d bytes: %w", name, lim.MaxFileBytes, ErrTooLarge)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("onnxio: %w", err)
	}
	return decode(data, dir, name, lim)
}

// Decode decodes and validates a model held in memory. dir is the folder
// external data is resolved in ("" refuses external data).
func Decode(data []byte, dir string, lim Limits) (*Model, error) {
	return decode(data, dir, "model", lim)
}

func decode(data []byte, dir, name string, lim Limits) (*Model, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("onnxio: %s: empty file: %w", name, ErrNotONNX)
	}
	if lim.MaxFileBytes > 0 && int64(len(data)) > lim.MaxFileBytes {
		return nil, fmt.Errorf("onnxio: %s: %d bytes, limit is %d: %w", name, len(data), lim.MaxFileBytes, ErrTooLarge)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("onnxio: %s: %w: the file is truncated or is not protobuf (%s); re-export the model", name, ErrNotONNX, oneLine(err.Error()))
	}
	if mp.GetGraph() == nil || mp.GetIrVersion() <= 0 || mp.GetIrVersion() > 1000 {
		return nil, fmt.Errorf("onnxio: %s: %w: no graph or no valid IR version; is this an .onnx export?", name, ErrNotONNX)
	}
	m := &Model{Proto: mp, Dir: dir, Name: name, limits: lim}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Marshal encodes the model deterministically. External data stays external
// (the references are written as they are).
func (m *Model) Marshal() ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	if err != nil {
		return nil, fmt.Errorf("onnxio: encoding %s: %w", m.Name, err)
	}
	return b, nil
}

// Bytes encodes the model with all external data read back inline, ready to
// hand to ONNX Runtime from memory.
func (m *Model) Bytes() ([]byte, error) {
	if !m.HasExternalData() {
		return m.Marshal()
	}
	c := m.Clone()
	if err := c.InlineExternalData(); err != nil {
		return nil, err
	}
	return c.Marshal()
}

// Save writes the model atomically: to a temporary file in the target folder,
// then renamed over path. External data is read back inline first, so the
// written file stands alone wherever it is saved.
func (m *Model) Save(path string) error {
	data, err := m.Bytes()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("onnxio: %w", err)
	}
	return nil
}

// Clone returns a deep copy; transforms work on clones and never mutate their input.
func (m *Model) Clone() *Model {
	c := *m
	c.Proto = proto.Clone(m.Proto).(*onnxpb.ModelProto)
	return &c
}

// Graph is a shortcut for the main graph.
func (m *Model) Graph() *onnxpb.GraphProto { return m.Proto.GetGraph() }

// Opset returns the model's opset version for a domain ("" or "ai.onnx" is
// the default domain), or 0 when the model does not import it.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.Proto.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.GetVersion()
		}
	}
	return 0
}

// Metadata returns the value of a metadata_props key.
func (m *Model) Metadata(key string) (string, bool) {
	for _, p := range m.Proto.GetMetadataProps() {
		if p.GetKey() == key {
			return p.GetValue(), true
		}
	}
	return "", false
}

// SetMetadata sets (or replaces) a metadata_props entry.
func (m *Model) SetMetadata(key, value string) {
	for _, p := range m.Proto.GetMetadataProps() {
		if p.GetKey() == key {
			p.Value = value
			return
		}
	}
	m.Proto.MetadataProps = append(m.Proto.MetadataProps, &onnxpb.StringStringEntryProto{Key: key, Value: value})
}

func oneLine(s string) string { return CleanMessage(s) }

// cleanError keeps an error's identity (errors.Is/As) while making its text
// safe to print on one line: names read from a hostile file may hold
// newlines, control characters or megabytes of text.
type cleanError struct{ err error }

func (e cleanError) Error() string { return CleanMessage(e.err.Error()) }
func (e cleanError) Unwrap() error { return e.err }

func clean(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(cleanError); ok {
		return err
	}
	return cleanError{err}
}

// CleanMessage escapes control characters and shortens a message to at most
// 600 bytes, so that it prints as one readable line.
func CleanMessage(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
		if b.Len() > 600 {
			return b.String()[:600] + "…"
		}
	}
	return b.String()
}
