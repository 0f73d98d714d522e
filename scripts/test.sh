#!/usr/bin/env bash
# test.sh: the README's test command. Installs what the tests need
# (scripts/setup.sh --test-data), then runs every Go test with the ONNX
# Runtime library required, so ORT-backed tests fail instead of skipping
# when it is missing. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(scripts/setup.sh --test-data | tail -n 1)
export ONNXRUNTIME_SHARED_LIBRARY_PATH="$lib"
export BNAUDIT_REQUIRE_ORT=1
go vet ./...
go test -timeout 30m ./... "$@"
