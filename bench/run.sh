#!/usr/bin/env bash
# make bench: side-by-side benchmarks of devbox and its anchors, run as the
# unprivileged test user on this machine. As root it provisions first (the
# same rig as make test); results go to bench/results/<date>/ and a summary
# table to stdout. Usage: bench/run.sh [pull] [start] [box] [net] [harden] [gc] [provision] [export] [desktop] [snapshot] [commit] [build]   (default: all)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
GO="${GO:-go}"; command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
suites=("$@"); [ ${#suites[@]} -gt 0 ] || suites=(pull start box net harden gc provision export desktop snapshot commit build)

if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh provisions the machine and runs as the test user: run it as root (sudo make bench)" >&2
	exit 2
fi
bash "$REPO/test/provision.sh" >/dev/null
# Host fixes the anchors need on this VM (see shared anchor-figures): crun
# refuses hybrid cgroups while a controller sits in the v2 hierarchy, so
# bind such controllers to a v1 hierarchy as systemd does in hybrid mode.
if [ -z "${NO_CGROUP_FIX:-}" ] && [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
	for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
		mkdir -p "/sys/fs/cgroup/$c" 2>/dev/null || { mount -o remount,rw /sys/fs/cgroup && mkdir -p "/sys/fs/cgroup/$c"; }
		mountpoint -q "/sys/fs/cgroup/$c" || mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
	done
fi
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
command -v distrobox >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq distrobox >/dev/null
# An image with distrobox's dependencies preinstalled (distrobox's own init
# cannot install them on plain Debian trixie: its package list is stale).
DEVTOOLS_TAR=/var/cache/devbox-test/devtools-trixie.tar
if [ ! -s "$DEVTOOLS_TAR" ]; then
	d=$(mktemp -d /var/tmp/devtools.XXXXXX)
	debootstrap --variant=minbase --include=sudo,pinentry-curses,wget,curl,less,bc,time,lsof trixie "$d" http://deb.debian.org/debian >/var/lib/devbox-test/logs/devtools-debootstrap.log 2>&1
	rm -rf "$d"/var/cache/apt/archives/*.deb "$d"/var/lib/apt/lists/*
	tar --numeric-owner --xattrs -C "$d" -cf "$DEVTOOLS_TAR.tmp" . && mv "$DEVTOOLS_TAR.tmp" "$DEVTOOLS_TAR"
	rm -rf "$d"
fi
# shellcheck disable=SC1091
. /var/lib/devbox-test/env
command -v /usr/bin/time >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
TUSER="$DEVBOX_TEST_USER"
THOME="$(getent passwd "$TUSER" | cut -d: -f6)"
OUT="$REPO/bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
WORK=/tmp/devbox-bench
rm -rf "$WORK"; mkdir -p "$WORK"
make -s build GO="$GO" BIN="$WORK/devbox"
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/floor" ./bench/floor
# suite-net: a static TCP latency probe, also run inside boxes
CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$WORK/tcplat/tcplat" ./bench/tcplat
cp bench/*.sh "$WORK/"
chmod -R a+rX "$WORK"; chown "$TUSER" "$WORK" "$OUT"
# podman as a desktop user has it: overlay storage, cgroupfs (no systemd here).
install -d -o "$TUSER" -g "$TUSER" "$THOME/.config/containers"
printf '[storage]\ndriver = "overlay"\n' >"$THOME/.config/containers/storage.conf"
printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$THOME/.config/containers/containers.conf"
printf '[registries]\ninsecure = ["%s"]\n[registries.mirrors]\n"docker.io" = ["%s"]\n' "$DEVBOX_TEST_REGISTRY" "$DEVBOX_TEST_REGISTRY" >"$WORK/devbox-config.toml"
# No first-start provisioning in the suites that time boxes (it would reach
# the image's repositories); suite-provision turns it on with the local one.
printf '[provision]\nauto = false\n' >>"$WORK/devbox-config.toml"
chown -R "$TUSER:$TUSER" "$THOME/.config/containers"
for s in "${suites[@]}"; do
	echo "== bench: $s"
	runuser -u "$TUSER" -- env -i HOME="$THOME" USER="$TUSER" PATH=/usr/sbin:/usr/bin:/sbin:/bin DEVTOOLS_TAR="$DEVTOOLS_TAR" \
		XDG_RUNTIME_DIR="/run/user/$(id -u "$TUSER")" REGISTRY="$DEVBOX_TEST_REGISTRY" WORK="$WORK" OUT="$OUT" BASELINE="${BASELINE:-}" \
		DEVBOX_CONFIG="$WORK/devbox-config.toml" bash "$WORK/suite-$s.sh"
done
echo "results in $OUT"
