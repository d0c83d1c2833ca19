#!/usr/bin/env bash
# User-mode networking: iperf3 throughput box → host (the box's client to a
# server on the host's 127.0.0.1 through the gateway), host → box through a
# published port, and box ← host (the box's client in reverse mode: what a
# download in the box sees), for each devbox driver; against rootless
# podman with slirp4netns (and pasta where this podman has it; else pasta
# run directly, as the anchors did), and plain host loopback as the limit.
# Then the TCP round trip through a published port (connect, one byte
# there and back, close; tcplat, median of $LATN).
#
# iperf3 is not in the test images: the host's binary and its libraries
# (with the host's dynamic loader) are copied to $WORK/iperf and bound
# into the boxes read-only (docs/network.md). All traffic stays on
# 127.0.0.1 and in the boxes' namespaces. Runs are bounded: $SECS s each,
# $REPS times per figure (median).
set -euo pipefail
SECS="${SECS:-4}"
REPS="${REPS:-3}"
LATN="${LATN:-2000}"
IMG="$REGISTRY/library/busybox:latest"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
TCPLAT="$WORK/tcplat"
IP="$WORK/iperf"
export XDG_RUNTIME_DIR

# --- iperf3 for the boxes: binary, libraries and loader ------------------
rm -rf "$IP"; mkdir -p "$IP"
iperf=$(command -v iperf3)
cp -L "$iperf" "$IP/iperf3"
ldd "$iperf" | awk '/=>/ {print $3} !/=>/ && /^\t\// {print $1}' | while read -r lib; do cp -L "$lib" "$IP/"; done
loader=$(ldd "$iperf" | awk '!/=>/ && /^\t\// {print $1}' | head -n1)
printf '#!/bin/sh\nd=$(dirname "$0")\nexec "$d/%s" --library-path "$d" "$d/iperf3" "$@"\n' "$(basename "$loader")" >"$IP/iperf3.sh"
chmod -R a+rX "$IP"; chmod a+x "$IP/iperf3.sh"

HOSTPORT=5201
iperf3 -s -B 127.0.0.1 -p $HOSTPORT -D --pidfile "$WORK/iperf3-host.pid"
"$TCPLAT/tcplat" serve 127.0.0.1:17000 & LATPID=$!
cleanup() {
	kill "$(cat "$WORK/iperf3-host.pid" 2>/dev/null)" "$LATPID" 2>/dev/null || true
	for d in gvisor pasta slirp4netns; do $devbox --store "$D" rm -f "bench-net-$d" >/dev/null 2>&1 || true; done
	podman rm -f bench-net-podman >/dev/null 2>&1 || true
}
trap cleanup EXIT
sleep 0.5

# gbps JSON...: bits per second received, in Gbit/s.
gbps() { awk -F: '/"sum_received"/{f=1} f&&/"bits_per_second"/{gsub(/[^0-9.e+]/,"",$2); printf "%.2f\n", $2/1e9; exit}'; }
# median (min–max) of the numbers on stdin: pasta's figures spread widely
median() { sort -g | awk '{a[NR]=$1} END{if (NR==0) {print "FAIL"; exit} m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f (%.2f–%.2f)\n", m, a[1], a[NR]}'; }
# measure LABEL CMD...: REPS iperf3 runs, median Gbit/s into results
declare -A R
measure() {
	local label=$1; shift
	local vals="" v
	for _ in $(seq "$REPS"); do
		if v=$("$@" 2>>"$OUT/net.err" | gbps) && [ -n "$v" ]; then vals+="$v"$'\n'; fi
	done
	R[$label]=$(printf '%s' "$vals" | grep . | median)
	printf '%-40s %s\n' "$label" "${R[$label]}" | tee -a "$OUT/net.txt"
}
lat() { # lat LABEL ADDR
	local j
	if j=$("$TCPLAT/tcplat" probe "$2" "$LATN" 2>>"$OUT/net.err"); then
		R[lat-$1]=$(printf '%s' "$j" | awk -F'"roundtrip":' '{print $2}' | awk -F'"median_us":' '{split($2,a,","); printf "%.0f", a[1]}')
	else
		R[lat-$1]=FAIL
	fi
	printf '%-40s %s us\n' "latency $1" "${R[lat-$1]}" | tee -a "$OUT/net.txt"
}
: >"$OUT/net.txt"; : >"$OUT/net.err"

# --- host loopback, the limit ---------------------------------------------
measure "host loopback" iperf3 -c 127.0.0.1 -p $HOSTPORT -t "$SECS" -J
lat "host loopback" 127.0.0.1:17000

# --- devbox, each driver --------------------------------------------------
$devbox --store "$D" pull -q "$IMG" >/dev/null
i=0
for d in gvisor pasta slirp4netns; do
	i=$((i + 1))
	b="bench-net-$d"
	pp=$((15200 + i)); lp=$((17000 + i))
	$devbox --store "$D" rm -f "$b" >/dev/null 2>&1 || true
	if ! $devbox --store "$D" create "$b" --image "$IMG" --net "$d" --grace 600 --no-auto-ports \
		-v "$IP:/opt/iperf:ro" -v "$TCPLAT:/opt/tcplat:ro" -p "$pp:5202" -p "$lp:7000" >/dev/null 2>>"$OUT/net.err" ||
		! $devbox --store "$D" exec "$b" -- sh -c '/opt/iperf/iperf3.sh -s -p 5202 -D && (setsid /opt/tcplat/tcplat serve :7000 </dev/null >/dev/null 2>&1 &)' 2>>"$OUT/net.err"; then
		for k in up published down; do R[$d-$k]=FAIL; done
		R[lat-$d]=FAIL
		continue
	fi
	sleep 0.5
	measure "devbox $d: box → host" $devbox --store "$D" exec "$b" -- /opt/iperf/iperf3.sh -c 10.0.2.2 -p $HOSTPORT -t "$SECS" -J
	R[$d-up]=${R["devbox $d: box → host"]}
	measure "devbox $d: host → box (-p)" iperf3 -c 127.0.0.1 -p $pp -t "$SECS" -J
	R[$d-published]=${R["devbox $d: host → box (-p)"]}
	measure "devbox $d: box ← host (download)" $devbox --store "$D" exec "$b" -- /opt/iperf/iperf3.sh -c 10.0.2.2 -p $HOSTPORT -t "$SECS" -R -J
	R[$d-down]=${R["devbox $d: box ← host (download)"]}
	lat "$d" "127.0.0.1:$lp"
	$devbox --store "$D" rm -f "$b" >/dev/null 2>&1 || true
done

# --- podman ---------------------------------------------------------------
podman pull -q --tls-verify=false "$IMG" >/dev/null 2>&1 || true
pod() { podman run --rm -v "$IP:/opt/iperf:ro" "$@"; }
measure "podman slirp4netns: box → host" pod --network slirp4netns:allow_host_loopback=true "$IMG" /opt/iperf/iperf3.sh -c 10.0.2.2 -p $HOSTPORT -t "$SECS" -J
measure "podman slirp4netns: box ← host (download)" pod --network slirp4netns:allow_host_loopback=true "$IMG" /opt/iperf/iperf3.sh -c 10.0.2.2 -p $HOSTPORT -t "$SECS" -R -J
podman rm -f bench-net-podman >/dev/null 2>&1 || true
if podman run -d --name bench-net-podman --network slirp4netns -p 127.0.0.1:15299:5202 -p 127.0.0.1:17099:7000 \
	-v "$IP:/opt/iperf:ro" -v "$TCPLAT:/opt/tcplat:ro" "$IMG" sh -c '/opt/iperf/iperf3.sh -s -p 5202 -D; exec /opt/tcplat/tcplat serve :7000' >/dev/null 2>>"$OUT/net.err"; then
	sleep 1
	measure "podman slirp4netns: host → box (-p)" iperf3 -c 127.0.0.1 -p 15299 -t "$SECS" -J
	lat "podman (rootlessport)" 127.0.0.1:17099
	podman rm -f bench-net-podman >/dev/null 2>&1 || true
fi
if pod --network pasta "$IMG" true >/dev/null 2>>"$OUT/net.err"; then
	measure "podman pasta: box → host" pod --network pasta "$IMG" /opt/iperf/iperf3.sh -c 10.0.2.2 -p $HOSTPORT -t "$SECS" -J
else
	echo "podman $(podman --version | awk '{print $3}') has no pasta network: pasta is run directly" | tee -a "$OUT/net.txt"
	# As docs/anchor-figures.md: pasta runs iperf3 in a namespace of its own
	# (tap path to the gateway, which maps to the host's loopback).
	measure "pasta (direct): ns → host" pasta -q --config-net -4 -a 10.0.2.100 -n 24 -g 10.0.2.2 -- iperf3 -c 10.0.2.2 -p $HOSTPORT -t "$SECS" -J
	measure "pasta (direct): ns ← host (download)" pasta -q --config-net -4 -a 10.0.2.100 -n 24 -g 10.0.2.2 -- iperf3 -c 10.0.2.2 -p $HOSTPORT -t "$SECS" -R -J
fi

# --- what a network costs at start: devbox run IMG true ----------------------
START_RUNS="${START_RUNS:-30}"
hyperfine -N --warmup 3 --runs "$START_RUNS" --style basic --export-json "$OUT/net-start.json" \
	-n "none" "$devbox --store $D run --net none $IMG true" \
	-n "gvisor" "$devbox --store $D run --net gvisor $IMG true" \
	-n "pasta" "$devbox --store $D run --net pasta --host-loopback $IMG true" \
	-n "slirp4netns" "$devbox --store $D run --net slirp4netns $IMG true" \
	-n "podman slirp4netns" "podman run --rm --network slirp4netns $IMG true" >"$OUT/net-start.txt" 2>&1 || true
smed() { awk -v n="\"command\": \"$1\"" 'index($0,n){f=1} f&&/"median"/{gsub(/[^0-9.e-]/,"",$2); printf "%.1f", $2*1000; exit}' FS=': ' "$OUT/net-start.json"; }

{
	echo "### User-mode networking (iperf3, ${SECS} s runs, Gbit/s, median (min–max) of $REPS; TCP round trip through a published port, median of $LATN)"
	echo
	echo "| network | box → host | host → box (-p) | box ← host (download) | round trip via -p |"
	echo "|---|---|---|---|---|"
	echo "| host loopback (the limit) | ${R["host loopback"]} | ${R["host loopback"]} | ${R["host loopback"]} | ${R["lat-host loopback"]} µs |"
	for d in gvisor pasta slirp4netns; do
		echo "| devbox --net $d | ${R[$d-up]} | ${R[$d-published]} | ${R[$d-down]} | ${R[lat-$d]} µs |"
	done
	echo "| podman slirp4netns | ${R["podman slirp4netns: box → host"]:-FAIL} | ${R["podman slirp4netns: host → box (-p)"]:-FAIL} | ${R["podman slirp4netns: box ← host (download)"]:-FAIL} | ${R["lat-podman (rootlessport)"]:-FAIL} µs |"
	if [ -n "${R["podman pasta: box → host"]:-}" ]; then
		echo "| podman pasta | ${R["podman pasta: box → host"]} | - | - | - |"
	else
		echo "| pasta run directly (podman 4.3 has no pasta network) | ${R["pasta (direct): ns → host"]:-FAIL} | - | ${R["pasta (direct): ns ← host (download)"]:-FAIL} | - |"
	fi
	echo
	echo "Start, \`devbox run --net X busybox true\` ($START_RUNS runs, median ms): none $(smed none), gvisor $(smed gvisor), pasta $(smed pasta), slirp4netns $(smed slirp4netns); \`podman run --rm --network slirp4netns\` $(smed "podman slirp4netns")"
} | tee "$OUT/net-summary.md"
