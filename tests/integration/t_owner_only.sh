#!/bin/bash
# Owner-only ports (allow: { owner: true }): with two users each running listeners, each user
# reaches only their own; root is allowed by the policy; a port nobody listens on is refused;
# a listener that closes takes its owner along (another user's new listener on the same port
# belongs to that user); IPv6, UDP and v4-mapped clients are judged the same way. Known
# receivers are decided in the kernel (the set holds them); the daemon killed with fail:
# closed refuses unknown ones, with fail: open lets them pass.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy owner <<'YAML'
version: 1
log: { rate: 0 }
guards:
  - name: private
    ports: ["20000-29999"]
    protocol: both
    allow:
      owner: true
      users: [root]
  - name: private-open
    ports: ["30000-30999"]
    fail: open
    allow:
      owner: true
  - name: private-audit
    ports: ["40000-40999"]
    mode: audit
    allow:
      owner: true
YAML
)
start_server_as alice tcp 127.0.0.1 20001
alice_pid=$LG_SERVER_PID
start_server_as bob tcp 127.0.0.1 20002
start_server_as alice udp ::1 20003
start_server_as bob tcp :: 20004 --dual
start_server_as bob tcp 127.0.0.1 30001
start_server_as alice tcp 127.0.0.1 40001
start_daemon "$p"

expect_connect alice tcp 127.0.0.1 20001
expect_refused bob tcp 127.0.0.1 20001
expect_connect alice tcp 127.0.0.1 20001 # now decided by the kernel's set
expect_connect bob tcp 127.0.0.1 20002
expect_refused alice tcp 127.0.0.1 20002
expect_connect root tcp 127.0.0.1 20001 # users: [root]
expect_connect alice udp ::1 20003
expect_refused bob udp ::1 20003
# bob's dual-stack listener: over IPv6, IPv4 and an IPv4-mapped address alike.
expect_connect bob tcp ::1 20004
expect_connect bob tcp 127.0.0.1 20004
expect_refused alice tcp 127.0.0.1 20004
expect_refused alice tcp 127.0.0.1 20004 --v6only-mapped
expect_refused carol tcp 127.0.0.1 20009 # nobody listens

grep -q '127.0.0.1 . tcp . 20001 . 1001' <<<"$(nft list set inet loguard owner4)" &&
	log "ok: alice's receiver is in the kernel set" ||
	fail "owner4 lacks 127.0.0.1 . tcp . 20001 . 1001: $(nft list set inet loguard owner4)"
grep -q '::1 . udp . 20003 . 1001' <<<"$(nft list set inet loguard owner6)" &&
	log "ok: IPv6 UDP receiver in owner6" || fail "owner6: $(nft list set inet loguard owner6)"
expect_records 1 'r["uid"] == 1002 and r["dport"] == 20001 and r["verdict"] == "deny"'

# Audit: nobody is blocked; the owner's connections are "allow" (the first one judged and
# written by the daemon, the next by the kernel's set), another user's "would-deny".
expect_connect alice tcp 127.0.0.1 40001
expect_connect alice tcp 127.0.0.1 40001
expect_connect bob tcp 127.0.0.1 40001
expect_records 2 'r["dport"] == 40001 and r["uid"] == 1001 and r["verdict"] == "allow"'
expect_records 1 'r["dport"] == 40001 and r["uid"] == 1002 and r["verdict"] == "would-deny"'
expect_field 'r["dport"] == 40001 and r["uid"] == 1001' 'r["guard"] == "private-audit" and r["pid"] is not None'

# A reload replaces the table: receivers are learned again.
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" '^loguard: reloaded' || fail "no 'reloaded' message"
expect_connect alice tcp 127.0.0.1 20001
expect_refused bob tcp 127.0.0.1 20001
expect_connect bob tcp 127.0.0.1 20002

# alice's listener goes away and bob takes the port: it is bob's now, not alice's.
kill "$alice_pid"
wait "$alice_pid" 2>/dev/null
for ((i = 0; i < 100; i++)); do
	grep -q ' 20001 ' <<<"$(nft list set inet loguard owner4)" || break
	sleep 0.02
done
grep -q ' 20001 ' <<<"$(nft list set inet loguard owner4)" &&
	fail "alice's closed listener is still in owner4" || log "ok: closed listener forgotten"
start_server_as bob tcp 127.0.0.1 20001
expect_connect bob tcp 127.0.0.1 20001
expect_refused alice tcp 127.0.0.1 20001

# Without a daemon: known receivers still decided by the kernel; unknown ones per 'fail'.
expect_refused alice tcp 127.0.0.1 30001 # bob's; daemon alive
kill -9 "$LG_DAEMON_PID"
wait "$LG_DAEMON_PID" 2>/dev/null
have_table inet loguard || fail "the table went with the killed daemon"
expect_connect bob tcp 127.0.0.1 20002 # known: the kernel decides alone
expect_refused alice tcp 127.0.0.1 20002
start_server_as carol tcp 127.0.0.1 20005
LG_TIMEOUT_MS=500 expect_timeout carol tcp 127.0.0.1 20005 # fail: closed, unknown: dropped
start_server_as bob tcp 127.0.0.1 30002
expect_connect alice tcp 127.0.0.1 30002 # fail: open, unknown receiver: passes
expect_refused alice tcp 127.0.0.1 30001 # known to be bob's: the kernel still refuses
nft delete table inet loguard
lg_done
