#!/bin/bash
# bench/daemon.sh LOGUARD [LGPROBE] — the audit daemon under a connection flood, one run.
# Needs root; runs inside its own network namespace (unshare -n).
#
# Interleaved over ROUNDS rounds: the loopback TCP connection rate with no table, then the same
# flood through an audit guard (log rate limit off) while `loguard run` writes a record for every
# connection. Reports the logged rate as a ratio to the no-table rate of the same round,
# records written per second, records lost (received + lost must equal sent), the daemon's
# peak RSS and CPU per record, and its wakeups over IDLE seconds without traffic (should be 0).
#
# Environment: BENCH_SECONDS (per flood, 3), BENCH_ROUNDS (3), BENCH_THREADS (client threads,
# number of CPUs), BENCH_IDLE (idle seconds watched, 5).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-$(nproc)}
IDLE=${BENCH_IDLE:-5}
PORT=15000
UID_CLIENT=105000

tmp=$(mktemp -d /tmp/loguard-dbench.XXXXXX)
chmod 755 "$tmp"
export RUNTIME_DIRECTORY="$tmp" # the daemon's live counters, off the host's /run
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
ip link set lo up

cat >"$tmp/audit.yaml" <<YAML
version: 1
mode: audit
log: { rate: 0 }
guards:
  - name: flood
    ports: [$PORT]
YAML

"$LGPROBE" sink tcp 127.0.0.1 "$PORT" --threads "$THREADS" >"$tmp/sink.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^ready$' "$tmp/sink.out" && break; sleep 0.05; done

flood() { # prints "conns rate"
	local out
	out=$(setpriv --reuid=$UID_CLIENT --regid=$UID_CLIENT --clear-groups "$LGPROBE" flood tcp \
		127.0.0.1 "$PORT" --seconds "$SECS" --threads "$THREADS" --src 127.0.0.2-127.0.0.254)
	sed -n 's/.*conns=\([0-9]*\).*rate=\([0-9.]*\).*/\1 \2/p' <<<"$out"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime, clock ticks
hz=$(getconf CLK_TCK)

printf 'round  no-table conn/s  logged conn/s  ratio  records  lost  daemon CPU us/record\n'
ratios=()
for r in $(seq "$ROUNDS"); do
	read -r _ base < <(flood)
	rm -f "$tmp/err" # else the wait below can see the last round's "guarding with"
	"$LOGUARD" -f "$tmp/audit.yaml" run >"$tmp/records" 2>"$tmp/err" &
	dpid=$!
	for _ in $(seq 100); do grep -q "guarding with" "$tmp/err" 2>/dev/null && break; sleep 0.02; done
	t0=$(ticks "$dpid")
	read -r sent rate < <(flood)
	sleep 0.5
	t1=$(ticks "$dpid")
	syns=$("$LOGUARD" show --json | sed 's/.*"connections":\([0-9]*\).*/\1/')
	rss=$(awk '/VmHWM/ { print $2 }' "/proc/$dpid/status")
	kill -TERM "$dpid"
	wait "$dpid"
	n=$(grep -c '"type":"connection"' "$tmp/records" || true)
	stats=$(grep '"type":"stats"' "$tmp/records" | tail -1)
	lost=$(sed 's/.*"lost":\([0-9]*\).*/\1/' <<<"$stats")
	enobufs=$(sed 's/.*"enobufs":\([0-9]*\).*/\1/' <<<"$stats")
	# Every logged SYN (the guard's kernel counter; retransmits count) is a record or lost.
	[ $((n + lost)) -eq "$syns" ] || echo "  ACCOUNTING ERROR: $syns SYNs, records $n, lost $lost"
	[ "$syns" -ge "$sent" ] || echo "  ACCOUNTING ERROR: $syns SYNs for $sent connections"
	cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
	ratio=$(awk -v a="$rate" -v b="$base" 'BEGIN { printf "%.3f", a / b }')
	ratios+=("$ratio")
	printf '%5d  %15.0f  %13.0f  %5s  %7d  %4d  %20s   (peak RSS %s kB, ENOBUFS %s)\n' "$r" \
		"$base" "$rate" "$ratio" "$n" "$lost" "$cpu" "$rss" "$enobufs"
done

# Idle: no traffic, count the daemon's context switches (each is a wakeup).
rm -f "$tmp/err"
"$LOGUARD" -f "$tmp/audit.yaml" run >"$tmp/records" 2>"$tmp/err" &
dpid=$!
pids+=($dpid)
for _ in $(seq 100); do grep -q "guarding with" "$tmp/err" 2>/dev/null && break; sleep 0.02; done
sleep 0.5
c0=$(awk '/^voluntary_ctxt_switches|^nonvoluntary_ctxt_switches/ { s += $2 } END { print s }' "/proc/$dpid/status")
sleep "$IDLE"
c1=$(awk '/^voluntary_ctxt_switches|^nonvoluntary_ctxt_switches/ { s += $2 } END { print s }' "/proc/$dpid/status")
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$dpid/status")
printf '\nidle %ss: %d wakeups, RSS %s kB\n' "$IDLE" $((c1 - c0)) "$rss"
printf 'median ratio logged/no-table: %s\n' "$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
