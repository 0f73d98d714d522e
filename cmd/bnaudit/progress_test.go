package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestStageBar: off a terminal the bar writes nothing; on one (forced
// here) it draws the stage's label and restarts when the stage does.
func TestStageBar(t *testing.T) {
	var off bytes.Buffer
	s := newStageBar(&off)
	s.update("evaluate", 10, 100)
	s.finish()
	if off.Len() != 0 {
		t.Errorf("a bar off a terminal wrote %q", off.String())
	}
	var on bytes.Buffer
	s = &stageBar{w: &on, on: true}
	s.update("evaluate", 50, 100)
	s.update("evaluate", 10, 100) // another evaluation beside the first
	s.update("bootstrap", 500, 1000)
	s.update("bootstrap", 1000, 1000)
	s.finish()
	out := on.String()
	for _, w := range []string{"evaluate", "bootstrap"} {
		if !strings.Contains(out, w) {
			t.Errorf("bar output lacks %q: %q", w, out)
		}
	}
	var nilBar *stageBar
	nilBar.update("x", 1, 2) // a nil bar is a no-op
	nilBar.finish()
}
