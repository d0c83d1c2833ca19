#!/usr/bin/env bash
# The test command (make test). As root it provisions the machine with
# test/provision.sh, builds devbox and the test binaries, and runs every test
# as the unprivileged test user (namespaces need a real non-root user with
# subuid ranges). As a normal user it runs the tests in place; tests that
# need what is missing print SKIP with the reason. With DEVBOX_TEST_NOSKIP=1
# (CI) a skip is a failure.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
GO="${GO:-go}"
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go

if [ "$(id -u)" != 0 ]; then
	echo "== running as $(id -un): unit and integration tests in place"
	make -s build GO="$GO"
	export DEVBOX_BIN="$REPO/bin/devbox"
	"$GO" test -race -count=1 ./...
	"$GO" test -count=1 -tags integration ./test/integration/...
	exit 0
fi

echo "== provisioning (root)"
bash "$REPO/test/provision.sh"
# shellcheck disable=SC1091
. /var/lib/devbox-test/env
TUSER="${DEVBOX_TEST_USER:-devboxtest}"

echo "== lint"
bad="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || true
if [ -n "$bad" ]; then echo "gofmt needed: $bad"; exit 1; fi
"$GO" vet ./...
"$GO" vet -tags integration ./...

echo "== release: goreleaser check and a snapshot build of every artifact"
bash "$REPO/test/release-check.sh"

WORK="$(mktemp -d /tmp/devbox-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
chmod 0755 "$WORK"
echo "== building devbox and test binaries into $WORK"
make -s build GO="$GO" BIN="$WORK/devbox" # with the embedded box init
# The escape suite's attacker, a static program put into images (test/probe).
CGO_ENABLED=0 "$GO" build -o "$WORK/probe" ./test/probe
# The source tree is copied where the test user can read it (tests read
# their testdata relative to the package directory).
mkdir -p "$WORK/src"
tar -C "$REPO" --exclude=./.git --exclude=./bin -cf - . | tar -C "$WORK/src" -xf -
pkgs=$("$GO" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
ipkgs=$("$GO" list -tags integration -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./test/integration/...)
mod=$("$GO" list -m)
build_test() { # pkg tags
	local rel="${1#"$mod"}"; rel="${rel#/}"; local name; name="$(echo "${rel:-root}" | tr / _)$3"
	"$GO" test -c -race $2 -o "$WORK/bin/$name.test" "$1" >/dev/null
	echo "$name $rel"
}
mkdir -p "$WORK/bin"
list="$WORK/list"; : >"$list"
for p in $pkgs; do build_test "$p" "" "" >>"$list"; done
for p in $ipkgs; do build_test "$p" "-tags=integration" ".integration" >>"$list"; done
chmod -R a+rX "$WORK"

pass=0; fail=0; skip=0; failed_pkgs=""
while read -r name rel; do
	[ -f "$WORK/bin/$name.test" ] || continue
	echo "== $name"
	log="$WORK/$name.log"
	set +e
	( cd "$WORK/src/$rel" && runuser -u "$TUSER" -- env -i \
		HOME="$(getent passwd "$TUSER" | cut -d: -f6)" USER="$TUSER" LOGNAME="$TUSER" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		XDG_RUNTIME_DIR="/run/user/$(id -u "$TUSER")" TMPDIR=/tmp \
		DEVBOX_BIN="$WORK/devbox" DEVBOX_TEST_PROBE="$WORK/probe" DEVBOX_TEST_NOSKIP="${DEVBOX_TEST_NOSKIP:-}" \
		DEVBOX_TEST_REGISTRY="${DEVBOX_TEST_REGISTRY:-}" DEVBOX_TEST_EXPECT_DIR="${DEVBOX_TEST_EXPECT_DIR:-/var/lib/devbox-test/expect}" \
		"$WORK/bin/$name.test" -test.v -test.count=1 -test.timeout=20m ) >"$log" 2>&1
	rc=$?
	set -e
	p=$(grep -c -- '--- PASS' "$log" || true); f=$(grep -c -- '--- FAIL' "$log" || true); s=$(grep -c -- '--- SKIP' "$log" || true)
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	grep -E -- '--- (FAIL|SKIP)|^(ok|FAIL|PASS)$|panic:' "$log" | sed 's/^/  /' || true
	if [ $rc -ne 0 ]; then
		failed_pkgs="$failed_pkgs $name"
		[ "$f" -gt 0 ] || fail=$((fail + 1))
		tail -n 60 "$log" | sed 's/^/  | /'
	fi
done <"$list"

# The cgroup v2 limits are proven in a QEMU guest on pure cgroup v2 (this
# host is not), as root: see docs/cgroups.md.
echo "== vm rig (test/vm/rig.sh)"
log="$WORK/vm-rig.log"
set +e
bash "$REPO/test/vm/rig.sh" >"$log" 2>&1
rc=$?
set -e
p=$(grep -c -- '^--- PASS' "$log" || true); f=$(grep -c -- '^--- FAIL' "$log" || true)
pass=$((pass + p)); fail=$((fail + f))
grep -E -- '^--- FAIL|^\[vm-rig\]' "$log" | sed 's/^/  /' || true
if [ $rc -ne 0 ]; then
	failed_pkgs="$failed_pkgs vm-rig"
	[ "$f" -gt 0 ] || fail=$((fail + 1))
	tail -n 60 "$log" | sed 's/^/  | /'
fi

if [ -n "${DEVBOX_TEST_NOSKIP:-}" ] && [ "$skip" -gt 0 ]; then
	echo "CI must run everything, but $skip test(s) skipped"
	fail=$((fail + skip))
fi
[ -z "$failed_pkgs" ] || echo "failed:$failed_pkgs"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
