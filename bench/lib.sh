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

# bench_flood UID BIN PORT SECONDS THREADS: a TCP connect/accept flood to 127.0.0.1:PORT from
# BIN (an lgprobe) as UID; prints "RATE CLIENT_CPU_US_PER_CONN". Any failed connection stops the
# bench: a refused flood would look fast.
bench_flood() {
	local out
	out=$(setpriv --reuid="$1" --regid="$1" --clear-groups -- "$2" flood tcp 127.0.0.1 "$3" \
		--seconds "$4" --threads "$5" --src 127.0.0.2-127.0.0.254 2>&1) ||
		{ echo "flood failed: $out" >&2; exit 1; }
	printf '%s\n' "$out" | sed -n 's/.*rate=\([0-9.]*\) cpu_us_per_conn=\([0-9.]*\).*/\1 \2/p'
}

# bench_cpu_ticks PID: user + system CPU of a process (all its threads), in clock ticks.
bench_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# bench_us_per_conn TICKS RATE SECONDS: CPU microseconds per connection of a flood.
bench_us_per_conn() {
	awk -v t="$1" -v r="$2" -v s="$3" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { if (r * s > 0) printf "%.1f", t / hz * 1e6 / (r * s); else print "n/a" }'
}

# bench_servers_ready DIR NAME...: until each server's DIR/NAME.out says "ready"; exits with
# its output if one does not.
bench_servers_ready() {
	local dir=$1 f
	shift
	for f in "$@"; do
		bench_wait_for "$dir/$f.out" ready || { cat "$dir/$f.out"; echo "$f server failed" >&2; exit 1; }
	done
}

# bench_exec_policy FILE PORT EXE: a policy whose one guard lets only EXE connect to PORT (the
# flood's sink) and PORT+1 (the echo server the refusal checks use); no log meter.
bench_exec_policy() {
	cat >"$1" <<YAML
version: 1
log: { rate: 0 }
guards:
  - name: exec
    ports: [$2, $(($2 + 1))]
    allow: { executables: [$3] }
YAML
}

# bench_wait_for FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN (grep -E);
# fails after SECONDS (20: a loaded 2-core machine took more than 5 to start a daemon).
bench_wait_for() {
	local i
	for i in $(seq $((${3:-20} * 50))); do
		grep -q -E -- "$2" "$1" 2>/dev/null && return 0
		[ "$i" -gt 0 ] && sleep 0.02
	done
	return 1
}

# bench_rate_row WIDTH NAME "RATES" BASE "RATIOS" ["DAEMON_US"]: one line of a summary: the median
# of RATES and their min-max, the ratio of that median to BASE / the median of the per-round
# RATIOS, and the median daemon CPU µs per connection when given.
bench_rate_row() {
	local m
	# shellcheck disable=SC2086 # the lists split on purpose
	m=$(median $3)
	# shellcheck disable=SC2086
	printf "  %-${1}s %9.0f %13s  %s / %s%s\n" "$2" "$m" "$(spread $3)" "$(ratio "$m" "$4")" \
		"$(printf '%.3f' "$(median $5)")" "$([ -z "${6:-}" ] || printf '; %s us' "$(median $6)")"
}

# bench_order ROUND CONFIGS...: the configurations in the order of that round, reversed every
# other round so that slow drift (other load, CPU frequency) hits each alike.
bench_order() {
	local r=$1
	shift
	if [ $((r % 2)) -eq 0 ]; then printf '%s\n' "$@" | tac | tr '\n' ' '; else echo "$@"; fi
}

# bench_note ROUND THREADS CONFIG RATE CLIENT_US: keep one measurement in the caller's `rates`
# and `last` arrays (declare -A, keyed THREADS.CONFIG) and print its line.
bench_note() {
	rates[$2.$3]+="$4 "
	last[$2.$3]=$4
	printf '  round %d  %d threads (%-4s) %10.0f conn/s %8.2f us CPU/conn (client)\n' "$@"
}

# bench_round_ratios THREADS BASE CONFIGS...: at the end of a round, each config's rate over
# BASE's of the same round, appended to the caller's `ratios` array.
bench_round_ratios() {
	local t=$1 b=$2 c
	shift 2
	for c in "$@"; do ratios[$t.$c]+="$(ratio "${last[$t.$c]}" "${last[$t.$b]}") "; done
}

# bench_rate_block WIDTH THREADS CONFIGS...: the summary of one thread count, from the caller's
# `names`, `rates`, `ratios` and `dcpu` arrays and ROUNDS; the first config is the baseline.
bench_rate_block() {
	local w=$1 t=$2 base c
	shift 2
	# shellcheck disable=SC2086 # the list splits on purpose
	base=$(median ${rates[$t.$1]})
	printf "%d client threads, %d rounds %$((w - 22))s %9s %13s  %s\n" "$t" "$ROUNDS" "" \
		"median" "min-max" "ratio to ($1): of medians / median per round; daemon us/conn"
	for c in "$@"; do
		bench_rate_row "$w" "${names[$c]}" "${rates[$t.$c]}" "$base" "${ratios[$t.$c]}" \
			"${dcpu[$t.$c]:-}"
	done
}
