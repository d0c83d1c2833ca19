#!/usr/bin/env bash
# The VM test rig (make test-vm): proves devbox's cgroup v2 limits on a real
# kernel. As root it boots a Debian cloud kernel under QEMU (TCG, no KVM)
# with an initramfs built here from the host: busybox-static, devbox
# (CGO_ENABLED=0), newuidmap/newgidmap (setuid, with their libraries), the
# overlay module, the cgroup suite (test/vm, go test -c -tags vm) and its
# workload. The guest's init (init.sh) mounts pure cgroup v2, delegates a
# cgroup to an unprivileged user and runs the suite as that user; this script
# parses the serial console and fails unless every test passed.
#
# Output: the suite's "--- PASS/FAIL" lines, then timings and
# "N passed, N failed". Exit 0 only if all passed.
#
# Environment (optional):
#   DEVBOX_VM_CACHE    kernel cache       (/var/cache/devbox-test/vm)
#   DEVBOX_VM_KERNEL   kernel package     (what linux-image-cloud-amd64 depends on)
#   DEVBOX_VM_TIMEOUT  seconds for QEMU   (480)
#   DEVBOX_VM_RUN      -test.run pattern for the suite
#   DEVBOX_VM_KEEP     1: keep the work directory
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin:${PATH:-}"
export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE=${DEVBOX_VM_CACHE:-/var/cache/devbox-test/vm}
TIMEOUT=${DEVBOX_VM_TIMEOUT:-480}
GO=${GO:-go}
t0=$(date +%s.%N)

say() { printf '[vm-rig] %s\n' "$*"; }
die() {
	printf '[vm-rig] ERROR: %s\n' "$*" >&2
	exit 1
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "run as root (it downloads a kernel package, and builds an initramfs with setuid root newuidmap)"

# --- host tools -------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg-query -W -f='${db:Status-Abbrev}' busybox-static 2>/dev/null | grep -q '^ii' || need+=(busybox-static)
command -v newuidmap >/dev/null || need+=(uidmap)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; } ||
		die "apt-get install ${need[*]} failed"
fi
BUSYBOX=$(command -v busybox)

# --- kernel ----------------------------------------------------------------
mkdir -p "$CACHE"
pkg=${DEVBOX_VM_KERNEL:-}
if [ -z "$pkg" ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }') || true
fi
if [ -z "$pkg" ]; then
	# No package lists: use the newest cached kernel, if any.
	pkg=$(ls -1 "$CACHE" 2>/dev/null | grep '^linux-image-' | sort -V | tail -n 1) || true
fi
[ -n "$pkg" ] || { apt-get update >/dev/null 2>&1 || true; pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ { print $2; exit }'); }
[ -n "$pkg" ] || die "cannot resolve the kernel package (hint: apt-get update, or set DEVBOX_VM_KERNEL=linux-image-<version>-cloud-amd64)"
KDIR="$CACHE/$pkg"
if [ ! -f "$KDIR/vmlinuz" ] || [ ! -f "$KDIR/overlay.ko" ]; then
	say "fetching $pkg"
	dl=$(mktemp -d)
	(cd "$dl" && apt-get download "$pkg" >/dev/null 2>&1) ||
		{ apt-get update >/dev/null 2>&1 && (cd "$dl" && apt-get download "$pkg" >/dev/null); } ||
		die "apt-get download $pkg failed"
	dpkg-deb -x "$dl"/*.deb "$dl/x"
	rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
	cp "$dl"/x/boot/vmlinuz-* "$KDIR.tmp/vmlinuz"
	cp "$dl"/x/boot/config-* "$KDIR.tmp/config"
	ovl=$(find "$dl/x/lib/modules" -name 'overlay.ko*' | head -n 1)
	[ -n "$ovl" ] || die "$pkg has no overlay module"
	case "$ovl" in
	*.ko) cp "$ovl" "$KDIR.tmp/overlay.ko" ;;
	*.ko.xz) xz -dc "$ovl" >"$KDIR.tmp/overlay.ko" ;;
	*.ko.zst) zstd -qdc "$ovl" >"$KDIR.tmp/overlay.ko" ;;
	*) die "unknown module compression: $ovl" ;;
	esac
	rm -rf "$dl" "$KDIR" && mv "$KDIR.tmp" "$KDIR"
fi
# What the suite needs of the kernel: cgroup v2 controllers built in, user
# namespaces, clone3 into a cgroup (5.7+). overlay is a module (above).
for opt in CONFIG_MEMCG CONFIG_CGROUP_PIDS CONFIG_CGROUP_SCHED CONFIG_CFS_BANDWIDTH CONFIG_BLK_CGROUP CONFIG_USER_NS CONFIG_DEVTMPFS; do
	grep -q "^$opt=y" "$KDIR/config" || die "$pkg: $opt is not built in"
done
say "kernel $pkg ($(since "$t0")s)"

# --- binaries ---------------------------------------------------------------
WORK=$(mktemp -d /tmp/devbox-vm.XXXXXX)
[ -n "${DEVBOX_VM_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
IR="$WORK/initramfs"
mkdir -p "$IR"/{bin,usr/bin,etc,proc,sys,dev,tmp,run,root,home/dev,lib/modules}
cd "$REPO"
CGO_ENABLED=0 "$GO" build -trimpath -o "$IR/usr/bin/devbox" ./cmd/devbox
CGO_ENABLED=0 "$GO" test -c -tags vm -o "$IR/vm.test" ./test/vm
CGO_ENABLED=0 "$GO" build -trimpath -o "$IR/workload" ./test/vm/workload
say "built devbox, the suite and the workload ($(since "$t0")s)"

cp "$BUSYBOX" "$IR/bin/busybox"
case "$(ldd "$IR/bin/busybox" 2>&1 || true)" in
*"not a dynamic"*) ;;
*) die "$BUSYBOX is not static (hint: apt-get install busybox-static)" ;;
esac
for tool in newuidmap newgidmap; do
	src=$(command -v "$tool")
	install -m 4755 -o root -g root "$src" "$IR/usr/bin/$tool"
	# Their shared libraries, at the same paths (the loader included).
	ldd "$src" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | while read -r lib; do
		mkdir -p "$IR$(dirname "$lib")"
		cp -L "$lib" "$IR$lib"
	done
done
cp "$KDIR/overlay.ko" "$IR/lib/modules/"
install -m 0755 "$REPO/test/vm/init.sh" "$IR/init"
[ -z "${DEVBOX_VM_RUN:-}" ] || printf -- '-test.run %s\n' "$DEVBOX_VM_RUN" >"$IR/testflags"

cat >"$IR/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
dev:x:1000:1000:dev:/home/dev:/bin/sh
EOF
cat >"$IR/etc/group" <<'EOF'
root:x:0:
dev:x:1000:
EOF
echo 'dev:100000:65536' >"$IR/etc/subuid"
echo 'dev:100000:65536' >"$IR/etc/subgid"
echo 'vm' >"$IR/etc/hostname"
: >"$IR/etc/resolv.conf"
chown 1000:1000 "$IR/home/dev"
chmod 0700 "$IR/home/dev"
chmod 1777 "$IR/tmp"

(cd "$IR" && find . | sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -1 >"$WORK/initrd.gz"
say "initramfs $(du -h "$WORK/initrd.gz" | cut -f1) ($(since "$t0")s)"

# --- boot -------------------------------------------------------------------
LOG="$WORK/console.log"
tb=$(date +%s.%N)
set +e
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 1024 -smp 2 \
	-nodefaults -no-reboot -display none -monitor none -serial "file:$LOG" -nic none \
	-kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd.gz" \
	-append "console=ttyS0 loglevel=1 panic=-1 rdinit=/init" </dev/null >"$WORK/qemu.out" 2>&1
qrc=$?
set -e
vm_time=$(since "$tb")
tr -d '\r' <"$LOG" >"$LOG.txt"

# --- verdict ----------------------------------------------------------------
grep -E -- '^(=== RUN|--- |    |VMRIG|ok |PASS$|FAIL)' "$LOG.txt" | grep -v '^=== RUN' || true
boot=$(sed -n 's/^VMRIG boot \([0-9.]*\)s.*/\1/p' "$LOG.txt")
done_at=$(sed -n 's/^VMRIG done \([0-9.]*\)s.*/\1/p' "$LOG.txt")
rc=$(sed -n 's/^VMRIG exit \([0-9]*\)$/\1/p' "$LOG.txt")
pass=$(grep -c -- '^--- PASS' "$LOG.txt" || true)
fail=$(grep -c -- '^--- FAIL' "$LOG.txt" || true)
say "qemu exit $qrc; guest kernel to init ${boot:-?}s, suite done at ${done_at:-?}s guest time; VM wall time ${vm_time}s; rig total $(since "$t0")s"
if [ "$qrc" = 124 ]; then
	say "QEMU timed out after ${TIMEOUT}s; last console lines:"
	tail -n 40 "$LOG.txt" | sed 's/^/  | /'
fi
if [ "${rc:-x}" != 0 ] || [ "$fail" -gt 0 ] || [ "$pass" -eq 0 ]; then
	[ "$qrc" = 124 ] || { say "console tail:"; tail -n 60 "$LOG.txt" | sed 's/^/  | /'; }
	fail=$((fail > 0 ? fail : 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
