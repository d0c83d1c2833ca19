#!/bin/bash
# tr.sh BIN N: medians of the traced intervals of N sessions
bin=$1; n=$2
for ((i=0;i<n;i++)); do DEVBOX_TRACE=1 $bin --store $STORE shell $BOX -- true 2>&1; echo END; done | python3 -c '
import sys,statistics as st
runs=[];cur=[]
for l in sys.stdin:
  l=l.strip()
  if l=="END": runs.append(cur); cur=[]; continue
  p=l.split(" ",3)
  if len(p)==4: cur.append((p[3],float(p[1])))
iv={}
for r in runs:
  for (a,ta),(b,tb) in zip(r,r[1:]): iv.setdefault(a+" -> "+b,[]).append((tb-ta)*1e3)
  if r: iv.setdefault("TOTAL first->last",[]).append((r[-1][1]-r[0][1])*1e3)
for k,v in iv.items(): print("%-45s median %.3f ms (n %d)"%(k,st.median(v),len(v)))
'
