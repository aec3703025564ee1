#!/bin/bash
# bench/owner_learn.sh LOGUARD [LGPROBE] — the cost of learning owner-only receivers (16.4).
# Needs root; runs inside its own network namespace (unshare -n): the host is never touched.
#
# policies/private-ports.yaml-like policy (owner-only over 1024-65535). One uid listens on N
# ports (BENCH_SIZES: "5000 20000") and connects once to each: every first connection is asked
# of the daemon, which learns the receiver. Meanwhile a second uid starts 100 servers one
# after another and times the first connection to each. Reported per N: the time to learn
# all, the daemon's CPU for it, receivers in the kernel, and the other uid's latencies.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SIZES=${BENCH_SIZES:-5000 20000}
LEARNER=106300
OTHER=106301
tmp=$(mktemp -d /tmp/loguard-bench.XXXXXX)
chmod 755 "$tmp"
daemon='' learners=()
cleanup() {
	[ -z "$daemon" ] || kill "$daemon" 2>/dev/null || true
	[ ${#learners[@]} -eq 0 ] || kill "${learners[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip link set lo up
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export RUNTIME_DIRECTORY="$tmp/run"
mkdir -p "$RUNTIME_DIRECTORY"
# (setpriv itself, not a shell function, in the background: $! is then the process to kill.)
cat >"$tmp/policy.yaml" <<YAML
version: 1
mode: enforce
log: { rate: 20/second }
guards:
  - name: private
    ports: ["1024-65535"]
    allow: { owner: true, users: [root] }
YAML

echo "loguard owner-learning benchmark: kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
base=2000 # each size on ports of its own, below the ephemeral range and the other uid's
for n in $SIZES; do
	rm -f "$tmp/daemon.err" # else the wait can see the last size's "guarding" line
	"$LOGUARD" -f "$tmp/policy.yaml" run >/dev/null 2>"$tmp/daemon.err" &
	daemon=$!
	for _ in $(seq 250); do grep -q '^loguard: guarding' "$tmp/daemon.err" && break; sleep 0.02; done
	t0=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat")
	setpriv --reuid="$OTHER" --regid="$OTHER" --clear-groups -- /usr/bin/python3 "$HERE/queue_flood.py" victim 30000 100 10 >"$tmp/victim.out" 2>&1 &
	victim=$!
	# One uid, in processes of at most 10,000 listeners each (the descriptor limit), one
	# after another; each keeps its listeners until the end.
	learners=() done=0 s=$(date +%s%N) learned=0
	while [ "$done" -lt "$n" ]; do
		k=$((n - done > 10000 ? 10000 : n - done))
		rm -f "$tmp/learn.out"
		HOLD_S=600 setpriv --reuid="$LEARNER" --regid="$LEARNER" --clear-groups -- /usr/bin/python3 "$HERE/queue_flood.py" learn $((base + done)) "$k" \
			>"$tmp/learn.out" 2>&1 &
		learners+=($!)
		while ! grep -q learned "$tmp/learn.out" 2>/dev/null; do
			kill -0 "${learners[-1]}" 2>/dev/null || { cat "$tmp/learn.out" >&2; exit 1; }
			sleep 0.05
		done
		learned=$((learned + $(sed -n 's/learned=\([0-9]*\).*/\1/p' "$tmp/learn.out")))
		done=$((done + k))
	done
	secs=$(awk -v a="$s" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	cpu=$(($(awk '{ print $14 + $15 }' "/proc/$daemon/stat") - t0))
	sleep 1.1 # the stats file is rewritten every second
	recv=$(sed -n 's/.*receivers=\([0-9]*\).*/\1/p' "$RUNTIME_DIRECTORY/stats" 2>/dev/null || echo '?')
	wait "$victim" || { cat "$tmp/victim.out" >&2; exit 1; }
	kill "${learners[@]}" 2>/dev/null || true
	wait "${learners[@]}" 2>/dev/null || true
	learners=()
	base=$((base + n))
	kill "$daemon"
	wait "$daemon" || true
	daemon=''
	python3 - "$tmp/victim.out" "$n" "learned $learned in $secs s" "$cpu" "$(getconf CLK_TCK)" "$recv" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ms = sorted(d["ms"]) or [float("nan")]
pct = lambda p: ms[min(len(ms) - 1, int(round(p / 100 * len(ms) + 0.5)) - 1)]
print("  N=%s: %s; daemon CPU %.2f s; receivers in the kernel %s; other uid's first connections"
      " p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed"
      % (sys.argv[2], sys.argv[3], int(sys.argv[4]) / int(sys.argv[5]), sys.argv[6], pct(50),
         pct(99), ms[-1], d["failed"]))
PY
done
