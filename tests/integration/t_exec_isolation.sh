#!/bin/bash
# loguard exec --user hands the user nothing of root's: the command runs in a session of its own
# (root's terminal is not its controlling terminal: no /dev/tty, no TIOCSTI into root's shell),
# with the user's environment only (not a variable root set) and no fd of root's above 2, while
# stdin, stdout and stderr still work. And the launched cgroup is no foothold: what the command
# leaves behind in it (a background process that would connect later, one that ignores SIGTERM)
# is killed when the command ends, and the run's cgroup is removed.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users
lg_setup_launched
command -v script >/dev/null || skip "script(1) (bsdutils) is needed for a controlling terminal"

x=lgt$$-iso # unique to this run: the cgroup tree is the host's
lg_launched "$x"
cgx=$LG_CG2/loguard/launched/$x
mine=$LG_TMP/alice # where alice's programs write
mkdir -m 0755 "$mine"
chown alice "$mine"

# ---- --user: terminal, environment, fds ----
printf 'root only\n' >"$LG_TMP/secret"
chmod 0600 "$LG_TMP/secret"
cat >"$LG_TMP/probe.py" <<'PY'
import errno, fcntl, json, os, sys, termios
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
r = {}
r["own_session"] = os.getsid(0) != os.getsid(os.getppid())
r["dev_tty"] = attempt(lambda: os.close(os.open("/dev/tty", os.O_RDWR)))
r["tiocsti"] = attempt(lambda: fcntl.ioctl(0, termios.TIOCSTI, b"#"))
r["fd7"] = attempt(lambda: os.read(7, 100))
# The environment the program was started with (python itself may add LC_CTYPE).
with open("/proc/self/environ", "rb") as f:
    r["env"] = sorted(v.split(b"=", 1)[0].decode() for v in f.read().split(b"\0") if v)
json.dump(r, open(sys.argv[1], "w"))
PY
chmod 0644 "$LG_TMP/probe.py"
# script(1) gives the shell a pty as its controlling terminal: root's terminal, as in a login.
script -q -e -c "LOGUARD_SECRET=1 '$LOGUARD' exec --as '$x' --user alice --wait 0 -- \
	/usr/bin/python3 '$LG_TMP/probe.py' '$mine/probe.json' 7<'$LG_TMP/secret'" /dev/null \
	</dev/null >"$LG_TMP/script.out" 2>&1
[ -s "$mine/probe.json" ] || die "the probe did not run: $(cat "$LG_TMP/script.out")"
log "the program as alice saw: $(cat "$mine/probe.json")"
pycheck() { # WHAT PYEXPR over r
	python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$mine/probe.json" "$2" && log "ok: $1" || fail "$1: not $2 (see above)"
}
pycheck "a session of its own" 'r["own_session"]'
pycheck "no controlling terminal: /dev/tty cannot be opened" 'r["dev_tty"] == "ENXIO"'
pycheck "TIOCSTI on root's terminal is refused" 'r["tiocsti"] == "EPERM"'
pycheck "root's fd 7 is closed" 'r["fd7"] == "EBADF"'
pycheck "root's LOGUARD_SECRET is not passed on" '"LOGUARD_SECRET" not in r["env"]'
pycheck "only the user's environment" 'set(r["env"]) <= {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "TERM"} and {"HOME", "USER", "PATH"} <= set(r["env"])'

# stdin, stdout and stderr still work for non-interactive use.
out=$("$LOGUARD" exec --as "$x" --user alice --wait 0 -- sh -c 'read l; echo "got $l"; echo oops >&2; echo "$PATH"' \
	<<<hello 2>"$LG_TMP/err")
[ "$out" = "got hello
/usr/local/bin:/usr/bin:/bin" ] && [ "$(cat "$LG_TMP/err")" = oops ] &&
	log "ok: stdin, stdout, stderr work; PATH is the user's" || fail "stdio: out '$out', err '$(cat "$LG_TMP/err")'"

# ^Z (SIGTSTP) reaches the supervisor only, the command being in a session of its own: both
# stop (the command must not read the terminal while root's shell has it), both go on with
# SIGCONT, and SIGTERM ends the command.
state() { sed -n 's/^State:\t\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null; }
"$LOGUARD" exec --as "$x" --user alice --wait 0 -- sleep 60 </dev/null &
sup=$!
lg_track "$sup"
for ((i = 0; i < 250; i++)); do
	cmd=$(pgrep -P "$sup" sleep) && break
	sleep 0.02
done
[ -n "$cmd" ] || die "no command below exec $sup"
kill -TSTP "$sup"
for ((i = 0; i < 100; i++)); do
	[ "$(state "$sup")$(state "$cmd")" = TT ] && break
	sleep 0.02
done
[ "$(state "$sup")$(state "$cmd")" = TT ] && log "ok: SIGTSTP stops exec and the command" ||
	fail "after SIGTSTP: exec is '$(state "$sup")', the command '$(state "$cmd")', want T and T"
kill -CONT "$sup"
for ((i = 0; i < 100; i++)); do
	[ "$(state "$cmd")" = S ] && break
	sleep 0.02
done
[ "$(state "$cmd")" = S ] && log "ok: SIGCONT to exec continues the command" ||
	fail "after SIGCONT: the command is '$(state "$cmd")'"
kill -TERM "$sup"
wait "$sup"
rc=$?
[ $rc -eq 143 ] && log "ok: SIGTERM ends it (exit 143)" || fail "SIGTERM: exit $rc, want 143"

# ---- leftovers: killed when the command ends, the run's cgroup removed ----
# gone PID: no such process any more (or a zombie its new parent has not reaped yet).
gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}
for who in alice root; do
	user=()
	[ $who = alice ] && user=(--user alice)
	out=$("$LOGUARD" exec --as "$x" "${user[@]}" --wait 0 -- sh -c \
		'sh -c "trap \"\" TERM HUP INT; exec sleep 300" </dev/null >/dev/null 2>&1 & echo $!; exit 3')
	rc=$?
	left=$out
	[ $rc -eq 3 ] && log "ok: $who: exec exited with the command's status 3" || fail "$who: exec exited $rc, want 3"
	if [ -n "$left" ] && gone "$left"; then
		log "ok: $who: the process left behind ($left, ignoring SIGTERM) is gone"
	else
		fail "$who: the process left behind in $cgx ($left) is still running: $(ps -o pid=,user=,args= -p "$left")"
		kill -9 "$left" 2>/dev/null
	fi
	runs=$(find "$cgx" -mindepth 1 -maxdepth 1 -type d -printf '%f ')
	[ -z "$runs" ] && log "ok: $who: no run cgroup left in $cgx" || fail "$who: run cgroups left: $runs"
done

# The foothold as it would be used: something started inside the allowed cgroup that connects
# after the command has ended. Allowed while the command runs; refused (never run) after.
start_server tcp 127.0.0.1 7001
p=$(policy launched <<YAML
version: 1
mode: enforce
guards:
  - name: tool
    ports: [7001]
    allow: { launched: [$x] }
YAML
)
start_daemon "$p"
out=$("$LOGUARD" exec --as "$x" --user alice -- sh -c \
	"(sleep 1; '$LGPROBE' connect tcp 127.0.0.1 7001 --timeout-ms 500 >'$mine/late.out' 2>&1) </dev/null >/dev/null 2>&1 &
	 '$LGPROBE' connect tcp 127.0.0.1 7001 --timeout-ms $LG_TIMEOUT_MS" 2>&1)
[ "$out" = connected ] && log "ok: the command itself connects" || fail "the command: '$out'"
sleep 1.5
if [ -s "$mine/late.out" ]; then
	fail "a process left behind in the launched cgroup ran after the command: $(cat "$mine/late.out")"
else
	log "ok: nothing left behind connected after the command ended"
fi
stop_daemon
lg_done
