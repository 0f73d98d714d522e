package ort_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/bnaudit/bnaudit/onnxio/ort"
)

// A Tensor holds its elements row-major in exactly one typed slice; an empty
// shape is a 0-d scalar.
func ExampleTensor() {
	x := ort.Float32Tensor([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	loss := ort.Float32Tensor(nil, []float32{0.25})
	bad := ort.Int64Tensor([]int64{2, 2}, []int64{1, 2, 3})
	fmt.Println(x.Type(), x.Len(), x.Validate())
	fmt.Println(loss.Type(), loss.Len(), loss.Validate())
	fmt.Println(bad.Validate())
	// Output:
	// float32 6 <nil>
	// float32 1 <nil>
	// shape [2 2] needs 4 elements, data has 3
}

// Running a model on the CPU with two threads. (Not run by go test: it
// needs the ONNX Runtime library and a model file.)
func ExampleNewSessionAuto() {
	if err := ort.Init(""); err != nil {
		log.Fatal(err) // errors.Is(err, ort.ErrNoLibrary): run scripts/install-ort.sh
	}
	defer ort.Close()

	model, err := os.ReadFile("model.onnx")
	if err != nil {
		log.Fatal(err)
	}
	s, err := ort.NewSessionAuto(model, ort.SessionOptions{Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for _, in := range s.Inputs() {
		fmt.Println("input", in)
	}
	out, err := s.Run(map[string]*ort.Tensor{
		"input": ort.Float32Tensor([]int64{1, 1, 28, 28}, make([]float32, 28*28)),
	})
	if err != nil {
		log.Fatal(err)
	}
	for name, t := range out {
		fmt.Println(name, t.Shape)
	}
}

// A loop that runs a session many times on the same buffers: the Values are
// made once over Go slices, the input slice is refilled before each run,
// and each run writes its output into the output slice, with no copy. (Not
// run by go test: it needs the ONNX Runtime library and a model file with
// one input [8, 4] and one output [8, 2].)
func ExampleSession_RunValues() {
	if err := ort.Init(""); err != nil {
		log.Fatal(err)
	}
	defer ort.Close()
	model, err := os.ReadFile("model.onnx")
	if err != nil {
		log.Fatal(err)
	}
	s, err := ort.NewSessionAuto(model, ort.SessionOptions{Threads: 2, NCHWc: ort.NCHWcOff})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	xbuf, ybuf := make([]float32, 8*4), make([]float32, 8*2)
	x, err := ort.NewFloat32([]int64{8, 4}, xbuf)
	if err != nil {
		log.Fatal(err)
	}
	defer x.Destroy()
	y, err := ort.NewFloat32([]int64{8, 2}, ybuf)
	if err != nil {
		log.Fatal(err)
	}
	defer y.Destroy()
	for step := range 3 {
		for i := range xbuf {
			xbuf[i] = float32(step)
		}
		if err := s.RunValues(context.Background(), []*ort.Value{x}, []*ort.Value{y}); err != nil {
			log.Fatal(err)
		}
		fmt.Println(step, ybuf[0])
	}
}
