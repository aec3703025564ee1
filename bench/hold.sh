#!/bin/bash
# bench/hold.sh LOGUARD [LGPROBE] — held denials: what a judged client waits, what the daemon
# spends per record, and how many records are complete. Needs root; own network namespace.
#
# 1. Latency: one client process makes N connections one after the other to a reject guard
#    and to an audit guard (a listener is there), timing each connect() (time.perf_counter):
#    no daemon (`loguard apply`: the kernel's reject, no record), `loguard run` with the log
#    unlimited (rate 0: NFLOG, nothing held), and `loguard run` holding (the default meter,
#    burst raised so every connection is held). The same process each time: the daemon's
#    process search finds it fast (see 2 for fresh processes).
# 2. A burst of B one-shot clients (each its own process), from 3 uids, each uid's in a cgroup
#    of its own (as a user's session scope), to the reject guard and then the audit guard,
#    under `loguard run` holding: records with pid, exe, cmdline and cgroup (%), the daemon's
#    CPU (utime + stime) per record, and the clients' verdicts (5 s timeout).
#
# Environment: BENCH_N (connections per latency run, 300), BENCH_BURST (500).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_enter_netns "$HERE/$(basename "$0")" "$@"
N=${BENCH_N:-300}
BURST=${BENCH_BURST:-500}
DENY=15101
AUDIT=15102

tmp=$(mktemp -d /tmp/loguard-hbench.XXXXXX)
chmod 755 "$tmp"
export RUNTIME_DIRECTORY="$tmp"
pids=()
cgs=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for c in "${cgs[@]}"; do rmdir "$c" 2>/dev/null || true; done
	"$LOGUARD" -f "$tmp/rate0.yaml" flush >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ip link set lo up
cp "$LGPROBE" "$tmp/lgprobe" # reachable by the test uids

policy() { # policy FILE RATE
	cat >"$1" <<YAML
version: 1
mode: enforce
log: { rate: $2, burst: 100000 }
guards:
  - name: deny
    ports: [$DENY]
    allow: { users: [root] }
    action: reject
  - name: audit
    ports: [$AUDIT]
    mode: audit
    allow: { users: [root] }
YAML
}
policy "$tmp/hold.yaml" "1/minute"
policy "$tmp/rate0.yaml" 0

"$tmp/lgprobe" listen tcp 127.0.0.1 "$AUDIT" >"$tmp/sink.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^ready$' "$tmp/sink.out" && break; sleep 0.05; done

latency() { # latency PORT: "median p90 p99" of N connect() times in microseconds
	setpriv --reuid=105001 --regid=105001 --clear-groups /usr/bin/python3 - "$1" "$N" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
t = []
for _ in range(n):
    s = socket.socket()
    t0 = time.perf_counter()
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        pass
    t.append((time.perf_counter() - t0) * 1e6)
    s.close()
t.sort()
print("%.0f %.0f %.0f" % (t[n // 2], t[n * 9 // 10], t[n * 99 // 100]))
PY
}

start() { # start POLICY: loguard run in the background, pid in dpid
	rm -f "$tmp/err"
	"$LOGUARD" -f "$1" run >"$tmp/records" 2>"$tmp/err" &
	dpid=$!
	for _ in $(seq 250); do grep -q "guarding with" "$tmp/err" 2>/dev/null && break; sleep 0.02; done
}
stop() { kill -TERM "$dpid"; wait "$dpid" || true; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

printf 'connect() latency, us (median p90 p99), %d connections of one process\n' "$N"
printf '%-34s %-20s %s\n' "" "reject guard" "audit guard"
"$LOGUARD" -f "$tmp/rate0.yaml" apply >/dev/null
printf '%-34s %-20s %s\n' "no daemon (kernel only)" "$(latency $DENY)" "$(latency $AUDIT)"
"$LOGUARD" -f "$tmp/rate0.yaml" flush >/dev/null
start "$tmp/rate0.yaml"
printf '%-34s %-20s %s\n' "loguard run, rate 0 (NFLOG)" "$(latency $DENY)" "$(latency $AUDIT)"
stop
start "$tmp/hold.yaml"
printf '%-34s %-20s %s\n' "loguard run, held" "$(latency $DENY)" "$(latency $AUDIT)"
stop

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
for u in 105001 105002 105003; do
	mkdir "$cg2/lgbench-$$-$u.scope" && cgs+=("$cg2/lgbench-$$-$u.scope")
done
printf '\nburst of %d one-shot clients from 3 uids, loguard run holding\n' "$BURST"
for port in $DENY $AUDIT; do
	start "$tmp/hold.yaml"
	t0=$(ticks "$dpid")
	( # a subshell: its wait is for the clients alone
		for ((i = 0; i < BURST; i++)); do
			u=$((105001 + i % 3))
			sh -c 'echo $$ >"$1/cgroup.procs" && exec setpriv --reuid="$2" --regid="$2" \
				--clear-groups "$3" connect tcp 127.0.0.1 "$4" --timeout-ms 5000' _ \
				"$cg2/lgbench-$$-$u.scope" $u "$tmp/lgprobe" "$port" \
				>"$tmp/verdict.$port.$i" 2>&1 &
		done
		wait
	)
	sleep 0.5
	t1=$(ticks "$dpid")
	rss=$(awk '/VmHWM/ { print $2 }' "/proc/$dpid/status")
	stop
	grep '^loguard: held' "$tmp/err" | sed 's/^/  /'
	echo "  peak RSS $rss kB"
	python3 - "$tmp/records" "$port" $((t1 - t0)) "$hz" "$(cat "$tmp"/verdict.$port.* | sort | uniq -c | tr -s ' \n' ' ')" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
recs = [r for r in recs if r.get("type") == "connection" and r["dport"] == int(sys.argv[2])]
full = [r for r in recs if all(r[k] is not None for k in ("pid", "exe", "cmdline", "cgroup"))]
lis = [r for r in recs if r["listening"] is not None]
ticks, hz = int(sys.argv[3]), int(sys.argv[4])
print("port %s: clients:%s records %d, complete %d (%.1f %%), listener known %d, daemon CPU %.0f us/record"
      % (sys.argv[2], sys.argv[5], len(recs), len(full), 100.0 * len(full) / max(len(recs), 1),
         len(lis), ticks * 1e6 / hz / max(len(recs), 1)))
PY
done
