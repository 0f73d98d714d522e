package ort

import (
	"sync"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// NCHWcDomain is the operator domain of ONNX Runtime's blocked-layout CPU
// kernels (ReorderInput, Conv, ReorderOutput of MLAS's "NCHWc" layout, in
// which channels are stored in blocks of NCHWcBlock values, innermost).
// ORT's own graph optimizer moves a Conv into this layout only when its
// weights are constant initializers; a training step feeds the weights as
// inputs, so the trainer writes the blocked form itself (trainer/nchwc.go).
const NCHWcDomain = "com.microsoft.nchwc"

var nchwc struct {
	once  sync.Once
	block int
}

// NCHWcBlock is the channel block of the loaded library's NCHWc kernels on
// this CPU (16 with AVX-512, 8 with AVX2), or 0 where it has none: a build
// without the kernels, a CPU without the vector units, or no library. It
// asks ONNX Runtime once, by reordering a four-channel tensor (ReorderInput
// takes multiples of 4) and reading how many channels the blocked tensor has, and remembers the answer.
func NCHWcBlock() int {
	if ready() != nil {
		return 0
	}
	nchwc.once.Do(func() { nchwc.block = probeNCHWc() })
	return nchwc.block
}

func probeNCHWc() int {
	vi := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		sh := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: sh}}}}
	}
	out := vi("y")
	out.GetType().GetTensorType().Shape = nil
	m := &onnxpb.ModelProto{IrVersion: 8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}, {Domain: NCHWcDomain, Version: 1}},
		Graph: &onnxpb.GraphProto{Name: "nchwc_probe",
			Node:   []*onnxpb.NodeProto{{OpType: "ReorderInput", Domain: NCHWcDomain, Input: []string{"x"}, Output: []string{"y"}}},
			Input:  []*onnxpb.ValueInfoProto{vi("x", 1, 4, 1, 1)},
			Output: []*onnxpb.ValueInfoProto{out}}}
	raw, err := proto.Marshal(m)
	if err != nil {
		return 0
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return 0
	}
	defer so.Destroy()
	so.SetIntraOpNumThreads(1)
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(raw, []string{"x"}, []string{"y"}, so)
	if err != nil {
		return 0
	}
	defer s.Destroy()
	x, err := ort.NewTensor(ort.NewShape(1, 4, 1, 1), []float32{1, 2, 3, 4})
	if err != nil {
		return 0
	}
	defer x.Destroy()
	outs := []ort.Value{nil}
	if err := s.Run([]ort.Value{x}, outs); err != nil || outs[0] == nil {
		return 0
	}
	defer outs[0].Destroy()
	dims := outs[0].GetShape()
	if len(dims) != 4 || dims[1] < 8 || dims[1] > 64 {
		return 0
	}
	return int(dims[1])
}
