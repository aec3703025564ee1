#!/bin/bash
# One user's own matching cgroups must not fill the allow sets for everyone (issue 16.3). The
# guard has 64 ports, so each matching scope is 64 elements of allow_cgroup_l3: bob's 1,100
# scopes would be 70,400, more than the set holds (65,536). Each user gets a share of the sets:
# bob's scopes past it wait (said on stderr with his name, counted as waiting, not as
# followed), alice's scope is allowed, and bob's waiting scopes go in when his others go.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

lg_cgroup_top
top=$LG_CGTOP
N=1100
bobs="$top/user@1002.service"

scopes_rm() {
	[ -d "$bobs" ] && /usr/bin/python3 -c '
import os, sys
d = sys.argv[1]
for n in os.listdir(d):
    if n.startswith("lgt-") and os.path.isdir(os.path.join(d, n)):
        os.rmdir(os.path.join(d, n))
' "$bobs"
}
trap 'scopes_rm; lg_cleanup' EXIT

for u in alice:1001 bob:1002; do
	mkdir "$top/user@${u#*:}.service" && LG_CGROUPS+=("$top/user@${u#*:}.service")
	chown "${u%:*}" "$top/user@${u#*:}.service"
done

ports=$(seq -s, 7300 2 7426) # not adjacent: merged into one range otherwise
p=$(policy live <<YAML
version: 1
guards:
  - name: apps
    ports: [$ports]
    allow:
      units: ["user@*.service/lgt-$$-app-*.scope"]
YAML
)
start_server tcp 127.0.0.1 7300
start_daemon "$p"

t0=$(date +%s%N)
as_user bob /usr/bin/python3 -c '
import os, sys
d, n, pfx = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    os.mkdir("%s/%s%d.scope" % (d, pfx, i))
' "$bobs" "$N" "lgt-$$-app-" || die "bob could not make $N scopes"
log "bob made $N scopes in $((($(date +%s%N) - t0) / 1000000)) ms"
wait_log_line "$LG_DAEMON_ERR" "uid 1002 \(bob\) has used its share" 20 &&
	log "ok: the daemon names bob: $(grep -m1 'uid 1002' "$LG_DAEMON_ERR")" ||
	fail "no word about bob's share: $(tail -3 "$LG_DAEMON_ERR")"

ff="lgt-$$-app-firefox.scope"
as_user alice mkdir "$top/user@1001.service/$ff" && LG_CGROUPS+=("$top/user@1001.service/$ff")
expect_connect "cg:$top/user@1001.service/$ff:alice" tcp 127.0.0.1 7300
expect_connect "cg:$bobs/lgt-$$-app-0.scope:bob" tcp 127.0.0.1 7300
expect_refused "cg:$bobs/lgt-$$-app-$((N - 1)).scope:bob" tcp 127.0.0.1 7300

# What is counted is what went in: cgroups = in the kernel, cgroups_waiting = the rest.
followed=$(live_stat cgroups)
waiting=$(live_stat cgroups_waiting)
stats=$(cat "$RUNTIME_DIRECTORY/stats")
in_set=$(nft_list set inet loguard allow_cgroup_l3 | grep -o 'tcp \. [0-9]* \. [0-9]*' | wc -l)
log "stats: followed $followed, waiting $waiting; allow_cgroup_l3 holds $in_set elements"
[ "$((followed + waiting))" = $((N + 1)) ] && [ "$waiting" -gt 0 ] &&
	[ "$in_set" = $((followed * 64)) ] && log "ok: the counts are what is in the set" ||
	fail "counts do not add up: $stats; $in_set elements in the set"
lg "$p" show
grep -q "$waiting matched cgroups waiting for room in the sets" <<<"$LG_OUT" &&
	log "ok: show says so" || fail "show: $LG_OUT"

# bob's first 1,000 scopes go: his last ones are let in.
as_user bob /usr/bin/python3 -c '
import os, sys
d, pfx = sys.argv[1], sys.argv[2]
for i in range(1000):
    os.rmdir("%s/%s%d.scope" % (d, pfx, i))
' "$bobs" "lgt-$$-app-" || fail "bob could not remove his scopes"
connect_within "cg:$bobs/lgt-$$-app-$((N - 1)).scope:bob" tcp 127.0.0.1 7300 5 && log "ok: bob's waiting scope is allowed once his others went" ||
	fail "bob's last scope is still refused after 1,000 of his went"
expect_connect "cg:$top/user@1001.service/$ff:alice" tcp 127.0.0.1 7300

stop_daemon
[ "$LG_DAEMON_RC" = 0 ] && log "ok: stopped cleanly" || fail "loguard run exited $LG_DAEMON_RC"
lg_done
