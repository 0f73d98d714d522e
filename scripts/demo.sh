#!/usr/bin/env bash
# demo.sh: the README's first command. Builds bnaudit and runs its main job
# on the bundled model and data: `bnaudit demo`, the BN comparison of the
# small CNN (testdata/models) trained on 1000 Fashion-MNIST images with 50
# MNIST digits inserted as canaries (testdata/fashion-mnist,
# testdata/mnist-canaries), variants original, remove, freeze and
# groupnorm. Before it, a look at the model and a verified BN fold. The
# report goes to out/demo-report/ (report.html, report.md, report.json,
# scores.csv, signals.npz). Extra arguments go to `bnaudit demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(scripts/setup.sh | tail -n 1)
export ONNXRUNTIME_SHARED_LIBRARY_PATH="$lib"
go build -o bin/bnaudit ./cmd/bnaudit
model=testdata/models/small_cnn.training.onnx
mkdir -p out/demo
echo "== bnaudit inspect $model"
bin/bnaudit inspect "$model"
echo
echo "== bnaudit ablate $model --mode fold --verify"
bin/bnaudit ablate "$model" --mode fold -o out/demo/small_cnn.fold.onnx \
	--verify --verify-data testdata/mnist/t10k-64-images-idx3-ubyte.gz --verify-batch 64
echo
echo "== bnaudit demo (compare on the bundled data; a few minutes on 2 cores)"
bin/bnaudit --threads 2 demo --output out/demo-report "$@"
