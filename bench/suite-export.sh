#!/usr/bin/env bash
# Exported commands: launching a tool exported from a running box with
# `devbox export NAME --bin` against the launcher `distrobox-export --bin`
# writes for the same tool (run from the host: it goes through
# distrobox-enter) and a bare `podman exec` of it, same image
# (test/devtools:trixie), same tool (/usr/bin/true, one argument), in
# alternating passes (bench/lib.sh).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-60}"
PASSES="${PASSES:-6}"
per=$(((RUNS + PASSES - 1) / PASSES))
IMG="$REGISTRY/test/devtools:trixie"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
export XDG_RUNTIME_DIR
# PODMAN_RUNTIME=runc: podman (under distrobox) with runc, where crun
# refuses the host's hybrid cgroups (bench/run.sh's cgroup fix not applied).
if [ -n "${PODMAN_RUNTIME:-}" ]; then
	printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "%s"\n' "$PODMAN_RUNTIME" >"$WORK/containers-export.conf"
	export CONTAINERS_CONF="$WORK/containers-export.conf"
fi
if ! skopeo inspect --tls-verify=false "docker://$IMG" >/dev/null 2>&1; then
	podman import -q "$DEVTOOLS_TAR" localhost/devtools:trixie >/dev/null
	podman push -q --tls-verify=false localhost/devtools:trixie "docker://$IMG"
fi
podman pull -q --tls-verify=false "$IMG" >/dev/null
$devbox --store "$D" pull -q "$IMG" >/dev/null
$devbox --store "$D" rm -f bench-export >/dev/null 2>&1 || true
distrobox rm -f bench-dbx-export >/dev/null 2>&1 || true
bins="$WORK/export-bin"
rm -rf "$bins"; mkdir -p "$bins/devbox" "$bins/distrobox"
$devbox --store "$D" create bench-export --image "$IMG" --grace 600 >/dev/null
$devbox --store "$D" export bench-export --bin /usr/bin/true --dir "$bins/devbox" >/dev/null
$devbox --store "$D" shell bench-export -- true # running from here on
distrobox create --yes --no-entry -i "$IMG" -n bench-dbx-export >/dev/null 2>&1
distrobox enter bench-dbx-export -- distrobox-export --bin /usr/bin/true --export-path "$bins/distrobox" >/dev/null 2>&1
[ -x "$bins/distrobox/true" ] || { echo "distrobox-export wrote no launcher" >&2; exit 1; }
# The launcher runs the tool directly when it thinks it is in a container
# (/run/.containerenv or /.dockerenv on the host: this VM has the latter);
# keep its shape, through distrobox-enter, without that test.
note=""
if [ -e /run/.containerenv ] || [ -e /.dockerenv ]; then
	sed -i 's|^if \[ ! -f /run/.containerenv \] && \[ ! -f /.dockerenv \]; then$|if true; then|' "$bins/distrobox/true"
	grep -q '^if true; then$' "$bins/distrobox/true" || { echo "distrobox's launcher changed shape" >&2; exit 1; }
	note="The host has /.dockerenv or /run/.containerenv, so distrobox's launcher would run the host's own tool: its container test was replaced by \`if true\` (same script otherwise, through distrobox-enter)."
fi
fwd=(-n "devbox export --bin launcher" "$bins/devbox/true x"
	-n "devbox exec NAME -- true x" "$devbox --store $D exec bench-export -- /usr/bin/true x"
	-n "distrobox-export --bin launcher" "$bins/distrobox/true x"
	-n "podman exec" "podman exec bench-dbx-export /usr/bin/true x")
rev=("${fwd[@]:6:3}" "${fwd[@]:3:3}" "${fwd[@]:0:3}" "${fwd[@]:9:3}")
alternating_passes export 3 "$per"
d=$(json_median "$OUT/export.json" "devbox export --bin launcher")
{
	echo "### Exported --bin tool on a running box ($((PASSES * per)) runs in $PASSES passes of alternating order, medians)"
	echo
	echo "| launcher | median ms | ratio to devbox |"
	echo "|---|---|---|"
	for n in "devbox export --bin launcher" "devbox exec NAME -- true x" "distrobox-export --bin launcher" "podman exec"; do
		v=$(json_median "$OUT/export.json" "$n")
		awk -v n="$n" -v t="$v" -v d="$d" 'BEGIN{printf "| %s | %.1f | %.1fx |\n", n, t*1000, t/d}'
	done
	echo
	echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). ${note}"
	[ -z "${PODMAN_RUNTIME:-}" ] || echo "podman ran with $PODMAN_RUNTIME (PODMAN_RUNTIME)."
} | tee "$OUT/export-summary.md"
$devbox --store "$D" rm -f bench-export >/dev/null 2>&1 || true
distrobox rm -f bench-dbx-export >/dev/null 2>&1 || true
