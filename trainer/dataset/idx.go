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
	"sort"
	"strings"
)

// ErrBadData marks data files that cannot be read as what they claim to be,
// and data that does not fit what it is used for.
var ErrBadData = errors.New("bad data file")

// IDX is the content of an IDX file holding unsigned bytes.
//
// An IDX file (the format of MNIST and Fashion-MNIST) is a 4-byte magic
// number (two zero bytes, a type code, the number of dimensions), one
// big-endian uint32 per dimension, then the data in row-major order. Files
// may be gzip-compressed.
type IDX struct {
	Dims []int
	Data []byte
}

// maxIDXBytes caps the data an IDX file may declare (Fashion-MNIST's
// training images are 47 MB).
const maxIDXBytes = 4 << 30

// maxDeflateRatio bounds how much a deflate (gzip, zip) stream can expand:
// 258 bytes per 2 bits at best, so about 1032:1. Declared sizes beyond
// this ratio of the compressed size are lies.
const maxDeflateRatio = 1032

// ReadIDX reads an unsigned-byte IDX file, gzip-compressed or not.
func ReadIDX(path string) (*IDX, error) {
	return readIDX(path, 0, anyIDX)
}

// The kinds of IDX file readIDX may be asked for.
const (
	anyIDX    = 0
	imagesIDX = 2 // two or more dimensions: [N, H, W, …]
	labelsIDX = 1 // one dimension: [N]
)

// readIDX reads an IDX file, keeping only the first maxRows records along
// the first dimension when maxRows > 0. kind (imagesIDX, labelsIDX) is
// checked against the header's number of dimensions before any size is
// read, so that a file of the other kind is named as such.
func readIDX(path string, maxRows, kind int) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	name := filepath.Base(path)
	if st.IsDir() {
		return nil, fmt.Errorf("dataset: %s: is a folder, not an IDX file: %w", name, ErrBadData)
	}
	br := bufio.NewReader(f)
	var r io.Reader = br
	// avail bounds the bytes the (decompressed) stream can hold.
	avail := st.Size()
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: broken gzip stream: %v: %w", name, err, ErrBadData)
		}
		defer gz.Close()
		r = gz
		avail = st.Size() * maxDeflateRatio
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
	switch {
	case kind == labelsIDX && nd != 1:
		return nil, fmt.Errorf("dataset: %s: a labels file has one dimension, this one declares %d (is it an images file?): %w", name, nd, ErrBadData)
	case kind == imagesIDX && nd < 2:
		return nil, fmt.Errorf("dataset: %s: an images file has two or more dimensions, this one declares %d (is it a labels file?): %w", name, nd, ErrBadData)
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
	if total > avail-int64(4+4*nd) {
		return nil, fmt.Errorf("dataset: %s: IDX data is truncated (shape %v needs %d bytes, the file cannot hold them): %w", name, dims, total, ErrBadData)
	}
	want := total
	if maxRows > 0 && maxRows < dims[0] {
		want = total / int64(dims[0]) * int64(maxRows)
		dims[0] = maxRows
	}
	data := make([]byte, want)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("dataset: %s: IDX data is truncated (want %d bytes for shape %v): %w", name, total, dims, ErrBadData)
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// idxPrefix maps a split to the file-name prefix MNIST uses for it.
func idxPrefix(split string) (string, error) {
	switch split {
	case "", "train":
		return "train", nil
	case "test":
		return "t10k", nil
	}
	return "", fmt.Errorf("dataset: split %q: want \"train\" or \"test\": %w", split, ErrBadData)
}

// isIDXImages reports whether a file name looks like an IDX images file
// (…images-idx3-ubyte or …images.idx3-ubyte, optionally .gz).
func isIDXImages(name string) bool {
	n := strings.TrimSuffix(name, ".gz")
	return strings.HasSuffix(n, "images-idx3-ubyte") || strings.HasSuffix(n, "images.idx3-ubyte")
}

// findIDXImages picks the images file of a split in an IDX folder.
func findIDXImages(dir, split string) (string, error) {
	prefix, err := idxPrefix(split)
	if err != nil {
		return "", err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("dataset: %w", err)
	}
	stems := map[string][]string{}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, prefix) || !isIDXImages(n) {
			continue
		}
		stem := strings.TrimSuffix(n, ".gz")
		stems[stem] = append(stems[stem], n)
	}
	if len(stems) == 0 {
		return "", fmt.Errorf("dataset: %s: no %s-images-idx3-ubyte[.gz] file for split %q: %w", filepath.Base(dir), prefix, splitName(split), ErrBadData)
	}
	if len(stems) > 1 {
		var all []string
		for s := range stems {
			all = append(all, s)
		}
		sort.Strings(all)
		return "", fmt.Errorf("dataset: %s: several images files for split %q (%s); name one of them: %w", filepath.Base(dir), splitName(split), strings.Join(all, ", "), ErrBadData)
	}
	var names []string
	for _, n := range stems {
		names = n
	}
	// Prefer the uncompressed copy when both exist.
	sort.Strings(names)
	return filepath.Join(dir, names[0]), nil
}

func splitName(s string) string {
	if s == "" {
		return "train"
	}
	return s
}

// idxLabelsPath finds the labels file beside an images file: the name with
// "images-idx3" replaced by "labels-idx1", compressed or not.
func idxLabelsPath(images string) (string, error) {
	dir, base := filepath.Split(images)
	lb := strings.Replace(base, "images-idx3", "labels-idx1", 1)
	lb = strings.Replace(lb, "images.idx3", "labels.idx1", 1)
	if lb == base {
		return "", fmt.Errorf("dataset: %s: not named like an IDX images file (…images-idx3-ubyte[.gz]), so its labels file cannot be found: %w", base, ErrBadData)
	}
	cands := []string{lb}
	if strings.HasSuffix(lb, ".gz") {
		cands = append(cands, strings.TrimSuffix(lb, ".gz"))
	} else {
		cands = append(cands, lb+".gz")
	}
	for _, c := range cands {
		if st, err := os.Stat(filepath.Join(dir, c)); err == nil && !st.IsDir() {
			return filepath.Join(dir, c), nil
		}
	}
	return "", fmt.Errorf("dataset: %s: labels file %s not found beside it: %w", base, strings.TrimSuffix(lb, ".gz")+"[.gz]", ErrBadData)
}

// loadIDX reads an IDX images file and the labels file beside it.
func loadIDX(images, name string, maxSamples int) (*Dataset, error) {
	labels, err := idxLabelsPath(images)
	if err != nil {
		return nil, err
	}
	img, err := readIDX(images, maxSamples, imagesIDX)
	if err != nil {
		return nil, err
	}
	lab, err := readIDX(labels, maxSamples, labelsIDX)
	if err != nil {
		return nil, err
	}
	ib, lb := filepath.Base(images), filepath.Base(labels)
	if len(img.Dims) < 2 {
		return nil, fmt.Errorf("dataset: %s: images file has shape %v, want [N, H, W]: %w", ib, img.Dims, ErrBadData)
	}
	if len(lab.Dims) != 1 {
		return nil, fmt.Errorf("dataset: %s: labels file has shape %v, want [N]: %w", lb, lab.Dims, ErrBadData)
	}
	if img.Dims[0] != lab.Dims[0] {
		return nil, fmt.Errorf("dataset: %s holds %d images but %s holds %d labels: %w", ib, img.Dims[0], lb, lab.Dims[0], ErrBadData)
	}
	shape := make([]int64, len(img.Dims)-1)
	for i, d := range img.Dims[1:] {
		shape[i] = int64(d)
	}
	y := make([]int64, len(lab.Data))
	for i, v := range lab.Data {
		y[i] = int64(v)
	}
	return newUint8(name, shape, img.Data, y)
}
