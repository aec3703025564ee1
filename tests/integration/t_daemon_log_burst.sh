#!/bin/bash
# The default log rate (20/second) has a burst of 100 records per port and user: a dozen or
# more quick denied connections are all logged (the kernel's default burst of 5 kept 6 of 12).
# Then a policy's own burst is used as given, and a changed burst takes effect on reload.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy burst <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [7001]
YAML
)
start_daemon "$p"
# 40 connections from one process, one after the other: a few milliseconds in all.
refused=$(as_user bob /usr/bin/python3 -c '
import socket
n = 0
for i in range(40):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 7001))
    except ConnectionRefusedError:
        n += 1
    s.close()
print(n)
')
[ "$refused" = 40 ] || fail "$refused of 40 quick connections refused"
expect_records 40 'r["guard"] == "web" and r["uid"] == 1002 and r["verdict"] == "deny"'

# A burst of 3 at 1/minute: a fresh user gets exactly 3 records of 10 denials.
cat >"$p" <<'YAML'
version: 1
mode: enforce
log: { rate: 1/minute, burst: 3 }
guards:
  - name: web
    ports: [7001]
YAML
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" 'reloaded' 5 || fail "no reload"
sleep 0.3
chain=$(nft list chain inet loguard log_deny)
grep -q 'limit rate 1/minute burst 3 packets' <<<"$chain" ||
	die "reload did not install the new burst: $chain"
for i in $(seq 10); do probe alice tcp 127.0.0.1 7001 >/dev/null; done
expect_records 3 'r["guard"] == "web" and r["uid"] == 1001'
lg_done
