#!/usr/bin/env bash
# test.sh: the README's test command. Installs what the tests need
# (scripts/setup.sh --test-data), starts a one-node Slurm cluster for the
# work-unit tests (scripts/slurm-local.sh, as root; it is stopped again at
# the end if this script started it), then runs every Go test with the
# ONNX Runtime library required, so ORT-backed tests fail instead of
# skipping when it is missing. Not root: the Slurm tests skip, saying so.
# Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(scripts/setup.sh --test-data | tail -n 1)
export ONNXRUNTIME_SHARED_LIBRARY_PATH="$lib"
export BNAUDIT_REQUIRE_ORT=1
# the fast backward kernels, when scripts/build-dnnl.sh could build them:
# their tests then fail instead of skipping, and every training test runs
# through them
if [[ -f "${XDG_CACHE_HOME:-$HOME/.cache}/bnaudit/dnnl/libbnaudit_dnnl.so" ]]; then
	export BNAUDIT_REQUIRE_DNNL=1
else
	echo "test.sh: the oneDNN custom-op library did not build: its tests skip" >&2
fi
if [[ $(id -u) == 0 ]]; then
	if ! sinfo -h >/dev/null 2>&1 || ! sinfo -h -o %t 2>/dev/null | grep -qE 'idle|mix|alloc'; then
		scripts/slurm-local.sh start >&2
		trap 'scripts/slurm-local.sh stop >&2' EXIT
	fi
	export BNAUDIT_REQUIRE_SLURM=1
else
	echo "test.sh: not root, so no local Slurm cluster: the Slurm tests skip" >&2
fi
go vet ./...
go test -timeout 30m ./... "$@"
