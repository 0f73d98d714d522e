package bundle

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/bnaudit/bnaudit"
)

// repoRoot is the repository's root, seen from this package's folder.
const repoRoot = "../.."

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestExtractEqualsRepository: the binary's bundle extracts to the model
// and the demo's data files of the repository, byte for byte, and nothing
// else; a second extraction reuses the folder.
func TestExtractEqualsRepository(t *testing.T) {
	cache := t.TempDir()
	dir, err := Extract(bnaudit.Bundle(), cache)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got = append(got, filepath.ToSlash(rel))
		if fileSum(t, p) != fileSum(t, filepath.Join(repoRoot, rel)) {
			t.Errorf("%s: the extracted file differs from the repository's", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, pattern := range []string{bnaudit.BundleModel, bnaudit.BundleData + "/*-ubyte.gz", bnaudit.BundleCanaries + "/*-ubyte.gz"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil || len(m) == 0 {
			t.Fatalf("%s: no repository file (%v)", pattern, err)
		}
		for _, p := range m {
			rel, _ := filepath.Rel(repoRoot, p)
			want = append(want, filepath.ToSlash(rel))
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(got) != len(want) {
		t.Fatalf("extracted %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("extracted %q, want %q", got, want)
		}
	}

	// Extracted once: a second call returns the folder as it is.
	marker := filepath.Join(dir, "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Extract(bnaudit.Bundle(), cache)
	if err != nil || again != dir {
		t.Fatalf("second extraction: %q, %v; want %q", again, err, dir)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the second extraction rewrote the folder: %v", err)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Errorf("the cache holds %d entries, want the bundle folder alone (no temporary folder left)", len(entries))
	}
}
