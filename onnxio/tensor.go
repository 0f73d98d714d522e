package onnxio

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/bnaudit/bnaudit/onnxio/onnxpb"
)

// Data types by their ONNX enum value.
const (
	TypeFloat   = int32(onnxpb.TensorProto_FLOAT)
	TypeUint8   = int32(onnxpb.TensorProto_UINT8)
	TypeInt8    = int32(onnxpb.TensorProto_INT8)
	TypeInt64   = int32(onnxpb.TensorProto_INT64)
	TypeBool    = int32(onnxpb.TensorProto_BOOL)
	TypeFloat16 = int32(onnxpb.TensorProto_FLOAT16)
	TypeDouble  = int32(onnxpb.TensorProto_DOUBLE)
)

// elemBits is the storage size in bits of one element in raw_data, or 0
// when the type has no fixed-size raw layout (strings, undefined).
func elemBits(dt int32) int64 {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT32, onnxpb.TensorProto_UINT32:
		return 32
	case onnxpb.TensorProto_UINT8, onnxpb.TensorProto_INT8, onnxpb.TensorProto_BOOL,
		onnxpb.TensorProto_FLOAT8E4M3FN, onnxpb.TensorProto_FLOAT8E4M3FNUZ,
		onnxpb.TensorProto_FLOAT8E5M2, onnxpb.TensorProto_FLOAT8E5M2FNUZ:
		return 8
	case onnxpb.TensorProto_UINT16, onnxpb.TensorProto_INT16, onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16:
		return 16
	case onnxpb.TensorProto_INT64, onnxpb.TensorProto_UINT64, onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_COMPLEX64:
		return 64
	case onnxpb.TensorProto_COMPLEX128:
		return 128
	case onnxpb.TensorProto_UINT4, onnxpb.TensorProto_INT4, onnxpb.TensorProto_FLOAT4E2M1:
		return 4
	}
	return 0
}

// NumElements is the product of the dims, with an error for negative dims or
// overflow (a hostile file can declare dims whose product wraps around).
func NumElements(dims []int64) (int64, error) {
	n := uint64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d", d)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64/16 {
			return 0, fmt.Errorf("dimensions %v overflow", dims)
		}
		n = lo
	}
	return int64(n), nil
}

// rawSize is the byte length raw_data must have for n elements of type dt.
func rawSize(dt int32, n int64) int64 {
	b := elemBits(dt)
	return (n*b + 7) / 8
}

// typedLen is the number of entries a typed repeated field holds for this
// tensor, and which field that is; ok is false when no typed field is used.
func typedLen(t *onnxpb.TensorProto) (n int64, field string, ok bool) {
	switch {
	case len(t.FloatData) > 0:
		return int64(len(t.FloatData)), "float_data", true
	case len(t.Int32Data) > 0:
		return int64(len(t.Int32Data)), "int32_data", true
	case len(t.Int64Data) > 0:
		return int64(len(t.Int64Data)), "int64_data", true
	case len(t.DoubleData) > 0:
		return int64(len(t.DoubleData)), "double_data", true
	case len(t.Uint64Data) > 0:
		return int64(len(t.Uint64Data)), "uint64_data", true
	case len(t.StringData) > 0:
		return int64(len(t.StringData)), "string_data", true
	}
	return 0, "", false
}

// expectedTyped is how many entries the typed field must hold for n elements.
func expectedTyped(dt int32, n int64) int64 {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_COMPLEX64, onnxpb.TensorProto_COMPLEX128:
		return 2 * n
	case onnxpb.TensorProto_UINT4, onnxpb.TensorProto_INT4, onnxpb.TensorProto_FLOAT4E2M1:
		return (n + 1) / 2
	}
	return n
}

// IsExternal reports whether a tensor keeps its data in an external file.
func IsExternal(t *onnxpb.TensorProto) bool {
	return t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// checkTensor verifies that a tensor's declared shape matches its data.
// External tensors are checked against their file by checkExternal.
func (m *Model) checkTensor(t *onnxpb.TensorProto, where string) error {
	n, err := NumElements(t.Dims)
	if err != nil {
		return invalidf("%s: tensor %q: %v", where, t.Name, err)
	}
	if t.Segment != nil {
		return invalidf("%s: tensor %q is segmented, which bnaudit does not support", where, t.Name)
	}
	dt := t.DataType
	if dt == int32(onnxpb.TensorProto_UNDEFINED) {
		return invalidf("%s: tensor %q has no data type", where, t.Name)
	}
	if elemBits(dt) == 0 && dt != int32(onnxpb.TensorProto_STRING) {
		return invalidf("%s: tensor %q has unknown data type %d", where, t.Name, dt)
	}
	if dt != int32(onnxpb.TensorProto_STRING) {
		if sz := rawSize(dt, n); m.limits.MaxTensorBytes > 0 && sz > m.limits.MaxTensorBytes {
			return fmt.Errorf("onnxio: %s: %s: tensor %q declares %d bytes, limit is %d: %w", m.Name, where, t.Name, sz, m.limits.MaxTensorBytes, ErrTooLarge)
		}
	}
	if IsExternal(t) {
		return m.checkExternal(t, n, where)
	}
	tl, field, typed := typedLen(t)
	switch {
	case len(t.RawData) > 0 && typed:
		return invalidf("%s: tensor %q has both raw_data and %s", where, t.Name, field)
	case len(t.RawData) > 0:
		if dt == int32(onnxpb.TensorProto_STRING) {
			return invalidf("%s: string tensor %q uses raw_data", where, t.Name)
		}
		if want := rawSize(dt, n); int64(len(t.RawData)) != want {
			return invalidf("%s: tensor %q declares shape %v (%d bytes) but holds %d bytes of raw_data", where, t.Name, t.Dims, want, len(t.RawData))
		}
	case typed:
		if want := expectedTyped(dt, n); tl != want {
			return invalidf("%s: tensor %q declares shape %v (%d values) but %s holds %d", where, t.Name, t.Dims, want, field, tl)
		}
	default:
		if n != 0 {
			return invalidf("%s: tensor %q declares shape %v but holds no data", where, t.Name, t.Dims)
		}
	}
	return nil
}

// tensorBytes returns a tensor's element count and its raw bytes (nil
// when the values are in the typed fields).
func (m *Model) tensorBytes(t *onnxpb.TensorProto) (int64, []byte, error) {
	n, err := NumElements(t.Dims)
	if err != nil {
		return 0, nil, fmt.Errorf("onnxio: tensor %q: %v", t.Name, err)
	}
	raw, err := m.rawBytes(t)
	return n, raw, err
}

// Floats returns a tensor's values as float32, converting from float16,
// double and integer types. External data is read from the model's folder.
func (m *Model) Floats(t *onnxpb.TensorProto) ([]float32, error) {
	n, raw, err := m.tensorBytes(t)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	dt := onnxpb.TensorProto_DataType(t.DataType)
	if raw != nil {
		if int64(len(raw)) != rawSize(t.DataType, n) {
			return nil, fmt.Errorf("onnxio: tensor %q: %d bytes for %d elements", t.Name, len(raw), n)
		}
		for i := range out {
			switch dt {
			case onnxpb.TensorProto_FLOAT:
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			case onnxpb.TensorProto_DOUBLE:
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			case onnxpb.TensorProto_FLOAT16:
				out[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
			case onnxpb.TensorProto_INT64:
				out[i] = float32(int64(binary.LittleEndian.Uint64(raw[8*i:])))
			case onnxpb.TensorProto_INT32:
				out[i] = float32(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			default:
				return nil, fmt.Errorf("onnxio: tensor %q has type %s, want a float type", t.Name, dt)
			}
		}
		return out, nil
	}
	var got int
	switch dt {
	case onnxpb.TensorProto_FLOAT:
		got = copy(out, t.FloatData)
	case onnxpb.TensorProto_DOUBLE:
		for i := range out {
			if i < len(t.DoubleData) {
				out[i] = float32(t.DoubleData[i])
				got++
			}
		}
	case onnxpb.TensorProto_FLOAT16:
		for i := range out {
			if i < len(t.Int32Data) {
				out[i] = halfToFloat(uint16(t.Int32Data[i]))
				got++
			}
		}
	case onnxpb.TensorProto_INT64:
		for i := range out {
			if i < len(t.Int64Data) {
				out[i] = float32(t.Int64Data[i])
				got++
			}
		}
	case onnxpb.TensorProto_INT32:
		for i := range out {
			if i < len(t.Int32Data) {
				out[i] = float32(t.Int32Data[i])
				got++
			}
		}
	default:
		return nil, fmt.Errorf("onnxio: tensor %q has type %s, want a float type", t.Name, dt)
	}
	if int64(got) != n {
		return nil, fmt.Errorf("onnxio: tensor %q: %d values for shape %v", t.Name, got, t.Dims)
	}
	return out, nil
}

// Int64s returns an integer tensor's values (INT64, INT32 or UINT8/INT8).
func (m *Model) Int64s(t *onnxpb.TensorProto) ([]int64, error) {
	n, raw, err := m.tensorBytes(t)
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	dt := onnxpb.TensorProto_DataType(t.DataType)
	switch {
	case raw != nil && dt == onnxpb.TensorProto_INT64 && int64(len(raw)) == 8*n:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case raw != nil && dt == onnxpb.TensorProto_INT32 && int64(len(raw)) == 4*n:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case raw == nil && dt == onnxpb.TensorProto_INT64 && int64(len(t.Int64Data)) == n:
		copy(out, t.Int64Data)
	case raw == nil && dt == onnxpb.TensorProto_INT32 && int64(len(t.Int32Data)) == n:
		for i, v := range t.Int32Data {
			out[i] = int64(v)
		}
	default:
		return nil, fmt.Errorf("onnxio: tensor %q: type %s with shape %v is not a readable integer tensor", t.Name, dt, t.Dims)
	}
	return out, nil
}

// rawBytes returns the raw little-endian bytes of a tensor stored as
// raw_data or externally, and nil when it uses a typed field.
func (m *Model) rawBytes(t *onnxpb.TensorProto) ([]byte, error) {
	if IsExternal(t) {
		return m.readExternal(t)
	}
	if len(t.RawData) > 0 {
		return t.RawData, nil
	}
	return nil, nil
}

// FloatTensor builds a FLOAT initializer stored as raw_data.
func FloatTensor(name string, dims []int64, data []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{Name: name, Dims: append([]int64(nil), dims...), DataType: TypeFloat, RawData: raw}
}

// setFloatData replaces a tensor's contents with float32 values stored inline.
func setFloatData(t *onnxpb.TensorProto, dims []int64, data []float32) {
	nt := FloatTensor(t.GetName(), dims, data)
	t.Dims, t.DataType, t.RawData = nt.Dims, nt.DataType, nt.RawData
	t.FloatData, t.DoubleData, t.Int32Data, t.Int64Data, t.Uint64Data = nil, nil, nil, nil, nil
	t.ExternalData, t.DataLocation = nil, onnxpb.TensorProto_DEFAULT
}

// Int64Tensor builds an INT64 initializer stored as raw_data.
func Int64Tensor(name string, dims []int64, data []int64) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &onnxpb.TensorProto{Name: name, Dims: append([]int64(nil), dims...), DataType: TypeInt64, RawData: raw}
}

// halfToFloat converts an IEEE 754 binary16 value to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = frac · 2^-24
		v := float32(frac) * float32(1.0/16777216.0)
		if sign != 0 {
			v = -v
		}
		return v
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// floatToHalf converts a float32 to IEEE 754 binary16, rounding to nearest
// even; values beyond the half range become ±Inf.
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	frac := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf, NaN
		h := sign | 0x7c00
		if frac != 0 {
			h |= 0x200
		}
		return h
	case exp-127 > 15:
		return sign | 0x7c00
	case exp-127 < -25:
		return sign
	}
	e := exp - 127 + 15
	m := frac | 0x800000 // the implicit one
	shift := uint32(13)
	if e <= 0 { // subnormal half
		shift += uint32(1 - e)
		e = 0
	}
	half := m >> shift
	rem := m & (1<<shift - 1)
	mid := uint32(1) << (shift - 1)
	if rem > mid || (rem == mid && half&1 == 1) {
		half++
	}
	if e == 0 {
		return sign | uint16(half) // a carry into bit 10 makes the smallest normal, as it should
	}
	h := uint32(e)<<10 + (half & 0x3ff) + (half>>10-1)<<10
	if h >= 0x7c00 {
		return sign | 0x7c00
	}
	return sign | uint16(h)
}
