package study

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bnaudit/bnaudit/internal/lockfile"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
)

// unitSpec is a small comparison of the bundled model and data: 2
// variants, 1 seed, 2 reference models each (6 units).
func unitSpec() CompareSpec {
	norm := fashionNorm
	return CompareSpec{
		Model: "../testdata/models/small_cnn.training.onnx",
		Data: DataConfig{Norm: &norm,
			Members:    DataSource{Path: "../testdata/fashion-mnist", Split: "train", Max: 200},
			NonMembers: DataSource{Path: "../testdata/fashion-mnist", Split: "test", Max: 200}},
		Canaries: CanaryConfig{Source: "../testdata/mnist-canaries", Count: 10, Seed: 3},
		Variants: []string{"original", "remove"},
		Recipe: Recipe{Init: trainer.InitScratch, Epochs: 1, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false),
			LR: 0.02, Schedule: trainer.Cosine},
		Seeds: 1, Seed: 5, Replicates: 100, RefModels: 2, GradNormCheckpoints: 1,
	}
}

// TestUnitsGatherEqualsCompare: the units of a plan, each run on its own
// (in any order) and gathered, give the report Compare gives in one
// process; a unit run again is skipped; a damaged result is missing until
// its unit runs again, and the gather names it; a held unit is refused;
// another plan in the folder is refused.
func TestUnitsGatherEqualsCompare(t *testing.T) {
	requireORT(t)
	sess := ort.SessionOptions{Threads: 2}
	spec := unitSpec()
	// In one process.
	cfg, err := spec.Build(t.TempDir(), sess, SignalCache{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Compare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// As units.
	work := t.TempDir()
	plan, err := WritePlan(work, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Units) != 6 || plan.Units[0].Kind != UnitRun || plan.Units[2].Kind != UnitReference {
		t.Fatalf("plan: %+v", plan.Units)
	}
	again, err := ReadPlan(work)
	if err != nil || again.Hash != plan.Hash || !reflect.DeepEqual(again.Units, plan.Units) {
		t.Fatalf("ReadPlan: %v (hash %s vs %s)", err, again.Hash, plan.Hash)
	}
	ucfg, err := plan.Config(work, sess)
	if err != nil {
		t.Fatal(err)
	}
	g := &CompareConfig{}
	*g = ucfg
	g.Gather = true
	var miss *MissingError
	if _, err := Compare(context.Background(), *g); !errors.As(err, &miss) {
		t.Fatalf("gather before any unit: %v, want a MissingError", err)
	}
	for _, i := range []int{0, 5, 2, 1, 4, 3} { // runs need no reference model first
		done, err := RunUnit(context.Background(), work, plan, i, &Built{Compare: &ucfg}, RunUnitOptions{Engine: "test"})
		if err != nil || done {
			t.Fatalf("unit %d: done %v, %v", i, done, err)
		}
	}
	if m := Missing(work, plan); len(m) != 0 {
		t.Fatalf("missing after every unit: %v", m)
	}
	done, err := RunUnit(context.Background(), work, plan, 2, &Built{Compare: &ucfg}, RunUnitOptions{Engine: "test"})
	if err != nil || !done {
		t.Errorf("a finished unit run again: done %v, %v; want skipped", done, err)
	}
	got, err := Compare(context.Background(), *g)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Variants) != 2 || len(want.Variants) != 2 {
		t.Fatalf("variants %d and %d", len(got.Variants), len(want.Variants))
	}
	for i := range want.Variants {
		if !reflect.DeepEqual(got.Variants[i].Attacks, want.Variants[i].Attacks) ||
			!reflect.DeepEqual(got.Variants[i].CanaryAttacks, want.Variants[i].CanaryAttacks) {
			t.Errorf("variant %s: the gathered attacks differ from Compare's", want.Variants[i].Name)
		}
		if audit := got.Variants[i].Attacks; len(audit) < 8 {
			t.Errorf("variant %s has %d attacks; the reference attacks are missing", got.Variants[i].Name, len(audit))
		}
	}
	if !reflect.DeepEqual(got.Comparisons, want.Comparisons) || got.VerdictCode != want.VerdictCode {
		t.Errorf("comparisons or verdict differ: %s vs %s", got.VerdictCode, want.VerdictCode)
	}

	// A result cut short is not done; the gather names it.
	ref := resultPath(work, plan.Units[3])
	if err := os.Truncate(ref, 50); err != nil {
		t.Fatal(err)
	}
	if m := Missing(work, plan); len(m) != 1 || m[0] != 3 {
		t.Errorf("missing after damage: %v, want [3]", m)
	}
	os.Remove(ref)
	if _, err := Compare(context.Background(), *g); !errors.As(err, &miss) || !strings.Contains(err.Error(), "reference models 1 ") {
		t.Errorf("gather with a reference model gone: %v", err)
	}
	st := Status(work, plan)
	if st[3].State != StateMissing || st[0].State != StateDone || st[0].Record == nil || st[0].Record.Engine != "test" {
		t.Errorf("status: %+v / %+v", st[3], st[0])
	}

	// A unit another worker holds is refused with ErrUnitBusy.
	l, err := lockfile.AcquireFile(unitPath(work, 3, "lock"), "another worker")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunUnit(context.Background(), work, plan, 3, &Built{Compare: &ucfg}, RunUnitOptions{}); !errors.Is(err, ErrUnitBusy) {
		t.Errorf("a held unit: %v, want ErrUnitBusy", err)
	}
	if Status(work, plan)[3].State != StateRunning {
		t.Errorf("a held unit's state: %s", Status(work, plan)[3].State)
	}
	l.Release()

	// Another plan in the same folder is refused; the same plan is reused.
	other := spec
	other.Seed++
	var pe *PlanError
	if _, err := WritePlan(work, other); !errors.As(err, &pe) {
		t.Errorf("another plan: %v, want a PlanError", err)
	}
	if p, err := WritePlan(work, spec); err != nil || p.Hash != plan.Hash {
		t.Errorf("the same plan again: %v", err)
	}
	// Data changed since the plan: refused when a worker builds it.
	b, _ := os.ReadFile(filepath.Join(work, "plan.json"))
	os.WriteFile(filepath.Join(work, "plan.json"), []byte(strings.Replace(string(b), `"Max": 200`, `"Max": 199`, 1)), 0o644)
	if p, err := ReadPlan(work); err != nil {
		t.Fatal(err)
	} else if _, err := p.Config(work, sess); !errors.As(err, &pe) {
		t.Errorf("data changed since the plan: %v, want a PlanError", err)
	}
}
