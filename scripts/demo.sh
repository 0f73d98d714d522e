#!/usr/bin/env bash
# demo.sh: the README's first command. Builds bnaudit and runs it on the
# bundled small CNN (a PyTorch export with two BatchNorm layers) and the
# bundled MNIST images: inspect, then every ablation mode, each checked on
# ONNX Runtime. Outputs go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(scripts/setup.sh | tail -n 1)
export ONNXRUNTIME_SHARED_LIBRARY_PATH="$lib"
go build -o bin/bnaudit ./cmd/bnaudit
model=testdata/models/small_cnn.training.onnx
images=testdata/mnist/t10k-64-images-idx3-ubyte.gz
mkdir -p out/demo
echo "== bnaudit inspect $model"
bin/bnaudit inspect "$model"
for mode in fold remove freeze groupnorm; do
	echo
	echo "== bnaudit ablate $model --mode $mode"
	bin/bnaudit ablate "$model" --mode "$mode" -o "out/demo/small_cnn.$mode.onnx" \
		--verify --verify-data "$images" --verify-batch 64
done
echo
echo "== bnaudit inspect out/demo/small_cnn.freeze.onnx"
bin/bnaudit inspect out/demo/small_cnn.freeze.onnx
