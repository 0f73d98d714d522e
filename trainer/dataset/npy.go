package dataset

// NumPy's .npy format (numpy/lib/format.py, "NEP 1"): the magic string
// "\x93NUMPY", a major and minor version byte, the header length (uint16
// little-endian in version 1, uint32 in versions 2 and 3), then the header,
// an ASCII (version 3: UTF-8) Python dict literal such as
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
//
// padded with spaces and ended by '\n', then the array data.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

const (
	npyMagic = "\x93NUMPY"
	// maxNPYHeader caps the header length (NumPy itself reads at most
	// 10000 bytes unless told otherwise).
	maxNPYHeader = 1 << 16
	maxNPYDims   = 32
)

// npyHeader is a parsed .npy header.
type npyHeader struct {
	descr     string
	kind      byte // 'u', 'i', 'f' or 'b'
	itemSize  int
	shape     []int64
	elems     int64 // product of shape
	headerLen int64 // bytes before the data
}

// npyArray is a decoded array: exactly one of u8, f32 and ints is set.
type npyArray struct {
	shape []int64 // as kept (maxRows)
	rows  int64   // rows along the first axis in the file (1 for a scalar)
	descr string
	u8    []byte
	f32   []float32
	ints  []int64
}

// npyRole says what an array is read as: samples (uint8, float32, or
// float64 converted to float32) or integers (labels, indices).
type npyRole int

const (
	npySamples npyRole = iota
	npyInts
)

// readNPYHeader reads and checks the header of a .npy stream of size
// bytes (the file or zip entry size), including that the data fills the
// rest of the stream exactly.
func readNPYHeader(r io.Reader, size int64, name string) (*npyHeader, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, fmt.Errorf("dataset: %s: too short for a .npy file: %w", name, ErrBadData)
	}
	if string(pre[:6]) != npyMagic {
		return nil, fmt.Errorf("dataset: %s: not a .npy file (bad magic string): %w", name, ErrBadData)
	}
	major, minor := pre[6], pre[7]
	var hlen, plen int64
	switch major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, fmt.Errorf("dataset: %s: truncated .npy header: %w", name, ErrBadData)
		}
		hlen, plen = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, fmt.Errorf("dataset: %s: truncated .npy header: %w", name, ErrBadData)
		}
		hlen, plen = int64(binary.LittleEndian.Uint32(l[:])), 12
	default:
		return nil, fmt.Errorf("dataset: %s: .npy format version %d.%d, bnaudit reads 1.0, 2.0 and 3.0: %w", name, major, minor, ErrBadData)
	}
	if minor != 0 {
		return nil, fmt.Errorf("dataset: %s: .npy format version %d.%d, bnaudit reads 1.0, 2.0 and 3.0: %w", name, major, minor, ErrBadData)
	}
	if hlen > maxNPYHeader || hlen > size-plen {
		return nil, fmt.Errorf("dataset: %s: .npy header length %d does not fit the file (%d bytes): %w", name, hlen, size, ErrBadData)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("dataset: %s: truncated .npy header: %w", name, ErrBadData)
	}
	descr, fortran, shape, err := parseNPYDict(string(hb))
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: bad .npy header: %v: %w", name, err, ErrBadData)
	}
	h := &npyHeader{descr: descr, shape: shape, headerLen: plen + hlen}
	if err := h.parseDescr(); err != nil {
		return nil, fmt.Errorf("dataset: %s: %v: %w", name, err, ErrBadData)
	}
	h.elems = 1
	big := 0
	for _, d := range shape {
		if d > 1 {
			big++
		}
		if d != 0 && h.elems > (size/int64(h.itemSize))/d+1 {
			return nil, fmt.Errorf("dataset: %s: .npy shape %v is larger than the file (%d bytes): %w", name, shape, size, ErrBadData)
		}
		h.elems *= d
	}
	if fortran && big > 1 {
		return nil, fmt.Errorf("dataset: %s: array is stored in Fortran order; save it in C order (np.ascontiguousarray): %w", name, ErrBadData)
	}
	if need := h.elems * int64(h.itemSize); need != size-h.headerLen {
		if need > size-h.headerLen {
			return nil, fmt.Errorf("dataset: %s: .npy data is truncated (shape %v of %s needs %d bytes, the file has %d): %w", name, shape, descr, need, size-h.headerLen, ErrBadData)
		}
		return nil, fmt.Errorf("dataset: %s: .npy file has %d bytes after its data (shape %v of %s): %w", name, size-h.headerLen-need, shape, descr, ErrBadData)
	}
	return h, nil
}

// parseDescr reads a simple dtype string: byte order, kind, item size.
func (h *npyHeader) parseDescr() error {
	d := h.descr
	order := byte('|')
	if d != "" && strings.IndexByte("<>|=", d[0]) >= 0 {
		order, d = d[0], d[1:]
	}
	if len(d) < 2 || strings.IndexByte("uifb", d[0]) < 0 {
		return fmt.Errorf("dtype %q is not supported (want integers, bool, float32 or float64)", h.descr)
	}
	n, err := strconv.Atoi(d[1:])
	if err != nil || !(n == 1 || n == 2 || n == 4 || n == 8) || (d[0] == 'f' && n != 4 && n != 8) || (d[0] == 'b' && n != 1) {
		return fmt.Errorf("dtype %q is not supported (want integers, bool, float32 or float64)", h.descr)
	}
	if n > 1 {
		switch order {
		case '>':
			return fmt.Errorf("dtype %q is big-endian; save it little-endian (x.astype(x.dtype.newbyteorder('<')))", h.descr)
		case '|', '=':
			return fmt.Errorf("dtype %q does not state its byte order; save it little-endian ('<')", h.descr)
		}
	}
	h.kind, h.itemSize = d[0], n
	return nil
}

// readNPY reads a whole .npy stream of size bytes as role, keeping the
// first maxRows rows along the first axis when maxRows > 0.
func readNPY(r io.Reader, size int64, name, what string, role npyRole, maxRows int) (*npyArray, error) {
	h, err := readNPYHeader(r, size, name)
	if err != nil {
		return nil, err
	}
	a := &npyArray{shape: h.shape, descr: h.descr, rows: 1}
	if len(h.shape) > 0 {
		a.rows = h.shape[0]
	}
	count := h.elems
	if maxRows > 0 && len(h.shape) > 0 && int64(maxRows) < h.shape[0] {
		count = h.elems / h.shape[0] * int64(maxRows)
		a.shape = append([]int64{int64(maxRows)}, h.shape[1:]...)
	}
	switch {
	case role == npyInts && (h.kind == 'u' || h.kind == 'i' || h.kind == 'b'):
		a.ints = make([]int64, count)
	case role == npySamples && h.kind == 'u' && h.itemSize == 1:
		a.u8 = make([]byte, count)
	case role == npySamples && h.kind == 'f':
		a.f32 = make([]float32, count)
	case role == npyInts:
		return nil, fmt.Errorf("dataset: %s: %s has dtype %s, want integers: %w", name, what, h.descr, ErrBadData)
	default:
		return nil, fmt.Errorf("dataset: %s: %s has dtype %s, want uint8 or float32 (float64 is converted): %w", name, what, h.descr, ErrBadData)
	}
	if err := decodeNPY(r, h, a, count); err != nil {
		return nil, fmt.Errorf("dataset: %s: %v: %w", name, err, ErrBadData)
	}
	if count == h.elems {
		// Reach the end, so that a zip entry checks its CRC.
		var one [1]byte
		if n, err := r.Read(one[:]); n != 0 || (err != nil && err != io.EOF) {
			if err == nil {
				err = errors.New("data continues after the array")
			}
			return nil, fmt.Errorf("dataset: %s: %v: %w", name, err, ErrBadData)
		}
	}
	return a, nil
}

// decodeNPY reads count little-endian elements into a, in chunks.
func decodeNPY(r io.Reader, h *npyHeader, a *npyArray, count int64) error {
	if a.u8 != nil {
		if _, err := io.ReadFull(r, a.u8); err != nil {
			return fmt.Errorf("array data is truncated: %v", err)
		}
		return nil
	}
	sz := h.itemSize
	buf := make([]byte, (1<<16)/sz*sz)
	le := binary.LittleEndian
	for done := int64(0); done < count; {
		n := min(int64(len(buf)/sz), count-done)
		b := buf[:n*int64(sz)]
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("array data is truncated: %v", err)
		}
		for k := range int(n) {
			e := b[k*sz : (k+1)*sz]
			j := done + int64(k)
			if a.f32 != nil {
				if sz == 4 {
					a.f32[j] = math.Float32frombits(le.Uint32(e))
				} else {
					a.f32[j] = float32(math.Float64frombits(le.Uint64(e)))
				}
				continue
			}
			var v int64
			switch {
			case h.kind == 'i' && sz == 1:
				v = int64(int8(e[0]))
			case sz == 1:
				v = int64(e[0])
			case h.kind == 'i' && sz == 2:
				v = int64(int16(le.Uint16(e)))
			case sz == 2:
				v = int64(le.Uint16(e))
			case h.kind == 'i' && sz == 4:
				v = int64(int32(le.Uint32(e)))
			case sz == 4:
				v = int64(le.Uint32(e))
			case h.kind == 'i':
				v = int64(le.Uint64(e))
			default:
				u := le.Uint64(e)
				if u > math.MaxInt64 {
					return fmt.Errorf("element %d is %d, too large", j, u)
				}
				v = int64(u)
			}
			a.ints[j] = v
		}
		done += n
	}
	return nil
}

// parseNPYDict parses the header dict literal: the keys descr (a string),
// fortran_order (True/False) and shape (a tuple of integers), others
// ignored.
func parseNPYDict(s string) (descr string, fortran bool, shape []int64, err error) {
	p := &pyScanner{s: s}
	defer func() {
		if e := recover(); e != nil {
			pe, ok := e.(pyError)
			if !ok {
				panic(e)
			}
			err = errors.New(string(pe))
		}
	}()
	p.expect('{')
	seen := map[string]bool{}
	for {
		if p.peek() == '}' {
			p.i++
			break
		}
		key := p.str()
		if seen[key] {
			p.fail("key %q repeated", key)
		}
		seen[key] = true
		p.expect(':')
		switch key {
		case "descr":
			if p.peek() != '\'' && p.peek() != '"' {
				p.fail("descr is not a simple dtype string (structured arrays are not supported)")
			}
			descr = p.str()
		case "fortran_order":
			fortran = p.boolean()
		case "shape":
			shape = p.tuple()
		default:
			p.value()
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
		default:
			p.fail("expected ',' or '}' at offset %d", p.i)
		}
	}
	if rest := strings.TrimRight(s[p.i:], " \t\r\n\x00"); rest != "" {
		p.fail("text after the header dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			p.fail("no %q key", k)
		}
	}
	return descr, fortran, shape, nil
}

type pyError string

// pyScanner reads the subset of Python literals .npy headers use.
type pyScanner struct {
	s     string
	i     int
	depth int
}

func (p *pyScanner) fail(f string, a ...any) { panic(pyError(fmt.Sprintf(f, a...))) }

// peek skips white space and returns the next byte (0 at the end).
func (p *pyScanner) peek() byte {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
	if p.i == len(p.s) {
		return 0
	}
	return p.s[p.i]
}

func (p *pyScanner) expect(c byte) {
	if p.peek() != c {
		p.fail("expected %q at offset %d", c, p.i)
	}
	p.i++
}

func (p *pyScanner) str() string {
	q := p.peek()
	if q != '\'' && q != '"' {
		p.fail("expected a string at offset %d", p.i)
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		p.fail("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsAny(v, "\\\n") {
		p.fail("escapes in header strings are not supported")
	}
	p.i += end + 2
	return v
}

func (p *pyScanner) boolean() bool {
	p.peek()
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false
	}
	p.fail("expected True or False at offset %d", p.i)
	return false
}

func (p *pyScanner) integer() int64 {
	p.peek()
	j := p.i
	for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	if j == p.i {
		p.fail("expected a non-negative integer at offset %d", p.i)
	}
	v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
	if err != nil {
		p.fail("integer %s out of range", p.s[p.i:j])
	}
	p.i = j
	if p.i < len(p.s) && p.s[p.i] == 'L' { // Python 2 longs
		p.i++
	}
	return v
}

func (p *pyScanner) tuple() []int64 {
	p.expect('(')
	shape := []int64{}
	for p.peek() != ')' {
		if len(shape) == maxNPYDims {
			p.fail("more than %d dimensions", maxNPYDims)
		}
		shape = append(shape, p.integer())
		if p.peek() == ',' {
			p.i++
		} else if p.peek() != ')' {
			p.fail("expected ',' or ')' at offset %d", p.i)
		}
	}
	p.i++
	return shape
}

// value skips any value of the subset (for unknown keys).
func (p *pyScanner) value() {
	p.depth++
	if p.depth > 16 {
		p.fail("header nested too deeply")
	}
	defer func() { p.depth-- }()
	switch c := p.peek(); {
	case c == '\'' || c == '"':
		p.str()
	case c == 'T' || c == 'F':
		p.boolean()
	case c >= '0' && c <= '9':
		p.integer()
	case c == '(' || c == '[':
		closing := byte(')')
		if c == '[' {
			closing = ']'
		}
		p.i++
		for p.peek() != closing {
			p.value()
			if p.peek() == ',' {
				p.i++
			} else if p.peek() != closing {
				p.fail("expected ',' or %q at offset %d", closing, p.i)
			}
		}
		p.i++
	default:
		p.fail("unexpected %q at offset %d", c, p.i)
	}
}
