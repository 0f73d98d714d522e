package dataset_test

import (
	"fmt"

	"github.com/bnaudit/bnaudit/trainer/dataset"
)

func Example() {
	d, err := dataset.Load("../../testdata/mnist/t10k-64-images-idx3-ubyte.gz", dataset.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err = d.WithNorm(dataset.Normalization{Mean: []float32{0.1307}, Std: []float32{0.3081}})
	if err != nil {
		fmt.Println(err)
		return
	}
	idx := []int{0, 1}
	batch := make([]float32, len(idx)*28*28)
	if err := d.Batch(idx, batch); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Len(), d.SampleShape(), d.Classes(), d.Labels()[:2])
	fmt.Printf("%.4f %.4f\n", batch[0], batch[7*28+7]) // background, and pixel 185 of image 0
	// Output:
	// 64 [1 28 28] 10 [7 2]
	// -0.4242 1.9305
}

func ExampleFromUint8() {
	d, _ := dataset.FromUint8("tiny", []int64{2, 2}, []byte{0, 51, 102, 255, 255, 0, 0, 0}, []int64{1, 0})
	norm := dataset.ComputeNorm(d)
	fmt.Printf("%v %.4f %.4f\n", d.SampleShape(), norm.Mean[0], norm.Std[0])
	_, err := d.Subset([]int{2})
	fmt.Println(err)
	// Output:
	// [1 2 2] 0.3250 0.4116
	// dataset: tiny: subset index 2 (position 0) out of range [0, 2): bad data file
}
