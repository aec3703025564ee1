#!/bin/bash
# The daemon owns its table: while it lives nobody else (loguard apply/flush, nft) can change
# it; killed with SIGKILL the rules stay in force (OWNER|PERSIST: fail closed) and a new
# daemon takes the table over; SIGTERM removes it.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy owner <<'YAML'
version: 1
mode: enforce
guards:
  - name: db
    ports: [5432]
    allow:
      users: [alice]
YAML
)
start_server tcp 127.0.0.1 5432
start_daemon "$p"
grep -q 'flags owner' <<<"$(nft list table inet loguard)" && log "ok: the table is owned" ||
	fail "the daemon's table has no owner flag"
expect_lg 3 "$p" flush
grep -q 'belongs to a running loguard daemon' <<<"$LG_OUT" && log "ok: flush says who owns it" ||
	fail "flush refusal does not explain: $LG_OUT"
expect_lg 3 "$p" apply
nft delete table inet loguard 2>/dev/null && fail "nft deleted the daemon's table" ||
	log "ok: nft cannot delete the daemon's table"
expect_refused bob tcp 127.0.0.1 5432

stop_daemon KILL
have_table inet loguard && log "ok: the table outlives a killed daemon" ||
	fail "SIGKILL removed the rules (fail open)"
expect_refused bob tcp 127.0.0.1 5432
expect_connect alice tcp 127.0.0.1 5432

start_daemon "$p"
log "ok: a new daemon took over the table"
expect_refused bob tcp 127.0.0.1 5432
stop_daemon TERM
[ "$LG_DAEMON_RC" = 0 ] || fail "exit status $LG_DAEMON_RC"
have_table inet loguard && fail "SIGTERM left the table" || log "ok: SIGTERM removed the table"
expect_connect bob tcp 127.0.0.1 5432
lg_done
