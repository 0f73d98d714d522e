#!/usr/bin/env bash
# bench/run.sh: bnaudit's trainer against PyTorch in one run, on this machine.
#
# For the small CNN and the small ResNet (testdata/models), batch 128,
# 2 threads, real Fashion-MNIST training images:
#   - PyTorch (Debian's torch 1.13) training steps/s and peak RSS, with the
#     default allocator and with the GLIBC_TUNABLES of docs/FACTS.md;
#   - bnaudit's step graph on ONNX Runtime: steps/s and peak RSS
#     (go test -bench BenchmarkStep), and ORT's forward-only throughput
#     (BenchmarkForward), the ceiling a step is compared with.
# Results go to bench/results/<date>/ and the table to stdout (paste it into
# BENCHMARKS.md). Needs /usr/bin/python3 with torch, and Fashion-MNIST
# (apt-get install dataset-fashion-mnist) for PyTorch's data.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(scripts/setup.sh | tail -n 1)
export ONNXRUNTIME_SHARED_LIBRARY_PATH="$lib"
out=bench/results/$(date -u +%F)
mkdir -p "$out"
tuned="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
steps=${STEPS:-100}
for model in small_cnn small_resnet; do
	echo "== $model: PyTorch, default allocator" >&2
	/usr/bin/python3 bench/torch_train.py --model "$model" --mode speed --steps "$steps" --lr 0.02 --json "$out/torch_${model}_default.json" >&2
	echo "== $model: PyTorch, tuned allocator" >&2
	GLIBC_TUNABLES="$tuned" /usr/bin/python3 bench/torch_train.py --model "$model" --mode speed --steps "$steps" --lr 0.02 --json "$out/torch_${model}_tuned.json" >&2
	echo "== $model: bnaudit" >&2
	go test -run '^$' -bench "BenchmarkStep/${model}\\.training" -benchtime "${steps}x" -count 3 ./trainer/ > "$out/bnaudit_${model}_step.txt"
	go test -run '^$' -bench "BenchmarkForward/${model}\\.training" -benchtime "${steps}x" -count 3 ./trainer/ > "$out/bnaudit_${model}_forward.txt"
done
/usr/bin/python3 bench/summarize.py "$out"
