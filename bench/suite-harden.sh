#!/usr/bin/env bash
# What the box hardening costs at start-up (docs/security.md): `devbox run
# --net none IMG true` as it is (bounding set, no_new_privs, session
# keyring, seccomp filter) against the same run with the hardening turned
# off by flags (every capability, no filter, setuid allowed: what is left is
# the keyring and the fork thread) and against bwrap on the same rootfs,
# same run, alternating passes. BASELINE=path/to/devbox adds a row for
# another build (e.g. the commit before the hardening).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-60}"
IMG="$REGISTRY/library/debian:trixie"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
$devbox --store "$D" pull -q "$IMG" >/dev/null
B="$WORK/bundle-start"
if [ ! -d "$B/rootfs" ]; then
	rm -rf "$WORK/oci-start" "$B"
	skopeo copy -q --src-tls-verify=false "docker://$IMG" "oci:$WORK/oci-start:x"
	umoci unpack --rootless --image "$WORK/oci-start:x" "$B" >/dev/null
fi
off="--cap-add ALL --security-opt seccomp=unconfined --security-opt no-new-privileges=false"
names=("devbox run (hardened)" "devbox run, hardening off" "bwrap --unshare-all")
cmdl=("$devbox --store $D run --net none $IMG true" "$devbox --store $D run --net none $off $IMG true"
	"bwrap --unshare-all --ro-bind $B/rootfs / --proc /proc --dev /dev true")
if [ -n "${BASELINE:-}" ]; then
	names+=("devbox run, baseline build")
	cmdl+=("$BASELINE --store $D run --net none $IMG true")
fi
PASSES="${PASSES:-10}"
per=$(((RUNS + PASSES - 1) / PASSES))
fwd=() rev=()
n=${#names[@]}
for ((i = 0; i < n; i++)); do fwd+=(-n "${names[$i]}" "${cmdl[$i]}"); done
for ((i = n - 1; i >= 0; i--)); do rev+=(-n "${names[$i]}" "${cmdl[$i]}"); done
alternating_passes harden 2 "$per"
med() { json_median "$OUT/harden.json" "$1"; }
h=$(med "devbox run (hardened)")
o=$(med "devbox run, hardening off")
{
	echo "### Cost of the hardening at start-up ($((PASSES * per)) runs in $PASSES passes of alternating order, medians)"
	echo
	echo "| command | median ms | hardened/command |"
	echo "|---|---|---|"
	for n in "${names[@]}"; do
		v=$(med "$n"); [ -n "$v" ] || continue
		awk -v n="$n" -v t="$v" -v d="$h" 'BEGIN{printf "| %s | %.2f | %.2f |\n", n, t*1000, d/t}'
	done
	echo
	awk -v h="$h" -v o="$o" 'BEGIN{printf "hardening cost (hardened − off): %.2f ms\n", (h-o)*1000}'
} | tee "$OUT/harden-summary.md"
