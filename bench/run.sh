#!/usr/bin/env bash
# bench/run.sh: bnaudit's trainer against PyTorch in one run, on this machine.
#
# For the small CNN and the small ResNet (testdata/models), batch 128,
# 2 threads, real Fashion-MNIST training images:
#   - PyTorch (Debian's torch 1.13) training steps/s and peak RSS, with the
#     default allocator and with the GLIBC_TUNABLES of docs/FACTS.md;
#   - bnaudit's step graph on ONNX Runtime: steps/s and peak RSS
#     (go test -bench BenchmarkStep), and ORT's forward-only throughput
#     (BenchmarkForward), the ceiling a step is compared with;
#   - trained models per hour: K reference models per fixture with the
#     recipe of audit --ref-models (bench/refmodels against
#     bench/torch_train.py --mode refmodels), peak RSS beside it.
# Results go to bench/results/<date>/ and the table to stdout (paste it into
# BENCHMARKS.md). Needs /usr/bin/python3 with torch, and Fashion-MNIST
# (apt-get install dataset-fashion-mnist) for PyTorch's data.
set -euo pipefail
cd "$(dirname "$0")/.."
# bnaudit's side runs with the oneDNN backward kernels (built by
# scripts/setup.sh, used by default); BNAUDIT_DNNL=off measures the
# standard graphs.
export BNAUDIT_DNNL=${BNAUDIT_DNNL:-on}
lib=$(scripts/setup.sh | tail -n 1)
export ONNXRUNTIME_SHARED_LIBRARY_PATH="$lib"
out=${OUT:-bench/results/$(date -u +%F)}
mkdir -p "$out"
tuned="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"
steps=${STEPS:-100}
# STEPS=0 skips the per-step part.
for model in small_cnn small_resnet; do
	(( steps > 0 )) || break
	echo "== $model: PyTorch, default allocator" >&2
	/usr/bin/python3 bench/torch_train.py --model "$model" --mode speed --steps "$steps" --lr 0.02 --json "$out/torch_${model}_default.json" >&2
	echo "== $model: PyTorch, tuned allocator" >&2
	GLIBC_TUNABLES="$tuned" /usr/bin/python3 bench/torch_train.py --model "$model" --mode speed --steps "$steps" --lr 0.02 --json "$out/torch_${model}_tuned.json" >&2
	echo "== $model: bnaudit" >&2
	go test -run '^$' -bench "BenchmarkStep/${model}\\.training" -benchtime "${steps}x" -count 3 ./trainer/ > "$out/bnaudit_${model}_step.txt"
	go test -run '^$' -bench "BenchmarkForward/${model}\\.training" -benchtime "${steps}x" -count 3 ./trainer/ > "$out/bnaudit_${model}_forward.txt"
done
# The benchmark of record (issue 14): K reference models per fixture, each
# trained 2 epochs on its half of a 40,000-image pool with audit's reference
# recipe and evaluated on the pool, PyTorch one model after another, bnaudit
# through study.TrainReferences one at a time (jobs 1) and two at a time on
# one thread each (jobs 2). REFMODELS=0 skips it.
if [[ ${REFMODELS:-4} -gt 0 ]]; then
	go build -o "$out/refmodels.bin" ./bench/refmodels
	for model in small_cnn small_resnet; do
		echo "== $model: reference models, PyTorch default allocator" >&2
		/usr/bin/python3 bench/torch_train.py --model "$model" --mode refmodels --models "${REFMODELS:-4}" --epochs 2 --batch 64 --lr 0.02 --pool 40000 --json "$out/torch_${model}_refmodels_default.json" >&2
		echo "== $model: reference models, PyTorch tuned allocator" >&2
		GLIBC_TUNABLES="$tuned" /usr/bin/python3 bench/torch_train.py --model "$model" --mode refmodels --models "${REFMODELS:-4}" --epochs 2 --batch 64 --lr 0.02 --pool 40000 --json "$out/torch_${model}_refmodels_tuned.json" >&2
		for jobs in 1 2; do
			echo "== $model: reference models, bnaudit, jobs $jobs" >&2
			"$out/refmodels.bin" --model "testdata/models/$model.training.onnx" --models "${REFMODELS:-4}" --epochs 2 --batch 64 --lr 0.02 --pool 40000 --threads 2 --jobs "$jobs" --json "$out/bnaudit_${model}_refmodels_jobs$jobs.json" >&2
		done
	done
	rm -f "$out/refmodels.bin"
fi
{
	echo "oneDNN backward kernels: $(ls "${XDG_CACHE_HOME:-$HOME/.cache}/bnaudit/dnnl/libbnaudit_dnnl.so" 2>/dev/null || echo 'not installed (standard graphs)') (BNAUDIT_DNNL=$BNAUDIT_DNNL)"
	echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
} > "$out/fastpath.txt"
/usr/bin/python3 bench/summarize.py "$out"
