package onnxio

import (
	"strings"
)

// foldingExporters are the exporters, by the producer_name they write,
// whose default export folds BatchNormalization into the layer before it,
// so that a model trained with BN arrives without a BN node.
var foldingExporters = map[string]bool{
	// torch.onnx.export of a model in eval mode (TrainingMode.EVAL, the
	// default) folds BN into the preceding Conv.
	"pytorch": true,
}

// FoldedBatchNorm says whether BatchNorm may have been folded out of the
// model on export: it has no BatchNormalization node and its producer is an
// exporter that folds BN by default (PyTorch's eval-mode export), so it
// may well have been trained with BN. producer is the producer's name and
// version as the file gives them, cleaned for printing; NoBatchNormAdvice
// says how to keep the BN layers.
func FoldedBatchNorm(m *Model) (producer string, folded bool, err error) {
	bns, err := FindBatchNorms(m)
	if err != nil {
		return "", false, err
	}
	name := m.Proto.GetProducerName()
	if len(bns) > 0 || !foldingExporters[strings.ToLower(strings.TrimSpace(name))] {
		return "", false, nil
	}
	producer = strings.TrimSpace(name + " " + m.Proto.GetProducerVersion())
	return CleanMessage(producer), true, nil
}
