#!/bin/bash
# A flood of connections through an audit guard with no log rate limit: every SYN the kernel
# logged (the guard's kernel counter; at least one per connection, more if a SYN was
# retransmitted) is either a record or counted as lost, and the daemon survives.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy flood <<'YAML'
version: 1
mode: audit
log: { rate: 0 }
guards:
  - name: flood
    ports: [15000]
YAML
)
"$LGPROBE" sink tcp 127.0.0.1 15000 >"$LG_TMP/sink.out" 2>&1 &
lg_track $!
wait_log_line "$LG_TMP/sink.out" '^ready$' || die "sink did not start"
start_daemon "$p"
out=$(as_user alice "$LGPROBE" flood tcp 127.0.0.1 15000 --seconds 2 --threads 2 \
	--src 127.0.0.2-127.0.0.254) || die "flood failed: $out"
sent=$(sed -n 's/.*conns=\([0-9]*\).*/\1/p' <<<"$out")
errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")
[ "$errors" = 0 ] || die "flood had errors: $out"
log "flood: $out"
sleep 0.5
syns=$("$LOGUARD" show --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["guards"][0]["connections"])')
[ "$syns" -ge "$sent" ] || fail "the kernel counted $syns SYNs for $sent connections"
stop_daemon TERM
[ "$LG_DAEMON_RC" = 0 ] || fail "daemon exit status $LG_DAEMON_RC after the flood"
stats=$(grep '"type":"stats"' "$LG_DAEMON_OUT" | tail -1)
n=$(grep -c '"type":"connection"' "$LG_DAEMON_OUT")
python3 - "$stats" "$n" "$syns" <<'PY' && log "ok: received + lost == logged SYNs ($syns; $stats, $n records)" ||
import json, sys
s, n, syns = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sys.exit(0 if s["received"] == n and s["received"] + s["lost"] == syns else 1)
PY
	fail "lost records unaccounted for: $syns SYNs logged, $n records, stats $stats"
lg_done
