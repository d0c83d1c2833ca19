#!/usr/bin/env bash
# The VM test rig (make test-vm): proves devbox's cgroup v2 limits on a real
# kernel. As root it boots a Debian cloud kernel under QEMU (TCG, no KVM)
# twice:
#
#  1. with an initramfs built here from the host: busybox-static, devbox
#     (CGO_ENABLED=0), newuidmap/newgidmap (setuid, with their libraries), the
#     overlay module, the cgroup suite (test/vm, go test -c -tags vm) and its
#     workload. The guest's init (init.sh) mounts pure cgroup v2, delegates a
#     cgroup to an unprivileged user the way systemd does and runs the suite
#     as that user (the delegated-subtree path);
#  2. on a Debian trixie disk with systemd as PID 1 and a lingering user
#     (debootstrapped once, cached as an ext4 image, booted with -snapshot):
#     the TestSystemd tests prove the transient-scope path through the user
#     bus (init-systemd.sh, devbox-suite.service, suite-systemd.sh).
#
# It parses the serial consoles and fails unless every test passed.
#
# Output: the suite's "--- PASS/FAIL" lines, then timings and
# "N passed, N failed". Exit 0 only if all passed.
#
# Environment (optional):
#   DEVBOX_VM_CACHE    kernel cache       (/var/cache/devbox-test/vm)
#   DEVBOX_VM_KERNEL   kernel package     (what linux-image-cloud-amd64 depends on)
#   DEVBOX_VM_TIMEOUT  seconds for QEMU   (1200)
#   DEVBOX_VM_RUN      -test.run pattern for the suite (both guests)
#   DEVBOX_VM_SYSTEMD  0: skip the systemd guest
#   DEVBOX_VM_INITRAMFS 0: skip the initramfs guest
#   DEVBOX_VM_ITEST    -test.run pattern for the integration subset (systemd guest)
#   DEVBOX_VM_BENCH    1: also run bench/suite-desktop.sh in the systemd guest
#                      (make bench-vm; RUNS, PASSES, TRACERUNS; summary in
#                      DEVBOX_VM_BENCH_OUT, default bench/results/vm-DATE.md)
#   DEVBOX_TEST_MIRROR Debian mirror for the systemd guest (http://deb.debian.org/debian)
#   DEVBOX_VM_KEEP     1: keep the work directory
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin:${PATH:-}"
export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE=${DEVBOX_VM_CACHE:-/var/cache/devbox-test/vm}
TIMEOUT=${DEVBOX_VM_TIMEOUT:-1200}
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
if [ ! -f "$KDIR/vmlinuz" ] || [ ! -f "$KDIR/overlay.ko" ] || ! grep -qs 'virtio_blk' "$KDIR/mods/order" || [ ! -f "$KDIR/mods/tun-checked" ]; then
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
	# The systemd guest's root disk is virtio-blk: its modules, with their
	# dependencies first (read from each module's "depends=" field).
	mkdir -p "$KDIR.tmp/mods"
	order=""
	addmod() {
		local f d
		f=$(find "$dl/x/lib/modules" -name "$1.ko" | head -n 1)
		[ -n "$f" ] || die "$pkg has no module $1"
		for d in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr , ' '); do
			addmod "$d"
		done
		case " $order " in *" $1.ko "*) ;; *)
			order="$order $1.ko"
			cp "$f" "$KDIR.tmp/mods/"
			;;
		esac
	}
	addmod virtio_pci
	addmod virtio_blk
	# The default network's tap device (devbox-net) in the systemd guest.
	grep -q '^CONFIG_TUN=y' "$KDIR.tmp/config" || addmod tun
	cp "$KDIR.tmp/overlay.ko" "$KDIR.tmp/mods/"
	echo "$order overlay.ko" >"$KDIR.tmp/mods/order"
	: >"$KDIR.tmp/mods/tun-checked"
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
make -s build GO="$GO" BIN="$IR/usr/bin/devbox"
CGO_ENABLED=0 "$GO" test -c -tags vm -o "$IR/vm.test" ./test/vm
CGO_ENABLED=0 "$GO" build -trimpath -o "$IR/workload" ./test/vm/workload
# The systemd guest also runs a subset of the integration tests (run, shell,
# exec) against images test/mkimages pushes into a registry in the guest.
CGO_ENABLED=0 "$GO" test -c -tags integration -o "$WORK/integration.test" ./test/integration
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/mkimages" ./test/mkimages
# test/probe, which some of them run in a box (TestWarmStartIsColdStart).
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/probe" ./test/probe
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

# --- boot ---------------------------------------------------------------------
# boot NAME INITRD [QEMU ARGS...]: boots the guest, prints its test lines and
# adds to the totals.
PASS=0
FAIL=0
TIMES=""
boot() {
	local name=$1 initrd=$2 log="$WORK/$1-console.log" tb qrc vm_time bootat doneat rc pass fail
	shift 2
	tb=$(date +%s.%N)
	set +e
	timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 1024 -smp 2 \
		-nodefaults -no-reboot -display none -monitor none -serial "file:$log" -nic none \
		-kernel "$KDIR/vmlinuz" -initrd "$initrd" "$@" </dev/null >"$WORK/$name-qemu.out" 2>&1
	qrc=$?
	set -e
	vm_time=$(since "$tb")
	tr -d '\r' <"$log" >"$log.txt"
	grep -E -- '^(--- |    |VMRIG|ok |PASS$|FAIL)' "$log.txt" || true
	bootat=$(sed -n 's/^VMRIG boot \([0-9.]*\)s.*/\1/p' "$log.txt")
	doneat=$(sed -n 's/^VMRIG done \([0-9.]*\)s.*/\1/p' "$log.txt")
	rc=$(sed -n 's/^VMRIG exit \([0-9]*\)$/\1/p' "$log.txt")
	pass=$(grep -c -- '^--- PASS' "$log.txt" || true)
	fail=$(grep -c -- '^--- FAIL' "$log.txt" || true)
	say "$name guest: qemu exit $qrc; kernel to init ${bootat:-?}s, suite done at ${doneat:-?}s guest time; VM wall time ${vm_time}s"
	TIMES="$TIMES $name=${vm_time}s"
	if [ "$qrc" = 124 ]; then
		say "$name guest: QEMU timed out after ${TIMEOUT}s"
	fi
	if [ "${rc:-x}" != 0 ] || [ "$fail" -gt 0 ] || [ "$pass" -eq 0 ]; then
		say "$name guest console tail:"
		tail -n 60 "$log.txt" | sed 's/^/  | /'
		fail=$((fail > 0 ? fail : 1))
	fi
	PASS=$((PASS + pass))
	FAIL=$((FAIL + fail))
}

[ "${DEVBOX_VM_INITRAMFS:-1}" = 0 ] || boot initramfs "$WORK/initrd.gz" -append "console=ttyS0 loglevel=1 panic=-1 rdinit=/init"

# --- the systemd guest ---------------------------------------------------------
if [ "${DEVBOX_VM_SYSTEMD:-1}" != 0 ]; then
	IMG="$CACHE/trixie-systemd-v2.img"
	if [ ! -f "$IMG" ]; then
		say "building the systemd guest's disk (debootstrap trixie, once; cached as $IMG)"
		command -v debootstrap >/dev/null && command -v mkfs.ext4 >/dev/null ||
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap e2fsprogs >/dev/null ||
			die "cannot install debootstrap"
		R="$WORK/sdroot"
		debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,uidmap,bubblewrap,crun,hyperfine,jq,procps,time \
			trixie "$R" "${DEVBOX_TEST_MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 ||
			{ tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
		# The unprivileged user, lingering so that logind starts its
		# user manager (and user bus) at boot, with subordinate ids.
		echo 'dev:x:1000:1000:dev:/home/dev:/bin/sh' >>"$R/etc/passwd"
		echo 'dev:x:1000:' >>"$R/etc/group"
		echo 'dev:!:20000::::::' >>"$R/etc/shadow"
		install -d -m 0700 -o 1000 -g 1000 "$R/home/dev"
		echo 'dev:100000:65536' >"$R/etc/subuid"
		echo 'dev:100000:65536' >"$R/etc/subgid"
		mkdir -p "$R/var/lib/systemd/linger" && touch "$R/var/lib/systemd/linger/dev"
		# Nothing on the serial console but the suite; no timers.
		for u in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
			dpkg-db-backup.timer e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer; do
			ln -sf /dev/null "$R/etc/systemd/system/$u"
		done
		echo vm >"$R/etc/hostname"
		: >"$R/etc/machine-id"
		rm -rf "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/archives/*.deb
		mkfs.ext4 -q -F -L vmroot -d "$R" "$IMG.tmp" 1G >/dev/null
		mv "$IMG.tmp" "$IMG"
		rm -rf "$R"
		say "systemd guest disk ready ($(since "$t0")s)"
	fi
	S="$WORK/stage1"
	mkdir -p "$S"/{bin,proc,sys,dev,lib/modules,payload}
	cp "$BUSYBOX" "$S/bin/busybox"
	cp "$KDIR"/mods/* "$S/lib/modules/"
	install -m 0755 "$REPO/test/vm/init-systemd.sh" "$S/init"
	cp "$IR/usr/bin/devbox" "$IR/vm.test" "$IR/workload" "$BUSYBOX" "$WORK/integration.test" "$WORK/mkimages" "$WORK/probe" "$S/payload/"
	if [ -n "${DEVBOX_VM_BENCH:-}" ]; then
		cp "$REPO/bench/lib.sh" "$REPO/bench/suite-desktop.sh" "$S/payload/"
		printf 'RUNS=%s PASSES=%s TRACERUNS=%s\n' "${RUNS:-30}" "${PASSES:-6}" "${TRACERUNS:-15}" >"$S/payload/bench"
	fi
	install -m 0755 "$REPO/test/vm/suite-systemd.sh" "$S/payload/"
	cp "$REPO/test/vm/devbox-suite.service" "$S/payload/"
	[ -z "${DEVBOX_VM_RUN:-}" ] || printf -- '-test.run %s\n' "$DEVBOX_VM_RUN" >"$S/payload/testflags"
	[ -z "${DEVBOX_VM_ITEST:-}" ] || printf '%s\n' "$DEVBOX_VM_ITEST" >"$S/payload/itest"
	(cd "$S" && find . | sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -1 >"$WORK/stage1.gz"
	boot systemd "$WORK/stage1.gz" -snapshot -drive "file=$IMG,format=raw,if=virtio,cache=unsafe" \
		-append "console=ttyS0 loglevel=1 panic=-1 rdinit=/init systemd.show_status=false systemd.log_level=warning"
	if [ -n "${DEVBOX_VM_BENCH:-}" ]; then
		bout=${DEVBOX_VM_BENCH_OUT:-$REPO/bench/results/vm-$(date -u +%Y%m%dT%H%M%SZ).md}
		mkdir -p "$(dirname "$bout")"
		sed -n 's/^VMBENCH //p' "$WORK/systemd-console.log.txt" >"$bout"
		say "benchmark in the systemd guest -> $bout"
		cat "$bout"
		[ -s "$bout" ] || { say "the benchmark printed nothing"; FAIL=$((FAIL + 1)); }
	fi
fi

say "VM wall times:$TIMES; rig total $(since "$t0")s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
