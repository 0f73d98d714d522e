// Package dataset reads the data sets bnaudit trains and audits on.
//
// This first part reads IDX files, the format of MNIST and Fashion-MNIST
// (LeCun et al.): a 4-byte magic number (two zero bytes, a type code, the
// number of dimensions), one big-endian uint32 per dimension, then the data
// in row-major order. Files may be gzip-compressed.
package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrBadData marks data files that cannot be read as what they claim to be.
var ErrBadData = errors.New("bad data file")

// IDX is the content of an IDX file holding unsigned bytes.
type IDX struct {
	Dims []int
	Data []byte
}

// maxIDXBytes caps the data an IDX file may declare (Fashion-MNIST's
// training images are 47 MB).
const maxIDXBytes = 4 << 30

// ReadIDX reads an unsigned-byte IDX file, gzip-compressed or not.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	name := filepath.Base(path)
	br := bufio.NewReader(f)
	var r io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: broken gzip stream: %v: %w", name, err, ErrBadData)
		}
		defer gz.Close()
		r = gz
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("dataset: %s: too short for an IDX file: %w", name, ErrBadData)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("dataset: %s: not an IDX file (bad magic number): %w", name, ErrBadData)
	}
	if magic[2] != 0x08 {
		return nil, fmt.Errorf("dataset: %s: IDX element type 0x%02x, bnaudit reads unsigned bytes (0x08): %w", name, magic[2], ErrBadData)
	}
	nd := int(magic[3])
	if nd == 0 || nd > 8 {
		return nil, fmt.Errorf("dataset: %s: IDX file with %d dimensions: %w", name, nd, ErrBadData)
	}
	dims := make([]int, nd)
	total := int64(1)
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("dataset: %s: truncated IDX header: %w", name, ErrBadData)
		}
		dims[i] = int(d)
		total *= int64(d)
		if total > maxIDXBytes {
			return nil, fmt.Errorf("dataset: %s: IDX file declares more than %d bytes: %w", name, int64(maxIDXBytes), ErrBadData)
		}
	}
	data := make([]byte, total)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("dataset: %s: IDX data is truncated (want %d bytes for shape %v): %w", name, total, dims, ErrBadData)
	}
	return &IDX{Dims: dims, Data: data}, nil
}
