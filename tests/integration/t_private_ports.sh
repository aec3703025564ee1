#!/bin/bash
# The shipped policies/private-ports.yaml, as a shared machine would run it: every user's
# loopback servers (a notebook on 8888, a dev server on 5173, a debugger on 9229, on IPv4 or
# IPv6) are reachable by that user and root only, with no port or user in the policy; ports
# below 1024 and UDP are left alone, as the policy says.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p="$LG_TMP/private-ports.yaml"
install -m 0644 "$LG_ROOT/policies/private-ports.yaml" "$p"
start_server_as alice tcp 127.0.0.1 8888
start_server_as bob tcp :: 5173 --dual
start_server_as carol tcp ::1 9229
start_server_as alice udp 127.0.0.1 8888
start_server tcp 127.0.0.1 631 # a root service below 1024: not guarded
start_daemon "$p"

expect_connect alice tcp 127.0.0.1 8888
expect_refused bob tcp 127.0.0.1 8888
expect_refused carol tcp 127.0.0.1 8888
expect_connect root tcp 127.0.0.1 8888
expect_connect bob tcp 127.0.0.1 5173
expect_connect bob tcp ::1 5173
expect_refused alice tcp ::1 5173
expect_refused alice tcp 127.0.0.1 5173
expect_connect carol tcp ::1 9229
expect_refused bob tcp ::1 9229
expect_connect bob udp 127.0.0.1 8888 # protocol: tcp only
expect_connect bob tcp 127.0.0.1 631
# Refusals are logged with who tried.
expect_records 1 'r["uid"] == 1002 and r["dport"] == 8888 and r["verdict"] == "deny" and r["guard"] == "private"'
# show tells what the daemon keeps: receivers learned (alice's, bob's over v4 and v6,
# carol's) and the connections it judged.
sleep 1.2
live=$("$LOGUARD" show | grep '^loguard run')
grep -q -E 'connections judged \([0-9]+ allowed\), 4 receivers and 0 cgroups followed' <<<"$live" &&
	log "ok: show: $live" || fail "show's daemon line: $live"
stop_daemon
[ "$LG_DAEMON_RC" = 0 ] && log "ok: loguard run exits 0" || fail "exit status $LG_DAEMON_RC"
python3 -c '
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if "\"stats\"" in l][-1]
sys.exit(0 if s["queued"] >= 4 and s["receivers"] == 4 and s["queue_allowed"] >= 4 else 1)
' "$LG_DAEMON_OUT" && log "ok: the final stats record counts judged connections and receivers" ||
	fail "final stats record: $(grep stats "$LG_DAEMON_OUT" | tail -1)"
lg_done
