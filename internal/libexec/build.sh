#!/bin/sh
# Builds the helper programs devbox embeds (cmd/devbox-init, cmd/devbox-net)
# for each GOARCH given, next to this script, each with its SHA-256, for
# devbox builds with -tags devbox_embedinit (Makefile, goreleaser.yaml).
# Usage: internal/libexec/build.sh amd64 [arm64]
# LIBEXEC_LDFLAGS replaces the default -s -w (LIBEXEC_LDFLAGS= keeps symbols,
# for profiling).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
for arch in "$@"; do
	for prog in devbox-init devbox-net; do
		out="$here/$prog-$arch"
		CGO_ENABLED=0 GOOS=linux GOARCH="$arch" ${GO:-go} build -trimpath -ldflags "${LIBEXEC_LDFLAGS--s -w}" -o "$out.tmp" "./cmd/$prog"
		mv -f "$out.tmp" "$out"
		sha256sum "$out" | cut -d' ' -f1 >"$out.sha256"
	done
done
