package study

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/internal/lockfile"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
)

// A study as work units. A comparison is planned as independent,
// deterministic units: one per training run (variant × seed, with its
// evaluation and gradient-norm study) and one per reference model
// (variant × index). Each unit is named by the content hash of what
// determines it (the run's recipe hash with its seed; the reference
// model's key with its index), writes its results into the shared work
// folder atomically, and is skipped when they are there. Any engine that
// can run `bnaudit worker --work DIR --unit I` for every I runs the study;
// Compare with Gather set then builds the report from the folder.
//
// The work folder holds:
//
//	plan.json            the plan: version, hash, the CompareSpec, the units
//	inputs/model.onnx    the model every unit reads
//	runs/, models/, refs/, cache/   the units' results (Compare's layout)
//	units/I.json         unit I's record once done: engine, host, seconds
//	units/I.failed       unit I's last error, while it is not done
//	units/I.lock         held while a worker runs unit I
//	logs/                the engines' logs

// PlanVersion is the layout of plan.json this bnaudit reads and writes.
const PlanVersion = 1

// Kinds of unit.
const (
	UnitRun       = "run"
	UnitReference = "reference"
)

// Unit is one piece of a study.
type Unit struct {
	Index   int    `json:"index"`
	Kind    string `json:"kind"`
	Variant string `json:"variant"`
	// Seed is a run's seed index (run k trains with the study's seed + k);
	// Model a reference model's index.
	Seed  int `json:"seed,omitempty"`
	Model int `json:"model,omitempty"`
	// Key hashes what determines the unit's result.
	Key string `json:"key"`
}

// Name says what the unit is: "run remove-seed0", "reference remove #3".
func (u Unit) Name() string {
	if u.Kind == UnitReference {
		return fmt.Sprintf("reference %s #%d", u.Variant, u.Model)
	}
	return "run " + pathsOf("", u.Variant, u.Seed).key
}

// Plan is a study's list of units with what builds its configuration.
type Plan struct {
	Version int    `json:"version"`
	Study   string `json:"study"` // StudyCompare or StudyAudit
	// Hash is the hash of the units' keys: two plans with the same hash
	// compute the same results.
	Hash    string `json:"hash"`
	Created string `json:"created"`
	// Compare or Audit is the study, as data.
	Compare *CompareSpec `json:"compare,omitempty"`
	Audit   *AuditSpec   `json:"audit,omitempty"`
	Units   []Unit       `json:"units"`
}

// Kinds of study a plan holds.
const (
	StudyCompare = "compare"
	StudyAudit   = "audit"
)

// Built is a plan's study built in this process: Compare for a
// comparison, Audit for an audit.
type Built struct {
	Compare *CompareConfig
	Audit   *AuditConfig
}

// PlanAudit lists the units of an audit: one per reference model (the
// audited model itself is given, not trained).
func PlanAudit(cfg AuditConfig) ([]Unit, error) {
	cfg, _, pop, err := prepareAudit(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.References < 2 {
		return nil, fmt.Errorf("study: an audit has work units only with reference models (--ref-models 2 or more): %w", audit.ErrInvalidInput)
	}
	key, err := referenceKey(auditReferences(cfg, pop))
	if err != nil {
		return nil, err
	}
	units := make([]Unit, cfg.References)
	for k := range units {
		units[k] = Unit{Index: k, Kind: UnitReference, Variant: auditedVariant, Model: k, Key: fmt.Sprintf("%s-%d", key, k)}
	}
	return units, nil
}

// PlanCompare lists the units of a comparison, runs first: a run trains on
// every member and measures the gradient-norm study, so it is the longest
// unit, and an engine that starts units in index order should not leave
// one to end the study alone.
func PlanCompare(cfg CompareConfig) ([]Unit, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var units []Unit
	for _, v := range cfg.Variants {
		vm, err := variantModel(cfg.Model, v, cfg)
		if err != nil {
			return nil, err
		}
		if cfg.RefModels > 0 {
			rc, err := referenceConfigOf(cfg, v, vm)
			if err != nil {
				return nil, err
			}
			key, err := referenceKey(rc)
			if err != nil {
				return nil, err
			}
			for k := 0; k < cfg.RefModels; k++ {
				units = append(units, Unit{Kind: UnitReference, Variant: v, Model: k, Key: fmt.Sprintf("%s-%d", key, k)})
			}
		}
		recipe, err := runRecipe(cfg, vm)
		if err != nil {
			return nil, err
		}
		for k := 0; k < cfg.Seeds; k++ {
			units = append(units, Unit{Kind: UnitRun, Variant: v, Seed: k, Key: fmt.Sprintf("%s-%d", recipe[:16], k)})
		}
	}
	slices.SortStableFunc(units, func(a, b Unit) int {
		if a.Kind == b.Kind {
			return 0
		}
		if a.Kind == UnitRun {
			return -1
		}
		return 1
	})
	for i := range units {
		units[i].Index = i
	}
	return units, nil
}

// planHash hashes the units' keys and kinds.
func planHash(units []Unit) (string, error) {
	h, err := hashOf(units)
	if err != nil {
		return "", err
	}
	return h[:16], nil
}

// PlanError is the error for a work folder whose plan is not the study's:
// another version of bnaudit, or another recipe, model or data. It wraps
// audit.ErrInvalidInput.
type PlanError struct{ Dir, Reason string }

func (e *PlanError) Error() string {
	return fmt.Sprintf("study: work folder %s: %s", e.Dir, e.Reason)
}

func (e *PlanError) Unwrap() error { return audit.ErrInvalidInput }

// WritePlan plans the comparison that spec describes into the work folder
// dir: the model is copied to dir/inputs/model.onnx, data paths are made
// absolute (they must be the same on every node), and plan.json is
// written. A folder that holds the same plan already is reused as it is; a
// folder with another plan is refused (*PlanError).
func WritePlan(dir string, spec CompareSpec) (*Plan, error) {
	abs, err := prepareWork(dir)
	if err != nil {
		return nil, err
	}
	if err := absData(&spec.Data); err != nil {
		return nil, err
	}
	if err := absSource(&spec.Canaries.Pool.Path); err != nil {
		return nil, err
	}
	if s := spec.Canaries.Source; s != "" && s != CanaryNoise && s != CanaryRelabel {
		if err := absSource(&spec.Canaries.Source); err != nil {
			return nil, err
		}
	}
	cfg, err := spec.Build(abs, ort.SessionOptions{}, SignalCache{})
	if err != nil {
		return nil, err
	}
	units, err := PlanCompare(cfg)
	if err != nil {
		return nil, err
	}
	spec.Model = filepath.Join(abs, "inputs", "model.onnx")
	return writePlan(dir, abs, &Plan{Study: StudyCompare, Compare: &spec, Units: units}, cfg.Model)
}

// WriteAuditPlan plans an audit's reference models into the work folder
// dir, as WritePlan does a comparison.
func WriteAuditPlan(dir string, spec AuditSpec) (*Plan, error) {
	abs, err := prepareWork(dir)
	if err != nil {
		return nil, err
	}
	if err := absData(&spec.Data); err != nil {
		return nil, err
	}
	cfg, err := spec.Build(abs, ort.SessionOptions{}, SignalCache{})
	if err != nil {
		return nil, err
	}
	units, err := PlanAudit(cfg)
	if err != nil {
		return nil, err
	}
	spec.Model = filepath.Join(abs, "inputs", "model.onnx")
	var inputs []planInput
	if cfg.RefArch != nil {
		// Copied beside the model, under its own name in the report.
		spec.RefArch, spec.RefArchName = filepath.Join(abs, "inputs", refArchFile), cfg.RefArch.Name
		inputs = append(inputs, planInput{refArchFile, cfg.RefArch})
	}
	return writePlan(dir, abs, &Plan{Study: StudyAudit, Audit: &spec, Units: units}, cfg.Model, inputs...)
}

// prepareWork makes the work folder's subfolders and returns its
// absolute path.
func prepareWork(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("study: %w", err)
	}
	for _, sub := range []string{"inputs", "units", "logs"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return "", fmt.Errorf("study: %w", err)
		}
	}
	return abs, nil
}

// absData makes the data paths absolute.
func absData(d *DataConfig) error {
	for _, p := range []*string{&d.Members.Path, &d.NonMembers.Path, &d.Population.Path, &d.Members.Index, &d.NonMembers.Index, &d.Population.Index} {
		if err := absSource(p); err != nil {
			return err
		}
	}
	return nil
}

func absSource(p *string) error {
	if *p == "" {
		return nil
	}
	a, err := filepath.Abs(*p)
	if err != nil {
		return fmt.Errorf("study: %w", err)
	}
	*p = a
	return nil
}

// refArchFile is an audit plan's copy of its reference architecture in
// inputs/.
const refArchFile = "ref-arch.onnx"

// planInput is a model a plan's units read, beside the study's model.
type planInput struct {
	file  string // in inputs/
	model *onnxio.Model
}

// writePlan writes plan.json, the model and the other inputs, or reuses
// the folder's plan when it is the same one.
func writePlan(dir, abs string, p *Plan, model *onnxio.Model, more ...planInput) (*Plan, error) {
	hash, err := planHash(p.Units)
	if err != nil {
		return nil, err
	}
	if old, err := ReadPlan(abs); err == nil {
		if old.Hash != hash || old.Study != p.Study {
			return nil, &PlanError{Dir: dir, Reason: "it holds the plan of another study (model, data, canaries or settings differ); give this study a new --work folder"}
		}
		return old, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := model.Save(filepath.Join(abs, "inputs", "model.onnx")); err != nil {
		return nil, err
	}
	for _, in := range more {
		if err := in.model.Save(filepath.Join(abs, "inputs", in.file)); err != nil {
			return nil, err
		}
	}
	p.Version, p.Hash, p.Created = PlanVersion, hash, time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(abs, "plan.json"), append(b, '\n')); err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	return p, nil
}

// ReadPlan reads dir/plan.json; a folder without one gives an error
// wrapping fs.ErrNotExist, a plan of another layout a *PlanError.
func ReadPlan(dir string) (*Plan, error) {
	b, err := os.ReadFile(filepath.Join(dir, "plan.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("study: %s has no plan.json (is it a study's --work folder?): %w", dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("study: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, &PlanError{Dir: dir, Reason: "plan.json is damaged (" + err.Error() + ")"}
	}
	if p.Version != PlanVersion {
		return nil, &PlanError{Dir: dir, Reason: fmt.Sprintf("plan.json has layout version %d; this bnaudit reads %d (use the bnaudit that planned it, or a new folder)", p.Version, PlanVersion)}
	}
	if (p.Study != StudyCompare || p.Compare == nil) && (p.Study != StudyAudit || p.Audit == nil) || len(p.Units) == 0 {
		return nil, &PlanError{Dir: dir, Reason: "plan.json names no study or no units"}
	}
	for i, u := range p.Units {
		if u.Index != i {
			return nil, &PlanError{Dir: dir, Reason: fmt.Sprintf("plan.json's unit %d has index %d", i, u.Index)}
		}
	}
	return &p, nil
}

// Build builds the plan's study with this process's ONNX Runtime
// options, and checks that the model and the data still give the plan's
// units (data changed since the plan are refused).
func (p *Plan) Build(dir string, session ort.SessionOptions) (*Built, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	cache := SignalCache{Dir: filepath.Join(abs, "cache")}
	var b Built
	var units []Unit
	switch p.Study {
	case StudyCompare:
		cfg, err := p.Compare.Build(abs, session, cache)
		if err != nil {
			return nil, err
		}
		if units, err = PlanCompare(cfg); err != nil {
			return nil, err
		}
		cfg.Resume = true
		b.Compare = &cfg
	case StudyAudit:
		cfg, err := p.Audit.Build(abs, session, cache)
		if err != nil {
			return nil, err
		}
		if units, err = PlanAudit(cfg); err != nil {
			return nil, err
		}
		b.Audit = &cfg
	}
	if h, err := planHash(units); err != nil || h != p.Hash {
		return nil, &PlanError{Dir: dir, Reason: "the model or the data no longer give the plan's units (changed since it was planned?)"}
	}
	return &b, nil
}

// Config builds a comparison plan's configuration (Build, for plans of
// StudyCompare).
func (p *Plan) Config(dir string, session ort.SessionOptions) (CompareConfig, error) {
	if p.Study != StudyCompare {
		return CompareConfig{}, &PlanError{Dir: dir, Reason: "it holds an audit, not a comparison"}
	}
	b, err := p.Build(dir, session)
	if err != nil {
		return CompareConfig{}, err
	}
	return *b.Compare, nil
}

// Gather builds the study's report from the work folder, whose units must
// all be done (else a *MissingError names the missing ones).
func (b *Built) Gather(ctx context.Context) (*audit.Report, error) {
	if b.Audit != nil {
		cfg := *b.Audit
		cfg.Gather = true
		return Audit(ctx, cfg)
	}
	cfg := *b.Compare
	cfg.Gather = true
	return Compare(ctx, cfg)
}

// UnitRecord is what a finished unit leaves in units/I.json.
type UnitRecord struct {
	Unit
	Engine   string  `json:"engine"`
	Host     string  `json:"host"`
	Job      string  `json:"job,omitempty"`
	Started  string  `json:"started"`
	Finished string  `json:"finished"`
	Seconds  float64 `json:"seconds"`
	// Bytes is the size of the unit's result file (the run's record, the
	// reference model): a result cut short is not taken for done.
	Bytes int64 `json:"bytes"`
}

// resultPath is the file a unit's result lives in.
func resultPath(dir string, u Unit) string {
	if u.Kind == UnitReference {
		key, _, _ := strings.Cut(u.Key, "-")
		return filepath.Join(dir, "refs", u.Variant, fmt.Sprintf("ref-%s-%d.onnx", key, u.Model))
	}
	return pathsOf(dir, u.Variant, u.Seed).record
}

func unitPath(dir string, i int, ext string) string {
	return filepath.Join(dir, "units", fmt.Sprintf("%d.%s", i, ext))
}

// RunUnitOptions say where a unit runs, for its record.
type RunUnitOptions struct {
	Engine, Job string
	// Epoch hears one line per finished epoch of a run or reference
	// model.
	Log func(string)
}

// ErrUnitBusy is RunUnit's error when another worker holds the unit.
var ErrUnitBusy = errors.New("another worker is running this unit")

// RunUnit runs unit i of the plan in dir, unless its result is there
// already (then it returns done = true at once). A second worker that
// starts the same unit while the first runs gets ErrUnitBusy; a unit run
// twice writes the same bytes, each file through a rename, so one correct
// result stays whatever the timing. A failure is recorded in units/I.failed
// until the unit succeeds.
func RunUnit(ctx context.Context, dir string, p *Plan, i int, b *Built, o RunUnitOptions) (done bool, err error) {
	if i < 0 || i >= len(p.Units) {
		return false, fmt.Errorf("study: the plan has units 0 to %d, not %d: %w", len(p.Units)-1, i, audit.ErrInvalidInput)
	}
	u := p.Units[i]
	host, _ := os.Hostname()
	lock, err := lockfile.AcquireFile(unitPath(dir, i, "lock"), fmt.Sprintf("unit %d, %s", i, o.Engine))
	if errors.Is(err, lockfile.ErrLocked) {
		return false, fmt.Errorf("study: unit %d: %w (%v)", i, ErrUnitBusy, err)
	}
	if err != nil {
		return false, err
	}
	defer lock.Release()
	if unitDone(dir, u) {
		return true, nil
	}
	start := time.Now()
	if err := runUnit(ctx, b, u, o); err != nil {
		if ctx.Err() == nil {
			_ = atomicfile.WriteFile(unitPath(dir, i, "failed"), []byte(oneLine(err.Error())+"\n"))
		}
		return false, err
	}
	st, err := os.Stat(resultPath(dir, u))
	if err != nil {
		return false, fmt.Errorf("study: unit %d left no result: %w", i, err)
	}
	rec := UnitRecord{Unit: u, Engine: o.Engine, Host: host, Job: o.Job, Started: start.UTC().Format(time.RFC3339),
		Finished: time.Now().UTC().Format(time.RFC3339), Seconds: time.Since(start).Seconds(), Bytes: st.Size()}
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return false, fmt.Errorf("study: %w", err)
	}
	if err := atomicfile.WriteFile(unitPath(dir, i, "json"), append(js, '\n')); err != nil {
		return false, fmt.Errorf("study: %w", err)
	}
	if err := os.Remove(unitPath(dir, i, "failed")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("study: %w", err)
	}
	return false, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// runUnit computes the unit's result into the work folder.
func runUnit(ctx context.Context, b *Built, u Unit, o RunUnitOptions) error {
	if b.Audit != nil {
		cfg, _, pop, err := prepareAudit(*b.Audit)
		if err != nil {
			return err
		}
		rc := auditReferences(cfg, pop)
		rc.Only, rc.Jobs, rc.Progress, rc.NoTrain = []int{u.Model}, 1, nil, false
		if o.Log != nil {
			log := epochLogger(u, o.Log)
			rc.Training = func(_ int, p trainer.Progress) { log(p) }
		}
		_, err = TrainReferences(ctx, rc)
		return err
	}
	cfg, err := b.Compare.withDefaults()
	if err != nil {
		return err
	}
	vm, err := variantModel(cfg.Model, u.Variant, cfg)
	if err != nil {
		return err
	}
	switch u.Kind {
	case UnitReference:
		rc, err := referenceConfigOf(cfg, u.Variant, vm)
		if err != nil {
			return err
		}
		rc.Only, rc.Jobs = []int{u.Model}, 1
		if o.Log != nil {
			log := epochLogger(u, o.Log)
			rc.Training = func(_ int, p trainer.Progress) { log(p) }
		}
		_, err = TrainReferences(ctx, rc)
		return err
	case UnitRun:
		for _, sub := range []string{"runs", "models", "checkpoints"} {
			if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o755); err != nil {
				return fmt.Errorf("study: %w", err)
			}
		}
		recipe, err := runRecipe(cfg, vm)
		if err != nil {
			return err
		}
		cfg.Resume = true
		if o.Log != nil {
			log := epochLogger(u, o.Log)
			cfg.Progress = func(p CompareProgress) {
				if p.Training != nil {
					log(*p.Training)
				}
			}
		}
		c := &comparison{cfg: cfg, start: time.Now(), runs: 1}
		_, err = c.train(ctx, u.Variant, u.Seed, vm, recipe)
		return err
	}
	return fmt.Errorf("study: unit %d has kind %q: %w", u.Index, u.Kind, audit.ErrInvalidInput)
}

// epochLogger turns training progress into one line per finished epoch.
func epochLogger(u Unit, log func(string)) func(trainer.Progress) {
	last := 0
	return func(t trainer.Progress) {
		if t.Epoch > last && t.Step == t.StepsPerEpoch {
			last = t.Epoch
			log(fmt.Sprintf("%s epoch %d/%d: loss %.4f accuracy %.4f", u.Name(), t.Epoch, t.Epochs, t.Loss, t.Accuracy))
		}
	}
}

// unitDone reports whether the unit's result is in the folder: its record
// and a readable result (a run's record file, a reference model).
func unitDone(dir string, u Unit) bool {
	b, err := os.ReadFile(unitPath(dir, u.Index, "json"))
	if err != nil {
		return false
	}
	var rec UnitRecord
	if json.Unmarshal(b, &rec) != nil || rec.Key != u.Key {
		return false
	}
	st, err := os.Stat(resultPath(dir, u))
	return err == nil && st.Size() == rec.Bytes
}

// Unit states in a Status.
const (
	StateDone    = "done"
	StateRunning = "running"
	StateFailed  = "failed"
	StateMissing = "missing"
)

// UnitStatus is one unit's state in the work folder.
type UnitStatus struct {
	Unit
	State string `json:"state"`
	// Detail: a done unit's engine, host and time; a running unit's
	// holder; a failed unit's error.
	Detail string `json:"detail,omitempty"`
	// Record of a done unit.
	Record *UnitRecord `json:"record,omitempty"`
}

// Status reads the state of every unit of the plan in dir.
func Status(dir string, p *Plan) []UnitStatus {
	out := make([]UnitStatus, len(p.Units))
	for i, u := range p.Units {
		s := UnitStatus{Unit: u, State: StateMissing}
		switch {
		case unitDone(dir, u):
			s.State = StateDone
			if b, err := os.ReadFile(unitPath(dir, i, "json")); err == nil {
				var rec UnitRecord
				if json.Unmarshal(b, &rec) == nil {
					s.Record = &rec
					s.Detail = fmt.Sprintf("%s on %s, %.0f s, finished %s", rec.Engine, rec.Host, rec.Seconds, rec.Finished)
				}
			}
		case unitBusy(dir, i):
			s.State = StateRunning
		default:
			if b, err := os.ReadFile(unitPath(dir, i, "failed")); err == nil {
				s.State, s.Detail = StateFailed, strings.TrimSpace(string(b))
			}
		}
		out[i] = s
	}
	return out
}

// unitBusy reports whether a worker holds unit i's lock now.
func unitBusy(dir string, i int) bool {
	l, err := lockfile.AcquireFile(unitPath(dir, i, "lock"), "bnaudit status")
	if err != nil {
		return errors.Is(err, lockfile.ErrLocked)
	}
	l.Release()
	return false
}

// UnitRuns are the done units' records, for the report.
func UnitRuns(st []UnitStatus) []audit.UnitRun {
	var out []audit.UnitRun
	for _, s := range st {
		if s.Record != nil {
			out = append(out, audit.UnitRun{Index: s.Index, Name: s.Name(), Engine: s.Record.Engine, Host: s.Record.Host, Job: s.Record.Job, Seconds: s.Record.Seconds})
		}
	}
	return out
}
