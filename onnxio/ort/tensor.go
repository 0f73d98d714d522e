package ort

import (
	"fmt"
	"math"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
)

// ElemType is a tensor element type, numbered like ONNX's
// TensorProto.DataType (and ONNX Runtime's ONNXTensorElementDataType).
type ElemType int32

// The element types Tensor carries. Other ONNX types appear in IOInfo but
// cannot cross Session.Run; use Session.RunValues for them.
const (
	TypeUndefined ElemType = 0
	TypeFloat32   ElemType = 1
	TypeInt64     ElemType = 7
	TypeBool      ElemType = 9
)

var elemTypeNames = map[ElemType]string{
	0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16",
	5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
	10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
	14: "complex64", 15: "complex128", 16: "bfloat16",
}

func (t ElemType) String() string {
	if s, ok := elemTypeNames[t]; ok {
		return s
	}
	return "elem_type(" + strconv.Itoa(int(t)) + ")"
}

// Tensor is a dense tensor in plain Go slices, so callers need not touch
// onnxruntime_go. Exactly one of Float32, Int64 and Bool is non-nil (a
// zero-element tensor uses an empty, non-nil slice), holding the elements in
// row-major order; len(Shape) == 0 means a 0-d scalar with one element.
type Tensor struct {
	Shape   []int64
	Float32 []float32
	Int64   []int64
	Bool    []bool
}

// Float32Tensor returns a float32 Tensor; it does not copy shape or data.
func Float32Tensor(shape []int64, data []float32) *Tensor {
	if data == nil {
		data = []float32{}
	}
	return &Tensor{Shape: shape, Float32: data}
}

// Int64Tensor returns an int64 Tensor; it does not copy shape or data.
func Int64Tensor(shape []int64, data []int64) *Tensor {
	if data == nil {
		data = []int64{}
	}
	return &Tensor{Shape: shape, Int64: data}
}

// BoolTensor returns a bool Tensor; it does not copy shape or data.
func BoolTensor(shape []int64, data []bool) *Tensor {
	if data == nil {
		data = []bool{}
	}
	return &Tensor{Shape: shape, Bool: data}
}

// Type returns the element type of the one data slice set, or TypeUndefined
// when none or several are set.
func (t *Tensor) Type() ElemType {
	typ, n := TypeUndefined, 0
	if t.Float32 != nil {
		typ, n = TypeFloat32, n+1
	}
	if t.Int64 != nil {
		typ, n = TypeInt64, n+1
	}
	if t.Bool != nil {
		typ, n = TypeBool, n+1
	}
	if n != 1 {
		return TypeUndefined
	}
	return typ
}

// Len returns the number of elements in the data slice that is set.
func (t *Tensor) Len() int {
	switch t.Type() {
	case TypeFloat32:
		return len(t.Float32)
	case TypeInt64:
		return len(t.Int64)
	case TypeBool:
		return len(t.Bool)
	}
	return 0
}

// Validate checks that exactly one data slice is set, that no dimension is
// negative and that the data holds exactly the shape's number of elements.
func (t *Tensor) Validate() error {
	if t == nil {
		return fmt.Errorf("tensor is nil")
	}
	set := 0
	for _, isSet := range []bool{t.Float32 != nil, t.Int64 != nil, t.Bool != nil} {
		if isSet {
			set++
		}
	}
	switch set {
	case 0:
		return fmt.Errorf("no data: set one of Float32, Int64, Bool")
	case 1:
	default:
		return fmt.Errorf("%d data slices set, want exactly one of Float32, Int64, Bool", set)
	}
	n, err := numElements(t.Shape)
	if err != nil {
		return err
	}
	if int64(t.Len()) != n {
		return fmt.Errorf("shape %v needs %d elements, data has %d", t.Shape, n, t.Len())
	}
	return nil
}

// numElements multiplies the dimensions of shape (1 for a 0-d shape),
// rejecting negative dimensions and overflow.
func numElements(shape []int64) (int64, error) {
	n := int64(1)
	for i, dm := range shape {
		if dm < 0 {
			return 0, fmt.Errorf("shape %v has negative dimension %d", shape, i)
		}
		if dm != 0 && n > math.MaxInt64/dm {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= dm
	}
	return n, nil
}

// newValue wraps a validated Tensor in an ORT value that shares its memory;
// the caller destroys it.
func newValue(t *Tensor) (ort.Value, error) {
	if len(t.Shape) == 0 {
		switch t.Type() {
		case TypeFloat32:
			return ort.NewScalar(t.Float32[0])
		case TypeInt64:
			return ort.NewScalar(t.Int64[0])
		case TypeBool:
			return ort.NewScalar(t.Bool[0])
		}
	}
	shape := ort.NewShape(t.Shape...)
	switch t.Type() {
	case TypeFloat32:
		return ort.NewTensor(shape, t.Float32)
	case TypeInt64:
		return ort.NewTensor(shape, t.Int64)
	case TypeBool:
		return ort.NewTensor(shape, t.Bool)
	}
	return nil, fmt.Errorf("unsupported element type %s", t.Type())
}

// newScalarOutput pre-allocates a 0-d output of type typ.
func newScalarOutput(typ ElemType) (ort.Value, error) {
	switch typ {
	case TypeFloat32:
		return ort.NewEmptyScalar[float32]()
	case TypeInt64:
		return ort.NewEmptyScalar[int64]()
	case TypeBool:
		return ort.NewEmptyScalar[bool]()
	}
	return nil, fmt.Errorf("unsupported element type %s", typ)
}

// fromValue copies an ORT value into a Tensor. The data slices of
// onnxruntime_go tensors are Go memory that outlives Destroy, so they are
// taken over without another copy.
func fromValue(v ort.Value) (*Tensor, error) {
	switch v := v.(type) {
	case *ort.Tensor[float32]:
		return &Tensor{Shape: shapeOf(v.GetShape()), Float32: v.GetData()}, nil
	case *ort.Tensor[int64]:
		return &Tensor{Shape: shapeOf(v.GetShape()), Int64: v.GetData()}, nil
	case *ort.Tensor[bool]:
		return &Tensor{Shape: shapeOf(v.GetShape()), Bool: v.GetData()}, nil
	case *ort.Scalar[float32]:
		return &Tensor{Shape: []int64{}, Float32: []float32{v.GetData()}}, nil
	case *ort.Scalar[int64]:
		return &Tensor{Shape: []int64{}, Int64: []int64{v.GetData()}}, nil
	case *ort.Scalar[bool]:
		return &Tensor{Shape: []int64{}, Bool: []bool{v.GetData()}}, nil
	}
	if v.GetONNXType() != ort.ONNXTypeTensor {
		return nil, fmt.Errorf("value of ONNX type %s is not a tensor", v.GetONNXType())
	}
	return nil, fmt.Errorf("unsupported element type %s", ElemType(v.DataType()))
}

func shapeOf(s ort.Shape) []int64 {
	out := make([]int64, len(s))
	copy(out, s)
	return out
}
