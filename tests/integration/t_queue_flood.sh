#!/bin/bash
# A uid flooding the queue (issue 9.5): SYNs to closed owner-only ports, each from a low
# descriptor number while it holds 15,000 others (a process search walks them all), about
# 2,000 in flight. Meanwhile another user's first connections to new servers (each one asked
# of the daemon) must all succeed, and the daemon must answer SIGHUP and then SIGTERM. Only
# correctness is asserted, with generous limits (5 s per connection, 5 s per signal); the
# latencies are bench/queue_flood.sh's business.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy flood <<'YAML'
version: 1
log: { rate: 20/second }
guards:
  - name: private
    ports: ["20000-29999"]
    allow:
      owner: true
YAML
)
helper="$LG_ROOT/bench/queue_flood.py"
start_daemon "$p"

setpriv --reuid=carol --regid="$(id -g carol)" --init-groups -- \
	/usr/bin/python3 "$helper" flood 15000 2000 20000 20999 120 >"$LG_TMP/flood.out" 2>&1 &
flood_pid=$!
lg_track "$flood_pid"
sleep 2 # the queue is full of carol's SYNs now
kill -0 "$flood_pid" || die "flooder died: $(cat "$LG_TMP/flood.out")"

setpriv --reuid=bob --regid="$(id -g bob)" --init-groups -- \
	/usr/bin/python3 "$helper" victim 25000 40 5 >"$LG_TMP/victim.out" 2>&1 &
victim_pid=$!
lg_track "$victim_pid"
sleep 1

# SIGHUP during the flood: answered (a reload) within 5 s.
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" '^loguard: reloaded' 5 &&
	log "ok: SIGHUP answered during the flood" || fail "SIGHUP not answered within 5 s"

wait "$victim_pid"
python3 - "$LG_TMP/victim.out" <<'PY' && log "ok: all of bob's first connections succeeded" ||
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print("bob: %d connected, %d failed; slowest %.1f ms" % (d["ok"], d["failed"], max(d["ms"] or [0])))
sys.exit(0 if d["failed"] == 0 and d["ok"] == 40 else 1)
PY
	fail "bob's first connections failed during the flood: $(cat "$LG_TMP/victim.out")"

# SIGTERM during the flood: the daemon exits, cleanly, within 5 s.
kill -0 "$flood_pid" 2>/dev/null || fail "the flood ended before SIGTERM (too short a test)"
kill -TERM "$LG_DAEMON_PID"
for ((i = 0; i < 250; i++)); do
	kill -0 "$LG_DAEMON_PID" 2>/dev/null || break
	sleep 0.02
done
if kill -0 "$LG_DAEMON_PID" 2>/dev/null; then
	fail "SIGTERM not answered within 5 s"
	kill -9 "$LG_DAEMON_PID"
fi
wait "$LG_DAEMON_PID"
rc=$?
[ "$rc" = 0 ] && log "ok: SIGTERM answered during the flood (exit 0)" || fail "daemon exit status $rc"
kill "$flood_pid" 2>/dev/null
nft delete table inet loguard 2>/dev/null
lg_done
