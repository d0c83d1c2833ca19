#!/usr/bin/env bash
# Interleaved A/B as devboxtest: old (main) vs new (wip-shrink10) vs bwrap; PASSES alternating passes.
set -euo pipefail
W=/tmp/shrink10ab; IMG=127.0.0.1:5000/library/debian:trixie
OLD=/tmp/shrink10/devbox-old; NEW=/tmp/shrink10/devbox-new; R=/tmp/shrink10/rootfs
for b in $OLD $NEW; do $b --store $W/store pull -q $IMG >/dev/null; done
names=("old --net none" "new --net none" "old default net" "new default net" "old noreplay" "new noreplay" "bwrap")
cmds=("$OLD --store $W/store run --net none $IMG true" "$NEW --store $W/store run --net none $IMG true"
 "$OLD --store $W/store run $IMG true" "$NEW --store $W/store run $IMG true"
 "env DEVBOX_WARM=noreplay $OLD --store $W/store run --net none $IMG true" "env DEVBOX_WARM=noreplay $NEW --store $W/store run --net none $IMG true"
 "bwrap --unshare-all --ro-bind $R / --proc /proc --dev /dev true")
PASSES=${PASSES:-6}; RUNS=${RUNS:-20}
for ((p=0;p<PASSES;p++)); do
  args=()
  if ((p%2==0)); then for ((i=0;i<${#names[@]};i++)); do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
  else for ((i=${#names[@]}-1;i>=0;i--)); do args+=(-n "${names[$i]}" "${cmds[$i]}"); done; fi
  hyperfine -N --warmup 3 --runs $RUNS --style none --export-json $W/pass$p.json "${args[@]}" >/dev/null
done
python3 - <<'PY'
import json,glob,statistics
t={}
for f in sorted(glob.glob('/tmp/shrink10ab/pass*.json')):
    for r in json.load(open(f))['results']:
        t.setdefault(r['command'],[]).extend(r['times'])
b=statistics.median(t['bwrap'])
for k,v in t.items():
    m=statistics.median(v)
    print(f"{k:20s} {m*1000:7.2f} ms  {m/b:5.2f}x bwrap  (n={len(v)})")
PY
