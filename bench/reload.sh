#!/bin/bash
# bench/reload.sh LOGUARD [LGPROBE] — how long `loguard run` takes to reload when one guard
# changes, for a small and a big policy. Needs root; runs inside its own network namespace.
#
# For each size (BENCH_SIZES, default "10 10000" guards, bench/gen_policy.sh): the daemon runs
# the policy; ROUNDS times the policy file flips between two versions that differ in one
# guard's allowed uid, and SIGHUP reloads it. Reported: the median reload time the daemon
# states itself (parse, resolve, compile, read back the installed table, send the difference),
# the elements it changed, and in the same run the time `nft -f` takes to replace a table of
# the same content (`loguard print` output, under another table name): what an admin who
# reloads a firewall from a file would otherwise wait for.
#
# Environment: BENCH_SIZES ("10 10000"), BENCH_ROUNDS (7).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SIZES=${BENCH_SIZES:-10 10000}
ROUNDS=${BENCH_ROUNDS:-7}

tmp=$(mktemp -d /tmp/loguard-rbench.XXXXXX)
export RUNTIME_DIRECTORY="$tmp"
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ip link set lo up

printf '%-8s %16s %18s %16s %8s\n' guards "reload (ms)" "elements +/-" "nft -f (ms)" ratio
figures=""
for n in $SIZES; do
	"$HERE/gen_policy.sh" "$n" >"$tmp/a.yaml"
	# The same policy with guard 0's allowed uid changed.
	sed '0,/users: \[100000\]/s//users: [99999]/' "$tmp/a.yaml" >"$tmp/b.yaml"
	cp "$tmp/a.yaml" "$tmp/policy.yaml"
	"$LOGUARD" -f "$tmp/policy.yaml" run >/dev/null 2>"$tmp/err" &
	pid=$!
	for ((i = 0; i < 1500; i++)); do
		grep -q '^loguard: guarding' "$tmp/err" && break
		sleep 0.02
	done
	grep -q '^loguard: guarding' "$tmp/err" || { cat "$tmp/err"; exit 1; }
	times=() changes=""
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then cp "$tmp/b.yaml" "$tmp/policy.yaml"; else cp "$tmp/a.yaml" "$tmp/policy.yaml"; fi
		before=$(grep -c '^loguard: reloaded' "$tmp/err" || true)
		kill -HUP "$pid"
		for ((i = 0; i < 3000; i++)); do
			[ "$(grep -c '^loguard: reloaded' "$tmp/err" || true)" -gt "$before" ] && break
			sleep 0.01
		done
		line=$(grep '^loguard: reloaded' "$tmp/err" | tail -1)
		[ -n "$line" ] || { cat "$tmp/err"; exit 1; }
		times+=("$(sed -E 's/.* in ([0-9.]+) ms.*/\1/' <<<"$line")")
		changes=$(sed -E 's/.*\(([0-9]+) elements added, ([0-9]+) removed\).*/+\1 -\2/' <<<"$line")
	done
	kill "$pid"
	wait "$pid" || true
	pid=
	# Baseline: nft -f replacing a table of the same content (another name: ours is gone now,
	# but keep the two apart anyway).
	"$LOGUARD" -f "$tmp/b.yaml" print | sed 's/^table inet loguard /table inet nftbase /' >"$tmp/t.nft"
	printf 'table inet nftbase {}\ndelete table inet nftbase\n' | cat - "$tmp/t.nft" >"$tmp/replace.nft"
	nft -f "$tmp/t.nft"
	nft_times=()
	for ((r = 1; r <= ROUNDS; r++)); do
		t0=$(date +%s%N)
		nft -f "$tmp/replace.nft"
		nft_times+=("$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')")
	done
	nft delete table inet nftbase
	rl=$(median "${times[@]}")
	nf=$(median "${nft_times[@]}")
	printf '%-8s %16s %18s %16s %8s\n' "$n" "$rl" "$changes" "$nf" "$(ratio "$rl" "$nf")"
	figures+="reload_ms_$n=$rl nft_ms_$n=$nf "
done
echo "(reload: median of $ROUNDS SIGHUPs, one guard changed each time, as the daemon reports it;"
echo " nft -f: median of $ROUNDS replacements of the same table; ratio = reload / nft -f)"
echo "figures: $figures" # one line for bench/all.sh
