#!/bin/sh
# Regenerates the committed shell completion scripts from the command tree
# (cobra's `devbox completion SHELL`). completions_test.go fails when a
# committed script differs from what the tree generates: run this script and
# commit the result. goreleaser runs it too, before packaging.
set -eu
cd "$(dirname "$0")/.."
GO="${GO:-go}"
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 "$GO" build -o "$tmp/devbox" ./cmd/devbox
# A fixed, empty environment: the scripts do not depend on the caller's.
run() { env -i HOME="$tmp" PATH=/usr/bin:/bin "$tmp/devbox" completion "$1"; }
run bash >completions/devbox.bash
run zsh >completions/_devbox
run fish >completions/devbox.fish
run powershell >completions/devbox.ps1
rm -f completions/devbox.zsh completions/devbox.powershell
