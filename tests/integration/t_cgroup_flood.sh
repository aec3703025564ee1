#!/bin/bash
# A user floods her own delegated subtree with empty cgroups (issue 16.1): 65,792 of them, more
# than the watcher ever followed in all. An allowed system unit that starts afterwards still
# connects, and so does another user's allowed scope: directories are counted per owner, and a
# plain unit pattern never looks into a user's subtree. The flood is reported (stderr names
# the user, stats, show); when she deletes it, her own allowed scope is followed again.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

lg_cgroup_top
top=$LG_CGTOP
svc="lgt-$$-web.service"
scope="lgt-$$-app-1.scope"
flood="$top/user@1001.service/flood"
N=65792

# The flood's directories go however the test ends (lg_cleanup knows only the listed ones).
flood_rm() {
	[ -d "$flood" ] && /usr/bin/python3 -c '
import os, sys
d = sys.argv[1]
for n in os.listdir(d):
    if os.path.isdir(os.path.join(d, n)):
        os.rmdir(os.path.join(d, n))
' "$flood"
}
trap 'flood_rm; lg_cleanup' EXIT

for u in alice:1001 bob:1002; do
	mkdir "$top/user@${u#*:}.service" && LG_CGROUPS+=("$top/user@${u#*:}.service")
	chown "${u%:*}" "$top/user@${u#*:}.service"
done
mkdir "$flood" && LG_CGROUPS+=("$flood")
chown alice "$flood"

p=$(policy live <<YAML
version: 1
guards:
  - name: web
    ports: [7100]
    allow:
      units: [$svc]
  - name: apps
    ports: [7200]
    allow:
      units: ["user@*.service/lgt-$$-app-*.scope"]
YAML
)
start_server tcp 127.0.0.1 7100
start_server tcp 127.0.0.1 7200
start_daemon "$p"

t0=$(date +%s%N)
as_user alice /usr/bin/python3 -c '
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.mkdir("%s/f%d" % (d, i))
' "$flood" "$N" || die "alice could not make $N cgroups"
log "alice made $N cgroups in $((($(date +%s%N) - t0) / 1000000)) ms"

wait_log_line "$LG_DAEMON_ERR" "uid 1001 \(alice\) has [0-9]+ cgroup directories" 20 &&
	log "ok: the daemon names alice: $(grep -m1 'uid 1001' "$LG_DAEMON_ERR")" ||
	fail "no word about alice's cgroups: $(tail -3 "$LG_DAEMON_ERR")"

# The system unit starts after the flood; bob's scope too.
mkdir "$top/$svc" && LG_CGROUPS+=("$top/$svc")
expect_connect "cg:$top/$svc:bob" tcp 127.0.0.1 7100
mkdir "$top/user@1002.service/$scope" && LG_CGROUPS+=("$top/user@1002.service/$scope")
chown bob "$top/user@1002.service/$scope"
expect_connect "cg:$top/user@1002.service/$scope:bob" tcp 127.0.0.1 7200
# A restart of the unit while the flood is there.
rmdir "$top/$svc" && mkdir "$top/$svc"
expect_connect "cg:$top/$svc:bob" tcp 127.0.0.1 7100

hits=$(live_stat cgroup_limit_hits)
[ "${hits:-0}" -gt 0 ] && log "ok: stats count $hits limit(s) hit" ||
	fail "stats do not show the limit: $(cat "$RUNTIME_DIRECTORY/stats")"
lg "$p" show
grep -q "left out by a limit" <<<"$LG_OUT" && log "ok: show says so" || fail "show does not say it: $LG_OUT"

# alice's own allowed scope, made while her flood is there, waits; her flood goes, it is in.
as_user alice mkdir "$top/user@1001.service/$scope" && LG_CGROUPS+=("$top/user@1001.service/$scope")
flood_rm
wait_log_line "$LG_DAEMON_ERR" "uid 1001 \(alice\): all its cgroup directories followed again" 20 &&
	log "ok: says alice's directories are all followed again" ||
	fail "no recovery message: $(tail -3 "$LG_DAEMON_ERR")"
expect_connect "cg:$top/user@1001.service/$scope:alice" tcp 127.0.0.1 7200
rmdir "$top/$svc" && mkdir "$top/$svc"
expect_connect "cg:$top/$svc:bob" tcp 127.0.0.1 7100

stop_daemon
[ "$LG_DAEMON_RC" = 0 ] && log "ok: stopped cleanly" || fail "loguard run exited $LG_DAEMON_RC"
lg_done
