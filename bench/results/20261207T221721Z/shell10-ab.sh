#!/bin/bash
# ab.sh RUNS PASSES name1 cmd1 name2 cmd2 ...: alternating hyperfine passes, medians and mins over all passes
runs=$1; passes=$2; shift 2
args=("$@"); out=${OUTDIR:-/tmp/ab.$$}; mkdir -p $out
for ((p=0;p<passes;p++)); do
  if ((p%2==0)); then a=("${args[@]}"); else a=(); for ((i=${#args[@]}-2;i>=0;i-=2)); do a+=("${args[i]}" "${args[i+1]}"); done; fi
  cmdargs=(); for ((i=0;i<${#a[@]};i+=2)); do cmdargs+=(-n "${a[i]}" "${a[i+1]}"); done
  hyperfine -N --warmup 5 --runs $runs --style none --export-json $out/p$p.json "${cmdargs[@]}" >/dev/null 2>&1 || echo "hyperfine failed"
done
jq -rs '[.[].results[]] | group_by(.command) | map((map(.times)|add|sort) as $t | "\(.[0].command): median \($t[($t|length)/2|floor]*1000|.*100|round/100) ms  p25 \($t[($t|length)/4|floor]*1000|.*100|round/100)  min \($t[0]*1000|.*100|round/100)  n \($t|length)") | .[]' $out/p*.json
