#!/bin/bash
# loguard run in audit mode: every new connection to a guarded port gives exactly one record
# with who made it (uid, user, gid, group, pid, executable, command line), nothing is blocked;
# UDP and ::1 are logged too; SIGTERM writes a final stats record and removes the table.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy audit <<'YAML'
version: 1
mode: audit
log: { group: 6289, rate: 0 }
guards:
  - name: local-62893
    ports: [62893]
    protocol: both
    allow:
      users: [root]
YAML
)
start_server tcp 127.0.0.1 62893
start_server udp ::1 62893
start_daemon "$p"
have_table inet loguard || fail "loguard run did not install the table"

# A real client that stays connected, so its pid and executable can be checked.
hold_start alice tcp 127.0.0.1 62893
# $LG_HOLD_PID is the background subshell; the client is the lgprobe it ran as alice.
alice_pid=$(pgrep -u 1001 -f "lgprobe hold tcp 127.0.0.1 62893")
[ -n "$alice_pid" ] || die "cannot find alice's lgprobe process"
expect_records 1 'r["uid"] == 1001 and r["dport"] == 62893 and r["protocol"] == "tcp"'
f='r["uid"] == 1001 and r["protocol"] == "tcp"'
expect_field "$f" 'r["user"] == "alice" and r["gid"] == 1001 and r["group"] == "alice"'
expect_field "$f" 'r["verdict"] == "would-deny" and r["guard"] == "local-62893"'
expect_field "$f" 'r["src"] == "127.0.0.1" and r["dst"] == "127.0.0.1"'
expect_field "$f" "r['pid'] == $alice_pid"
expect_field "$f" "r['exe'] == '$(readlink -f "$LGPROBE")'"
expect_field "$f" 'r["cmdline"][1:3] == ["hold", "tcp"]'
expect_field "$f" 'r["time"].endswith("Z") and len(r["time"]) == 27'
hold_send "still open"
hold_finish

# Audit blocks nothing: bob gets through over UDP on ::1 and is logged.
expect_connect bob udp ::1 62893
expect_records 1 'r["uid"] == 1002 and r["protocol"] == "udp"'
expect_field 'r["uid"] == 1002' 'r["src"] == "::1" and r["verdict"] == "would-deny"'
# root is allowed: logged as allow.
expect_connect root tcp 127.0.0.1 62893
expect_records 1 'r["uid"] == 0 and r["verdict"] == "allow"'

stop_daemon TERM
[ "$LG_DAEMON_RC" = 0 ] && log "ok: SIGTERM exits 0" || fail "SIGTERM: exit status $LG_DAEMON_RC"
have_table inet loguard && fail "SIGTERM left table inet loguard installed"
n=$(records | wc -l)
stats=$(grep '"type":"stats"' "$LG_DAEMON_OUT" | tail -1)
python3 -c 'import json, sys; s = json.loads(sys.argv[1]); sys.exit(0 if s["received"] == int(sys.argv[2]) and s["lost"] == 0 else 1)' "$stats" "$n" &&
	log "ok: final stats record: received $n, lost 0" || fail "final stats record wrong: $stats ($n records)"
lg_done
