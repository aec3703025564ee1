#!/bin/bash
# A reload the daemon cannot follow keeps the previous policy: the new policy queues to an
# NFQUEUE another process has bound, so live_apply() fails after the new table went in; the
# daemon puts the previous table back, says so, and keeps guarding. Once the queue is free, the
# same reload goes through.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(fixture web-alice)
start_server tcp 127.0.0.1 8080
start_daemon "$p"
before=$(nft list table inet loguard 2>/dev/null | nft_normalize)

# Another process binds NFQUEUE 6301 (nfnetlink_queue config: bind), and holds it.
python3 -c '
import socket, struct, sys, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
cmd = struct.pack("=HH", 8, 1) + struct.pack("=BBH", 1, 0, 0)  # NFQA_CFG_CMD: BIND
body = struct.pack("=BBH", 0, 0, socket.htons(6301)) + cmd  # nfgenmsg, res_id: the queue
s.send(struct.pack("=IHHII", 16 + len(body), (3 << 8) | 2, 1 | 4, 1, 0) + body)  # CONFIG, ACK
err = struct.unpack_from("=i", s.recv(4096), 16)[0]
print("bound" if err == 0 else "error %d" % err, flush=True)
time.sleep(3600)
' >"$LG_TMP/binder.out" 2>&1 &
binder=$!
lg_track "$binder"
wait_log_line "$LG_TMP/binder.out" '^bound$' || die "cannot bind NFQUEUE 6301: $(cat "$LG_TMP/binder.out")"

cat >"$p" <<'YAML'
version: 1
mode: enforce
queue: 6301
guards:
  - name: web
    ports: [8080]
    protocol: tcp
    allow:
      users: [alice]
    action: reject
  - name: db
    ports: [5432]
    allow:
      owner: true
YAML
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" 'reload of .* failed; the previous policy stays in force' ||
	fail "no failed reload: $(cat "$LG_DAEMON_ERR")"
grep -q 'cannot bind NFQUEUE 6301' "$LG_DAEMON_ERR" || fail "no reason given: $(cat "$LG_DAEMON_ERR")"
kill -0 "$LG_DAEMON_PID" 2>/dev/null || fail "the daemon exited"
after=$(nft list table inet loguard 2>/dev/null | nft_normalize)
if ! nft_same "$before" "$after"; then
	fail "the previous table is not back:"
	nft_diff "$before" "$after"
fi
expect_connect alice tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080

kill "$binder"
wait "$binder" 2>/dev/null
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" '^loguard: reloaded ' || fail "no reload once the queue is free: $(cat "$LG_DAEMON_ERR")"
grep -q 'queueing to NFQUEUE 6301' "$LG_DAEMON_ERR" || fail "the queue is not bound: $(cat "$LG_DAEMON_ERR")"
expect_connect alice tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080
stop_daemon
[ "$LG_DAEMON_RC" = 0 ] || fail "loguard run exited $LG_DAEMON_RC"
lg_done
