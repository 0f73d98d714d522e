// Package lockfile keeps two bnaudit runs out of one output or work
// folder. Acquire takes an exclusive advisory lock (flock) on a file
// inside the folder and writes who holds it; a second run finds the lock
// taken and gets ErrLocked with the holder's process, host, command and
// start time. The kernel drops the lock when the holder exits, however it
// exits (kill -9 included), so a stale lock file never blocks a later run.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Name is the lock file's name inside a locked folder.
const Name = ".bnaudit.lock"

// ErrLocked is Acquire's error when another run holds the folder.
var ErrLocked = errors.New("the folder is in use by another bnaudit run")

// Lock is a held folder lock.
type Lock struct {
	f    *os.File
	path string
}

// Acquire locks dir (which must exist) for this process. what says what
// holds it (for example the command line); it is shown to a second run.
func Acquire(dir, what string) (*Lock, error) {
	return AcquireFile(filepath.Join(dir, Name), what)
}

// AcquireFile locks the file path (created if missing, in a folder that
// must exist), as Acquire does a folder: one lock per work unit, say.
func AcquireFile(path, what string) (*Lock, error) {
	dir := path // what messages name: the folder, or the unit's lock file
	if filepath.Base(path) == Name {
		dir = filepath.Dir(path)
	}
	for range 10 {
		l, retry, err := acquire(path, dir, what)
		if !retry {
			return l, err
		}
	}
	return nil, fmt.Errorf("lockfile: %s: the lock file keeps changing under this run: %w", dir, ErrLocked)
}

// acquire makes one attempt; retry is set when the lock was taken on a
// file that a releasing holder had just removed (the name now names
// another file, or none).
func acquire(path, dir, what string) (l *Lock, retry bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lockfile: cannot lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h := strings.TrimSpace(string(holder))
			if h == "" {
				h = "a run that is starting"
			}
			return nil, false, fmt.Errorf("lockfile: %s is held by %s; wait for it to finish or choose another folder: %w", dir, h, ErrLocked)
		}
		return nil, false, fmt.Errorf("lockfile: cannot lock %s: %w", dir, err)
	}
	held, err1 := f.Stat()
	named, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(held, named) {
		f.Close()
		return nil, true, nil
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d on %s since %s (%s)\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339), what)
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(info), 0)
	}
	return &Lock{f: f, path: path}, false, nil
}

// Release unlocks the folder and removes the lock file. It is safe to
// call on a nil Lock and more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Remove first, while still holding the lock, so that no other run
	// can lock the file this name is about to stop naming.
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return err
}
