package dataset

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LoadIndex reads a list of sample indices of a data set of n samples:
// a text file (indices separated by white space or commas, one per line or
// several, '#' starting a comment) or a .npy array of integers. Every index
// must lie in [0, n) and appear once; the list must not be empty.
func LoadIndex(path string, n int) ([]int, error) {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("dataset: %s: is a folder, not an index file: %w", name, ErrBadData)
	}
	var idx []int
	var lines []int // the line of each index (text files), for messages
	if strings.EqualFold(filepath.Ext(name), ".npy") {
		a, err := readNPY(bufio.NewReader(f), st.Size(), name, "the index array", npyInts, 0)
		if err != nil {
			return nil, err
		}
		idx = make([]int, len(a.ints))
		for i, v := range a.ints {
			if v < 0 || v >= int64(n) {
				return nil, fmt.Errorf("dataset: %s: element %d is %d, outside the data set's range [0, %d): %w", name, i, v, n, ErrBadData)
			}
			idx[i] = int(v)
		}
	} else {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			if c := strings.IndexByte(text, '#'); c >= 0 {
				text = text[:c]
			}
			for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
				return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\v' || r == '\f'
			}) {
				v, err := strconv.ParseInt(tok, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("dataset: %s: line %d: %q is not an integer: %w", name, line, clipText(tok), ErrBadData)
				}
				if v < 0 || v >= int64(n) {
					return nil, fmt.Errorf("dataset: %s: line %d: index %d is outside the data set's range [0, %d): %w", name, line, v, n, ErrBadData)
				}
				idx = append(idx, int(v))
				lines = append(lines, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("dataset: %s: %v: %w", name, err, ErrBadData)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("dataset: %s: no indices: %w", name, ErrBadData)
	}
	first := make(map[int]int, len(idx))
	for k, v := range idx {
		if j, ok := first[v]; ok {
			a, b := "element "+strconv.Itoa(j), "element "+strconv.Itoa(k)
			if lines != nil {
				a, b = "line "+strconv.Itoa(lines[j]), "line "+strconv.Itoa(lines[k])
			}
			return nil, fmt.Errorf("dataset: %s: index %d appears twice (%s and %s): %w", name, v, a, b, ErrBadData)
		}
		first[v] = k
	}
	return idx, nil
}

// clipText shortens text quoted in messages.
func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
