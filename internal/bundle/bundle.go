// Package bundle writes a file tree (the binary's embedded model and data,
// bnaudit.Bundle) into a cache folder once, so that commands that read
// files by path can use it. The folder is named by a hash of the content,
// written under a temporary name and renamed into place: a reader sees it
// whole or not at all, and a new binary with other files gets its own.
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// CacheDir is the folder bundles are extracted under:
// $XDG_CACHE_HOME/bnaudit, or $HOME/.cache/bnaudit.
func CacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("bundle: no cache folder (set XDG_CACHE_HOME or HOME): %w", err)
	}
	return filepath.Join(dir, "bnaudit"), nil
}

// Hash is the SHA-256 of fsys's regular files: each path and content, in
// the lexical order fs.WalkDir visits them.
func Hash(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, st.Size())
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Extract writes fsys's files into cache/bundle-HASH (HASH the first 16
// hex digits of Hash) unless that folder exists, and returns its path. The
// files are written into a temporary folder beside it that is then renamed
// into place, so a folder of that name is always complete; when another
// process wins the race, its folder is used.
func Extract(fsys fs.FS, cache string) (string, error) {
	sum, err := Hash(fsys)
	if err != nil {
		return "", err
	}
	dest := filepath.Join(cache, "bundle-"+sum[:16])
	if st, err := os.Stat(dest); err == nil && st.IsDir() {
		return dest, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	tmp, err := os.MkdirTemp(cache, ".bundle-*")
	if err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := copyTree(fsys, tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		// Another process extracted the same bundle first.
		if st, serr := os.Stat(dest); serr == nil && st.IsDir() {
			return dest, nil
		}
		return "", fmt.Errorf("bundle: %w", err)
	}
	return dest, nil
}

// copyTree writes fsys's folders and regular files under dir.
func copyTree(fsys fs.FS, dir string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("bundle: %w", err)
			}
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("bundle: %s is not a regular file", path.Clean(p))
		}
		return copyFile(fsys, p, target)
	})
}

func copyFile(fsys fs.FS, name, target string) (err error) {
	src, err := fsys.Open(name)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer func() {
		if cerr := dst.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bundle: %w", cerr)
		}
	}()
	if _, err := io.Copy(dst, src); err != nil {
		return fmt.Errorf("bundle: writing %s: %w", target, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("bundle: writing %s: %w", target, err)
	}
	return nil
}
