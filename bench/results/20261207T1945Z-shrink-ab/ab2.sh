#!/usr/bin/env bash
set -eu
IMG=127.0.0.1:5000/library/debian:trixie
D=/tmp/devbox-bench/devbox-store
B=/tmp/devbox-bench/bundle-start
cd /tmp/shrink-ab
for pass in 1 2 3 4 5 6; do
  if [ $((pass % 2)) = 1 ]; then order="base new new2"; else order="new2 new base"; fi
  args=()
  for v in $order; do
    args+=("/tmp/shrink-ab/devbox-$v --store $D run --net none $IMG true")
  done
  args+=("bwrap --unshare-all --ro-bind $B/rootfs / --proc /proc --dev /dev true")
  hyperfine -N -w 5 -r 25 --export-json /tmp/shrink-ab/q$pass.json "${args[@]}" >/dev/null 2>&1
done
