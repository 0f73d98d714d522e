package study

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Checks of a study's inputs made before any training or measurement: the
// model must be a classifier of the data's classes, and the non-members
// must not be members.

// ClassifierShape is what a classifier takes and gives.
type ClassifierShape struct {
	// Sample is the shape of one sample of its data input ([C, H, W]).
	Sample []int64
	// Outputs is the width of its output: one logit per class.
	Outputs int
}

// ShapeOf reads a model's sample shape and output width (by the shape
// inference of its evaluation graph).
func ShapeOf(m *onnxio.Model) (ClassifierShape, error) {
	g, err := trainer.BuildEval(m, 1)
	if err != nil {
		return ClassifierShape{}, err
	}
	in, out := g.Shapes[g.Input], g.Shapes[g.Logits]
	if len(in) < 1 || len(out) != 2 {
		return ClassifierShape{}, fmt.Errorf("study: %s: output %q has shape %v; a classifier outputs [batch, classes]: %w", m.Name, g.Logits, out, audit.ErrInvalidInput)
	}
	return ClassifierShape{Sample: slices.Clone(in[1:]), Outputs: int(out[1])}, nil
}

// PrepareClassifier readies a model to be trained or audited on the data
// sets (nil ones are skipped): a final Softmax is taken off
// (onnxio.StripOutputSoftmax), so that the model outputs the logits its
// probabilities came from, with a note saying so; a model of an opset
// before 13 gets a note that the trainer works on an upgraded copy
// (trainer.Upgrade; the model returned is not upgraded), or is refused
// when it cannot be upgraded; and the output must have
// one value per class of the data (the largest Classes of the sets), with
// every label below its width. A model that fails either is refused with
// an error wrapping audit.ErrInvalidInput.
func PrepareClassifier(m *onnxio.Model, sets ...*dataset.Dataset) (*onnxio.Model, []string, error) {
	node, _, err := onnxio.OutputSoftmax(m)
	if err != nil {
		return nil, nil, err
	}
	out, stripped, err := onnxio.StripOutputSoftmax(m)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	if stripped {
		notes = append(notes, fmt.Sprintf("%s ends in a Softmax (%s): its probabilities were taken back to logits by removing it (the Softmax became an Identity), so losses and scores come from the logits; a model trained from it outputs logits.", m.Name, node))
	}
	// A model of an opset before 13 is trained and evaluated through an
	// upgraded copy (trainer.Upgrade); say so once, or refuse it here.
	_, up, err := trainer.Upgrade(out)
	if err != nil {
		return nil, nil, err
	}
	if note := trainer.UpgradeNote(m.Name, up); note != "" {
		notes = append(notes, note)
	}
	shape, err := ShapeOf(out)
	if err != nil {
		return nil, nil, err
	}
	classes := 0
	var names []string
	for _, d := range sets {
		if d == nil {
			continue
		}
		if err := d.CheckLabels(shape.Outputs); err != nil {
			return nil, nil, fmt.Errorf("study: model %s has %d outputs: %w", m.Name, shape.Outputs, err)
		}
		classes = max(classes, d.Classes())
		names = append(names, d.Name())
	}
	if classes > 0 && classes != shape.Outputs {
		return nil, nil, fmt.Errorf("study: model %s outputs %d values per sample, but the labels of %s take %d classes; a classifier outputs one logit per class: %w",
			m.Name, shape.Outputs, strings.Join(names, " and "), classes, audit.ErrInvalidInput)
	}
	return out, notes, nil
}

// maxSharedFraction is the largest share of the non-members that may also
// be members (by content) and be dropped with a note; more is refused.
const maxSharedFraction = 0.01

// OverlapError is DisjointNonMembers' error: too many non-members are
// also members. It wraps audit.ErrInvalidInput.
type OverlapError struct {
	Members, NonMembers string
	// Shared non-members of Total are also members.
	Shared, Total int
}

func (e *OverlapError) Error() string {
	what := fmt.Sprintf("%d of the %d non-members (%s) are", e.Shared, e.Total, e.NonMembers)
	if e.Shared == e.Total {
		what = fmt.Sprintf("all %d non-members (%s) are", e.Total, e.NonMembers)
	}
	return fmt.Sprintf("study: %s also members (%s), by content: members and non-members must be different samples", what, e.Members)
}

func (e *OverlapError) Unwrap() error { return audit.ErrInvalidInput }

// DisjointNonMembers checks that no non-member is also a member, by the
// samples' values (whatever their files, names or labels). A few shared
// samples (at most 1% of the non-members) are dropped from the non-members,
// with a note giving their count; more is an *OverlapError.
func DisjointNonMembers(members, nonMembers *dataset.Dataset) (*dataset.Dataset, string, error) {
	shared, err := dataset.Overlap(members, nonMembers)
	if err != nil || len(shared) == 0 {
		return nonMembers, "", err
	}
	n := nonMembers.Len()
	if len(shared) == n || float64(len(shared)) > maxSharedFraction*float64(n) {
		return nil, "", &OverlapError{Members: members.Name(), NonMembers: nonMembers.Name(), Shared: len(shared), Total: n}
	}
	keep := make([]int, 0, n-len(shared))
	for i, j := 0, 0; i < n; i++ {
		if j < len(shared) && shared[j] == i {
			j++
			continue
		}
		keep = append(keep, i)
	}
	out, err := nonMembers.Subset(keep)
	if err != nil {
		return nil, "", err
	}
	note := fmt.Sprintf("%d of the %d non-members (%s) are also members by content; they were dropped from the non-members, leaving %d.", len(shared), n, nonMembers.Name(), out.Len())
	return out, note, nil
}

// CheckVariants builds each variant of a comparison once (the ablations
// with groups for groupnorm), so that a variant name or a group count the
// model refuses is an error before anything is trained.
func CheckVariants(m *onnxio.Model, variants []string, groups int) error {
	seen := map[string]bool{}
	for _, v := range variants {
		if seen[v] {
			return fmt.Errorf("study: variant %q is named twice: %w", v, audit.ErrInvalidInput)
		}
		seen[v] = true
		if _, err := variantModel(m, v, CompareConfig{Groups: groups}); err != nil {
			return fmt.Errorf("study: variant %s: %w", v, errorsAsInput(err))
		}
	}
	return nil
}

// invalidInput marks err as an error about the input (audit.ErrInvalidInput)
// without changing its message.
type invalidInput struct{ err error }

func (e invalidInput) Error() string   { return e.err.Error() }
func (e invalidInput) Unwrap() []error { return []error{e.err, audit.ErrInvalidInput} }

func errorsAsInput(err error) error { return invalidInput{err} }
