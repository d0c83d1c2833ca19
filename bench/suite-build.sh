#!/usr/bin/env bash
# Build: an image of a box file's box (Debian, one package from the local
# apt repository, an env entry, one hook) with `devbox build` against
# `podman build` of the same Containerfile, in alternating passes
# (bench/lib.sh): a full build (--no-cache on both sides) and a cached one
# (nothing changed: devbox finds its build key on the stored image, podman
# its cached layers). The apt repository is test/provision.sh's on
# 127.0.0.1:5080 (host.devbox.internal from a box, the host network for
# podman's RUN).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-8}"
PASSES="${PASSES:-4}"
APTREPO="${APTREPO:-127.0.0.1:5080}"
per=$(((RUNS + PASSES - 1) / PASSES))
IMG="$REGISTRY/library/debian:trixie"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
export XDG_RUNTIME_DIR
podman_runtime build
ctx="$WORK/build-context"
rm -rf "$ctx"; mkdir -p "$ctx"
# The same steps on both sides.
cfg="$WORK/devbox-build-config.toml"
cp "$DEVBOX_CONFIG" "$cfg"
printf '[provision.repos]\napt = "deb [trusted=yes] http://host.devbox.internal:%s/ ./"\n' "${APTREPO#*:}" >>"$cfg"
cat >"$ctx/devbox.toml" <<EOF
[box.bench]
image = "$IMG"
packages = ["less"]
env = { GREETING = "hello from build" }
on_create = ["echo built > /etc/built-by-hook"]
EOF
cat >"$ctx/Containerfile" <<EOF
FROM $IMG
RUN rm -f /etc/apt/sources.list.d/* /etc/apt/sources.list && echo 'deb [trusted=yes] http://$APTREPO/ ./' >/etc/apt/sources.list.d/local.list && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends less >/dev/null && rm -rf /var/lib/apt/lists/*
ENV GREETING="hello from build"
RUN echo built > /etc/built-by-hook
EOF
podman pull -q --tls-verify=false "$IMG" >/dev/null
DEVBOX_CONFIG="$cfg" $devbox --store "$D" pull -q "$IMG" >/dev/null
cd "$ctx"
export DEVBOX_CONFIG="$cfg"
run_d="$devbox --store $D build -q --no-cache --host-loopback"
run_p="podman build -q --no-cache --network host --tls-verify=false -t localhost/bench/podman-build:latest ."
fwd=(-n "devbox build (full)" "$run_d" -n "podman build (full)" "$run_p")
rev=(-n "podman build (full)" "$run_p" -n "devbox build (full)" "$run_d")
alternating_passes build-full 1 "$per"
# Cached: the images above are current.
cached_d="$devbox --store $D build -q --host-loopback"
cached_p="podman build -q --network host --tls-verify=false -t localhost/bench/podman-build:latest ."
fwd=(-n "devbox build (cached)" "$cached_d" -n "podman build (cached)" "$cached_p")
rev=(-n "podman build (cached)" "$cached_p" -n "devbox build (cached)" "$cached_d")
alternating_passes build-cached 2 "$((per * 3))"
# Both images are right.
$devbox --store "$D" run localhost/bench:latest -- sh -c 'command -v less && cat /etc/built-by-hook && echo "$GREETING"' >"$OUT/build-check-devbox.txt"
podman run --rm --network none localhost/bench/podman-build:latest sh -c 'command -v less && cat /etc/built-by-hook && echo "$GREETING"' >"$OUT/build-check-podman.txt"
cmp "$OUT/build-check-devbox.txt" "$OUT/build-check-podman.txt"
{
	echo "### Build of a box file's box: debian + less from the local repository + a hook ($((PASSES * per)) full, $((PASSES * per * 3)) cached runs each, alternating order, medians)"
	echo
	echo "| what | median s | min–max s | ratio to podman |"
	echo "|---|---|---|---|"
	for kind in full cached; do
		p=$(json_median "$OUT/build-$kind.json" "podman build ($kind)")
		for n in "devbox build ($kind)" "podman build ($kind)"; do
			v=$(json_median "$OUT/build-$kind.json" "$n")
			lo=$(jq -r --arg n "$n" '.results[] | select(.command == $n) | .min' "$OUT/build-$kind.json")
			hi=$(jq -r --arg n "$n" '.results[] | select(.command == $n) | .max' "$OUT/build-$kind.json")
			awk -v n="$n" -v t="$v" -v lo="$lo" -v hi="$hi" -v p="$p" 'BEGIN{printf "| %s | %.3f | %.3f–%.3f | %.2fx |\n", n, t, lo, hi, t/p}'
		done
	done
	echo
	echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	[ -z "${PODMAN_RUNTIME:-}" ] || echo "podman ran with $PODMAN_RUNTIME (PODMAN_RUNTIME)."
} | tee "$OUT/build-summary.md"
podman rmi -f localhost/bench/podman-build:latest >/dev/null 2>&1 || true
