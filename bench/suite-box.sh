#!/usr/bin/env bash
# Persistent dev boxes: warm enter latency of a running box
# (`devbox shell NAME -- true`) against `distrobox enter NAME -- true` and
# `podman exec NAME true`, cold `devbox shell` (create + start + enter) on
# a pulled image against `distrobox create` + first enter, and the disk an
# extra box of the same image adds. Same image for all: debian trixie with
# distrobox's dependencies (test/devtools:trixie, built by bench/run.sh).
# The warm figures come from PASSES alternating passes (lib.sh), with the
# cold cost of `devbox version` and `devbox ls` (every command but a session
# in a running box goes through the front to the CLI), and two floors: an
# empty Go program (any Go client's start and exit) and /bin/true (a
# process's exec and exit); BASELINE=path/to/devbox
# (an older build) adds its rows for the same commands.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-40}"
PASSES="${PASSES:-4}"
IMG="$REGISTRY/test/devtools:trixie"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
export XDG_RUNTIME_DIR
if ! skopeo inspect --tls-verify=false "docker://$IMG" >/dev/null 2>&1; then
	podman import -q "$DEVTOOLS_TAR" localhost/devtools:trixie >/dev/null
	podman push -q --tls-verify=false localhost/devtools:trixie "docker://$IMG"
fi
podman pull -q --tls-verify=false "$IMG" >/dev/null
$devbox --store "$D" pull -q "$IMG" >/dev/null
for b in bench-warm bench-cold bench-extra1 bench-extra2; do $devbox --store "$D" rm -f "$b" >/dev/null 2>&1 || true; done
distrobox rm -f bench-dbx >/dev/null 2>&1 || true
$devbox --store "$D" create bench-warm --image "$IMG" --grace 600 >/dev/null
$devbox --store "$D" shell bench-warm -- true
distrobox create --yes --no-entry -i "$IMG" -n bench-dbx >/dev/null 2>&1
distrobox enter bench-dbx -- true >/dev/null 2>&1
fwd=(-n "devbox shell -- true" "$devbox --store $D shell bench-warm -- true"
	-n "distrobox enter -- true" "distrobox enter bench-dbx -- true"
	-n "podman exec true" "podman exec bench-dbx true"
	-n "devbox version" "$devbox version"
	-n "devbox ls" "$devbox --store $D ls"
	-n "floor: an empty Go program" "$WORK/floor"
	-n "floor: /bin/true" "/bin/true")
if [ -n "${BASELINE:-}" ]; then
	$BASELINE --store "$D" shell bench-warm -- true
	fwd+=(-n "baseline shell -- true" "$BASELINE --store $D shell bench-warm -- true"
		-n "baseline version" "$BASELINE version"
		-n "baseline ls" "$BASELINE --store $D ls")
fi
rev=()
for ((i = ${#fwd[@]} - 3; i >= 0; i -= 3)); do rev+=("${fwd[@]:i:3}"); done
alternating_passes box-warm 3 $(((RUNS + PASSES - 1) / PASSES))
# Which path served the warm sessions: the front itself, or the CLI.
served=$(for i in 1 2 3 4 5; do DEVBOX_TRACE=1 $devbox --store "$D" shell bench-warm -- true 2>&1; done | grep -c ' front: session$' || true)
# Cold: a new box from a pulled image, entered once.
CRUNS=$(( RUNS / 4 )); [ "$CRUNS" -ge 5 ] || CRUNS=5
hyperfine -N --runs "$CRUNS" --style basic --export-json "$OUT/box-cold.json" \
	--prepare "sh -c '$devbox --store $D rm -f bench-cold >/dev/null 2>&1; true'" \
	-n "devbox shell (create+start+enter)" "$devbox --store $D shell --image $IMG --grace 1 bench-cold -- true" \
	--prepare "sh -c 'distrobox rm -f bench-dbx2 >/dev/null 2>&1; true'" \
	-n "distrobox create + enter" "sh -c 'distrobox create --yes --no-entry -i $IMG -n bench-dbx2 >/dev/null && distrobox enter bench-dbx2 -- true'" >"$OUT/box-cold.txt" 2>&1 || { cat "$OUT/box-cold.txt"; exit 1; }
# Disk added by extra boxes of the same image, after their first start.
du0=$( (du -sxB1 "$D" 2>/dev/null || true) | cut -f1)
for b in bench-extra1 bench-extra2; do
	$devbox --store "$D" create "$b" --image "$IMG" --grace 1 >/dev/null
	$devbox --store "$D" shell "$b" -- true
done
du1=$( (du -sxB1 "$D" 2>/dev/null || true) | cut -f1)
per=$(( (du1 - du0) / 2 ))
med() { awk -v n="\"command\": \"$1\"" 'index($0,n){f=1} f&&/"median"/{gsub(/[^0-9.e-]/,"",$2); print $2; exit}' FS=": " "$2"; }
w=$(med "devbox shell -- true" "$OUT/box-warm.json")
{
	echo "### Persistent boxes (image test/devtools:trixie; $RUNS warm runs in $PASSES alternating passes, medians; the front served $served of 5 traced sessions)"
	echo
	echo "| command | median ms | ratio to devbox |"
	echo "|---|---|---|"
	for n in "devbox shell -- true" "distrobox enter -- true" "podman exec true" "devbox version" "devbox ls" \
		"floor: an empty Go program" "floor: /bin/true" \
		${BASELINE:+"baseline shell -- true" "baseline version" "baseline ls"}; do
		v=$(med "$n" "$OUT/box-warm.json")
		awk -v n="$n" -v t="$v" -v d="$w" 'BEGIN{printf "| %s | %.1f | %.1fx |\n", n, t*1000, t/d}'
	done
	c1=$(med "devbox shell (create+start+enter)" "$OUT/box-cold.json")
	c2=$(med "distrobox create + enter" "$OUT/box-cold.json")
	awk -v a="$c1" -v b="$c2" 'BEGIN{printf "| cold: devbox shell (create+start+enter) | %.1f | 1.0x |\n| cold: distrobox create + first enter | %.1f | %.1fx |\n", a*1000, b*1000, b/a}'
	echo
	echo "Disk added per extra box of the same image (after its first start): $per bytes"
} | tee "$OUT/box-summary.md"
for b in bench-warm bench-cold bench-extra1 bench-extra2; do $devbox --store "$D" rm -f "$b" >/dev/null 2>&1 || true; done
distrobox rm -f bench-dbx bench-dbx2 >/dev/null 2>&1 || true
