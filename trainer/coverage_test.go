package trainer

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/onnxio"
)

// TestONNXTestDataStepCoverage counts the ONNX project's test models
// (Debian's libonnx-testdata) that BuildStep takes, by folder and by
// whether their opset is below 13 (the models bnaudit trains only through
// onnxio.Upgrade), and logs the counts and the most common refusals. The
// figures in trainer/ZOO.md come from
//
//	go test ./trainer -run TestONNXTestDataStepCoverage -v
//
// It needs no ONNX Runtime: building a graph does not run it.
func TestONNXTestDataStepCoverage(t *testing.T) {
	root := "/usr/share/libonnx-testdata/data"
	files, _ := filepath.Glob(filepath.Join(root, "*", "*", "model.onnx"))
	if len(files) == 0 {
		t.Skip("libonnx-testdata not installed (apt-get install libonnx-testdata)")
	}
	type tally struct{ models, old, built, builtOld int }
	per := map[string]*tally{}
	reasons, oldReasons := map[string]int{}, map[string]int{}
	var builtOld []string
	for _, f := range files {
		folder := filepath.Base(filepath.Dir(filepath.Dir(f)))
		c := per[folder]
		if c == nil {
			c = &tally{}
			per[folder] = c
		}
		c.models++
		m, err := onnxio.Load(f)
		if err != nil {
			reasons["does not load: "+err.Error()]++
			continue
		}
		// Below opset 13, with an opset of the default domain at all.
		op := m.Opset("")
		old := op > 0 && op < 13
		if old {
			c.old++
		}
		if _, err := BuildStep(m, StepConfig{Batch: 2, Optimizer: SGD(0, 0, false)}); err != nil {
			reasons[refusalKind(err.Error())]++
			if old {
				oldReasons[refusalKind(err.Error())]++
			}
			continue
		}
		c.built++
		if old {
			c.builtOld++
			builtOld = append(builtOld, folder+"/"+filepath.Base(filepath.Dir(f)))
		}
	}
	folders := make([]string, 0, len(per))
	for k := range per {
		folders = append(folders, k)
	}
	sort.Strings(folders)
	var all tally
	for _, k := range folders {
		c := per[k]
		t.Logf("%-18s %4d models, %4d below opset 13; BuildStep builds %4d, %4d of them below opset 13", k, c.models, c.old, c.built, c.builtOld)
		all.models, all.old, all.built, all.builtOld = all.models+c.models, all.old+c.old, all.built+c.built, all.builtOld+c.builtOld
	}
	t.Logf("%-18s %4d models, %4d below opset 13; BuildStep builds %4d, %4d of them below opset 13", "all", all.models, all.old, all.built, all.builtOld)
	t.Logf("built below opset 13: %s", strings.Join(builtOld, ", "))
	byOpset := 0
	for k, n := range oldReasons {
		if strings.HasPrefix(k, "cannot upgrade") || strings.HasPrefix(k, "opset below") {
			byOpset += n
		}
	}
	t.Logf("models below opset 13 refused for their opset (no upgrade, or one refused): %d of %d", byOpset, all.old)
	for _, r := range []struct {
		what string
		m    map[string]int
	}{{"models below opset 13", oldReasons}, {"all models", reasons}} {
		type kv struct {
			k string
			n int
		}
		var top []kv
		for k, n := range r.m {
			top = append(top, kv{k, n})
		}
		sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n || (top[i].n == top[j].n && top[i].k < top[j].k) })
		for i, x := range top {
			if i == 12 {
				break
			}
			t.Logf("%s, refused ×%d: %s", r.what, x.n, x.k)
		}
	}
}

// refusalKind reduces a BuildStep error to its kind: the op or the rule it
// names, without the model's and node's names.
func refusalKind(msg string) string {
	switch {
	case strings.Contains(msg, "cannot upgrade op "):
		s := msg[strings.Index(msg, "cannot upgrade op "):]
		return strings.SplitN(s, " (", 2)[0]
	case strings.Contains(msg, "which bnaudit cannot differentiate yet"), strings.Contains(msg, "which bnaudit cannot train"):
		s := msg[strings.Index(msg, "uses op ")+len("uses op "):]
		return "op " + strings.SplitN(s, ",", 2)[0] + " not trainable"
	case strings.Contains(msg, "data inputs"):
		return "not one data input"
	case strings.Contains(msg, "outputs; bnaudit trains"):
		return "not one output"
	case strings.Contains(msg, "opset 6 or later"):
		return "opset below 6"
	case strings.Contains(msg, "trains models of opset 13 or later"):
		return "opset below 13"
	case strings.Contains(msg, "bnaudit trains classifiers whose output"):
		return "output not [batch, classes]"
	case strings.Contains(msg, "has no declared shape"), strings.Contains(msg, "unknown dimension"):
		return "input shape not fixed"
	case strings.Contains(msg, "does not depend on any parameter"), strings.Contains(msg, "does not affect the loss"):
		return "no trainable parameter"
	}
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if len(msg) > 90 {
		msg = msg[:90] + "…"
	}
	return fmt.Sprint(msg)
}
