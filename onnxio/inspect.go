package onnxio

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Summary is what `bnaudit inspect` reports about a model.
type Summary struct {
	File            string           `json:"file"`
	IRVersion       int64            `json:"ir_version"`
	Producer        string           `json:"producer"`
	ProducerVersion string           `json:"producer_version"`
	Opsets          map[string]int64 `json:"opsets"`
	Inputs          []ValueSummary   `json:"inputs"`
	Outputs         []ValueSummary   `json:"outputs"`
	Nodes           int              `json:"nodes"`
	OpCounts        map[string]int   `json:"op_counts"`
	// Parameters counts the elements of float initializers that are not
	// BatchNorm running statistics; Buffers counts those statistics.
	Parameters       int64       `json:"parameters"`
	ParameterTensors int         `json:"parameter_tensors"`
	Buffers          int64       `json:"buffers"`
	ExternalData     bool        `json:"external_data"`
	BatchNorms       []BatchNorm `json:"batchnorms"`
	Frozen           []string    `json:"frozen_batchnorms"`
	Warnings         []string    `json:"warnings"`
}

// ValueSummary describes a graph input or output.
type ValueSummary struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	Shape []string `json:"shape"`
}

// Inspect summarizes a model: its interface, ops, parameters, BN layers and
// the warnings a user should read before auditing it.
func Inspect(m *Model) (*Summary, error) {
	ix, err := NewIndex(m)
	if err != nil {
		return nil, clean(err)
	}
	s := &Summary{
		File:            m.Name,
		IRVersion:       m.Proto.GetIrVersion(),
		Producer:        m.Proto.GetProducerName(),
		ProducerVersion: m.Proto.GetProducerVersion(),
		Opsets:          map[string]int64{},
		Nodes:           len(m.Graph().GetNode()),
		OpCounts:        ix.OpCounts(),
		ExternalData:    m.HasExternalData(),
		BatchNorms:      findBatchNorms(m, ix),
		Frozen:          FrozenBatchNorms(m),
		Warnings:        []string{},
	}
	for d, v := range ix.Opsets {
		if d == "" {
			d = "ai.onnx"
		}
		s.Opsets[d] = v
	}
	for _, in := range m.Graph().GetInput() {
		if ix.Initializers[in.GetName()] == nil {
			s.Inputs = append(s.Inputs, summarizeValue(in))
		}
	}
	for _, out := range m.Graph().GetOutput() {
		s.Outputs = append(s.Outputs, summarizeValue(out))
	}
	stats := map[string]bool{}
	for _, bn := range s.BatchNorms {
		stats[bn.Mean.Name] = true
		stats[bn.Var.Name] = true
	}
	for _, t := range m.Graph().GetInitializer() {
		switch t.GetDataType() {
		case TypeFloat, TypeDouble, TypeFloat16, int32(onnxpb.TensorProto_BFLOAT16):
		default:
			continue
		}
		n, _ := NumElements(t.GetDims())
		if stats[t.GetName()] {
			s.Buffers += n
		} else {
			s.Parameters += n
			s.ParameterTensors++
		}
	}
	s.Warnings = warnings(s)
	if w := upgradeWarning(m); w != "" {
		s.Warnings = append(s.Warnings, w)
	}
	return s, nil
}

// upgradeWarning says, for a model of an opset before MinUpgradeTarget,
// whether bnaudit can train and evaluate it through an upgraded copy, and
// what it rewrites or which node stops it ("" for newer models).
func upgradeWarning(m *Model) string {
	op := m.Opset("")
	if op >= MinUpgradeTarget {
		return ""
	}
	_, rep, err := Upgrade(m, MaxUpgradeTarget)
	if err != nil {
		return fmt.Sprintf("opset %d: bnaudit cannot upgrade this model to train or evaluate it (%v); re-export it with opset_version %d or later", op, err, MinUpgradeTarget)
	}
	return fmt.Sprintf("opset %d: bnaudit trains and evaluates this model through a copy %s; the file is unchanged", op, rep)
}

func summarizeValue(v *onnxpb.ValueInfoProto) ValueSummary {
	out := ValueSummary{Name: v.GetName(), Type: "unknown"}
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return out
	}
	out.Type = strings.ToLower(onnxpb.TensorProto_DataType(tt.GetElemType()).String())
	for _, d := range tt.GetShape().GetDim() {
		switch x := d.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			out.Shape = append(out.Shape, fmt.Sprint(x.DimValue))
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			out.Shape = append(out.Shape, x.DimParam)
		default:
			out.Shape = append(out.Shape, "?")
		}
	}
	return out
}

func warnings(s *Summary) []string {
	w := []string{}
	if len(s.BatchNorms) == 0 {
		w = append(w, NoBatchNormAdvice)
	}
	var training, unfoldable, unknownC []string
	for _, bn := range s.BatchNorms {
		label := fmt.Sprintf("%d (%s)", bn.Index, bn.Name)
		if bn.TrainingMode {
			training = append(training, label)
		}
		if !bn.Foldable {
			unfoldable = append(unfoldable, fmt.Sprintf("%s: %s", label, bn.FoldNote))
		}
		if bn.Channels < 0 {
			unknownC = append(unknownC, label)
		}
	}
	if len(training) > 0 {
		w = append(w, fmt.Sprintf("%d BatchNorm layer(s) are in training mode (training_mode=1): run as they are, they normalize with the batch's statistics; bnaudit evaluates them with their running statistics", len(training)))
	}
	for _, u := range unfoldable {
		w = append(w, "BatchNorm "+u+" (fold mode will refuse it; remove, freeze and groupnorm still work)")
	}
	if len(unknownC) > 0 {
		w = append(w, fmt.Sprintf("channel count unknown for BatchNorm %s", strings.Join(unknownC, ", ")))
	}
	if n := s.OpCounts["Dropout"]; n > 0 {
		w = append(w, fmt.Sprintf("%d Dropout node(s): bnaudit evaluates with Dropout off", n))
	}
	var custom []string
	for op := range s.OpCounts {
		if strings.Contains(op, ".") {
			custom = append(custom, op)
		}
	}
	sort.Strings(custom)
	if len(custom) > 0 {
		w = append(w, "ops outside the standard ONNX domain: "+strings.Join(custom, ", "))
	}
	if len(s.Inputs) != 1 {
		w = append(w, fmt.Sprintf("the model has %d data inputs; bnaudit audits classifiers with one input", len(s.Inputs)))
	}
	if len(s.Frozen) > 0 {
		w = append(w, fmt.Sprintf("%d BatchNorm layer(s) are frozen by an earlier ablation: they use running statistics in training too", len(s.Frozen)))
	}
	return w
}
