#!/bin/bash
# Issue 9.8: a user's own systemd manager (user@UID.service) names the cgroups below it, so a
# client of bob's in .../user@1002.service/app.slice/sshd.service was reported as unit
# sshd.service, a system unit's name. The record must name the user manager's unit as `unit`
# and bob's own unit only as `user_unit`. A system unit's cgroup is still its unit, and a tree no
# manager made (here the test's own directory) names no unit at all.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
[ -n "$cg2" ] || skip "no cgroup2 mount"
# Shaped like systemd's tree: a slice, a user manager, the user's own slice and "service".
top="lgt$$.slice"
user_cg="$top/user@1002.service/app.slice/sshd.service"
sys_cg="$top/lgt$$-web.service"
plain_cg="loguard-test-$$/sshd.service"
for d in "$top" "$top/user@1002.service" "$top/user@1002.service/app.slice" "$user_cg" "$sys_cg" \
	"loguard-test-$$" "$plain_cg"; do
	mkdir "$cg2/$d" || die "cannot create cgroup $cg2/$d"
	LG_CGROUPS+=("$cg2/$d")
done

p=$(policy audit <<'YAML'
version: 1
mode: audit
log: { group: 6289, rate: 0 }
guards:
  - name: watched
    ports: [62901]
    protocol: tcp
    allow:
      users: [root]
YAML
)
start_server tcp 127.0.0.1 62901
start_daemon "$p"

FORMAT=json
# held WHO CGROUP: a connection of WHO's from inside CGROUP, kept open until its record is read
# (the daemon finds the cgroup through the socket). Leaves the client's pid in HELD_PID.
held() {
	local user=$1 dir=$2 fd i
	rm -f "$LG_TMP/held.in"
	mkfifo "$LG_TMP/held.in"
	(
		echo "$BASHPID" >"$cg2/$dir/cgroup.procs" || exit 3
		exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- \
			"$LGPROBE" hold tcp 127.0.0.1 62901
	) <"$LG_TMP/held.in" >"$LG_TMP/held.out" 2>&1 &
	HELD_PID=$!
	lg_track "$HELD_PID"
	exec {fd}>"$LG_TMP/held.in"
	for ((i = 0; i < 250; i++)); do
		grep -q -x connected "$LG_TMP/held.out" && break
		sleep 0.02
	done
	grep -q -x connected "$LG_TMP/held.out" || fail "no connection from $dir: $(cat "$LG_TMP/held.out")"
	if [ "$FORMAT" = json ]; then
		expect_records 1 "r['pid'] == $HELD_PID"
	else
		wait_log_line "$LG_DAEMON_OUT" " pid=$HELD_PID " ||
			fail "no text record for pid $HELD_PID: $(cat "$LG_DAEMON_OUT")"
	fi
	exec {fd}>&-
	wait "$HELD_PID"
}

held bob "$user_cg"
f="r['pid'] == $HELD_PID"
expect_field "$f" "r['cgroup'] == '/$user_cg'"
expect_field "$f" 'r["unit"] == "user@1002.service" and r["user_unit"] == "sshd.service"'

held alice "$sys_cg"
f="r['pid'] == $HELD_PID"
expect_field "$f" "r['unit'] == 'lgt$$-web.service' and r['user_unit'] is None"

held carol "$plain_cg"
f="r['pid'] == $HELD_PID"
expect_field "$f" "r['cgroup'] == '/$plain_cg' and r['unit'] is None and r['user_unit'] is None"

# The text format says the same, in fields that cannot be confused.
stop_daemon TERM
start_daemon "$p" --format text
FORMAT=text
held bob "$user_cg"
line=$(grep " pid=$HELD_PID " "$LG_DAEMON_OUT")
case $line in
# (the listener's fields follow the client's)
*" unit=user@1002.service user_unit=sshd.service" | *" unit=user@1002.service user_unit=sshd.service listener="*)
	log "ok: text record: ${line#* uid=}" ;;
*) fail "text record's client part does not end in 'unit=user@1002.service user_unit=sshd.service': $line" ;;
esac
stop_daemon TERM
lg_done
