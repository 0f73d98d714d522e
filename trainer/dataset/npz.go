package dataset

import (
	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// loadNPZ reads arrays x and y from a NumPy .npz archive (a zip of .npy
// files, stored or deflated), as np.savez and np.savez_compressed write.
func loadNPZ(path string, maxSamples int) (*Dataset, error) {
	name := filepath.Base(path)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: not a readable .npz (zip) archive: %v: %w", name, err, ErrBadData)
	}
	defer zr.Close()
	entry := func(key string) (*zip.File, error) {
		var all []string
		for _, f := range zr.File {
			if f.Name == key+".npy" || f.Name == key {
				return f, nil
			}
			all = append(all, strings.TrimSuffix(f.Name, ".npy"))
		}
		sort.Strings(all)
		return nil, fmt.Errorf("dataset: %s: no array %q (it holds %s); save the samples as x and the labels as y (np.savez(path, x=x, y=y)): %w", name, key, listOrNone(all), ErrBadData)
	}
	read := func(key string, role npyRole) (*npyArray, int64, error) {
		f, err := entry(key)
		if err != nil {
			return nil, 0, err
		}
		ename := name + ": " + f.Name
		usize, csize := f.UncompressedSize64, f.CompressedSize64
		switch {
		case csize > uint64(st.Size()):
			return nil, 0, fmt.Errorf("dataset: %s: entry claims %d compressed bytes in a %d-byte file: %w", ename, csize, st.Size(), ErrBadData)
		case f.Method == zip.Store && usize != csize:
			return nil, 0, fmt.Errorf("dataset: %s: stored entry claims %d bytes but holds %d: %w", ename, usize, csize, ErrBadData)
		case usize > csize*maxDeflateRatio+1<<16:
			return nil, 0, fmt.Errorf("dataset: %s: entry claims %d bytes from %d compressed bytes: %w", ename, usize, csize, ErrBadData)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("dataset: %s: %v: %w", ename, err, ErrBadData)
		}
		defer rc.Close()
		// Read the header first to learn the full row count.
		a, err := readNPY(rc, int64(usize), ename, key, role, maxSamples)
		if err != nil {
			return nil, 0, err
		}
		return a, a.rows, nil
	}
	y, ny, err := read("y", npyInts)
	if err != nil {
		return nil, err
	}
	x, nx, err := read("x", npySamples)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 1 {
		return nil, fmt.Errorf("dataset: %s: x is a scalar, want an array [N, …]: %w", name, ErrBadData)
	}
	if len(y.shape) != 1 {
		return nil, fmt.Errorf("dataset: %s: y has shape %v, want [N] (one integer label per sample): %w", name, y.shape, ErrBadData)
	}
	if nx != ny {
		return nil, fmt.Errorf("dataset: %s: x holds %d samples but y holds %d labels: %w", name, nx, ny, ErrBadData)
	}
	shape := x.shape[1:]
	if x.u8 != nil {
		return newUint8(name, shape, x.u8, y.ints)
	}
	return newFloat32(name, shape, x.f32, y.ints)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no arrays"
	}
	return strings.Join(s, ", ")
}
