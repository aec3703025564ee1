#!/bin/bash
# bench/reload.sh LOGUARD [LGPROBE] — how long `loguard run` takes to reload when one guard
# changes, for a small and a big policy. Needs root; runs inside its own network namespace.
#
# For each size (BENCH_SIZES, default "10 10000" guards, bench/gen_policy.sh) and layout: the
# daemon runs the policy; ROUNDS times one guard's allowed uid flips between two values and
# SIGHUP reloads it. Layouts (BENCH_LAYOUTS, default "file dropins"): `file` is one policy
# file, so the changed file is the whole policy; `dropins` is the main file with the first
# guard and the others in policy.d/ drop-ins of 100 guards, one of which changes. Reported:
# the median reload time the daemon states itself (read and judge every file, parse what
# changed, resolve, compile, send the difference), the median daemon CPU per reload
# (/proc/PID/schedstat around each SIGHUP), the elements it changed, and in the same run the
# time `nft -f` takes to replace a table of the same content (`loguard print` output, under
# another table name): what an admin who reloads a firewall from a file would otherwise wait
# for.
#
# BENCH_BASE=OTHER_LOGUARD measures that binary too (an older build), interleaved with LOGUARD
# (daemon runs in the order A B B A), and reports the ratio of the two.
#
# Environment: BENCH_SIZES ("10 10000"), BENCH_LAYOUTS ("file dropins"), BENCH_ROUNDS (7),
# BENCH_BASE (unset).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${BENCH_BASE:-}
[ -z "$BASE" ] || BASE=$(cd "$(dirname "$BASE")" && pwd)/$(basename "$BASE")
export BENCH_BASE=$BASE
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SIZES=${BENCH_SIZES:-10 10000}
LAYOUTS=${BENCH_LAYOUTS:-file dropins}
ROUNDS=${BENCH_ROUNDS:-7}

tmp=$(mktemp -d /tmp/loguard-rbench.XXXXXX)
chmod 755 "$tmp"
export RUNTIME_DIRECTORY="$tmp"
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ip link set lo up

cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat"; }

# make_layout N LAYOUT: $tmp/a/ and $tmp/b/ (policy.yaml, policy.d/) differ in one guard's uid.
make_layout() {
	local n=$1 layout=$2 v
	rm -rf "$tmp/a" "$tmp/b"
	mkdir -p "$tmp/a/policy.d" "$tmp/b/policy.d"
	"$HERE/gen_policy.sh" "$n" >"$tmp/all.yaml"
	if [ "$layout" = file ]; then
		cp "$tmp/all.yaml" "$tmp/a/policy.yaml"
		# Guard 0's allowed uid changed.
		sed '0,/users: \[100000\]/s//users: [99999]/' "$tmp/all.yaml" >"$tmp/b/policy.yaml"
		return
	fi
	# The header and guard 0 in the main file, then 100 guards per drop-in.
	awk -v dir="$tmp/a" '
		/^  - name:/ { g++ }
		g <= 1 { print > (dir "/policy.yaml"); next }
		{ f = sprintf("%s/policy.d/%04d.yaml", dir, int((g - 2) / 100))
		  if (!(f in seen)) { print "guards:" > f; seen[f] = 1 }
		  print > f }' "$tmp/all.yaml"
	cp -r "$tmp/a/." "$tmp/b/"
	# The middle drop-in's first guard gets another uid.
	v=$(ls "$tmp/a/policy.d" | awk '{ f[NR] = $0 } END { print f[int((NR + 1) / 2)] }')
	[ -n "$v" ] || { echo "reload.sh: $n guards make no drop-in" >&2; exit 2; }
	sed -E '0,/users: \[([0-9]+)\]/s//users: [99999]/' "$tmp/a/policy.d/$v" >"$tmp/b/policy.d/$v"
	cmp -s "$tmp/a/policy.d/$v" "$tmp/b/policy.d/$v" && { echo "no change made" >&2; exit 1; }
	return 0
}

# session BINARY LAYOUT: one daemon, ROUNDS reloads; appends to times_X / cpus_X, sets changes.
session() {
	local bin=$1 tag=$2 layout=$3 i r before c0 line
	local -n times=times_$tag cpus=cpus_$tag
	rm -rf "$tmp/live" && mkdir -p "$tmp/live" && cp -r "$tmp/a/." "$tmp/live/"
	local args=(-f "$tmp/live/policy.yaml")
	[ "$layout" = file ] || args+=(-d "$tmp/live/policy.d")
	: >"$tmp/err"
	"$bin" "${args[@]}" run >/dev/null 2>"$tmp/err" &
	pid=$!
	for ((i = 0; i < 1500; i++)); do
		grep -q '^loguard: guarding' "$tmp/err" && break
		sleep 0.02
	done
	grep -q '^loguard: guarding' "$tmp/err" || { cat "$tmp/err"; exit 1; }
	sleep 0.2 # let the start settle (first stats write)
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then cp -r "$tmp/b/." "$tmp/live/"; else cp -r "$tmp/a/." "$tmp/live/"; fi
		before=$(grep -c '^loguard: reloaded' "$tmp/err" || true)
		c0=$(cpu_ns "$pid")
		kill -HUP "$pid"
		for ((i = 0; i < 3000; i++)); do
			[ "$(grep -c '^loguard: reloaded' "$tmp/err" || true)" -gt "$before" ] && break
			sleep 0.005
		done
		cpus+=("$(awk -v a="$c0" -v b="$(cpu_ns "$pid")" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')")
		line=$(grep '^loguard: reloaded' "$tmp/err" | tail -1)
		[ -n "$line" ] || { cat "$tmp/err"; exit 1; }
		times+=("$(sed -E 's/.* in ([0-9.]+) ms.*/\1/' <<<"$line")")
		changes=$(sed -E 's/.*\(([0-9]+) elements added, ([0-9]+) removed\).*/+\1 -\2/' <<<"$line")
	done
	kill "$pid"
	wait "$pid" || true
	pid=
}

echo "loguard reload benchmark, load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
[ -z "$BASE" ] || echo "A = $LOGUARD, B = $BASE (BENCH_BASE), runs in the order A B B A"
printf '%-8s %-8s %12s %12s %12s %12s %8s\n' guards layout "reload (ms)" "CPU (ms)" \
	"elements" "nft -f (ms)" ratio
figures=""
for n in $SIZES; do
	for layout in $LAYOUTS; do
		make_layout "$n" "$layout"
		times_A=() cpus_A=() times_B=() cpus_B=() changes=""
		if [ -n "$BASE" ]; then
			session "$LOGUARD" A "$layout"
			session "$BASE" B "$layout"
			session "$BASE" B "$layout"
			session "$LOGUARD" A "$layout"
		else
			session "$LOGUARD" A "$layout"
		fi
		# Baseline: nft -f replacing a table of the same content (another name: ours is
		# gone now, but keep the two apart anyway).
		pargs=(-f "$tmp/b/policy.yaml")
		[ "$layout" = file ] || pargs+=(-d "$tmp/b/policy.d")
		"$LOGUARD" "${pargs[@]}" print | sed 's/^table inet loguard /table inet nftbase /' >"$tmp/t.nft"
		printf 'table inet nftbase {}\ndelete table inet nftbase\n' | cat - "$tmp/t.nft" >"$tmp/replace.nft"
		nft -f "$tmp/t.nft"
		nft_times=()
		for ((r = 1; r <= ROUNDS; r++)); do
			t0=$(date +%s%N)
			nft -f "$tmp/replace.nft"
			nft_times+=("$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')")
		done
		nft delete table inet nftbase
		rl=$(median "${times_A[@]}") cpu=$(median "${cpus_A[@]}")
		nf=$(median "${nft_times[@]}")
		printf '%-8s %-8s %12s %12s %12s %12s %8s\n' "$n" "$layout" "$rl" "$cpu" "$changes" "$nf" \
			"$(ratio "$rl" "$nf")"
		sfx=$n
		[ "$layout" = file ] || sfx=${n}_$layout
		figures+="reload_ms_$sfx=$rl reload_cpu_ms_$sfx=$cpu nft_ms_$sfx=$nf "
		if [ -n "$BASE" ]; then
			brl=$(median "${times_B[@]}") bcpu=$(median "${cpus_B[@]}")
			printf '%-8s %-8s %12s %12s %12s   B (BENCH_BASE); A/B: time %s, CPU %s\n' "$n" \
				"$layout" "$brl" "$bcpu" "" "$(ratio "$rl" "$brl")" "$(ratio "$cpu" "$bcpu")"
			figures+="base_reload_ms_$sfx=$brl base_reload_cpu_ms_$sfx=$bcpu "
		fi
	done
done
echo "(reload: median of $ROUNDS SIGHUPs per daemon run, one guard changed each time, as the"
echo " daemon reports it; CPU: the daemon's, from schedstat; nft -f: median of $ROUNDS"
echo " replacements of the same table; ratio = reload / nft -f)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "figures: $figures" # one line for bench/all.sh
