package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal says whether w is a terminal (progress bars are drawn only
// there; logs and pipes get lines or nothing).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stageBar draws a progress bar for each long stage of a command that is
// not training (an evaluation over a pool, a bootstrap), in the style of
// the training bar, on a terminal only. update may be called from several
// goroutines; a stage that restarts (a new label, another total, or a
// count that goes back, as when evaluations run side by side) starts a new
// bar.
type stageBar struct {
	w     io.Writer
	on    bool
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	label string
	total int
	last  int
}

func newStageBar(w io.Writer) *stageBar { return &stageBar{w: w, on: isTerminal(w)} }

func (s *stageBar) update(label string, done, total int) {
	if s == nil || !s.on || total <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bar == nil || label != s.label || total != s.total || done < s.last {
		s.finishLocked()
		s.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(s.w), progressbar.OptionShowCount(), progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish(), progressbar.OptionSetDescription(label))
		s.label, s.total = label, total
	}
	s.last = done
	s.bar.Set(done)
	if done >= total {
		s.finishLocked()
	}
}

// finish clears a bar left open (a stage stopped by an error).
func (s *stageBar) finish() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked()
}

func (s *stageBar) finishLocked() {
	if s.bar != nil {
		s.bar.Finish()
		s.bar = nil
	}
	s.last = 0
}
