#!/usr/bin/env bash
# Cold pull + unpack of debian:trixie (one 52 MB gzip layer) from the local
# registry: devbox vs rootless podman vs skopeo copy + umoci unpack, same
# run, same registry, caches emptied before every run.
#
# Every prepare step ends the same way for all three tools: sync, then a
# short settle, so that no run pays for writing back the previous run's
# cleanup. (What remains is the filesystem's own memory of the cleanup: on
# ext4 without a journal, the inode allocator skips inodes freed in the last
# minute, six while their inode table block is dirty, one by one, so files
# created next to a tree just removed cost more; each tool meets its own
# previous tree there, as it would after an rmi.)
set -euo pipefail
RUNS="${RUNS:-5}"
SETTLE="${SETTLE:-1}"
IMG="$REGISTRY/library/debian:trixie"
D="$WORK/devbox-store"
devbox="$WORK/devbox"
clean_devbox="$devbox --store $D rmi $IMG >/dev/null 2>&1; $devbox --store $D image prune >/dev/null 2>&1; true"
clean_podman="podman rmi -f $IMG >/dev/null 2>&1; true"
clean_umoci="rm -rf $WORK/oci $WORK/bundle"
settle="sync; sleep $SETTLE"
cmd_devbox="$devbox --store $D pull -q $IMG"
cmd_podman="podman pull -q --tls-verify=false $IMG"
cmd_umoci="skopeo copy -q --src-tls-verify=false docker://$IMG oci:$WORK/oci:x && umoci unpack --rootless --image $WORK/oci:x $WORK/bundle"
hyperfine -N --runs "$RUNS" --style basic --export-json "$OUT/pull.json" --export-markdown "$OUT/pull.md" \
	--prepare "sh -c '$clean_devbox; $settle'" -n devbox "$cmd_devbox" \
	--prepare "sh -c '$clean_podman; $settle'" -n podman "$cmd_podman" \
	--prepare "sh -c '$clean_umoci; $settle'" -n skopeo+umoci "sh -c '$cmd_umoci'" >"$OUT/pull.hyperfine.txt" 2>&1 || { cat "$OUT/pull.hyperfine.txt"; exit 1; }
# Peak memory (max RSS of the largest process of each tool's tree), one cold run each.
peak() { sh -c "$1; $settle"; /usr/bin/time -f %M sh -c "$2" 2>&1 >/dev/null | tail -1; }
m_devbox=$(peak "$clean_devbox" "$cmd_devbox")
m_podman=$(peak "$clean_podman" "$cmd_podman")
m_umoci=$(peak "$clean_umoci" "$cmd_umoci")
sh -c "$clean_devbox"; sh -c "$clean_podman"; sh -c "$clean_umoci"
med() { awk -v n="\"command\": \"$1\"" 'index($0,n){f=1} f&&/"median"/{gsub(/[^0-9.e-]/,"",$2); print $2; exit}' FS=": " "$OUT/pull.json"; }
d=$(med devbox); p=$(med podman); u=$(med skopeo+umoci)
{
	echo "### Cold pull + unpack of debian:trixie ($RUNS runs, medians)"
	echo
	echo "| tool | median s | peak RSS MiB | devbox/tool |"
	echo "|---|---|---|---|"
	awk -v n=devbox -v t="$d" -v m="$m_devbox" -v d="$d" 'BEGIN{printf "| %s | %.3f | %.1f | %.2f |\n", n, t, m/1024, d/t}'
	awk -v n=podman -v t="$p" -v m="$m_podman" -v d="$d" 'BEGIN{printf "| %s | %.3f | %.1f | %.2f |\n", n, t, m/1024, d/t}'
	awk -v n="skopeo+umoci" -v t="$u" -v m="$m_umoci" -v d="$d" 'BEGIN{printf "| %s | %.3f | %.1f | %.2f |\n", n, t, m/1024, d/t}'
} | tee "$OUT/pull-summary.md"
