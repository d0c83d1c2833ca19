#!/usr/bin/env bash
# Checks the release configuration and builds a snapshot release exactly as a
# tagged release would (both architectures, archives, .deb and .rpm,
# checksums), in a temporary copy of the working tree, then looks inside the
# results. test/run.sh runs it as root before the Go tests; it also works as
# a normal user.
#
# goreleaser is pinned (GORELEASER_VERSION) and installed with `go install`
# into a cached GOBIN the first time (about 3 minutes; later runs reuse it).
# v2.16.0 is the newest release that builds here: v2.18.x needs Go 1.27 and
# v2.17.0 needs a module the Go module proxy refuses (go.digitalxero.dev).
#
# Environment: DEVBOX_TOOLS_DIR (cache, default /var/cache/devbox-test/tools
# as root, ~/.cache/devbox-tools otherwise), DEVBOX_RELEASE_KEEP=1 keeps the
# temporary copy and prints its path.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
GO="${GO:-go}"
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
GORELEASER_VERSION=v2.16.0

if [ "$(id -u)" = 0 ]; then
	TOOLS="${DEVBOX_TOOLS_DIR:-/var/cache/devbox-test/tools}"
else
	TOOLS="${DEVBOX_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devbox-tools}"
fi
GR="$TOOLS/bin/goreleaser"
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

t0=$(now)
if ! "$GR" --version 2>/dev/null | grep -q "GitVersion: *$GORELEASER_VERSION\$"; then
	echo "installing goreleaser $GORELEASER_VERSION into $TOOLS/bin"
	mkdir -p "$TOOLS/bin"
	GOTOOLCHAIN=local GOBIN="$TOOLS/bin" "$GO" install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
	echo "installed in $(took "$t0")"
fi
export PATH="$(dirname "$("$GO" env GOROOT)/bin/go"):$PATH"

(cd "$REPO" && "$GR" check)

WORK="$(mktemp -d /tmp/devbox-release.XXXXXX)"
if [ -n "${DEVBOX_RELEASE_KEEP:-}" ]; then
	echo "keeping $WORK"
else
	trap 'rm -rf "$WORK"' EXIT
fi
# goreleaser reads the version and commit from git: release a throwaway
# repository holding the working tree as it is (uncommitted changes too).
tar -C "$REPO" --exclude=./.git --exclude=./bin --exclude=./dist --exclude=./man -cf - . | tar -C "$WORK" -xf -
(
	cd "$WORK"
	git init -q
	# goreleaser reads the commit only from a repository with a remote.
	git remote add origin https://github.com/devbox-dev/devbox.git
	git add -A
	git -c user.name=devbox-release-check -c user.email=release-check@localhost commit -q -m snapshot
)

t1=$(now)
(cd "$WORK" && "$GR" release --snapshot --clean --skip=publish >"$WORK/goreleaser.log" 2>&1) || {
	tail -n 40 "$WORK/goreleaser.log" >&2
	echo "goreleaser release --snapshot failed" >&2
	exit 1
}
echo "snapshot release built in $(took "$t1")"

# --- what the release contains ----------------------------------------------
D="$WORK/dist"
fail() { echo "release check: $*" >&2; exit 1; }
ls "$D"/*.tar.gz "$D"/*.deb "$D"/*.rpm "$D"/checksums.txt >/dev/null
for arch in amd64 arm64; do
	tgz=$(ls "$D"/devbox_*_linux_"$arch".tar.gz) || fail "no $arch archive"
	list=$(tar -tzf "$tgz")
	for f in devbox README.md completions/devbox.bash completions/_devbox completions/devbox.fish completions/devbox.ps1 \
		man/devbox.1.gz man/devbox-doctor.1.gz man/devbox-exit-codes.1.gz docs/exit-codes.md docs/json.md; do
		grep -qx "$f" <<<"$list" || fail "$tgz lacks $f"
	done
done
(cd "$D" && sha256sum --quiet -c checksums.txt) || fail "checksums do not match"

bin="$D/devbox_linux_amd64_v1/devbox"
[ -x "$bin" ] || bin=$(ls "$D"/devbox_linux_amd64*/devbox)
# (no "| grep -q" under pipefail: grep's early exit would fail the pipe)
! ldd "$bin" >/dev/null 2>&1 || fail "$bin is dynamically linked"
v=$("$bin" version)
grep -Eqx 'version: *0\.0\.1-next' <<<"$v" || fail "the version is not stamped: $v"
grep -Eqx 'commit: *[0-9a-f]{40}' <<<"$v" || fail "the commit is not stamped: $v"
grep -Eqx 'init: *embedded devbox-init sha256:[0-9a-f]{12}, embedded devbox-net sha256:[0-9a-f]{12}' <<<"$v" || fail "the box init and network helper are not embedded: $v"
grep -Eqx 'front: */.*/devbox \+ embedded devbox-cli sha256:[0-9a-f]{12}' <<<"$v" || fail "devbox is not a front with the embedded CLI: $v"
size=$(stat -c %s "$bin")
front=$("$GO" version -m "$bin" 2>/dev/null | grep -c '^[[:space:]]*dep' || true)
[ "$front" -lt 20 ] || fail "the front links $front modules: it must stay small (docs/architecture.md, Front)"

deb=$(ls "$D"/devbox_*_amd64.deb)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/devbox ./usr/share/bash-completion/completions/devbox ./usr/share/zsh/vendor-completions/_devbox \
	./usr/share/fish/vendor_completions.d/devbox.fish ./usr/share/man/man1/devbox.1.gz ./usr/share/man/man1/devbox-doctor.1.gz \
	./usr/libexec/devbox/devbox-cli ./usr/libexec/devbox/devbox-cli.sha256; do
	grep -qx "$f" <<<"$contents" || fail "$deb lacks $f"
done
rec=$(dpkg-deb -f "$deb" Recommends)
[[ "$rec" == *uidmap* && "$rec" == *passt* ]] || fail "$deb recommends \"$rec\", want uidmap and passt"
[ "$(ls "$D"/*.rpm | wc -l)" = 2 ] || fail "expected two .rpm packages"
echo "release check passed in $(took "$t0"): $(cd "$D" && ls *.tar.gz *.deb *.rpm | tr '\n' ' ')"
