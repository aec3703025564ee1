#!/bin/bash
# The systemd notify protocol, spoken to a fake NOTIFY_SOCKET: READY=1 with a STATUS once the
# rules are in, RELOADING=1 with MONOTONIC_USEC then READY=1 around a SIGHUP, STOPPING=1 on
# SIGTERM. Every datagram is one line here, fields separated by '|'.
. "$(dirname "$0")/lib.sh"
lg_setup_net

p=$(policy notify <<'YAML'
version: 1
mode: audit
guards:
  - name: web
    ports: [8080]
YAML
)
sock="$LG_TMP/notify.sock"
python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
' "$sock" >"$LG_TMP/notify.log" 2>&1 &
lg_track $!
wait_log_line "$LG_TMP/notify.log" '^ready$' || die "fake notify socket did not start"

NOTIFY_SOCKET=$sock start_daemon "$p"
wait_log_line "$LG_TMP/notify.log" '^READY=1\|STATUS=guarding with .*1 guards' ||
	fail "no READY=1 with STATUS after start: $(cat "$LG_TMP/notify.log")"
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_TMP/notify.log" '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$' ||
	fail "no RELOADING=1 with MONOTONIC_USEC on SIGHUP: $(cat "$LG_TMP/notify.log")"
wait_log_line "$LG_DAEMON_ERR" '^loguard: reloaded' || fail "daemon did not reload"
[ "$(grep -c '^READY=1' "$LG_TMP/notify.log")" = 2 ] && log "ok: READY=1 again after the reload" ||
	fail "expected a second READY=1: $(cat "$LG_TMP/notify.log")"
stop_daemon TERM
wait_log_line "$LG_TMP/notify.log" '^STOPPING=1$' 2 || fail "no STOPPING=1 on SIGTERM"
[ "$LG_DAEMON_RC" = 0 ] || fail "exit status $LG_DAEMON_RC"
log "notify datagrams: $(tr '\n' ' ' <"$LG_TMP/notify.log")"
lg_done
