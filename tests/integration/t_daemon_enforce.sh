#!/bin/bash
# loguard run in enforce mode: a refused client is logged as deny; SIGHUP with a broken policy
# keeps the old rules enforced and the daemon alive; SIGHUP with a changed policy takes effect;
# --keep-rules leaves the table installed on SIGINT.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy enforce <<'YAML'
version: 1
mode: enforce
log: { rate: 0 }
guards:
  - name: web
    ports: [8080]
    protocol: both
    allow:
      users: [alice]
YAML
)
start_server tcp 127.0.0.1 8080
start_server udp 127.0.0.1 8080
start_daemon "$p" --keep-rules
expect_connect alice tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080
expect_refused bob udp 127.0.0.1 8080
expect_records 1 'r["uid"] == 1002 and r["protocol"] == "tcp" and r["verdict"] == "deny"'
expect_records 1 'r["uid"] == 1002 and r["protocol"] == "udp" and r["verdict"] == "deny"'
# log: denied (the default) does not log alice's allowed connection.
expect_records 0 'r["uid"] == 1001'
# loguard show reports the running daemon's live counters (written within a second).
sleep 1.2
grep -q "^loguard run (pid $LG_DAEMON_PID): 2 records received, 0 lost" <<<"$("$LOGUARD" show)" &&
	log "ok: show prints the daemon's live counts" ||
	fail "show does not print the daemon's live counts: $("$LOGUARD" show | tail -2)"

# A broken policy on SIGHUP: located error, old rules stay, daemon stays.
before=$(nft list table inet loguard)
cp "$p" "$LG_TMP/good.yaml"
printf 'version: 1\nguards:\n  - name: web\n    ports: [99999]\n' >"$p"
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" 'reload of .* failed' ||
	fail "no 'reload failed' message after SIGHUP with a broken policy"
grep -q -E "^$p:4:[0-9]+: error: port 99999 out of range" "$LG_DAEMON_ERR" &&
	log "ok: the reload error names file:line:col" ||
	fail "reload error not located: $(cat "$LG_DAEMON_ERR")"
kill -0 "$LG_DAEMON_PID" 2>/dev/null && log "ok: daemon alive after a failed reload" ||
	fail "daemon died on a broken policy"
[ "$(nft list table inet loguard)" = "$before" ] && log "ok: ruleset unchanged" ||
	fail "ruleset changed by a failed reload"
expect_refused bob tcp 127.0.0.1 8080

# A changed policy on SIGHUP: now bob is allowed and alice is not.
sed 's/users: \[alice\]/users: [bob]/' "$LG_TMP/good.yaml" >"$p"
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" '^loguard: reloaded' || fail "no 'reloaded' message"
expect_connect bob tcp 127.0.0.1 8080
expect_refused alice tcp 127.0.0.1 8080
expect_records 1 'r["uid"] == 1001 and r["verdict"] == "deny"'

stop_daemon INT
[ "$LG_DAEMON_RC" = 0 ] && log "ok: SIGINT exits 0" || fail "SIGINT: exit status $LG_DAEMON_RC"
have_table inet loguard && log "ok: --keep-rules left the table" ||
	fail "--keep-rules: the table is gone"
expect_refused alice tcp 127.0.0.1 8080
lg_done
