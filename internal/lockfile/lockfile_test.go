package lockfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecondAcquireRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "bnaudit compare -o out")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, "bnaudit compare again")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire: %v, want ErrLocked", err)
	}
	for _, want := range []string{"pid ", "bnaudit compare -o out"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name the holder (%q)", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, Name)); !os.IsNotExist(err) {
		t.Errorf("lock file left after Release: %v", err)
	}
	l2, err := Acquire(dir, "third")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
	l2.Release() // twice is fine
}

// TestLockDiesWithHolder: a holder killed with SIGKILL leaves its lock file
// behind, and the next run still gets the folder.
func TestLockDiesWithHolder(t *testing.T) {
	if os.Getenv("LOCKFILE_HELPER") != "" {
		if _, err := Acquire(os.Getenv("LOCKFILE_HELPER"), "helper"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		select {}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockDiesWithHolder$")
	cmd.Env = append(os.Environ(), "LOCKFILE_HELPER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("helper did not lock: %q, %v", buf, err)
	}
	if _, err := Acquire(dir, "test"); !errors.Is(err, ErrLocked) {
		t.Fatalf("while the helper holds it: %v, want ErrLocked", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(dir, Name)); err != nil {
		t.Fatalf("the killed holder's lock file should still be there: %v", err)
	}
	l, err := Acquire(dir, "test")
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	l.Release()
}
