#!/usr/bin/env bash
# Start-up on both host kinds (issue 15): the same script runs on this
# machine (make bench: hybrid cgroups, no systemd) and in the VM rig's
# systemd guest (make bench-vm: unified cgroup v2, a lingering user with its
# user manager and bus). It times, in alternating passes (lib.sh),
#   devbox run --net none IMG true, devbox run IMG true (default network),
#   devbox shell NAME -- true on a running box,
# against bwrap --unshare-all and rootless crun run on one rootfs (a static
# busybox, the same bytes as IMG's), and records which of devbox's fast
# paths each devbox command took (DEVBOX_TRACE marks: replay, warm holder,
# a cgroup scope per box and its D-Bus round trip).
#
# Environment: REGISTRY, WORK, OUT (as bench/run.sh sets them), DEVBOX_CONFIG;
# optional BUSYBOX (a static busybox, default /bin/busybox), IMG (default
# $REGISTRY/library/busybox:latest, which test/mkimages builds from that
# busybox), RUNS, PASSES, TRACERUNS.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-50}"
PASSES="${PASSES:-10}"
TRACERUNS="${TRACERUNS:-20}"
IMG="${IMG:-$REGISTRY/library/busybox:latest}"
BUSYBOX=$(readlink -f "${BUSYBOX:-/bin/busybox}")
D="$WORK/desktop-store"
devbox="$WORK/devbox"
export DEVBOX_CONFIG XDG_RUNTIME_DIR

kind="$(stat -fc %T /sys/fs/cgroup)"
case "$kind" in cgroup2fs) kind="unified cgroup v2" ;; tmpfs) [ -d /sys/fs/cgroup/unified ] && kind="hybrid cgroups" || kind="cgroup v1" ;; esac
if [ -d /run/systemd/system ]; then kind="$kind, systemd"; else kind="$kind, no systemd"; fi
[ -S "${XDG_RUNTIME_DIR:-/nonexistent}/bus" ] || [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && kind="$kind, user bus" || kind="$kind, no user bus"
host="$(uname -r) ($kind)"

$devbox --store "$D" pull -q "$IMG" >/dev/null
$devbox --store "$D" rm -f bench-desk >/dev/null 2>&1 || true
$devbox --store "$D" create bench-desk --image "$IMG" --grace 600 >/dev/null
$devbox --store "$D" shell bench-desk -- true

# One rootfs for bwrap and crun: the busybox of IMG, with the directories
# they mount on.
R="$WORK/desktop-bundle/rootfs"
rm -rf "$WORK/desktop-bundle"
mkdir -p "$R"/{bin,proc,dev,sys,tmp,etc}
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/true"
ln -s busybox "$R/bin/sh"
B="$WORK/desktop-bundle"
(cd "$B" && crun spec --rootless)
jq '.process.terminal = false | .process.args = ["/bin/true"]' "$B/config.json" >"$B/config.json.tmp" && mv "$B/config.json.tmp" "$B/config.json"
CRUNROOT="${XDG_RUNTIME_DIR:-$WORK}/devbox-bench-crun-desktop"
mkdir -p "$CRUNROOT"

names=("devbox run --net none" "devbox run (default network)" "devbox shell NAME -- true" "bwrap --unshare-all")
cmdl=("$devbox --store $D run --net none $IMG true" "$devbox --store $D run $IMG true" "$devbox --store $D shell bench-desk -- true"
	"bwrap --unshare-all --ro-bind $R / --proc /proc --dev /dev /bin/true")
if crun --root "$CRUNROOT" run -b "$B" devbox-bench-probe >/dev/null 2>&1; then
	names+=("crun run")
	cmdl+=("crun --root $CRUNROOT run -b $B devbox-bench-crun")
else
	echo "crun run fails on this host: $(crun --root "$CRUNROOT" run -b "$B" devbox-bench-probe 2>&1 | tail -1)" | tee "$OUT/desktop-crun-error.txt"
fi
per=$(((RUNS + PASSES - 1) / PASSES))
fwd=() rev=()
n=${#names[@]}
for ((i = 0; i < n; i++)); do fwd+=(-n "${names[$i]}" "${cmdl[$i]}"); done
for ((i = n - 1; i >= 0; i--)); do rev+=(-n "${names[$i]}" "${cmdl[$i]}"); done
alternating_passes desktop 1 "$per"

# Fast paths: TRACERUNS traced runs of each devbox command, in a row (as
# in the timed runs), after three traced ones that are not counted (the
# trace variable makes them new command lines to replay); a path counts as
# taken when its mark shows up in most of them. The D-Bus round trip is the time from dialing the user bus
# to the scope's job done (cgroup/systemd.go), median over the runs.
# paths FILE: the fast paths whose marks FILE (one run's trace) has.
paths() {
	local f=$1 p=()
	grep -q 'warm: replaying' "$f" && p+=("replay")
	grep -q 'warm: via holder' "$f" && p+=("warm holder")
	grep -q 'cgroup: scope started' "$f" && p+=("scope per box (D-Bus)")
	grep -q 'cgroup: in devbox.scope' "$f" && p+=("devbox.scope")
	[ ${#p[@]} -gt 0 ] || p=("none")
	local IFS=,
	echo "${p[*]}"
}
: >"$OUT/desktop-paths.txt"
for i in 0 1 2; do
	: >"$OUT/desktop-dbus-$i.txt"
	: >"$OUT/desktop-paths-$i.txt"
	for ((r = 0; r < 3; r++)); do env DEVBOX_TRACE=1 ${cmdl[$i]} >/dev/null 2>&1 || true; done
	for ((r = 0; r < TRACERUNS; r++)); do
		env DEVBOX_TRACE=1 ${cmdl[$i]} 2>"$OUT/desktop-trace.txt" >/dev/null || true
		echo "$(paths "$OUT/desktop-trace.txt")" >>"$OUT/desktop-paths-$i.txt"
		awk '/cgroup: dialing the user bus/{a=$2} /cgroup: scope started/{if (a) printf "%.3f\n", ($2-a)*1000}' "$OUT/desktop-trace.txt" >>"$OUT/desktop-dbus-$i.txt"
	done
	taken=$(sort "$OUT/desktop-paths-$i.txt" | uniq -c | sort -rn | head -1 | sed 's/^ *[0-9]* //')
	dbus=$(sort -n "$OUT/desktop-dbus-$i.txt" | awk '{v[NR]=$1} END {if (NR) printf "%.2f ms", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2); else print "-"}')
	printf '%s\t%s\t%s\n' "${names[$i]}" "$taken" "$dbus" >>"$OUT/desktop-paths.txt"
done
rm -f "$OUT/desktop-trace.txt"

med() { json_median "$OUT/desktop.json" "$1"; }
bw=$(med "bwrap --unshare-all")
cr=$(med "crun run" || true)
{
	echo "### Start-up on $host ($((PASSES * per)) runs in $PASSES passes of alternating order, medians)"
	echo
	echo "| command | median ms | /bwrap | /crun | fast path taken | D-Bus round trip |"
	echo "|---|---|---|---|---|---|"
	for nm in "${names[@]}"; do
		v=$(med "$nm")
		[ -n "$v" ] || continue
		p=$(awk -F'\t' -v n="$nm" '$1 == n {print $2 " | " $3}' "$OUT/desktop-paths.txt")
		[ -n "$p" ] || p="- | -"
		awk -v n="$nm" -v t="$v" -v b="$bw" -v c="${cr:-0}" -v p="$p" 'BEGIN{
			printf "| %s | %.1f | %.2f | %s | %s |\n", n, t*1000, t/b, (c > 0 ? sprintf("%.2f", t/c) : "-"), p}'
	done
} | tee "$OUT/desktop-summary.md"
$devbox --store "$D" rm -f bench-desk >/dev/null 2>&1 || true
