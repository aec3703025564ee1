#!/bin/bash
# bench/process.sh LOGUARD [LGPROBE] — connection rate through what loguard run judges.
# Needs root; runs inside its own network namespace (unshare -n): the host is never touched.
#
# One sink server on 127.0.0.1:PORT, run as uid U; one flood client, also uid U, running a
# root-owned copy of lgprobe. Configurations, interleaved over ROUNDS rounds, medians reported:
#   (a) no table;
#   (b) an executable guard on PORT allowing that copy: every connection goes through the
#       NFQUEUE to the daemon (sock_diag lookup, /proc scan of the uid's processes, verdict);
#   (c) an owner-only guard over PORT: the first connection teaches the daemon the receiver,
#       every later one is decided by the kernel's owner set.
# Before measuring (b) and (c) the script checks that they refuse: the plain lgprobe binary in
# (b), another uid in (c). Environment: BENCH_SECONDS (2), BENCH_ROUNDS (4), BENCH_THREADS (nproc).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SECONDS_PER=${BENCH_SECONDS:-2}
ROUNDS=${BENCH_ROUNDS:-4}
THREADS=${BENCH_THREADS:-$(nproc)}
PORT=17000
U=106000
tmp=$(mktemp -d /tmp/loguard-bench.XXXXXX)
chmod 755 "$tmp"
pids=() daemon=
cleanup() {
	local p
	[ -z "$daemon" ] || kill "$daemon" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip link set lo up

exe="$tmp/client"
cp "$LGPROBE" "$exe"
chmod 755 "$exe"
as_u() { setpriv --reuid="$1" --regid="$1" --clear-groups -- "${@:2}"; }

as_u "$U" "$LGPROBE" sink tcp 127.0.0.1 "$PORT" --threads "$THREADS" >"$tmp/sink.out" 2>&1 &
pids+=($!)
for _ in $(seq 250); do grep -q ready "$tmp/sink.out" && break; sleep 0.02; done
grep -q ready "$tmp/sink.out" || { cat "$tmp/sink.out"; echo "sink server failed" >&2; exit 1; }

cat >"$tmp/exec.yaml" <<YAML
version: 1
log: { rate: 0 }
guards:
  - name: exec
    ports: [$PORT]
    allow: { executables: [$exe] }
YAML
cat >"$tmp/owner.yaml" <<YAML
version: 1
log: { rate: 0 }
guards:
  - name: private
    ports: ["$PORT-$((PORT + 999))"]
    allow: { owner: true }
YAML

flood() { # SECONDS → "RATE CPU_US_PER_CONN"; any failed connection aborts the bench
	local out
	out=$(as_u "$U" "$exe" flood tcp 127.0.0.1 "$PORT" --seconds "$1" --threads "$THREADS" \
		--src 127.0.0.2-127.0.0.254 2>&1) || { echo "flood failed: $out" >&2; exit 1; }
	printf '%s\n' "$out" | sed -n 's/.*rate=\([0-9.]*\) cpu_us_per_conn=\([0-9.]*\).*/\1 \2/p'
}
daemon_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$daemon/stat"; }

setup() { # a|b|c
	if [ -n "$daemon" ]; then
		kill "$daemon"
		wait "$daemon" || true
		daemon=
	fi
	local p v who bin
	case $1 in
	a) return 0 ;;
	b) p="$tmp/exec.yaml" who=$U bin=$LGPROBE ;;
	c) p="$tmp/owner.yaml" who=$((U + 1)) bin=$exe ;;
	esac
	"$LOGUARD" -f "$p" run >"$tmp/records" 2>"$tmp/daemon.err" &
	daemon=$!
	for _ in $(seq 250); do grep -q '^loguard: guarding' "$tmp/daemon.err" && break; sleep 0.02; done
	grep -q '^loguard: guarding' "$tmp/daemon.err" || { cat "$tmp/daemon.err"; exit 1; }
	v=$(as_u "$who" "$bin" connect tcp 127.0.0.1 "$PORT" --timeout-ms 1000 2>/dev/null || true)
	[ "$v" = refused ] || { echo "config $1: expected refused, got '$v'" >&2; exit 1; }
}

echo "loguard process-identity benchmark: kernel $(uname -r), $(nproc) CPUs, $THREADS client threads"
flood 1 >/dev/null
declare -A rates=([a]="" [b]="" [c]="") last
rb="" rc="" dcpu=""
for r in $(seq "$ROUNDS"); do
	order="a b c"
	[ $((r % 2)) -eq 0 ] && order="c b a"
	for c in $order; do
		setup "$c"
		t0=0
		[ -z "$daemon" ] || t0=$(daemon_cpu_ticks)
		read -r v cpu < <(flood "$SECONDS_PER")
		if [ "$c" = b ]; then # daemon CPU per judged connection, in microseconds
			n=$(awk -v r="$v" -v s="$SECONDS_PER" 'BEGIN { print r * s }')
			dcpu+="$(awk -v t="$(($(daemon_cpu_ticks) - t0))" -v hz="$(getconf CLK_TCK)" -v n="$n" \
				'BEGIN { printf "%.1f", t / hz * 1e6 / n }') "
		fi
		rates[$c]+="$v "
		last[$c]=$v
		printf '  round %d  (%s) %10.0f conn/s %8.2f us CPU/conn (client)\n' "$r" "$c" "$v" "$cpu"
	done
	rb+="$(ratio "${last[b]}" "${last[a]}") "
	rc+="$(ratio "${last[c]}" "${last[a]}") "
done
setup a

# shellcheck disable=SC2086 # the lists split on purpose
ma=$(median ${rates[a]}) mb=$(median ${rates[b]}) mc=$(median ${rates[c]})
echo
echo "================================================================================"
printf '%-46s %9s %13s  %s\n' "connection rate ($ROUNDS rounds)" "median" "min-max" "ratio to (a): of medians / median per round"
# shellcheck disable=SC2086
printf '%-46s %9.0f %13s  %s\n' "(a) no table" "$ma" "$(spread ${rates[a]})" "1.000"
# shellcheck disable=SC2086
printf '%-46s %9.0f %13s  %s / %s\n' "(b) executable guard (every connection queued)" "$mb" \
	"$(spread ${rates[b]})" "$(ratio "$mb" "$ma")" "$(printf '%.3f' "$(median $rb)")"
# shellcheck disable=SC2086
printf '%-46s %9.0f %13s  %s / %s\n' "(c) owner-only, receiver known to the kernel" "$mc" \
	"$(spread ${rates[c]})" "$(ratio "$mc" "$ma")" "$(printf '%.3f' "$(median $rc)")"
# shellcheck disable=SC2086
echo "daemon CPU per judged connection in (b): $(median $dcpu) us (per round: $dcpu)"
