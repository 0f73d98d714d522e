package study

import (
	"context"
	"fmt"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// The data-augmentation label-only attack (docs/METHODS.md, "Label-only
// attacks"): each sample is queried as Augmentations shifted and flipped
// copies, and scored by the fraction the model labels right; only the
// predicted label (Signals.Correct) of each query is read.

// DefaultAugmentShift is the largest shift, in pixels, of an augmented
// query.
const DefaultAugmentShift = 2

// augmentedDataset returns d with every image replaced by augmentation a,
// with d's labels, classes and normalization.
func augmentedDataset(d *dataset.Dataset, a audit.Augmentation) (*dataset.Dataset, error) {
	shape := d.SampleShape()
	if len(shape) != 3 {
		return nil, fmt.Errorf("study: the augmentation attack needs images of shape C×H×W, %s has %v: %w", d.Name(), shape, audit.ErrInvalidInput)
	}
	c, h, w := int(shape[0]), int(shape[1]), int(shape[2])
	per := c * h * w
	raw, err := d.WithNorm(dataset.IdentityNorm())
	if err != nil {
		return nil, err
	}
	idx := make([]int, d.Len())
	for i := range idx {
		idx[i] = i
	}
	x := make([]float32, d.Len()*per)
	if err := raw.Batch(idx, x); err != nil {
		return nil, err
	}
	y := make([]float32, len(x))
	for i := 0; i < d.Len(); i++ {
		if err := audit.Augment(y[i*per:(i+1)*per], x[i*per:(i+1)*per], c, h, w, a); err != nil {
			return nil, err
		}
	}
	name := fmt.Sprintf("%s (shift %d,%d flip %v)", d.Name(), a.DX, a.DY, a.Flip)
	var out *dataset.Dataset
	if raw.IsUint8() {
		b := make([]byte, len(y))
		for i, v := range y {
			b[i] = byte(v*255 + 0.5)
		}
		out, err = dataset.FromUint8(name, shape, b, d.Labels())
	} else {
		out, err = dataset.FromFloat32(name, shape, y, d.Labels())
	}
	if err != nil {
		return nil, err
	}
	if out, err = out.WithClasses(d.Classes()); err != nil {
		return nil, err
	}
	return out.WithNorm(d.Norm())
}

// augmentationScores is the attack's score of every sample of the sets,
// in order.
func augmentationScores(ctx context.Context, m *onnxio.Model, cfg ExperimentConfig, sets ...*dataset.Dataset) ([]float64, error) {
	augs, err := audit.Augmentations(cfg.Augmentations, DefaultAugmentShift, cfg.Bootstrap.Seed)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, d := range sets {
		correct := make([][]bool, len(augs))
		for k, a := range augs {
			ad, err := augmentedDataset(d, a)
			if err != nil {
				return nil, err
			}
			sig, err := cfg.Cache.Signals(ctx, m, ad, cfg.Session)
			if err != nil {
				return nil, err
			}
			correct[k] = sig.Correct
		}
		s, err := audit.AugmentationScores(correct)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// addAugmentationAttack runs the attack on members vs non-members and, when
// the table has canaries, on inserted vs held-out canaries (the table's
// row order: members, non-members, inserted, held out).
func addAugmentationAttack(ctx context.Context, m *onnxio.Model, cfg ExperimentConfig, v *audit.VariantReport, t *audit.SampleTable) error {
	sets := []*dataset.Dataset{cfg.Members, cfg.NonMembers}
	if c := cfg.Canaries; c != nil {
		sets = append(sets, c.Inserted, c.HeldOut)
	}
	s, err := augmentationScores(ctx, m, cfg, sets...)
	if err != nil {
		return err
	}
	if len(s) != len(t.Member) {
		return fmt.Errorf("study: %d augmentation scores for %d samples: %w", len(s), len(t.Member), audit.ErrInvalidInput)
	}
	n := cfg.Members.Len() + cfg.NonMembers.Len()
	rep, err := audit.NewAttackReport(audit.AttackAugmentation, s[:n], t.Member[:n], cfg.Bootstrap)
	if err != nil {
		return err
	}
	v.Attacks = append(v.Attacks, rep)
	if len(s) > n {
		rep, err := audit.NewAttackReport(audit.AttackAugmentation, s[n:], t.Member[n:], cfg.Bootstrap)
		if err != nil {
			return err
		}
		v.CanaryAttacks = append(v.CanaryAttacks, rep)
	}
	t.Scores[audit.AttackAugmentation] = s
	return nil
}
