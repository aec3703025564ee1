# shellcheck shell=bash
# Helpers for the systemd service test (tests/systemd/service.sh, started by run.sh).
#
# A real systemd boots in a container whose root is an overlay of the host's / with a tmpfs
# as its upper layer: every write of the container (and of `make install` into it) stays in
# memory. NEVER boot systemd on the host's own file system: its boot-time tmpfiles setup
# empties the real /tmp (seen on this project's machines).
#
#   $LGSD_TMP/ct          tmpfs: upper/ work/ merged/ (the container's root)
#   $LGSD_TMP/console.log the container's console (systemd-nspawn --console=pipe)
#
# run.sh starts service.sh in a private mount namespace (`unshare -m --propagation private`),
# so even a killed test leaves no mount behind. Environment: LGSD_ROOT (repository), LGSD_TMP
# (scratch directory), LGPROBE (build/tests/lgprobe). Exit status: 0 pass, 77 skip, else fail.

set -u
set -o pipefail

: "${LGSD_ROOT:?run via tests/systemd/run.sh}"
: "${LGSD_TMP:?run via tests/systemd/run.sh}"
: "${LGPROBE:?run via tests/systemd/run.sh}"

LGSD_FAILS=0
CT_DIR=$LGSD_TMP/ct
MERGED=$CT_DIR/merged
CT_NSPAWN_PID=
CT_PID=
CT_CGROUPS=()
CT_MOUNTED=()
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '%s\n' "$*"; }
lg_quote() { local out="" a; for a in "$@"; do out+="$(printf '%q' "$a") "; done; printf '%s' "${out% }"; }
fail() {
	LGSD_FAILS=$((LGSD_FAILS + 1))
	printf 'FAIL: %s\n' "$*"
}
ok() { printf 'ok: %s\n' "$*"; }
die() {
	printf 'FATAL: %s\n' "$*"
	exit 1
}
# The container cannot run here: say so loudly; run.sh reports SKIP, never PASS (and FAIL if
# a check before that already failed: a skip must not hide it).
skip() {
	printf '%s\n' "SKIP: $*" \
		"**********************************************************************" \
		"*** systemd service test SKIPPED: $*" \
		"*** (loguard.service was not tested under systemd)" \
		"**********************************************************************"
	if [ "$LGSD_FAILS" -ne 0 ]; then
		log "$LGSD_FAILS check(s) failed before the skip"
		exit 1
	fi
	exit 77
}
lgsd_done() {
	if [ "$LGSD_FAILS" -ne 0 ]; then
		log "$LGSD_FAILS check(s) failed"
		exit 1
	fi
	exit 0
}

# check DESCRIPTION CMD...: a passing command is ok, a failing one a failure (test goes on).
check() {
	local what=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		ok "$what"
	else
		fail "$what (exit $rc): $(lg_quote "$@")"
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/      | /'
	fi
	return $rc
}

# ---- cleanup ---------------------------------------------------------------------------------

ct_cleanup() {
	local i pid
	if [ -n "$CT_NSPAWN_PID" ] && kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
		# SIGTERM to systemd-nspawn: it asks the container's systemd to power off.
		kill -TERM "$CT_NSPAWN_PID" 2>/dev/null
		for ((i = 0; i < 150; i++)); do
			kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
			log "cleanup: container did not power off in 15 s, killing it"
			# Killing the container's PID 1 kills everything in its pid namespace.
			[ -n "$CT_PID" ] && kill -KILL "$CT_PID" 2>/dev/null
			kill -KILL "$CT_NSPAWN_PID" 2>/dev/null
		fi
		wait "$CT_NSPAWN_PID" 2>/dev/null
	fi
	# Anything this test started in the background (systemd-run clients, readers).
	for pid in $(jobs -p); do
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	for ((i = ${#CT_MOUNTED[@]} - 1; i >= 0; i--)); do
		umount "${CT_MOUNTED[i]}" 2>/dev/null || umount -l "${CT_MOUNTED[i]}" 2>/dev/null ||
			log "warning: could not unmount ${CT_MOUNTED[i]}"
	done
	# The container's cgroups, deepest first (empty now that its processes are gone).
	for ((i = ${#CT_CGROUPS[@]} - 1; i >= 0; i--)); do
		[ -d "${CT_CGROUPS[i]}" ] || continue
		find "${CT_CGROUPS[i]}" -depth -type d -exec rmdir {} + 2>/dev/null
		[ -d "${CT_CGROUPS[i]}" ] && log "warning: could not remove cgroup ${CT_CGROUPS[i]}"
	done
}
trap ct_cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- the container's tree --------------------------------------------------------------------

# tmpfs + overlay of / on $MERGED. Skips where overlayfs cannot take / as its lower layer.
ct_mount() {
	[ "$(readlink /proc/self/ns/mnt)" != "${LGSD_OUTER_MNTNS:-$(readlink /proc/1/ns/mnt)}" ] ||
		die "not in a private mount namespace (run via tests/systemd/run.sh)"
	mkdir -p "$CT_DIR"
	mount -t tmpfs -o mode=0755,size=2g loguard-sd "$CT_DIR" || skip "cannot mount a tmpfs"
	CT_MOUNTED+=("$CT_DIR")
	mkdir "$CT_DIR/upper" "$CT_DIR/work" "$MERGED"
	if ! mount -t overlay -o "lowerdir=/,upperdir=$CT_DIR/upper,workdir=$CT_DIR/work" \
		loguard-sd-root "$MERGED" 2>"$LGSD_TMP/overlay.err"; then
		skip "cannot overlay a tmpfs on / ($(tr '\n' ' ' <"$LGSD_TMP/overlay.err"))"
	fi
	CT_MOUNTED+=("$MERGED")
	[ -x "$MERGED/lib/systemd/systemd" ] || [ -x "$MERGED/usr/lib/systemd/systemd" ] ||
		skip "this machine has no systemd to boot (/usr/lib/systemd/systemd)"
	# systemd-nspawn keeps locks and a mount propagation directory under /run/systemd/nspawn,
	# and refuses to clean them up where /run is not a tmpfs (this machine's is on disk): give
	# it a /run of its own, in this mount namespace only.
	mount -t tmpfs -o mode=0755 loguard-sd-run /run || skip "cannot mount a tmpfs on /run"
	CT_MOUNTED+=(/run)
}

# ct_mask UNIT...: mask units in the container's tree (slow or irrelevant in a test boot).
ct_mask() {
	local u
	mkdir -p "$MERGED/etc/systemd/system"
	for u in "$@"; do
		ln -sfn /dev/null "$MERGED/etc/systemd/system/$u"
	done
}

# ct_prepare: make the container's tree bootable as a test machine: its own machine id, none of
# the host's mounts, a volatile journal, and loguard-test.target to boot into.
ct_prepare() {
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$MERGED/etc/machine-id"
	echo >>"$MERGED/etc/machine-id"
	# The host's mounts and encrypted volumes are not the container's business (and waiting
	# for their devices would stall the boot).
	: >"$MERGED/etc/fstab"
	[ -e "$MERGED/etc/crypttab" ] && : >"$MERGED/etc/crypttab"
	mkdir -p "$MERGED/etc/systemd/journald.conf.d"
	# journald's rate limits stay at their defaults: the unit's own LogRateLimit*= is what is
	# tested (service.sh section 9b), as users get it. Room for that section's flood:
	# vacuuming would delete its oldest entries.
	printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=1G\n' \
		>"$MERGED/etc/systemd/journald.conf.d/loguard-test.conf"
	# Boot into a target of our own: sysinit.target (where loguard is enabled, and what it
	# must come before) and D-Bus (systemd-run --wait needs it), nothing else: no getty, no
	# timers, no network management, no host services.
	cat >"$MERGED/etc/systemd/system/loguard-test.target" <<'EOF'
[Unit]
Description=loguard test boot: sysinit.target and D-Bus, nothing else
Requires=sysinit.target
Wants=dbus.socket dbus.service
After=sysinit.target dbus.socket dbus.service
AllowIsolate=yes
EOF
	ct_mask systemd-timesyncd.service systemd-pstore.service systemd-firstboot.service \
		systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-repart.service \
		systemd-random-seed.service systemd-machine-id-commit.service \
		systemd-update-utmp.service systemd-journal-catalog-update.service \
		systemd-hwdb-update.service ldconfig.service systemd-networkd.service \
		systemd-resolved.service
}

# ct_users "NAME:UID" ...: add users (own group, gid = uid) to the container's /etc/passwd and
# /etc/group, replacing any entry with the same name or id.
ct_users() {
	local u name uid names="" ids=""
	for u in "$@"; do
		names+="${u%%:*}|"
		ids+="${u##*:}|"
	done
	names=${names%|}
	ids=${ids%|}
	for f in passwd group; do
		awk -F: -v n="^($names)\$" -v i="^($ids)\$" '$1 !~ n && $3 !~ i' \
			"$MERGED/etc/$f" >"$MERGED/etc/$f.new" && mv "$MERGED/etc/$f.new" "$MERGED/etc/$f"
		chmod 0644 "$MERGED/etc/$f"
	done
	for u in "$@"; do
		name=${u%%:*}
		uid=${u##*:}
		printf '%s:x:%s:%s::/nonexistent:/usr/sbin/nologin\n' "$name" "$uid" "$uid" >>"$MERGED/etc/passwd"
		printf '%s:x:%s:\n' "$name" "$uid" >>"$MERGED/etc/group"
	done
}

# ---- booting ---------------------------------------------------------------------------------

# The cgroup2 mount (and, on hybrid hosts, the name=systemd v1 one) from mountinfo.
cgroup_mounts() {
	awk '{ for (i = 7; $i != "-"; i++); fs = $(i + 1); opts = $(i + 3) }
	     fs == "cgroup2" { print $5 }
	     fs == "cgroup" && opts ~ /(^|,)name=systemd(,|$)/ { print $5 }' /proc/self/mountinfo
}

# ct_boot TARGET: boot the tree into TARGET; sets CT_PID (the container's PID 1, host pid).
# Skips when the container cannot boot here; fails when it boots but does not settle.
ct_boot() {
	local target=$1 m cg i state=""
	# systemd-nspawn --keep-unit runs the container in the cgroup it is started in: give it
	# fresh ones of its own (one per hierarchy), removed again by ct_cleanup.
	for m in $(cgroup_mounts); do
		cg="$m/loguard-systemd-test.$$"
		mkdir "$cg" 2>/dev/null || skip "cannot create cgroup $cg"
		CT_CGROUPS+=("$cg")
	done
	[ ${#CT_CGROUPS[@]} -gt 0 ] || skip "no cgroup2 or name=systemd hierarchy mounted"
	(
		for cg in "${CT_CGROUPS[@]}"; do
			echo "$BASHPID" >"$cg/cgroup.procs" || exit 97
		done
		# --system-call-filter=open_by_handle_at: systemd-nspawn's own seccomp filter
		# refuses it (EPERM) to every process in a container, and loguard uses it to name
		# the cgroup of a socket. A throwaway container running our own code can have it.
		exec systemd-nspawn --directory="$MERGED" --boot --private-network --register=no \
			--keep-unit --link-journal=no --console=pipe --machine=loguard-test \
			--system-call-filter=open_by_handle_at -- "systemd.unit=$target"
	) </dev/null >"$LGSD_TMP/console.log" 2>&1 &
	CT_NSPAWN_PID=$!

	# The container's PID 1 is systemd-nspawn's child running systemd.
	for ((i = 0; i < 200; i++)); do
		# shellcheck disable=SC2013 # the file is a list of pids
		for m in $(cat "/proc/$CT_NSPAWN_PID/task/"*/children 2>/dev/null); do
			[ "$(cat "/proc/$m/comm" 2>/dev/null)" = systemd ] && CT_PID=$m
		done
		[ -n "$CT_PID" ] && break
		kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$CT_PID" ]; then
		sed 's/^/    console| /' "$LGSD_TMP/console.log" | tail -20
		skip "systemd-nspawn did not start a systemd (see the console above)"
	fi
	# Its manager answers once it is up; then wait for the boot to settle.
	for ((i = 0; i < 300; i++)); do
		state=$(ct systemctl is-system-running 2>/dev/null)
		case $state in
		running | degraded) break ;;
		esac
		kill -0 "$CT_PID" 2>/dev/null || break
		sleep 0.1
	done
	case $state in
	running | degraded) log "container booted ($state) in ~$((i / 10)).$((i % 10)) s, PID 1 = host pid $CT_PID" ;;
	"" | offline | unknown)
		sed 's/^/    console| /' "$LGSD_TMP/console.log" | tail -20
		skip "the container's systemd never answered (state '${state:-none}')"
		;;
	*)
		ct systemctl list-jobs --no-pager 2>&1 | sed 's/^/    jobs| /'
		die "the container did not finish booting in 30 s (state '$state')"
		;;
	esac
}

# ct CMD...: run CMD inside the container (all its namespaces), with a clean environment.
ct() {
	nsenter -t "$CT_PID" -a env -i PATH="$CT_PATH" LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
		SYSTEMD_LOG_COLOR=0 "$@"
}

# ---- units -----------------------------------------------------------------------------------

# prop UNIT PROPERTY: one property of a unit, e.g. prop loguard.service MainPID.
prop() { ct systemctl show -P "$2" "$1"; }

# wait_prop UNIT PROPERTY REGEX [SECONDS]: wait until the property matches.
wait_prop() {
	local unit=$1 p=$2 re=$3 secs=${4:-10} i v
	for ((i = 0; i < secs * 20; i++)); do
		v=$(prop "$unit" "$p")
		[[ $v =~ $re ]] && return 0
		sleep 0.05
	done
	return 1
}

# ---- the journal -----------------------------------------------------------------------------

# Mark the journal of loguard.service: later jsel calls look only after the mark.
JMARK=
jmark() {
	JMARK=$(ct journalctl -u loguard.service -n 1 -o json --no-pager 2>/dev/null |
		python3 -c 'import json, sys
for l in sys.stdin:
    print(json.loads(l)["__CURSOR"])')
}

# jsel PYEXPR: loguard.service's journal entries since the mark for which PYEXPR (over e, the
# entry as a dict of strings) holds, one JSON object per line.
jsel() {
	local args=(-u loguard.service -o json --no-pager)
	[ -n "$JMARK" ] && args+=("--after-cursor=$JMARK")
	ct journalctl "${args[@]}" 2>/dev/null | python3 -c '
import json, sys
flt = sys.argv[1]
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if eval(flt, {}, {"e": e}):
        print(json.dumps(e, sort_keys=True))
' "$1"
}

# jwait PYEXPR [SECONDS]: wait until an entry matches; print the first.
jwait() {
	local secs=${2:-5} i out
	for ((i = 0; i < secs * 10; i++)); do
		out=$(jsel "$1" | head -1)
		[ -n "$out" ] && { printf '%s\n' "$out"; return 0; }
		sleep 0.1
	done
	return 1
}

# jcheck ENTRY PYEXPR: the entry (JSON) satisfies PYEXPR (over e).
jcheck() {
	local entry=$1 expr=$2
	if python3 -c 'import json, sys; e = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$entry" "$expr" 2>/dev/null; then
		ok "journal entry has $expr"
	else
		fail "journal entry does not satisfy $expr"
		printf '%s\n' "$entry" | python3 -c 'import json, sys
e = json.loads(sys.stdin.read())
for k in sorted(e):
    if k.startswith("LOGUARD_") or k in ("MESSAGE", "_SYSTEMD_UNIT"):
        print("      | %s=%s" % (k, e[k]))'
	fi
}

# ---- nftables (inside the container's network namespace) -------------------------------------

ct_nft_table() { ct nft list table inet loguard 2>/dev/null; }
# The table's configuration, not its state: no counter values (they move with traffic), no
# elements of dynamic sets (rate-limit meters the kernel adds and expires), no flags line and
# no "# progname" comment (they say who owns the table, which changes when its owner dies; this
# nft may not even know the name of the PERSIST flag).
ct_nft_rules() {
	ct_nft_table | python3 -c '
import re, sys
out, block, dynamic, skipping = [], [], False, False
for line in sys.stdin.read().split("\n"):
    line = re.sub(r"counter packets \d+ bytes \d+", "counter", line)
    line = re.sub(r"^\t\tpackets \d+ bytes \d+$", "\t\tpackets N bytes N", line) # named counters
    line = re.sub(r" # progname .*$", "", line)
    if re.match(r"^\tflags( |$)", line):
        continue
    if re.match(r"^\t(set|map) ", line):
        block, dynamic = [line], False
        continue
    if block:
        if re.match(r"^\t\tflags .*dynamic", line):
            dynamic = True
        if dynamic and re.match(r"^\t\telements = ", line):
            skipping = True
        if skipping:
            skipping = not line.rstrip().endswith("}")
            continue
        block.append(line)
        if line == "\t}":
            out.extend(block)
            block = []
        continue
    out.append(line)
print("\n".join(out))
'
}

# same_rules WHAT EXPECTED: the table's configuration (ct_nft_rules) is EXPECTED.
same_rules() {
	local now
	now=$(ct_nft_rules)
	if [ "$now" = "$2" ]; then
		ok "$1"
	else
		fail "$1: the table differs (- expected, + now):"
		diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$now") | tail -n +3 | sed 's/^/      | /'
	fi
}

# ---- clients and servers (transient units inside the container) ------------------------------

CT_LGPROBE=/usr/local/bin/lgprobe
NPROBE=0

# ct_server USER PORT: lgprobe listen as USER on 127.0.0.1:PORT (unit lgt-server-PORT).
ct_server() {
	local user=$1 port=$2 i
	ct systemd-run --quiet --collect --unit="lgt-server-$port" -p User="$user" \
		"$CT_LGPROBE" listen tcp 127.0.0.1 "$port" || die "cannot start the server on $port"
	for ((i = 0; i < 100; i++)); do
		[ -n "$(ct ss -Htln "sport = :$port")" ] && return 0
		sleep 0.05
	done
	die "server on port $port did not start listening"
}

# ct_probe USER PORT: one connection attempt as USER, in a unit of its own; prints the
# verdict word (connected, refused, timeout, error).
ct_probe() {
	local user=$1 port=$2
	NPROBE=$((NPROBE + 1))
	ct systemd-run --quiet --wait --pipe --collect --unit="lgt-probe-$NPROBE" -p User="$user" \
		"$CT_LGPROBE" connect tcp 127.0.0.1 "$port" --timeout-ms 1500 </dev/null 2>/dev/null
	return 0
}

# expect VERDICT USER PORT
expect() {
	local want=$1 user=$2 port=$3 got
	got=$(ct_probe "$user" "$port")
	if [ "$got" = "$want" ]; then
		ok "$user -> 127.0.0.1:$port $got"
	else
		fail "$user -> 127.0.0.1:$port: expected $want, got '${got:-nothing}'"
	fi
}

# ct_hold_start USER PORT: a connection held open by USER (lgprobe hold, unit lgt-hold-N), so
# that loguard can find the process holding its socket. Sets HOLD_UNIT, HOLD_PID.
HOLD_FD=
HOLD_BG=
HOLD_UNIT=
HOLD_PID=
ct_hold_start() {
	local user=$1 port=$2 i
	NPROBE=$((NPROBE + 1))
	HOLD_UNIT="lgt-hold-$NPROBE.service"
	rm -f "$LGSD_TMP/hold.in"
	mkfifo "$LGSD_TMP/hold.in"
	ct systemd-run --quiet --wait --pipe --collect --unit="$HOLD_UNIT" -p User="$user" \
		"$CT_LGPROBE" hold tcp 127.0.0.1 "$port" --timeout-ms 1500 \
		<"$LGSD_TMP/hold.in" >"$LGSD_TMP/hold.out" 2>"$LGSD_TMP/hold.err" &
	HOLD_BG=$!
	exec {HOLD_FD}>"$LGSD_TMP/hold.in"
	for ((i = 0; i < 100; i++)); do
		grep -q -x connected "$LGSD_TMP/hold.out" 2>/dev/null && break
		kill -0 "$HOLD_BG" 2>/dev/null || break
		sleep 0.05
	done
	if ! grep -q -x connected "$LGSD_TMP/hold.out" 2>/dev/null; then
		cat "$LGSD_TMP/hold.out" "$LGSD_TMP/hold.err" 2>/dev/null
		die "$user could not hold a connection to port $port"
	fi
	# shellcheck disable=SC2034 # read by service.sh
	HOLD_PID=$(prop "$HOLD_UNIT" MainPID)
}

ct_hold_finish() {
	exec {HOLD_FD}>&-
	wait "$HOLD_BG" 2>/dev/null
	HOLD_BG=
}
