#!/usr/bin/env bash
# build-dnnl.sh: build bnaudit's oneDNN custom-op library (the fast backward
# kernels of the CPU training step, trainer/dnnl/bnaudit_dnnl.c) into
# ${XDG_CACHE_HOME:-~/.cache}/bnaudit/dnnl/libbnaudit_dnnl.so, where the
# trainer looks for it. Installs Debian's libdnnl-dev (oneDNN 2.x) when it
# is missing. Does nothing when the library there was built from the same
# source. Optional: when it cannot build, bnaudit trains with standard ONNX
# Runtime graphs and says so once; this script then warns and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
src=trainer/dnnl/bnaudit_dnnl.c
out="${XDG_CACHE_HOME:-$HOME/.cache}/bnaudit/dnnl"
lib="$out/libbnaudit_dnnl.so"
sum=$(sha256sum "$src" | cut -c1-64)
if [[ -f "$lib" && -f "$out/source.sha256" && "$(cat "$out/source.sha256")" == "$sum" ]]; then
	exit 0
fi
warn() { echo "build-dnnl: $*; bnaudit will train with standard ONNX Runtime graphs" >&2; exit 0; }
if [[ ! -f /usr/include/oneapi/dnnl/dnnl.h ]]; then
	command -v apt-get >/dev/null 2>&1 || warn "oneDNN's headers are missing and apt-get is not available (install libdnnl-dev)"
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	echo "build-dnnl: installing libdnnl-dev with apt-get" >&2
	{ DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q libdnnl-dev >&2 ||
		{ $sudo apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q libdnnl-dev >&2; }; } ||
		warn "apt-get could not install libdnnl-dev"
fi
hdr=$(go list -m -f '{{.Dir}}' github.com/yalue/onnxruntime_go 2>/dev/null) || warn "go cannot find the onnxruntime_go module (ONNX Runtime's C header)"
mkdir -p "$out"
tmp=$(mktemp "$out/.build.XXXXXX")
if ! gcc -O2 -shared -fPIC -fopenmp -o "$tmp" "$src" -ldnnl -I"$hdr" >&2; then
	rm -f "$tmp"
	warn "gcc could not build $src"
fi
chmod 755 "$tmp"
mv -f "$tmp" "$lib"
echo "$sum" > "$out/source.sha256"
echo "build-dnnl: built $lib" >&2
