package trainer_test

import (
	"context"
	"fmt"

	"github.com/bnaudit/bnaudit/onnxio"
	"github.com/bnaudit/bnaudit/onnxio/ort"
	"github.com/bnaudit/bnaudit/trainer"
	"github.com/bnaudit/bnaudit/trainer/dataset"
)

// Train the small CNN fixture from scratch for one epoch on 512 images of
// the committed Fashion-MNIST subset. (The example needs the ONNX Runtime
// library: scripts/install-ort.sh.)
func ExampleTrain() {
	model, err := onnxio.Load("../testdata/models/small_cnn.training.onnx")
	if err != nil {
		fmt.Println(err)
		return
	}
	data, err := dataset.Load("../testdata/fashion-mnist", dataset.LoadOptions{Split: "train", MaxSamples: 512})
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ = data.WithNorm(dataset.ComputeNorm(data))
	res, err := trainer.Train(context.Background(), trainer.Config{
		Model: model, Init: trainer.InitScratch, Train: data,
		Epochs: 1, Batch: 64, Optimizer: trainer.SGD(0.9, 5e-4, false), LR: 0.02, Seed: 1,
		Session: ort.SessionOptions{Threads: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d steps, %d epoch, BatchNorm layers in the trained model: %d\n", res.Steps, len(res.Epochs), countBN(res.Model))
	// Output: 8 steps, 1 epoch, BatchNorm layers in the trained model: 2
}

func countBN(m *onnxio.Model) int {
	bns, _ := onnxio.FindBatchNorms(m)
	return len(bns)
}
