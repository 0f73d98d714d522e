package ort

import (
	"context"
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Value is a tensor handed to ONNX Runtime without a copy, for callers that
// run a session many times with the same buffers (a training loop). A
// tensor Value is made over a Go slice that stays the caller's: ORT reads an
// input from it and writes an output into it, so refilling the slice between
// runs changes the next run's input, and an output's slice holds the last
// run's result. Values go to Session.RunValues; Destroy releases ORT's side.
//
// A 0-d Value cannot share a caller's memory (onnxruntime_go keeps the
// element in a slice of its own): NewFloat32 takes its one element by value,
// Float32 returns a fresh one-element slice holding the current value, and
// SetScalar gives it a new value.
//
// A Value must not be written by two runs at once, nor destroyed while a run
// uses it.
type Value struct {
	v ort.Value
}

// NewFloat32 returns a float32 Value of the given shape over data, which
// must hold exactly the shape's number of elements. len(shape) == 0 makes a
// 0-d Value holding data[0].
func NewFloat32(shape []int64, data []float32) (*Value, error) {
	return newTypedValue(shape, data)
}

// NewInt64 returns an int64 Value of the given shape over data (see
// NewFloat32).
func NewInt64(shape []int64, data []int64) (*Value, error) {
	return newTypedValue(shape, data)
}

func newTypedValue[T float32 | int64](shape []int64, data []T) (*Value, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	n, err := numElements(shape)
	if err != nil {
		return nil, fmt.Errorf("ort: %v", err)
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("ort: shape %v needs %d elements, data has %d", shape, n, len(data))
	}
	var v ort.Value
	if len(shape) == 0 {
		v, err = ort.NewScalar(data[0])
	} else {
		v, err = ort.NewTensor(ort.NewShape(shape...), data)
	}
	if err != nil {
		return nil, fmt.Errorf("ort: new value: %v", err)
	}
	return &Value{v: v}, nil
}

// Type returns the element type.
func (v *Value) Type() ElemType { return ElemType(v.v.DataType()) }

// Shape returns a copy of the shape, empty for a 0-d Value.
func (v *Value) Shape() []int64 { return shapeOf(v.v.GetShape()) }

// Float32 returns a float32 Value's elements: for a tensor the slice it was
// made over (or that ORT allocated), not a copy; for a 0-d Value a new
// one-element slice. It is nil for other element types.
func (v *Value) Float32() []float32 { return elements[float32](v.v) }

// Int64 returns an int64 Value's elements, as Float32 does for float32.
func (v *Value) Int64() []int64 { return elements[int64](v.v) }

func elements[T float32 | int64](v ort.Value) []T {
	switch t := v.(type) {
	case *ort.Tensor[T]:
		return t.GetData()
	case *ort.Scalar[T]:
		return []T{t.GetData()}
	}
	return nil
}

// SetScalar gives a 0-d float32 Value a new value. onnxruntime_go's scalars
// cannot be written in place once ORT holds them, so this replaces ORT's
// side of v; it must not be called while a run uses v.
func (v *Value) SetScalar(x float32) error {
	if _, ok := v.v.(*ort.Scalar[float32]); !ok {
		return errors.New("ort: SetScalar on a Value that is not a 0-d float32")
	}
	nv, err := ort.NewScalar(x)
	if err != nil {
		return fmt.Errorf("ort: new value: %v", err)
	}
	v.v.Destroy()
	v.v = nv
	return nil
}

// Destroy releases ORT's side of v; the Go slice it was made over is
// untouched. Calling it on a nil Value, or twice, does nothing.
func (v *Value) Destroy() {
	if v != nil && !isNil(v.v) {
		v.v.Destroy()
		v.v = nil
	}
}

// RunValues runs the session on Values, the low-level path for callers that
// reuse buffers across runs: no input is checked against the model or
// copied, and outputs are written into the given Values. inputs and outputs
// follow the order of Inputs and Outputs. A nil output is allocated by ORT to
// its actual shape and stored into outputs; the caller destroys it (when the
// run fails such outputs are freed and left nil). 0-d outputs must be
// given (NewFloat32 with an empty shape): onnxruntime_go cannot wrap one
// that ORT allocated.
//
// When ctx can be done, ORT is told to terminate the run once it is (ORT
// checks between nodes) and the error wraps ctx's cause; a ctx that is never
// done (context.Background, context.WithoutCancel) costs nothing per run.
func (s *Session) RunValues(ctx context.Context, inputs, outputs []*Value) error {
	if len(inputs) != len(s.inputs) {
		return fmt.Errorf("ort: %d input values for %d inputs", len(inputs), len(s.inputs))
	}
	if len(outputs) != len(s.outputs) {
		return fmt.Errorf("ort: %d output values for %d outputs", len(outputs), len(s.outputs))
	}
	in := make([]ort.Value, len(inputs))
	for i, v := range inputs {
		if v == nil || isNil(v.v) {
			return fmt.Errorf("ort: input %q: nil value", s.inputs[i].Name)
		}
		in[i] = v.v
	}
	out := make([]ort.Value, len(outputs))
	for i, v := range outputs {
		if v != nil {
			if isNil(v.v) {
				return fmt.Errorf("ort: output %q: destroyed value", s.outputs[i].Name)
			}
			out[i] = v.v
		}
	}
	if err := s.run(ctx, in, out); err != nil {
		// Whatever ORT allocated before failing is freed here, so a failed
		// call leaves the caller nothing to clean up.
		for i, v := range outputs {
			if v == nil {
				destroy(out[i])
			}
		}
		return err
	}
	for i, v := range outputs {
		if v == nil {
			outputs[i] = &Value{v: out[i]}
		}
	}
	return nil
}
