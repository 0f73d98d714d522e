package trainer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// Loss is the loss a training step ends in.
type Loss string

const (
	// LossCrossEntropy is softmax cross-entropy on the data set's integer
	// labels (the default, also written "").
	LossCrossEntropy Loss = "cross_entropy"
	// LossGaussianNLL is the Gaussian negative log-likelihood of one float
	// target per sample (Config.Targets) under the model's prediction: the
	// output is [N, 2K], K pairs (μ, r) with σ = exp(r), and the sample's
	// label (in [0, K)) chooses its pair. Per sample
	// ℓ = r + (t − μ)²·exp(−2r)/2 + log(2π)/2 = −log N(t; μ, σ²). The
	// quantile-regression attack (docs/METHODS.md) trains with it.
	LossGaussianNLL Loss = "gaussian_nll"
)

func (l Loss) check() error {
	switch l {
	case "", LossCrossEntropy, LossGaussianNLL:
		return nil
	}
	return fmt.Errorf("trainer: unknown loss %q (want %s or %s)", l, LossCrossEntropy, LossGaussianNLL)
}

// regression reports whether the run fits float targets rather than
// classifies.
func (cfg *Config) regression() bool { return cfg.Loss == LossGaussianNLL }

// checkLoss checks the settings that depend on the loss: a Gaussian NLL
// run needs one finite target per training sample, and takes no test set
// (the evaluation graph is a classifier's), no stopping at a training
// accuracy, no label smoothing and no augmentation (a target belongs to
// its sample as it is).
func (cfg *Config) checkLoss() error {
	if err := cfg.Loss.check(); err != nil {
		return err
	}
	if !cfg.regression() {
		if cfg.Targets != nil {
			return fmt.Errorf("trainer: targets are the Gaussian NLL's; the %s loss trains on the labels", LossCrossEntropy)
		}
		return nil
	}
	switch {
	case len(cfg.Targets) != cfg.Train.Len():
		return fmt.Errorf("trainer: %d targets for %d training samples", len(cfg.Targets), cfg.Train.Len())
	case cfg.Test != nil:
		return fmt.Errorf("trainer: a test set is evaluated with cross-entropy; the %s loss takes none", cfg.Loss)
	case cfg.StopAtTrainAcc != 0:
		return fmt.Errorf("trainer: the %s loss has no training accuracy to stop at", cfg.Loss)
	case cfg.LabelSmoothing != 0:
		return fmt.Errorf("trainer: label smoothing applies to the cross-entropy loss, not to %s", cfg.Loss)
	case cfg.Augment != (Augment{}):
		return fmt.Errorf("trainer: augmentation would change a sample away from its target; the %s loss takes none", cfg.Loss)
	}
	for i, v := range cfg.Targets {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("trainer: target %d is %v", i, v)
		}
	}
	return nil
}

// lossFingerprint is what a checkpoint must match of the loss: its name
// and, for a regression, the targets.
func (cfg *Config) lossFingerprint() string {
	if !cfg.regression() {
		return "" // cross-entropy: the fingerprint of every earlier checkpoint
	}
	h := sha256.New()
	var b [4]byte
	for _, v := range cfg.Targets {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return fmt.Sprintf("|loss %s targets %s", cfg.Loss, hex.EncodeToString(h.Sum(nil)))
}

// targetTensor returns the targets input of a step of b samples, filled
// with the targets of the training samples idx.
func (t *trainer) targetTensor(idx []int) (*ort.Value, error) {
	b := len(idx)
	v, ok := t.targets[b]
	if !ok {
		var err error
		if v, err = ort.NewFloat32([]int64{int64(b)}, make([]float32, b)); err != nil {
			return nil, err
		}
		t.targets[b] = v
	}
	buf := v.Float32()
	for i, k := range idx {
		buf[i] = t.cfg.Targets[k]
	}
	return v, nil
}
