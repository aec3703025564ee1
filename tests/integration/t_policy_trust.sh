#!/bin/bash
# A policy that someone other than root can change is refused by apply and run (anyone who can
# write it would control the firewall); check and print still read it. A daemon keeps its old
# rules when a reload finds the file made writable.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy trust <<'YAML'
version: 1
guards:
  - name: web
    ports: [8080]
    allow:
      users: [alice]
YAML
)
chmod 0664 "$p"
expect_lg 1 "$p" apply
grep -q "refusing a policy that someone other than root can change (owner uid 0, mode 0664)" \
	<<<"$LG_OUT" && log "ok: group-writable refused with a reason" || fail "message: $LG_OUT"
have_table inet loguard && fail "an untrusted policy was installed"
expect_lg 0 "$p" check
chmod 0644 "$p"
chown alice "$p"
expect_lg 1 "$p" apply
chown root "$p"
expect_lg 0 "$p" apply
expect_lg 0 "$p" flush

start_server tcp 127.0.0.1 8080
start_daemon "$p"
chmod 0666 "$p"
sed -i 's/alice/bob/' "$p"
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" 'reload of .* failed' || fail "reload of a world-writable policy did not fail"
expect_connect alice tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080
stop_daemon TERM
lg_done
