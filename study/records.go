package study

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/internal/atomicfile"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer"
)

// A comparison's folder (CompareConfig.Dir):
//
//	runs/VARIANT-seedK.gob       the finished run's record (--resume)
//	runs/VARIANT-seedK/gradnorm/ its gradient-norm points measured along
//	                             training, while it trains
//	models/VARIANT-seedK.onnx    the trained model
//	checkpoints/VARIANT-seedK/   the trainer's checkpoints, while it trains
//	refs/VARIANT/                the variant's reference models
//
// The two folders of a run in training are removed once its record is
// written.

// runPaths are where one run of a comparison keeps its files.
type runPaths struct {
	key         string // VARIANT-seedK
	record      string
	model       string
	checkpoints string
	// work holds what the run needs only while it trains (gradnorm).
	work     string
	gradNorm string
}

func pathsOf(dir, variant string, seed int) runPaths {
	key := fmt.Sprintf("%s-seed%d", variant, seed)
	work := filepath.Join(dir, "runs", key)
	return runPaths{key: key, record: work + ".gob", model: filepath.Join(dir, "models", key+".onnx"),
		checkpoints: filepath.Join(dir, "checkpoints", key), work: work, gradNorm: filepath.Join(work, "gradnorm")}
}

// runRecord is what a finished run leaves in Dir/runs for --resume.
type runRecord struct {
	Key string `json:"key"`
	// Recipe hashes what the run depends on; a record of another recipe is
	// not reused.
	Recipe  string
	Epochs  int
	Stopped bool
	Variant audit.VariantReport `json:"variant"`
	// Per-sample values the comparisons pair across variants.
	MemberLoss   []float64 `json:"member_loss"`
	CanaryLoss   []float64 `json:"canary_loss"`
	CanaryMember []bool    `json:"canary_member"`
	InsCorrect   []bool    `json:"inserted_correct"`
	HeldCorrect  []bool    `json:"held_out_correct"`
	NonLoss      []float64 `json:"non_member_loss"`
	GradOutlier  []float64 `json:"grad_outlier"`
	GradTypical  []float64 `json:"grad_typical"`
	// Samples is the run's per-sample table (scores.csv, signals.npz).
	Samples *audit.SampleTable
	// Fallbacks are the trainer's notes on refused session rewrites.
	Fallbacks []string
	// ScoreNames and ScoreValues hold Samples.Scores in the file, sorted
	// by name: gob writes a map in random order, and a record must be the
	// same bytes every time its run is computed.
	ScoreNames  []string
	ScoreValues [][]float64
}

// saveRecord writes a run's record with its scores in name order.
func saveRecord(path string, rec *runRecord) error {
	cp := *rec
	if rec.Samples != nil {
		s := *rec.Samples
		cp.ScoreNames = slices.Sorted(maps.Keys(s.Scores))
		cp.ScoreValues = make([][]float64, len(cp.ScoreNames))
		for i, n := range cp.ScoreNames {
			cp.ScoreValues[i] = s.Scores[n]
		}
		s.Scores = nil
		cp.Samples = &s
	}
	return saveGob(path, &cp)
}

// recordOf takes a finished run's record from its result.
func recordOf(key, recipe string, res *ExperimentResult) *runRecord {
	rec := &runRecord{Key: key, Recipe: recipe, Epochs: res.Epochs, Stopped: res.StoppedEarly, Variant: res.Variant, Fallbacks: res.Fallbacks}
	t := res.Samples
	for i := range t.Member {
		switch {
		case !t.Canary[i] && t.Member[i]:
			rec.MemberLoss = append(rec.MemberLoss, t.Loss[i])
		case !t.Canary[i]:
			rec.NonLoss = append(rec.NonLoss, t.Loss[i])
		default:
			rec.CanaryLoss = append(rec.CanaryLoss, t.Loss[i])
			rec.CanaryMember = append(rec.CanaryMember, t.Member[i])
		}
	}
	for i, c := range t.Canary {
		if c && t.Member[i] && i < len(t.GradNormEval) {
			rec.GradOutlier = append(rec.GradOutlier, t.GradNormEval[i])
		}
	}
	rec.GradTypical = res.TypicalGradNorms
	rec.Samples = res.Samples
	return rec
}

// Run records and gradient-norm points are gob files (gob keeps NaN,
// which JSON cannot hold); they only serve --resume.

// saveGob writes v atomically as gob.
func saveGob(path string, v any) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return fmt.Errorf("study: encoding %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return nil
}

// loadGob reads a gob file into v; a missing file's error wraps
// fs.ErrNotExist.
func loadGob(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		return fmt.Errorf("study: %s is damaged (%v): %w", path, err, errDamaged)
	}
	return nil
}

// errDamaged marks a study file that exists but cannot be decoded.
var errDamaged = errors.New("unreadable study file")

// loadRecord reads a finished run's record; ok is false when there is
// none (the run is trained). A damaged record counts as none: the run is
// trained again and the record rewritten.
func loadRecord(path string) (rec *runRecord, ok bool, err error) {
	rec = &runRecord{}
	switch err := loadGob(path, rec); {
	case err == nil:
		if rec.Samples != nil && len(rec.ScoreNames) > 0 {
			if len(rec.ScoreValues) != len(rec.ScoreNames) {
				return nil, false, nil // damaged: trained again
			}
			rec.Samples.Scores = make(map[string][]float64, len(rec.ScoreNames))
			for i, n := range rec.ScoreNames {
				rec.Samples.Scores[n] = rec.ScoreValues[i]
			}
		}
		rec.ScoreNames, rec.ScoreValues = nil, nil
		return rec, true, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errDamaged):
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("study: %w", err)
	}
}

// gradNormFile is the record of the points measured after one epoch.
func gradNormFile(dir string, epoch int) string {
	return filepath.Join(dir, fmt.Sprintf("epoch%03d.gob", epoch))
}

// saveGradNorms records the points measured after an epoch.
func saveGradNorms(dir string, epoch int, pts []audit.GradNormPoint) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return saveGob(gradNormFile(dir, epoch), pts)
}

// loadGradNorms reads the points recorded after the epochs, in that order,
// and lists the epochs without a (readable) record.
func loadGradNorms(dir string, epochs []int) (pts []audit.GradNormPoint, missing []int, err error) {
	for _, e := range epochs {
		var got []audit.GradNormPoint
		switch err := loadGob(gradNormFile(dir, e), &got); {
		case err == nil:
			pts = append(pts, got...)
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, errDamaged):
			missing = append(missing, e)
		default:
			return nil, nil, fmt.Errorf("study: %w", err)
		}
	}
	return pts, missing, nil
}

// Recipe is what of a training configuration decides the trained
// weights besides the model, the data and the seed. It is plain data, so a
// study's plan carries it to the processes that run its units.
type Recipe struct {
	Init           trainer.Init
	Epochs, Batch  int
	Optimizer      trainer.Optimizer
	LR             float32
	Schedule       trainer.Schedule
	LabelSmoothing float32
	Augment        trainer.Augment
}

// RecipeOf takes the recipe of a training configuration.
func RecipeOf(t trainer.Config) Recipe {
	return Recipe{Init: t.Init, Epochs: t.Epochs, Batch: t.Batch, Optimizer: t.Optimizer, LR: t.LR, Schedule: t.Schedule,
		LabelSmoothing: t.LabelSmoothing, Augment: t.Augment}
}

// Apply sets the recipe's fields of a training configuration.
func (r Recipe) Apply(t *trainer.Config) {
	t.Init, t.Epochs, t.Batch, t.Optimizer, t.LR = r.Init, r.Epochs, r.Batch, r.Optimizer, r.LR
	t.Schedule, t.LabelSmoothing, t.Augment = r.Schedule, r.LabelSmoothing, r.Augment
}

// runKey is what a comparison's run depends on; its hash is the record's
// Recipe.
type runKey struct {
	Model               string // ModelHash of the variant
	Members, NonMembers string // dataset fingerprints
	Inserted, HeldOut   string // canaries' fingerprints, "" without canaries
	Training            Recipe
	StopAtTrainAcc      float64
	Seed                uint64
	RefModels           int
	LiRAPerSample       bool
	GradNormCheckpoints int
	GradNormSample      int
	InBatch             bool
	Replicates          int
	BootstrapSeed       uint64
	Augmentations       int         `json:",omitempty"`
	QMIA                *QMIAConfig `json:",omitempty"`
}

// runRecipe hashes what a run's results depend on.
func runRecipe(cfg CompareConfig, vm *onnxio.Model) (string, error) {
	mh, err := ModelHash(vm)
	if err != nil {
		return "", err
	}
	perSample, err := LiRAVarianceFor(cfg.LiRAVariance, cfg.RefModels)
	if err != nil {
		return "", err
	}
	k := runKey{Model: mh, Members: cfg.Members.Fingerprint(), NonMembers: cfg.NonMembers.Fingerprint(),
		Training: RecipeOf(cfg.Train), StopAtTrainAcc: cfg.Train.StopAtTrainAcc, Seed: cfg.Seed,
		RefModels: cfg.RefModels, LiRAPerSample: perSample && cfg.RefModels > 0,
		GradNormCheckpoints: cfg.GradNormCheckpoints, GradNormSample: gradNormSample(cfg.GradNormSample), InBatch: cfg.InBatch,
		Replicates: cfg.Bootstrap.Replicates, BootstrapSeed: cfg.Bootstrap.Seed, Augmentations: cfg.Augmentations, QMIA: cfg.QMIA}
	if cfg.Canaries != nil {
		k.Inserted, k.HeldOut = cfg.Canaries.Inserted.Fingerprint(), cfg.Canaries.HeldOut.Fingerprint()
	}
	return hashOf(k)
}

// hashOf is the hex SHA-256 of v's JSON encoding (fields in declaration
// order, so the same value always hashes alike).
func hashOf(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("study: hashing a recipe: %w", err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}
