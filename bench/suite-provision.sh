#!/usr/bin/env bash
# First-start provisioning of a dev box (package provision): the first
# `devbox shell` of a new Debian trixie box with LANG=de_DE.UTF-8 installs
# sudo, locales (and compiles de_DE.UTF-8), less and procps from the local
# trixie repository test/provision.sh serves on 127.0.0.1:5080, against
# the same first shell with --no-provision; alternating order, medians.
# No anchor runs offline here: distrobox's first enter installs its own
# dependencies from the image's repositories, which this machine cannot
# reach.
set -euo pipefail
RUNS="${RUNS:-6}"
IMG="$REGISTRY/library/debian:trixie"
D="$WORK/devbox-store-provision"
devbox="$WORK/devbox"
repo="${APTREPO:-127.0.0.1:5080}"
cfg="$WORK/devbox-provision.toml"
{
	# The suites' config turns provisioning off: this one turns it on.
	grep -v -e '^\[provision\]$' -e '^auto = false$' "$DEVBOX_CONFIG"
	printf '[provision]\nauto = true\n[provision.repos]\napt = "deb [trusted=yes] http://host.devbox.internal:%s/ ./"\n' "${repo##*:}"
} >"$cfg"
export DEVBOX_CONFIG="$cfg"
$devbox --store "$D" pull -q "$IMG" >/dev/null
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
: >"$OUT/provision.txt"
one() { # one NAME FLAGS...: a new box's first shell, in ms
	local name=$1 t
	shift
	$devbox --store "$D" rm -f "$name" >/dev/null 2>&1 || true
	t=$(date +%s%N)
	LANG=de_DE.UTF-8 $devbox --store "$D" shell --grace 1 "$@" --image "$IMG" "$name" -- sudo -n true 2>>"$OUT/provision.log" ||
		[ "$name" = bench-noprov ] || { tail "$OUT/provision.log"; exit 1; }
	echo "$name $(ms "$t")" >>"$OUT/provision.txt"
}
for ((i = 0; i < RUNS; i++)); do
	if ((i % 2 == 0)); then one bench-prov; one bench-noprov --no-provision; else one bench-noprov --no-provision; one bench-prov; fi
done
$devbox --store "$D" rm -f bench-prov bench-noprov >/dev/null 2>&1 || true
med() { awk -v n="$1" '$1 == n { print $2 }' "$OUT/provision.txt" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
p=$(med bench-prov)
n=$(med bench-noprov)
{
	echo "### First start of a dev box with provisioning ($RUNS runs each, alternating order, medians)"
	echo
	echo "| first \`devbox shell\` of a new trixie box | median ms |"
	echo "|---|---|"
	echo "| provisioning sudo, locales + de_DE.UTF-8, less, procps from the local repository | $p |"
	echo "| --no-provision | $n |"
	echo
	awk -v p="$p" -v n="$n" 'BEGIN { printf "provisioning cost: %.0f ms\n", p - n }'
} | tee "$OUT/provision-summary.md"
