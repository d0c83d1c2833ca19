#!/usr/bin/env bash
IMG=127.0.0.1:5000/library/debian:trixie
D=/tmp/devbox-bench/devbox-store
for v in base new new2 base new new2 base new new2; do
  for i in $(seq 1 12); do
    DEVBOX_TRACE=1 /tmp/shrink-ab/devbox-$v --store $D run --net none $IMG true 2>&1 >/dev/null | sed "s/^/$v /"
    echo "$v END"
  done
done
