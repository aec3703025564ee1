# Shared by the bench scripts (sourced): entering a network namespace of their own, and
# arithmetic over measurements.
# shellcheck shell=bash

# bench_enter_netns SCRIPT LOGUARD [LGPROBE]: as root, re-execute SCRIPT (an absolute path)
# with both binaries made absolute inside a fresh network namespace (unshare -n), so the host's
# ruleset and network are never touched. Returns only there, with LOGUARD and LGPROBE set.
bench_enter_netns() {
	local script=$1 loguard probe b
	shift
	if [ $# -lt 1 ]; then
		echo "usage: $script LOGUARD [LGPROBE]" >&2
		exit 2
	fi
	[ "$(id -u)" -eq 0 ] ||
		{ echo "$script needs root (it works in its own network namespace)" >&2; exit 1; }
	if [ -z "${LG_BENCH_INNER:-}" ]; then
		loguard=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
		probe=${2:-$(dirname "$loguard")/tests/lgprobe}
		probe=$(cd "$(dirname "$probe")" && pwd)/$(basename "$probe")
		for b in "$loguard" "$probe"; do
			[ -x "$b" ] || { echo "not an executable: $b (run make first)" >&2; exit 1; }
		done
		LG_BENCH_INNER=1 exec unshare -n bash "$script" "$loguard" "$probe"
	fi
	[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
		{ echo "refusing to run in the host's network namespace" >&2; exit 1; }
	LOGUARD=$1
	LGPROBE=$2
}

ms_now() { echo $(($(date +%s%N) / 1000000)); }

median() { # numbers as arguments
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }

spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }'; }
