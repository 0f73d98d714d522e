package study

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// The reference architecture of an audit (AuditConfig.RefArch, --ref-arch):
// most third-party models arrive as PyTorch's default eval export, where
// BatchNorm is folded into the convolutions. Reference models of that
// architecture train without BN, although the audited model trained with
// it; LiRA and RMIA assume reference models trained like the target. The
// reference models can instead train on another export of the same network
// (PRESERVE or TRAINING export, or an ablation), which must take the same
// input and give the same classes. Its weights are re-drawn like those of
// every reference model (trainer.InitScratch): none of the trained weights
// of an export of the audited model reach them.

// prepareRefArch readies the reference architecture as PrepareClassifier
// readies a model (a final Softmax comes off) and checks that it has the
// interface of the audited model, prepared already: the same sample shape
// and element type, and as many outputs (so the data's labels fit it too).
// Input and output names may differ: each model is fed by its own names.
func prepareRefArch(target, ref *onnxio.Model) (*onnxio.Model, error) {
	ref, _, err := PrepareClassifier(ref)
	if err != nil {
		return nil, err
	}
	want, err := interfaceOf(target)
	if err != nil {
		return nil, err
	}
	got, err := interfaceOf(ref)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(got.Sample, want.Sample) || got.Type != want.Type || got.Outputs != want.Outputs {
		return nil, fmt.Errorf("study: reference architecture %s takes %s and gives %d classes, but the audited model %s takes %s and gives %d; --ref-arch must be another export of the audited network, with the same input and classes: %w",
			ref.Name, got.input(), got.Outputs, target.Name, want.input(), want.Outputs, audit.ErrInvalidInput)
	}
	return ref, nil
}

// modelInterface is what a reference architecture must share with the
// audited model.
type modelInterface struct {
	ClassifierShape
	// Type is the data input's element type ("float").
	Type string
}

func (m modelInterface) input() string {
	dims := make([]string, len(m.Sample))
	for i, d := range m.Sample {
		dims[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s [batch, %s]", m.Type, strings.Join(dims, ", "))
}

// interfaceOf reads a classifier's sample shape, element type and output
// width.
func interfaceOf(m *onnxio.Model) (modelInterface, error) {
	shape, err := ShapeOf(m)
	if err != nil {
		return modelInterface{}, err
	}
	inits := map[string]bool{}
	for _, t := range m.Graph().GetInitializer() {
		inits[t.GetName()] = true
	}
	typ := "unknown"
	for _, in := range m.Graph().GetInput() {
		if !inits[in.GetName()] {
			typ = strings.ToLower(onnxpb.TensorProto_DataType(in.GetType().GetTensorType().GetElemType()).String())
			break
		}
	}
	return modelInterface{ClassifierShape: shape, Type: typ}, nil
}

// referenceArchOf describes the architecture a prepared audit's
// reference models train on.
func referenceArchOf(cfg AuditConfig) (*audit.ReferenceArch, error) {
	m := cfg.Model
	if cfg.RefArch != nil {
		m = cfg.RefArch
	}
	h, err := ModelHash(m)
	if err != nil {
		return nil, err
	}
	bns, err := onnxio.FindBatchNorms(m)
	if err != nil {
		return nil, err
	}
	return &audit.ReferenceArch{Model: m.Name, ModelHash: h, BatchNorms: len(bns), Given: cfg.RefArch != nil}, nil
}

// architectureNotes are the report's notes on the architectures of a
// prepared audit: whether BN may have been folded out of the audited model
// on export, and what the reference models trained on (arch, nil without
// reference models); folded says whether BN may have been folded.
func architectureNotes(cfg AuditConfig, arch *audit.ReferenceArch) (notes []string, folded bool, err error) {
	producer, folded, err := onnxio.FoldedBatchNorm(cfg.Model)
	if err != nil {
		return nil, false, err
	}
	if arch != nil && arch.Given {
		notes = append(notes, fmt.Sprintf("Reference architecture: the reference models were trained from scratch (weights re-drawn) on %s (--ref-arch; model sha256 %s, %d BatchNorm layer(s)), not on the audited model's architecture.",
			onnxio.CleanMessage(arch.Model), shortSHA(arch.ModelHash), arch.BatchNorms))
	}
	if !folded {
		return notes, false, nil
	}
	folding := fmt.Sprintf("BatchNorm may have been folded: %s has no BatchNormalization node and was exported by %s, whose default export folds BN into the preceding layer (%s), so it may well have been trained with BN.",
		onnxio.CleanMessage(cfg.Model.Name), producer, onnxio.NoBatchNormAdvice)
	switch {
	case arch == nil:
		notes = append(notes, folding+" bnaudit compare, and reference models (--ref-models) trained on this file, would train the network without BN; keep BN with a PRESERVE or TRAINING export, and give it as --ref-arch to train the reference models on it.")
	case !arch.Given:
		notes = append(notes, folding+" The reference models were trained on this folded architecture, without BN, unlike the audited model: LiRA and RMIA assume reference models trained like the target, so their numbers may be off. Give a PRESERVE or TRAINING export of the network as --ref-arch to train them with BN.")
	case arch.BatchNorms == 0:
		notes = append(notes, folding+fmt.Sprintf(" The reference architecture %s has no BatchNormalization node either: the reference models were trained without BN, unlike the audited model, and LiRA and RMIA may be off; give a PRESERVE or TRAINING export as --ref-arch.", onnxio.CleanMessage(arch.Model)))
	default:
		notes = append(notes, fmt.Sprintf("The audited model %s has no BatchNormalization node (BN folded on export by %s, it seems); the reference models were trained with BN on %s (%d BatchNorm layer(s)), as the audited network presumably was. The threshold attacks and the numbers of the audited model are those of the folded file, which computes the same function.",
			onnxio.CleanMessage(cfg.Model.Name), producer, onnxio.CleanMessage(arch.Model), arch.BatchNorms))
	}
	return notes, true, nil
}

// shortSHA is the first 16 hex digits of a hash.
func shortSHA(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
