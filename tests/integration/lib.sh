# shellcheck shell=bash
# Helpers for loguard integration tests. Sourced by every tests/integration/t_*.sh.
#
# run.sh starts each test as `unshare -n -m --propagation private bash t_x.sh` with:
#   LOGUARD  absolute path of the loguard binary
#   LGPROBE  absolute path of build/tests/lgprobe
#   LG_ROOT  repository root
#   LG_TMP   an empty per-test scratch directory (removed by run.sh unless LG_KEEP=1)
# A test calls the setup helpers it needs, then expect_* checks, then `lg_done`.
# Exit status: 0 pass, 77 skip, anything else fail. Every check failure is reported with the
# exact command, and the test keeps going so one run shows all failures.

set -u
set -o pipefail

: "${LOGUARD:?run via tests/integration/run.sh}"
: "${LGPROBE:?run via tests/integration/run.sh}"
: "${LG_ROOT:?run via tests/integration/run.sh}"
: "${LG_TMP:?run via tests/integration/run.sh}"

# loguard run publishes live counters under $RUNTIME_DIRECTORY (else /run/loguard): keep
# them in the test's scratch directory, off the host's /run.
export RUNTIME_DIRECTORY="$LG_TMP/run"
mkdir -p "$RUNTIME_DIRECTORY"

LG_FAILS=0
LG_PIDS=()
LG_CGROUPS=()
LG_NSERVERS=0
LG_TIMEOUT_MS=${LG_TIMEOUT_MS:-1500} # connect probes; a drop test passes its own shorter one

# Test users, written into a private /etc/passwd and /etc/group (see lg_setup_users).
#   alice 1001, bob 1002, carol 1003 (supplementary member of developers), dave 1004 (primary
#   group developers), erin 1005 (member of nobody's interest). Group developers = 2001.
LG_USERS="alice:1001:1001 bob:1002:1002 carol:1003:1003 dave:1004:2001 erin:1005:1005"

log() { printf '%s\n' "$*"; }
# Quote a command so a failure message can be pasted into a shell.
lg_quote() { local out="" a; for a in "$@"; do out+="$(printf '%q' "$a") "; done; printf '%s' "${out% }"; }

fail() {
	LG_FAILS=$((LG_FAILS + 1))
	printf 'FAIL: %s\n' "$*"
}

# Abort the test now (setup steps that later checks depend on).
die() {
	printf 'FATAL: %s\n' "$*"
	exit 1
}

skip() {
	printf 'SKIP: %s\n' "$*"
	exit 77
}

lg_done() {
	if [ "$LG_FAILS" -ne 0 ]; then
		log "$LG_FAILS check(s) failed"
		exit 1
	fi
	exit 0
}

lg_cleanup() {
	local pid cg
	for pid in "${LG_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${LG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	# Children of the test are gone now, so its cgroups are empty and can go (deepest first).
	for ((i = ${#LG_CGROUPS[@]} - 1; i >= 0; i--)); do
		cg=${LG_CGROUPS[i]}
		[ -d "$cg" ] && ! rmdir "$cg" 2>/dev/null && printf 'warning: could not remove cgroup %s\n' "$cg"
	done
}
trap lg_cleanup EXIT
trap 'exit 130' INT TERM

# Track a background process so lg_cleanup kills it.
lg_track() { LG_PIDS+=("$1"); }

# Run a command, echoing it; a failure aborts the test.
run() {
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		printf '%s\n' "$out"
		die "command failed (exit $rc): $(lg_quote "$@")"
	fi
	[ -n "$out" ] && printf '%s\n' "$out"
	return 0
}

# ---- network ---------------------------------------------------------------------------------

# lo up, plus an interface d0 carrying 10.99.0.1/24 and fd00:99::1/64: "a non-loopback address
# of the namespace" (traffic to it still goes out lo). A dummy interface if the kernel has one,
# else a veth pair (this machine's kernel has no dummy driver).
LG_V4_EXTRA=10.99.0.1
LG_V6_EXTRA=fd00:99::1
lg_setup_net() {
	# Never touch the host: refuse unless this is a network namespace of our own.
	if [ "$(readlink /proc/self/ns/net)" = "${LG_OUTER_NETNS:-$(readlink /proc/1/ns/net)}" ]; then
		die "not in a private network namespace (run via tests/integration/run.sh)"
	fi
	ip link set lo up || die "ip link set lo up"
	if ip link add d0 type dummy 2>/dev/null; then
		:
	else
		ip link add d0 type veth peer name d0p || die "cannot create dummy or veth interface"
		ip link set d0p up
	fi
	ip link set d0 up
	ip addr add "$LG_V4_EXTRA/24" dev d0 || die "ip addr add $LG_V4_EXTRA"
	ip addr add "$LG_V6_EXTRA/64" dev d0 nodad || die "ip addr add $LG_V6_EXTRA"
	[ -z "$(nft list tables)" ] || die "a fresh network namespace should have no nft tables"
}

# ---- users -----------------------------------------------------------------------------------

# Write a test /etc/passwd and /etc/group (the host's, minus anything clashing with our names or
# ids, plus the test users) and bind-mount them over the real ones in this mount namespace.
lg_setup_users() {
	if [ "$(readlink /proc/self/ns/mnt)" = "${LG_OUTER_MNTNS:-$(readlink /proc/1/ns/mnt)}" ]; then
		die "not in a private mount namespace (run via tests/integration/run.sh)"
	fi
	local names="" ids="" u name uid gid
	for u in $LG_USERS; do
		IFS=: read -r name uid gid <<<"$u"
		names+="$name|"
		ids+="$uid|"
	done
	names+="developers|ops"
	ids+="2001|2002"
	awk -F: -v n="^($names)\$" -v i="^($ids)\$" '$1 !~ n && $3 !~ i' /etc/passwd >"$LG_TMP/passwd"
	awk -F: -v n="^($names)\$" -v i="^($ids)\$" '$1 !~ n && $3 !~ i' /etc/group >"$LG_TMP/group"
	for u in $LG_USERS; do
		IFS=: read -r name uid gid <<<"$u"
		printf '%s:x:%s:%s::/nonexistent:/usr/sbin/nologin\n' "$name" "$uid" "$gid" >>"$LG_TMP/passwd"
		[ "$gid" = "$uid" ] && printf '%s:x:%s:\n' "$name" "$gid" >>"$LG_TMP/group"
	done
	printf 'developers:x:2001:carol\n' >>"$LG_TMP/group"
	printf 'ops:x:2002:erin\n' >>"$LG_TMP/group"
	chmod 644 "$LG_TMP/passwd" "$LG_TMP/group"
	mount --bind "$LG_TMP/passwd" /etc/passwd || die "bind-mount test /etc/passwd"
	mount --bind "$LG_TMP/group" /etc/group || die "bind-mount test /etc/group"
	[ "$(id -u carol 2>/dev/null)" = 1003 ] || die "test users not visible after bind mount"
}

# as_user NAME CMD... : run CMD as NAME (uid and primary gid from the test passwd) with that
# user's supplementary groups from /etc/group. loguard judges the socket's uid only; the groups
# are there so the process looks like a real login of that user.
as_user() {
	local user=$1
	shift
	setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
}

# as_uid UID CMD... : a bare numeric uid (gid = uid, no supplementary groups).
as_uid() {
	local uid=$1
	shift
	setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
}

# ---- servers ---------------------------------------------------------------------------------

# start_server PROTO ADDR PORT [lgprobe listen options]: background echo server, waits for ready.
# Its pid is left in LG_SERVER_PID.
LG_SERVER_PID=
start_server() { start_server_as root "$@"; }

# start_server_as USER PROTO ADDR PORT [options]: the same, run as USER (its socket's owner).
start_server_as() {
	local user=$1 out="$LG_TMP/server.$LG_NSERVERS.out" pid i
	shift
	LG_NSERVERS=$((LG_NSERVERS + 1))
	if [ "$user" = root ]; then
		"$LGPROBE" listen "$@" >"$out" 2>&1 &
	else
		# setpriv itself (not as_user, a function: its subshell would be the pid) so that
		# LG_SERVER_PID is the server's own.
		setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- \
			"$LGPROBE" listen "$@" >"$out" 2>&1 &
	fi
	pid=$!
	LG_SERVER_PID=$pid
	lg_track "$pid"
	for ((i = 0; i < 250; i++)); do
		grep -q '^ready$' "$out" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	cat "$out"
	die "server did not become ready: lgprobe listen $*"
}

# ---- probes ----------------------------------------------------------------------------------

# probe WHO PROTO ADDR PORT [opts]: prints the verdict word. WHO is a user name, a number (bare
# uid), "root", or "cg:DIR:USER" (USER running inside cgroup directory DIR).
probe() {
	local who=$1
	shift
	case $who in
	root) "$LGPROBE" connect "$@" --timeout-ms "$LG_TIMEOUT_MS" ;;
	cg:*)
		local rest=${who#cg:} dir user
		dir=${rest%:*}
		user=${rest##*:}
		(
			echo "$BASHPID" >"$dir/cgroup.procs" || exit 3
			exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- \
				"$LGPROBE" connect "$@" --timeout-ms "$LG_TIMEOUT_MS"
		)
		;;
	[0-9]*) as_uid "$who" "$LGPROBE" connect "$@" --timeout-ms "$LG_TIMEOUT_MS" ;;
	*) as_user "$who" "$LGPROBE" connect "$@" --timeout-ms "$LG_TIMEOUT_MS" ;;
	esac
}

# expect WORD WHO PROTO ADDR PORT [opts]
expect() {
	local want=$1 who=$2 got errf="$LG_TMP/probe.err"
	shift 2
	got=$(probe "$who" "$@" 2>"$errf")
	if [ "$got" = "$want" ]; then
		log "ok: $who $* -> $got"
	else
		fail "$who $*: expected '$want', got '$got'$( [ -s "$errf" ] && printf ' (stderr: %s)' "$(tr '\n' ' ' <"$errf")")
      command: $(lg_quote "$LGPROBE" connect "$@" --timeout-ms "$LG_TIMEOUT_MS") as '$who'"
	fi
}
expect_connect() { expect connected "$@"; }
expect_refused() { expect refused "$@"; }
expect_timeout() { expect timeout "$@"; }

# ---- loguard / nft ---------------------------------------------------------------------------

# Write a policy from stdin into $LG_TMP/NAME.yaml and print its path.
policy() {
	cat >"$LG_TMP/$1.yaml"
	printf '%s\n' "$LG_TMP/$1.yaml"
}

# fixture NAME: a copy of tests/integration/fixtures/NAME.yaml in $LG_TMP, path printed. A copy,
# because loguard refuses a policy in a directory others may write to, and a checkout may be one.
fixture() {
	policy "$1" <"$(dirname "${BASH_SOURCE[0]}")/fixtures/$1.yaml"
}

# lg POLICY ARGS...: run loguard -f POLICY ARGS..., output in $LG_OUT, status returned.
LG_OUT=
lg() {
	local p=$1
	shift
	LG_OUT=$("$LOGUARD" -f "$p" "$@" 2>&1)
}

# expect_lg STATUS POLICY ARGS...: loguard must exit with STATUS.
expect_lg() {
	local want=$1 rc
	shift
	lg "$@"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "expected exit $want, got $rc: $(lg_quote "$LOGUARD" -f "$@")"
		printf '%s\n' "$LG_OUT" | sed 's/^/      | /'
		return 1
	fi
	log "ok: loguard $(lg_quote "${@:2}") ($(basename "$1")) exited $rc"
	return 0
}

# apply POLICY: must succeed, else the test cannot go on.
apply() {
	local rc
	lg "$1" apply
	rc=$?
	if [ $rc -ne 0 ]; then
		printf '%s\n' "$LG_OUT" | sed 's/^/      | /'
		die "loguard apply failed (exit $rc): $(lg_quote "$LOGUARD" -f "$1" apply)"
	fi
	log "applied $(basename "$1")"
}

have_table() { nft list table "$1" "$2" >/dev/null 2>&1; }

# Normalise an nft listing for comparison: only formatting, never content.
#  - counter values (packets/bytes change with traffic): "counter packets N bytes M" -> "counter"
#    in rules; dropped from set elements (per-element counters of a `counter` set); the
#    values of named counters (log_sent, log_rate_limited) made placeholders
#  - whitespace: indentation and runs of blanks -> one space, blank lines and `#` comment lines
#    dropped, a wrapped `elements = { ... }` list joined into one line
#  - the elements of each list sorted (a set is unordered; nft lists interval sets its own way)
#  - the table's own `flags` line: loguard's table is owned and persistent (NFT_TABLE_F_OWNER |
#    NFT_TABLE_F_PERSIST, so a later loguard adopts it in place), which nft 1.0.6 cannot name
#    (it prints an empty `flags`) and `loguard print` does not show
# The result keeps one statement per line so a diff reads well; compare two results with
# nft_same, which also ignores where lines break.
nft_normalize() {
	python3 -c '
import re, sys
lines = [l.strip() for l in sys.stdin.read().split("\n")]
lines = [re.sub(r"\s+", " ", l) for l in lines if l and not l.startswith("#")]
if len(lines) > 1 and lines[0].startswith("table ") and re.match(r"flags( |$)", lines[1]):
    del lines[1]
t = "\n".join(lines)
t = re.sub(r"counter packets \d+ bytes \d+", "counter", t)
# The body of a named counter (log_sent, log_rate_limited): its values move with traffic too.
t = re.sub(r"(?m)^packets \d+ bytes \d+$", "packets N bytes N", t)
def elems(m):
    body = m.group(1).replace("\n", " ")
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch in "{[(": depth += 1
        if ch in "}])": depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur); cur = ""
        else:
            cur += ch
    parts.append(cur)
    parts = [re.sub(r"\s+", " ", p).strip() for p in parts]
    parts = [re.sub(r" counter( |$)", r"\1", " " + p + " ").strip() for p in parts]
    return "elements = { " + ", ".join(sorted(p for p in parts if p)) + " }"
t = re.sub(r"elements = \{\s*((?:[^{}]|\{[^{}]*\})*?)\s*\}", elems, t)
# Log rate meters fill up from the packet path: runtime state, like counter values.
t = re.sub(r"\nelements = \{[^{}]*limit rate [^{}]*expires [^{}]*\}", "", t)
print(t)
'
}

# nft_same A B: are two nft_normalize outputs equal, also ignoring where lines break?
nft_same() { [ "$(printf '%s' "$1" | tr -s ' \n' '  ')" = "$(printf '%s' "$2" | tr -s ' \n' '  ')" ]; }

# nft_diff A B: show how two nft_normalize outputs differ (- A, + B), indented.
nft_diff() { diff -u <(printf '%s\n' "$1") <(printf '%s\n' "$2") | tail -n +3 | sed 's/^/      /'; }

# ---- held connections ------------------------------------------------------------------------

# hold_start WHO tcp ADDR PORT: open a connection as WHO and keep it (lgprobe hold). Lines sent
# with hold_send must come back; hold_finish closes it and checks it never broke.
LG_HOLD_PID=
LG_HOLD_FD=
hold_start() {
	local who=$1 i
	shift
	rm -f "$LG_TMP/hold.in"
	mkfifo "$LG_TMP/hold.in"
	case $who in
	root) "$LGPROBE" hold "$@" <"$LG_TMP/hold.in" >"$LG_TMP/hold.out" 2>"$LG_TMP/hold.err" & ;;
	[0-9]*) as_uid "$who" "$LGPROBE" hold "$@" <"$LG_TMP/hold.in" >"$LG_TMP/hold.out" 2>"$LG_TMP/hold.err" & ;;
	*) as_user "$who" "$LGPROBE" hold "$@" <"$LG_TMP/hold.in" >"$LG_TMP/hold.out" 2>"$LG_TMP/hold.err" & ;;
	esac
	LG_HOLD_PID=$!
	lg_track "$LG_HOLD_PID"
	exec {LG_HOLD_FD}>"$LG_TMP/hold.in"
	for ((i = 0; i < 250; i++)); do
		grep -q -x connected "$LG_TMP/hold.out" && { log "ok: $who holds a connection to $*"; return 0; }
		kill -0 "$LG_HOLD_PID" 2>/dev/null || break
		sleep 0.02
	done
	cat "$LG_TMP/hold.out" "$LG_TMP/hold.err"
	die "lgprobe hold $* as $who did not connect"
}

# hold_send LINE: send LINE on the held connection and wait for its echo.
hold_send() {
	local i
	printf '%s\n' "$1" >&"$LG_HOLD_FD"
	for ((i = 0; i < 150; i++)); do
		grep -q -x -F -- "$1" "$LG_TMP/hold.out" && { log "ok: held connection echoed '$1'"; return 0; }
		kill -0 "$LG_HOLD_PID" 2>/dev/null || break
		sleep 0.02
	done
	fail "held connection did not echo '$1' ($(tr '\n' ' ' <"$LG_TMP/hold.err"))"
	return 1
}

# hold_finish: close the held connection's stdin; lgprobe hold must exit 0 (never broke).
hold_finish() {
	local rc
	exec {LG_HOLD_FD}>&-
	wait "$LG_HOLD_PID"
	rc=$?
	if [ $rc -ne 0 ]; then
		fail "held connection broke (lgprobe hold exit $rc): $(tr '\n' ' ' <"$LG_TMP/hold.err")"
	else
		log "ok: held connection closed cleanly"
	fi
}

# nft_list ARGS...: `nft list ARGS...` with cgroupv2 set elements shown as numeric ids, the way
# loguard prints them. nft prints an id as the path it finds by walking its hard-coded
# /sys/fs/cgroup (here "unified/…": a different tree depth than the `level` in the rule), and
# as the number when that walk finds nothing — so hide /sys/fs/cgroup from this one nft process
# (nested private mount namespace, same network namespace).
nft_list() {
	unshare -m --propagation private sh -c \
		'mount -t tmpfs lg-hide-cgroups /sys/fs/cgroup && exec nft list "$@"' nft "$@"
}

# ---- launched cgroups (loguard exec) ---------------------------------------------------------

# lg_setup_launched: LG_CG2 = the cgroup2 mount (from mountinfo: /sys/fs/cgroup/unified on this
# project's hosts); loguard/ and loguard/launched/ below it are removed at exit if they did not
# exist before, so the host's cgroup tree is left as found. Skips without cgroup2.
LG_CG2=
lg_setup_launched() {
	LG_CG2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
	[ -n "$LG_CG2" ] || skip "no cgroup2 mount"
	[ -d "$LG_CG2/loguard" ] || LG_CGROUPS+=("$LG_CG2/loguard")
	[ -d "$LG_CG2/loguard/launched" ] || LG_CGROUPS+=("$LG_CG2/loguard/launched")
}

# lg_launched NAME: the launched cgroup of NAME (loguard exec creates it) goes at exit. Use
# names unique to the run (lgt$$-...): other test runs may share the host's cgroup tree.
lg_launched() {
	[ -d "$LG_CG2/loguard/launched/$1" ] && die "launched cgroup $1 exists already"
	LG_CGROUPS+=("$LG_CG2/loguard/launched/$1")
}

# ---- the daemon (loguard run) ----------------------------------------------------------------

LG_DAEMON_PID=
LG_DAEMON_OUT=
LG_DAEMON_ERR=

# start_daemon POLICY [run options...]: `loguard -f POLICY run` in the background, records in
# $LG_DAEMON_OUT (stdout), diagnostics in $LG_DAEMON_ERR; waits until it says it is guarding.
start_daemon() {
	local p=$1 i
	shift
	LG_DAEMON_OUT="$LG_TMP/daemon.out"
	LG_DAEMON_ERR="$LG_TMP/daemon.err"
	rm -f "$LG_DAEMON_ERR" # a second daemon must not be taken as started by the first's line
	"$LOGUARD" -f "$p" run "$@" >"$LG_DAEMON_OUT" 2>"$LG_DAEMON_ERR" &
	LG_DAEMON_PID=$!
	lg_track "$LG_DAEMON_PID"
	for ((i = 0; i < 250; i++)); do
		grep -q '^loguard: guarding with' "$LG_DAEMON_ERR" 2>/dev/null && return 0
		kill -0 "$LG_DAEMON_PID" 2>/dev/null || break
		sleep 0.02
	done
	cat "$LG_DAEMON_ERR"
	die "loguard run did not start: $(lg_quote "$LOGUARD" -f "$p" run "$@")"
}

# lg_private_ports_etc: an /etc/loguard of the test's own, as an admin composes it: $LG_MAIN a
# copy of the shipped policies/private-ports.yaml, $LG_DROPINS its empty policy.d; root's and
# not writable by others, as loguard requires of both.
lg_private_ports_etc() {
	LG_DROPINS="$LG_TMP/etc/policy.d"
	LG_MAIN="$LG_TMP/etc/policy.yaml"
	install -d -m 0755 "$LG_TMP/etc" "$LG_DROPINS" || die "mkdir $LG_DROPINS"
	install -m 0644 "$LG_ROOT/policies/private-ports.yaml" "$LG_MAIN" || die "install $LG_MAIN"
}

# wait_log_line FILE REGEX [SECONDS]: wait until a line of FILE matches.
wait_log_line() {
	local file=$1 re=$2 secs=${3:-5} i
	for ((i = 0; i < secs * 50; i++)); do
		grep -q -E "$re" "$file" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}

# stop_daemon [SIGNAL]: signal the daemon (default TERM) and wait; its exit status is left in
# LG_DAEMON_RC (not printed: wait only works in the shell that started it).
LG_DAEMON_RC=
stop_daemon() {
	local sig=${1:-TERM}
	kill -"$sig" "$LG_DAEMON_PID"
	wait "$LG_DAEMON_PID"
	LG_DAEMON_RC=$?
}

# records [FILTER]: the daemon's JSON records of type connection, one per line, optionally
# filtered by a python expression over r (e.g. 'r["dport"] == 62893').
records() {
	python3 -c '
import json, sys
flt = sys.argv[2] if len(sys.argv) > 2 else "True"
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "connection" and eval(flt, {}, {"r": r}):
        print(json.dumps(r, sort_keys=True))
' "$LG_DAEMON_OUT" "$@"
}

# expect_records N FILTER [SECONDS]: wait until exactly N records match FILTER (a python
# expression over r); fail with the records seen otherwise.
expect_records() {
	local n=$1 flt=$2 secs=${3:-5} i got
	for ((i = 0; i < secs * 25; i++)); do
		got=$(records "$flt" | wc -l)
		[ "$got" -ge "$n" ] && break
		sleep 0.04
	done
	sleep 0.1 # a duplicate would arrive right behind
	got=$(records "$flt" | wc -l)
	if [ "$got" -eq "$n" ]; then
		log "ok: $n record(s) where $flt"
		return 0
	fi
	fail "expected $n record(s) where $flt, got $got; all records:"
	records | sed 's/^/      | /'
	return 1
}

# expect_field FILTER PYEXPR: the one record matching FILTER satisfies PYEXPR (over r).
expect_field() {
	local flt=$1 check=$2 rec
	rec=$(records "$flt" | head -1)
	if python3 -c 'import json, sys; r = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$rec" "$check"; then
		log "ok: record where $flt has $check"
	else
		fail "record where $flt does not satisfy $check: $rec"
	fi
}

# ---- cgroups and the daemon's live counters ---------------------------------------------------

# lg_cgroup_top: LG_CG2 = the cgroup2 mount, LG_CGTOP = a directory of this test's own below it
# (removed at exit, after what the test listed in LG_CGROUPS below it). Skips without cgroup2.
LG_CGTOP=
lg_cgroup_top() {
	LG_CG2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
	[ -n "$LG_CG2" ] || skip "no cgroup2 mount"
	LG_CGTOP="$LG_CG2/loguard-test-$$"
	mkdir "$LG_CGTOP" || die "cannot create a cgroup under $LG_CG2"
	LG_CGROUPS+=("$LG_CGTOP")
}

# live_stat NAME: a field of the running daemon's live counters ($RUNTIME_DIRECTORY/stats),
# after waiting out the file's once-a-second rewrite.
live_stat() {
	sleep 1.2
	sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" "$RUNTIME_DIRECTORY/stats"
}

# connect_within WHO PROTO ADDR PORT SECONDS: WHO's connection succeeds within SECONDS (for what
# the daemon learns by periodic rescans).
connect_within() {
	local who=$1 secs=$5 i
	for ((i = 0; i < secs * 10; i++)); do
		[ "$(probe "$who" "$2" "$3" "$4" 2>/dev/null)" = connected ] && return 0
		sleep 0.1
	done
	return 1
}
