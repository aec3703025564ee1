#!/bin/bash
# bench/queue_flood.sh LOGUARD [LGPROBE] — the daemon under a queue flood (issue 9.5).
# Needs root; runs inside its own network namespace (unshare -n): the host is never touched.
#
# An owner-only policy over ports 20000-29999. A flooder uid keeps INFLIGHT (2,000)
# non-blocking connects to closed ports of it in flight, each from a low descriptor number
# while holding 15,000 others (bench/queue_flood.py flood). Meanwhile a victim uid starts
# VICTIMS (100) servers one after another and times the first connection to each (each is
# asked of the daemon), and the daemon is sent SIGHUP (time until it says "reloaded") and at
# the end SIGTERM (time until it exits). Reported: the victim's latencies (p50, p99, max,
# failures), the two reaction times, the flood's attempts and the daemon's CPU. ROUNDS (3)
# repetitions. Environment: BENCH_ROUNDS, BENCH_INFLIGHT, BENCH_VICTIMS.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
ROUNDS=${BENCH_ROUNDS:-3}
INFLIGHT=${BENCH_INFLIGHT:-2000}
VICTIMS=${BENCH_VICTIMS:-100}
FLOODER=106200
VICTIM=106201
tmp=$(mktemp -d /tmp/loguard-bench.XXXXXX)
chmod 755 "$tmp"
daemon='' flood=''
cleanup() {
	[ -z "$daemon" ] || kill "$daemon" 2>/dev/null || true
	[ -z "$flood" ] || kill "$flood" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip link set lo up
export RUNTIME_DIRECTORY="$tmp/run"
mkdir -p "$RUNTIME_DIRECTORY"
# (setpriv itself, not a shell function, in the background: $! is then the process to kill.)
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cat >"$tmp/policy.yaml" <<YAML
version: 1
log: { rate: 20/second }
guards:
  - name: private
    ports: ["20000-29999"]
    allow: { owner: true }
YAML

echo "loguard queue-flood benchmark: kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "flooder: $INFLIGHT connects in flight, 15,000 descriptors held; victim: $VICTIMS first connections"
for r in $(seq "$ROUNDS"); do
	rm -f "$tmp/daemon.err"
	"$LOGUARD" -f "$tmp/policy.yaml" run >/dev/null 2>"$tmp/daemon.err" &
	daemon=$!
	for _ in $(seq 250); do grep -q '^loguard: guarding' "$tmp/daemon.err" && break; sleep 0.02; done
	setpriv --reuid="$FLOODER" --regid="$FLOODER" --clear-groups -- /usr/bin/python3 "$HERE/queue_flood.py" flood 15000 "$INFLIGHT" 20000 20999 600 \
		>"$tmp/flood.out" 2>&1 &
	flood=$!
	sleep 2
	t0=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat")
	setpriv --reuid="$VICTIM" --regid="$VICTIM" --clear-groups -- /usr/bin/python3 "$HERE/queue_flood.py" victim 25000 "$VICTIMS" 10 >"$tmp/victim.out" 2>&1 &
	victim=$!
	sleep 1
	s=$(now_ms)
	kill -HUP "$daemon"
	while ! grep -q '^loguard: reloaded' "$tmp/daemon.err"; do
		sleep 0.002
		[ $(($(now_ms) - s)) -lt 60000 ] || break
	done
	hup=$(($(now_ms) - s))
	wait "$victim"
	cpu=$(($(awk '{ print $14 + $15 }' "/proc/$daemon/stat") - t0))
	s=$(now_ms)
	kill -TERM "$daemon"
	wait "$daemon" || true
	term=$(($(now_ms) - s))
	daemon=''
	kill "$flood"
	wait "$flood" 2>/dev/null || true
	flood=''
	python3 - "$tmp/victim.out" "$hup" "$term" "$cpu" "$(getconf CLK_TCK)" "$r" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ms = sorted(d["ms"]) or [float("nan")]
pct = lambda p: ms[min(len(ms) - 1, int(round(p / 100 * len(ms) + 0.5)) - 1)]
print("  round %s: victim first connections p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed;"
      " SIGHUP answered in %s ms, SIGTERM in %s ms; daemon CPU %.2f s"
      % (sys.argv[6], pct(50), pct(99), ms[-1], d["failed"], sys.argv[2], sys.argv[3],
         int(sys.argv[4]) / int(sys.argv[5])))
PY
done
