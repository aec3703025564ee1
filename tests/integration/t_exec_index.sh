#!/bin/bash
# The executables check from the process index (proc connector events), as an attacker would
# try it: a socket shared with the allowed program by processes that made themselves
# non-dumpable (their /proc/PID files then belong to root: the index goes by the credentials
# in status, not by file owners); a
# holder the index knew as the allowed program that exec()s another one; events lost under a
# fork flood while the daemon could not read them (it must rebuild, never judge from what it
# had). Then the same without process events: the daemon says so and walks /proc.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

[ -n "${LOGUARD_PROC_EVENTS_NETNS:-}" ] || skip "no initial network namespace to open the proc connector in"
bin="$LG_TMP/bin"
mkdir -p "$bin"
cp "$LGPROBE" "$bin/probe-allowed"
# An allowed interpreter, so that an allowed process can fork and exec on cue.
cp "$(readlink -f /usr/bin/python3)" "$bin/py-allowed"
chmod 755 "$bin" "$bin/probe-allowed" "$bin/py-allowed"

p=$(policy exe <<YAML
version: 1
log: { rate: 0 }
guards:
  - name: db
    ports: [5432, 5440]
    allow:
      executables: [$bin/probe-allowed, $bin/py-allowed]
YAML
)
start_server tcp 127.0.0.1 5432
"$LGPROBE" sink tcp 127.0.0.1 5440 --threads 4 >"$LG_TMP/sink.out" 2>&1 &
lg_track $!
start_daemon "$p"
grep -q 'executables: following process events' "$LG_DAEMON_ERR" ||
	fail "daemon does not follow process events: $(cat "$LG_DAEMON_ERR")"

LGPROBE=$bin/probe-allowed expect connected alice tcp 127.0.0.1 5432
expect refused alice tcp 127.0.0.1 5432

# Many connections at once (8 threads): their verdicts go out together, a turn's in one
# datagram. Every one must reach the kernel: none may be left waiting in the queue (a lost
# verdict leaves its packet there until the SYN is sent again, a second later).
as_user alice "$bin/probe-allowed" flood tcp 127.0.0.1 5440 --seconds 1 --threads 8 \
	--src 127.0.0.2-127.0.0.254 >"$LG_TMP/flood.out" 2>&1 || fail "flood: $(cat "$LG_TMP/flood.out")"
waiting=$(awk '$1 == 6289 { print $3 }' /proc/net/netfilter/nfnetlink_queue)
[ "$waiting" = 0 ] && log "ok: $(tail -1 "$LG_TMP/flood.out"); none left in the queue" ||
	fail "$waiting packets left waiting in the queue after: $(cat "$LG_TMP/flood.out")"

# shared_socket.py: see there. Debian's python3, which tools/deps.sh installs (one earlier in
# root's PATH may not be one the test users can run).
shared=$(dirname "$(readlink -f "$0")")/shared_socket.py
cp "$shared" "$LG_TMP/shared_socket.py"
chmod 644 "$LG_TMP/shared_socket.py"
inherited() {
	as_user alice /usr/bin/python3 "$LG_TMP/shared_socket.py" inherited "$bin/probe-allowed" 5432 \
		${1:+nondumpable} 2>&1
}
got=$(inherited)
[ "$got" = refused ] && log "ok: a socket shared by another program is refused" ||
	fail "inherited socket: expected refused, got '$got'"
got=$(inherited nondumpable)
[ "$got" = refused ] && log "ok: ... also when that program made itself non-dumpable" ||
	fail "inherited socket, non-dumpable maker: expected refused, got '$got'"
thread_private() {
	as_user alice /usr/bin/python3 "$LG_TMP/shared_socket.py" thread-private "$bin/probe-allowed" 5432 2>&1
}
got=$(thread_private)
[ "$got" = refused ] && log "ok: ... also when a thread of it keeps the socket in a file table of its own" ||
	fail "socket in a thread's own file table: expected refused, got '$got'"

# A holder the index read as the allowed interpreter exec()s python3, keeping the socket.
exec_after_index() {
	as_user alice "$bin/py-allowed" "$LG_TMP/shared_socket.py" exec-after 5432 2>&1
}
got=$(exec_after_index)
[ "$got" = refused ] && log "ok: a holder that exec()ed another program after it was indexed is refused" ||
	fail "exec after index: expected refused, got '$got'"

# Lost events: the daemon stopped while a fork flood overflows its socket, and meanwhile a
# non-dumpable maker shares a socket with the allowed program. The daemon must see the loss,
# rebuild from /proc and refuse; the allowed program alone still connects.
kill -STOP "$LG_DAEMON_PID"
"$LGPROBE" forks 3000 || fail "fork flood failed"
inherited nondumpable >"$LG_TMP/inherited.out" 2>&1 &
inh=$!
sleep 0.3
kill -CONT "$LG_DAEMON_PID"
wait "$inh"
got=$(cat "$LG_TMP/inherited.out")
[ "$got" = refused ] && log "ok: after lost events, the inherited socket is still refused" ||
	fail "after lost events: expected refused, got '$got'"
LGPROBE=$bin/probe-allowed expect connected alice tcp 127.0.0.1 5432
stop_daemon
summary=$(grep 'executables:.*checks from the process index' "$LG_DAEMON_ERR") ||
	fail "no executables summary: $(cat "$LG_DAEMON_ERR")"
log "$summary"
read -r indexed walked lost rebuilds < <(printf '%s\n' "$summary" |
	sed -n 's/.* \([0-9]*\) checks from the process index, \([0-9]*\) by .*events, \([0-9]*\) losses, \([0-9]*\) rebuilds/\1 \2 \3 \4/p')
[ "${lost:-0}" -ge 1 ] && [ "${rebuilds:-0}" -ge 2 ] ||
	fail "the fork flood lost no events or caused no rebuild: $summary"
# Every check from the index: a stale entry (an exec not applied) would have been caught only
# by the re-read of the holder's exe, and judged by a walk.
[ "${indexed:-0}" -ge 5 ] && [ "${walked:-1}" -eq 0 ] ||
	fail "checks were not all answered from the index: $summary"

# Without process events (no namespace to open the connector in): said, and the walk judges.
LOGUARD_PROC_EVENTS_NETNS='' start_daemon "$p"
grep -q 'executables: no process events' "$LG_DAEMON_ERR" ||
	fail "daemon without process events does not say so: $(cat "$LG_DAEMON_ERR")"
LGPROBE=$bin/probe-allowed expect connected alice tcp 127.0.0.1 5432
expect refused alice tcp 127.0.0.1 5432
got=$(inherited)
[ "$got" = refused ] && log "ok: walk: a socket shared by another program is refused" ||
	fail "walk, inherited socket: expected refused, got '$got'"
got=$(thread_private)
[ "$got" = refused ] && log "ok: walk: ... also from a thread's own file table" ||
	fail "walk, socket in a thread's own file table: expected refused, got '$got'"
stop_daemon
grep -q 'checks from the process index, [1-9][0-9]* by /proc walk' "$LG_DAEMON_ERR" ||
	fail "walk: no walked checks counted: $(cat "$LG_DAEMON_ERR")"
nft delete table inet loguard 2>/dev/null
lg_done
