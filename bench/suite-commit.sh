#!/usr/bin/env bash
# Commit and push: a box with 50 MB of changes (the image's
# /usr/lib/x86_64-linux-gnu copied to /opt, 44 MB of libraries, and 6 MB
# from /dev/urandom) committed to an image and pushed to the local registry,
# `devbox commit` + `devbox push` against `podman commit` + `podman push` of
# the same change on a podman container of the same image, in alternating
# passes (bench/lib.sh). Before each run a marker file with the time is
# written into the (stopped) box and container, so every run commits a new
# layer and pushes it in full (nothing cached by digest on either side).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-8}"
PASSES="${PASSES:-4}"
per=$(((RUNS + PASSES - 1) / PASSES))
IMG="$REGISTRY/library/debian:trixie"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
export XDG_RUNTIME_DIR
podman_runtime commit
change='cp -a /usr/lib/x86_64-linux-gnu /opt/big-lib && head -c 6M /dev/urandom >/opt/random'
podman pull -q --tls-verify=false "$IMG" >/dev/null
$devbox --store "$D" pull -q "$IMG" >/dev/null
$devbox --store "$D" rm -f bench-commit >/dev/null 2>&1 || true
podman rm -f bench-commit >/dev/null 2>&1 || true
$devbox --store "$D" create bench-commit --image "$IMG" --no-provision >/dev/null
$devbox --store "$D" exec --root bench-commit sh -c "$change"
$devbox --store "$D" stop bench-commit >/dev/null
podman create -q --name bench-commit --network none "$IMG" sleep infinity >/dev/null
podman start bench-commit >/dev/null
podman exec bench-commit sh -c "$change"
podman stop -t 0 bench-commit >/dev/null
du_d=$($devbox --store "$D" exec --root bench-commit du -sk /opt | cut -f1)
$devbox --store "$D" stop bench-commit >/dev/null
# The marker: a new layer for every run, written while box and container
# are stopped again when the timed command starts.
prep_d="$devbox --store $D exec --root bench-commit sh -c 'date +%s%N >/opt/marker'"
prep_d="sh -c \"$prep_d && $devbox --store $D stop bench-commit\""
prep_p="sh -c \"podman start bench-commit && podman exec bench-commit sh -c 'date +%s%N >/opt/marker' && podman stop -t 0 bench-commit\""
dref="$REGISTRY/bench/devbox-commit:latest"
pref="$REGISTRY/bench/podman-commit:latest"
run_d="sh -c \"$devbox --store $D commit -q bench-commit $dref && $devbox --store $D push -q $dref\""
run_p="sh -c \"podman commit -q bench-commit localhost/bench/podman-commit:latest && podman push -q --tls-verify=false localhost/bench/podman-commit:latest docker://$pref\""
fwd=(--prepare "$prep_d" --prepare "$prep_p" -n "devbox commit + push" "$run_d" -n "podman commit + push" "$run_p")
rev=(--prepare "$prep_p" --prepare "$prep_d" -n "podman commit + push" "$run_p" -n "devbox commit + push" "$run_d")
alternating_passes commit 1 "$per"
d=$(json_median "$OUT/commit.json" "devbox commit + push")
p=$(json_median "$OUT/commit.json" "podman commit + push")
# The layers pushed last (compressed sizes).
dsize=$(skopeo inspect --tls-verify=false --raw "docker://$dref" | jq '.layers[-1].size')
psize=$(skopeo inspect --tls-verify=false --raw "docker://$pref" | jq '.layers[-1].size')
{
	echo "### Commit + push of a box with $((du_d / 1024)) MB of changes ($((PASSES * per)) runs each in $PASSES passes of alternating order, medians)"
	echo
	echo "| what | median s | min–max s | layer pushed (compressed) | ratio to podman |"
	echo "|---|---|---|---|---|"
	for n in "devbox commit + push" "podman commit + push"; do
		v=$(json_median "$OUT/commit.json" "$n")
		lo=$(jq -r --arg n "$n" '.results[] | select(.command == $n) | .min' "$OUT/commit.json")
		hi=$(jq -r --arg n "$n" '.results[] | select(.command == $n) | .max' "$OUT/commit.json")
		s=$dsize; [ "$n" = "devbox commit + push" ] || s=$psize
		awk -v n="$n" -v t="$v" -v lo="$lo" -v hi="$hi" -v s="$s" -v p="$p" 'BEGIN{printf "| %s | %.2f | %.2f–%.2f | %.1f MB | %.2fx |\n", n, t, lo, hi, s/1e6, t/p}'
	done
	echo
	echo "Goal: devbox ≤ 0.5× podman. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	[ -z "${PODMAN_RUNTIME:-}" ] || echo "podman ran with $PODMAN_RUNTIME (PODMAN_RUNTIME)."
} | tee "$OUT/commit-summary.md"
$devbox --store "$D" rm -f bench-commit >/dev/null 2>&1 || true
podman rm -f bench-commit >/dev/null 2>&1 || true
podman rmi -f localhost/bench/podman-commit:latest >/dev/null 2>&1 || true
