#!/bin/bash
# Out of inotify watches (issue 16.2): loguard run keeps running and keeps its table, follows the
# directories it cannot watch by periodic rescans, says so (stderr, stats, show), and watches
# them again when watches come back; started while over the limit, it starts.
#
# fs.inotify.max_user_watches is counted per user and user namespace (user.max_inotify_watches
# of each namespace up to the initial one): the test runs in a user namespace of its own, uid 0
# to 65535 mapped to themselves, and lowers that namespace's limit only. The host's stays.
if [ -z "${LG_INOTIFY_NS:-}" ]; then
	. "$(dirname "$0")/lib.sh"
	unshare -U -n -m --propagation private sleep 600 &
	holder=$!
	lg_track "$holder"
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink /proc/$holder/ns/user)" != "$(readlink /proc/self/ns/user)" ] && break
		sleep 0.01
	done
	echo '0 0 65536' >/proc/$holder/uid_map && echo '0 0 65536' >/proc/$holder/gid_map ||
		skip "cannot map uids into a user namespace"
	LG_INOTIFY_NS=1 nsenter -t "$holder" -U -n -m -- bash "$0"
	exit $?
fi
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

[ -w /proc/sys/user/max_inotify_watches ] || skip "user.max_inotify_watches not writable here"
lg_cgroup_top
top=$LG_CGTOP
svc="lgt-$$-web.service"

# Room for what the daemon watches at start (the tree as it is, plus a few other tests'
# cgroups coming and going), not for 40 more.
n0=$(find "$LG_CG2" -type d 2>/dev/null | wc -l)
limit=$((n0 + 20))
echo "$limit" >/proc/sys/user/max_inotify_watches || die "cannot lower user.max_inotify_watches"
log "cgroup2 has $n0 directories; watches in this user namespace: $limit"

p=$(policy live <<YAML
version: 1
guards:
  - name: web
    ports: [7100]
    allow:
      units: [$svc]
YAML
)
start_server tcp 127.0.0.1 7100
start_daemon "$p"

# Use up the watches: 40 system slices appear while it runs.
for ((i = 0; i < 40; i++)); do
	mkdir "$top/s$i.slice" && LG_CGROUPS+=("$top/s$i.slice")
done
wait_log_line "$LG_DAEMON_ERR" "out of inotify watches" 5 && log "ok: says it ran out of watches" ||
	fail "no word about the watch limit: $(tail -3 "$LG_DAEMON_ERR")"
kill -0 "$LG_DAEMON_PID" 2>/dev/null && log "ok: the daemon still runs" ||
	fail "the daemon exited: $(tail -3 "$LG_DAEMON_ERR")"
have_table inet loguard && log "ok: the table is still there" || fail "the table is gone"
expect_refused bob tcp 127.0.0.1 7100

# A unit starts below a slice that could not be watched: found by a rescan.
mkdir "$top/late.slice" && LG_CGROUPS+=("$top/late.slice")
mkdir "$top/late.slice/$svc" && LG_CGROUPS+=("$top/late.slice/$svc")
connect_within "cg:$top/late.slice/$svc:bob" tcp 127.0.0.1 7100 5 && log "ok: the unit below an unwatched slice connects" ||
	fail "the unit below an unwatched slice was refused for 5 s"
expect_refused "cg:$top/late.slice:bob" tcp 127.0.0.1 7100
polled=$(live_stat cgroup_dirs_polled)
[ "${polled:-0}" -gt 0 ] && log "ok: stats say $polled directories are rescanned" ||
	fail "stats do not show rescanned directories: $(cat "$RUNTIME_DIRECTORY/stats")"
lg "$p" show
grep -q "rescanned without a watch" <<<"$LG_OUT" && log "ok: show says so" ||
	fail "show does not say it: $LG_OUT"

# A restart while over the limit: it starts, and follows the unit.
stop_daemon
start_daemon "$p"
kill -0 "$LG_DAEMON_PID" 2>/dev/null && log "ok: a restart over the limit runs" ||
	fail "a restart over the limit exited: $(cat "$LG_DAEMON_ERR")"
connect_within "cg:$top/late.slice/$svc:bob" tcp 127.0.0.1 7100 5 && log "ok: after the restart the unit connects" ||
	fail "after the restart the unit was refused"

# The pressure goes: every directory is watched again, and a restart is seen at once.
for ((i = 0; i < 40; i++)); do rmdir "$top/s$i.slice"; done
wait_log_line "$LG_DAEMON_ERR" "watched again" 20 && log "ok: says every directory is watched again" ||
	fail "no recovery message: $(tail -3 "$LG_DAEMON_ERR")"
rmdir "$top/late.slice/$svc" && mkdir "$top/late.slice/$svc"
expect_connect "cg:$top/late.slice/$svc:bob" tcp 127.0.0.1 7100

stop_daemon
[ "$LG_DAEMON_RC" = 0 ] && log "ok: stopped cleanly" || fail "loguard run exited $LG_DAEMON_RC"
lg_done
