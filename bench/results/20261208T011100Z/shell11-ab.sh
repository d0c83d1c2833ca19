#!/bin/bash
# ab.sh RUNS PASSES NAME=CMD... : alternating hyperfine passes; prints median/mean per command over all runs
runs=$1; passes=$2; shift 2
out=/tmp/s11/out/ab.$$; mkdir -p $out
for ((p=0;p<passes;p++)); do
  args=()
  if ((p%2)); then for ((i=$#;i>=1;i--)); do c=${!i}; args+=(-n "${c%%=*}" "${c#*=}"); done
  else for c in "$@"; do args+=(-n "${c%%=*}" "${c#*=}"); done; fi
  hyperfine -N --runs $runs --warmup 5 --style none --export-json $out/p$p.json "${args[@]}" >/dev/null 2>&1
done
python3 - $out <<'PY'
import json,sys,glob,statistics as st
d={}
for f in sorted(glob.glob(sys.argv[1]+'/p*.json')):
  for r in json.load(open(f))['results']: d.setdefault(r['command'],[]).extend(r['times'])
for k,v in d.items():
  v=sorted(v); print('%-28s median %.2f  mean %.2f  p25 %.2f  n %d'%(k,st.median(v)*1e3,st.mean(v)*1e3,v[len(v)//4]*1e3,len(v)))
PY
