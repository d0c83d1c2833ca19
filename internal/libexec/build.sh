#!/bin/sh
# Builds the programs devbox embeds, next to this script, each with its
# SHA-256, for each GOARCH given: the box init and the network helper
# (cmd/devbox-init, cmd/devbox-net), then the full CLI (cmd/devbox-cli, built
# with -tags devbox_embedinit: it embeds those two), which devbox's front
# (cmd/devbox, -tags devbox_embedcli) embeds (Makefile, goreleaser.yaml).
# Usage: internal/libexec/build.sh amd64 [arm64]
# LIBEXEC_LDFLAGS replaces the default -s -w (LIBEXEC_LDFLAGS= keeps symbols,
# for profiling); DEVBOX_CLI_LDFLAGS, when set, is the CLI's (the version
# stamp: -X github.com/devbox-dev/devbox/cmd/root.Version=…).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
for arch in "$@"; do
	for prog in devbox-init devbox-net devbox-cli; do
		out="$here/$prog-$arch"
		tags= ldflags="${LIBEXEC_LDFLAGS--s -w}"
		if [ "$prog" = devbox-cli ]; then
			tags=devbox_embedinit ldflags="${DEVBOX_CLI_LDFLAGS-$ldflags}"
		fi
		CGO_ENABLED=0 GOOS=linux GOARCH="$arch" ${GO:-go} build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out.tmp" "./cmd/$prog"
		mv -f "$out.tmp" "$out"
		sha256sum "$out" | cut -d' ' -f1 >"$out.sha256"
	done
done
