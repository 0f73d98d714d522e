#!/usr/bin/env bash
# setup.sh: install what bnaudit's build, demo and tests need on a fresh
# Debian machine that has Go, npm and apt. Safe to run again: each step
# checks first and does nothing when its part is already there.
#   - gcc (cgo builds the ONNX Runtime binding)
#   - the ONNX Runtime 1.30.0 CPU library (scripts/install-ort.sh)
#   - the oneDNN custom-op library of the fast CPU backward kernels
#     (scripts/build-dnnl.sh: Debian's libdnnl-dev, built with gcc; optional)
#   - with --test-data: Debian's libonnx-testdata (ONNX's own test models)
#     and dataset-fashion-mnist (the full Fashion-MNIST, for the data tests)
set -euo pipefail
cd "$(dirname "$0")/.."

want_testdata=0
[[ "${1:-}" == "--test-data" ]] && want_testdata=1

missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
if (( want_testdata )) && [[ ! -d /usr/share/libonnx-testdata/data ]]; then
	missing+=(libonnx-testdata)
fi
if (( want_testdata )) && [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
	missing+=(dataset-fashion-mnist)
fi
if (( ${#missing[@]} )); then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "setup: need ${missing[*]} but apt-get is not available; install them yourself" >&2
		exit 1
	fi
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	echo "setup: installing ${missing[*]} with apt-get" >&2
	$sudo apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >&2
fi
scripts/build-dnnl.sh
scripts/install-ort.sh
