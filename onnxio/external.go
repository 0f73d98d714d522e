package onnxio

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// externalRef is a parsed external_data entry of a tensor.
type externalRef struct {
	location string
	offset   int64
	length   int64 // -1: to the end of the file
}

func parseExternal(t *onnxpb.TensorProto) (externalRef, error) {
	ref := externalRef{length: -1}
	for _, kv := range t.ExternalData {
		switch kv.Key {
		case "location":
			ref.location = kv.Value
		case "offset", "length":
			v, err := strconv.ParseInt(kv.Value, 10, 64)
			if err != nil || v < 0 {
				return ref, fmt.Errorf("tensor %q: external data %s %q is not a non-negative integer", t.Name, kv.Key, kv.Value)
			}
			if kv.Key == "offset" {
				ref.offset = v
			} else {
				ref.length = v
			}
		}
	}
	if ref.location == "" {
		return ref, fmt.Errorf("tensor %q: external data has no location", t.Name)
	}
	return ref, nil
}

// resolveExternal turns a location into a path inside the model's folder,
// refusing absolute paths, paths that climb out with "..", and symbolic
// links that lead outside.
func (m *Model) resolveExternal(t *onnxpb.TensorProto, loc string) (string, error) {
	if m.Dir == "" {
		return "", fmt.Errorf("onnxio: %s: tensor %q uses external data but the model was not loaded from a file; load it with onnxio.Load: %w", m.Name, t.Name, ErrInvalidModel)
	}
	unsafe := func(why string) error {
		return fmt.Errorf("onnxio: %s: tensor %q: external data location %q %s; external files must sit in the model's folder: %w", m.Name, t.Name, loc, why, ErrUnsafePath)
	}
	if strings.ContainsRune(loc, 0) {
		return "", unsafe("contains a NUL byte")
	}
	if filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, `\`) {
		return "", unsafe("is absolute")
	}
	clean := filepath.Clean(filepath.FromSlash(loc))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", unsafe("leaves the folder")
	}
	p := filepath.Join(m.Dir, clean)
	realDir, err := filepath.EvalSymlinks(m.Dir)
	if err != nil {
		return "", fmt.Errorf("onnxio: %s: %w", m.Name, err)
	}
	realP, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("onnxio: %s: tensor %q: external data file %q cannot be opened: %w", m.Name, t.Name, loc, ErrInvalidModel)
	}
	rel, err := filepath.Rel(realDir, realP)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", unsafe("links outside the folder")
	}
	return realP, nil
}

// checkExternal validates an external tensor against its file without reading it.
func (m *Model) checkExternal(t *onnxpb.TensorProto, n int64, where string) error {
	ref, err := parseExternal(t)
	if err != nil {
		return invalidf("%s: %v", where, err)
	}
	p, err := m.resolveExternal(t, ref.location)
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return invalidf("%s: tensor %q: external data %q is not a regular file", where, t.Name, ref.location)
	}
	length := ref.length
	if length < 0 {
		length = st.Size() - ref.offset
	}
	if ref.offset > st.Size() || length > st.Size()-ref.offset {
		return invalidf("%s: tensor %q: external data offset %d + length %d runs past the end of %q (%d bytes)", where, t.Name, ref.offset, length, ref.location, st.Size())
	}
	if want := rawSize(t.DataType, n); length != want {
		return invalidf("%s: tensor %q declares shape %v (%d bytes) but its external data holds %d bytes", where, t.Name, t.Dims, want, length)
	}
	return nil
}

// readExternal reads the bytes of an external tensor.
func (m *Model) readExternal(t *onnxpb.TensorProto) ([]byte, error) {
	ref, err := parseExternal(t)
	if err != nil {
		return nil, fmt.Errorf("onnxio: %s: %v: %w", m.Name, err, ErrInvalidModel)
	}
	p, err := m.resolveExternal(t, ref.location)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("onnxio: %s: %w", m.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("onnxio: %s: %w", m.Name, err)
	}
	length := ref.length
	if length < 0 {
		length = st.Size() - ref.offset
	}
	if ref.offset > st.Size() || length < 0 || length > st.Size()-ref.offset {
		return nil, invalidf("tensor %q: external data runs past the end of %q", t.Name, ref.location)
	}
	if m.limits.MaxTensorBytes > 0 && length > m.limits.MaxTensorBytes {
		return nil, fmt.Errorf("onnxio: %s: tensor %q: %d external bytes, limit is %d: %w", m.Name, t.Name, length, m.limits.MaxTensorBytes, ErrTooLarge)
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, ref.offset); err != nil && err != io.EOF {
		return nil, fmt.Errorf("onnxio: %s: reading external data of %q: %w", m.Name, t.Name, err)
	}
	return buf, nil
}

// HasExternalData reports whether any tensor of the model lives in an external file.
func (m *Model) HasExternalData() bool {
	found := false
	m.eachTensor(func(t *onnxpb.TensorProto, _ string) error {
		if IsExternal(t) {
			found = true
		}
		return nil
	})
	return found
}

// InlineExternalData reads every external tensor into raw_data, in place.
// Use it on a clone.
func (m *Model) InlineExternalData() error {
	return m.eachTensor(func(t *onnxpb.TensorProto, _ string) error {
		if !IsExternal(t) {
			return nil
		}
		b, err := m.readExternal(t)
		if err != nil {
			return err
		}
		t.RawData = b
		t.ExternalData = nil
		t.DataLocation = onnxpb.TensorProto_DEFAULT
		return nil
	})
}
