package dataset

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLoadIndex(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "keep.txt")
	os.WriteFile(txt, []byte("# members\n3\n1 4 # two more\n\n0,2\n"), 0o644)
	got, err := LoadIndex(txt, 5)
	if err != nil || !slices.Equal(got, []int{3, 1, 4, 0, 2}) {
		t.Errorf("text: %v %v", got, err)
	}
	for _, f := range []string{"index.npy", "index_v2.npy"} { // [3, 1, 4, 0], int64 and int32
		got, err := LoadIndex(filepath.Join("testdata", f), 5)
		if err != nil || !slices.Equal(got, []int{3, 1, 4, 0}) {
			t.Errorf("%s: %v %v", f, got, err)
		}
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	cases := []struct {
		path  string
		n     int
		parts []string
	}{
		{write("range.txt", "1\n2\n\n5\n"), 5, []string{"range.txt", "line 4", "index 5", "[0, 5)"}},
		{write("neg.txt", "-1\n"), 5, []string{"neg.txt", "line 1", "-1"}},
		{write("dup.txt", "1\n2\n# x\n1\n"), 5, []string{"dup.txt", "index 1 appears twice", "line 1 and line 4"}},
		{write("word.txt", "1\ntwo\n"), 5, []string{"word.txt", "line 2", `"two"`}},
		{write("empty.txt", "# nothing\n"), 5, []string{"empty.txt", "no indices"}},
		{"testdata/index_dup.npy", 5, []string{"index_dup.npy", "index 4 appears twice", "element 1 and element 2"}},
		{"testdata/index.npy", 4, []string{"index.npy", "element 2 is 4", "[0, 4)"}},
		{"testdata/truncated.npy", 5, []string{"truncated.npy", "truncated"}},
		{"testdata/float.npy", 5, []string{"float.npy", "dtype <f4", "want integers"}},
	}
	for _, c := range cases {
		_, err := LoadIndex(c.path, c.n)
		wantBadData(t, filepath.Base(c.path), err, c.parts...)
	}
}
