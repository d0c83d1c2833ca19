#!/bin/sh
# Builds the box init (cmd/devbox-init) for each GOARCH given, next to this
# script, with its SHA-256, for devbox builds with -tags devbox_embedinit
# (Makefile, goreleaser.yaml). Usage: internal/initbin/build.sh amd64 [arm64]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
for arch in "$@"; do
	out="$here/devbox-init-$arch"
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" ${GO:-go} build -trimpath -ldflags '-s -w' -o "$out.tmp" ./cmd/devbox-init
	mv -f "$out.tmp" "$out"
	sha256sum "$out" | cut -d' ' -f1 >"$out.sha256"
done
