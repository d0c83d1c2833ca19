#!/bin/sh
# Regenerates the committed shell completion scripts from the binary's own
# command tree (cobra). CI can diff the result against the committed files.
set -eu
cd "$(dirname "$0")/.."
go build -o /tmp/devbox-completions ./cmd/devbox
for sh in bash zsh fish powershell; do
	/tmp/devbox-completions completion "$sh" >"completions/devbox.$sh"
done
rm -f /tmp/devbox-completions
