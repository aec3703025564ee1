#!/bin/bash
# The kernel-side log rate limit is per guarded port and counted: a burst of denials to one
# port yields the limit's burst of records plus a rate_limited count for the rest (records +
# rate_limited == denials), while another port keeps its own budget.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy rl <<'YAML'
version: 1
mode: enforce
log: { rate: 1/minute }
guards:
  - name: noisy
    ports: [7001]
  - name: quiet
    ports: [7002]
YAML
)
start_daemon "$p"
for i in $(seq 20); do probe bob tcp 127.0.0.1 7001 >/dev/null; done
for i in $(seq 3); do probe bob tcp 127.0.0.1 7002 >/dev/null; done
sleep 0.3
stop_daemon TERM
noisy=$(records 'r["guard"] == "noisy"' | wc -l)
quiet=$(records 'r["guard"] == "quiet"' | wc -l)
limited=$(grep '"type":"stats"' "$LG_DAEMON_OUT" | tail -1 | sed 's/.*"rate_limited":\([0-9]*\).*/\1/')
log "noisy: $noisy records, quiet: $quiet records, rate_limited: $limited"
[ "$noisy" -ge 1 ] && [ "$noisy" -le 6 ] || fail "noisy port: expected the burst (<= 6) of records, got $noisy"
[ "$quiet" = 3 ] && log "ok: the quiet port kept its own budget" || fail "quiet port: $quiet of 3 records"
[ $((noisy + limited)) = 20 ] && log "ok: records + rate_limited == 20 denials" ||
	fail "records ($noisy) + rate_limited ($limited) != 20"
lg_done
