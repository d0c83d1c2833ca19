#!/usr/bin/env bash
# Shared by the suites that time commands in alternating passes (sourced).

# alternating_passes NAME WARMUP PER: PASSES hyperfine runs of PER runs
# each over the commands of the arrays fwd and rev (hyperfine's -n NAME CMD
# pairs, in one order and in the reverse one, set by the caller), alternately;
# raw output in $OUT/NAME.hyperfine.txt, each pass in $OUT/NAME-passP.json,
# and every command's median, min and max over all passes in $OUT/NAME.json.
# The machine's speed drifts over seconds, and a command measured first in
# a hyperfine run is ~10% slower than later ones: alternating evens it out.
alternating_passes() {
	local name=$1 warmup=$2 per=$3 p
	: >"$OUT/$name.hyperfine.txt"
	for ((p = 0; p < PASSES; p++)); do
		if ((p % 2 == 0)); then local -n cmds=fwd; else local -n cmds=rev; fi
		hyperfine -N --warmup "$warmup" --runs "$per" --style basic --export-json "$OUT/$name-pass$p.json" "${cmds[@]}" >>"$OUT/$name.hyperfine.txt" 2>&1 ||
			{ cat "$OUT/$name.hyperfine.txt"; exit 1; }
	done
	jq -s '{results: ([.[].results[]] | group_by(.command) | map((map(.times) | add | sort) as $t |
		{command: .[0].command, runs: ($t | length), median: (if ($t | length) % 2 == 1 then $t[($t | length) / 2 | floor]
		else ($t[($t | length) / 2 - 1] + $t[($t | length) / 2]) / 2 end), min: $t[0], max: $t[-1]}))}' \
		"$OUT/$name"-pass*.json >"$OUT/$name.json"
}

# json_median FILE COMMAND: COMMAND's median (seconds) in a hyperfine or
# alternating_passes JSON file.
json_median() {
	awk -v n="\"command\": \"$2\"" 'index($0,n){f=1} f&&/"median"/{gsub(/[^0-9.e-]/,"",$2); print $2; exit}' FS=': ' "$1"
}

# podman_runtime NAME: with PODMAN_RUNTIME set, make podman use that OCI
# runtime (a containers.conf of its own, $WORK/containers-NAME.conf).
podman_runtime() {
	[ -n "${PODMAN_RUNTIME:-}" ] || return 0
	printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "%s"\n' "$PODMAN_RUNTIME" >"$WORK/containers-$1.conf"
	export CONTAINERS_CONF="$WORK/containers-$1.conf"
}
