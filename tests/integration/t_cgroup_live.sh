#!/bin/bash
# Units and cgroups that come and go while loguard run lives: a unit allowed before its cgroup
# exists connects at once when the cgroup is there (its first connection, made right after
# the mkdir, is not refused: the daemon takes pending cgroup events into the sets before the
# kernel decides again), without a reload; a restarted unit (new
# cgroup, new id) too, and the old id leaves the kernel set; glob patterns match new scopes;
# a cgroup of the allowed name inside a subtree delegated to a user (owned by that user) does
# not match a plain unit name.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
[ -n "$cg2" ] || skip "no cgroup2 mount"
top="$cg2/loguard-test-$$"
mkdir "$top" || die "cannot create a cgroup under $cg2"
LG_CGROUPS+=("$top")
svc="lgt-$$-web.service"

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
      units: ["lgt-$$-app-*.scope"]
YAML
)
start_server tcp 127.0.0.1 7100
start_server tcp 127.0.0.1 7200
start_daemon "$p"
grep -q "unit '$svc' has no cgroup" "$LG_DAEMON_ERR" && log "ok: the missing unit is a warning" ||
	fail "no warning for the missing unit: $(cat "$LG_DAEMON_ERR")"

# set_ids: the cgroup ids in the allow_cgroup_l2 set, sorted. nft prints an id it can resolve
# under its built-in /sys/fs/cgroup as that path (here "unified/..."): stat it back to the id.
set_ids() {
	nft -j list set inet loguard allow_cgroup_l2 | python3 -c '
import json, os, sys
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("set", {}).get("elem", []) or []:
        v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
        cg = v["concat"][2]
        print(cg if isinstance(cg, int) else os.stat("/sys/fs/cgroup/" + cg).st_ino)
' | sort
}

expect_refused bob tcp 127.0.0.1 7100
mkdir "$top/$svc" && LG_CGROUPS+=("$top/$svc")
id1=$(stat -c %i "$top/$svc")
expect_connect "cg:$top/$svc:bob" tcp 127.0.0.1 7100
expect_refused "cg:$top:bob" tcp 127.0.0.1 7100
[ "$(set_ids)" = "$id1" ] && log "ok: the set holds the new cgroup's id" ||
	fail "allow_cgroup_l2 holds '$(set_ids)', expected $id1"

# A restart: the cgroup is removed and made again, with a new id.
rmdir "$top/$svc"
mkdir "$top/$svc"
id2=$(stat -c %i "$top/$svc")
[ "$id1" != "$id2" ] || die "a recreated cgroup kept its id"
expect_connect "cg:$top/$svc:bob" tcp 127.0.0.1 7100
for ((i = 0; i < 50; i++)); do [ "$(set_ids)" = "$id2" ] && break; sleep 0.02; done
[ "$(set_ids)" = "$id2" ] && log "ok: the old id left the set" ||
	fail "after the restart allow_cgroup_l2 holds '$(set_ids)', expected $id2"

# Ten restarts in a row, each connecting right after its mkdir: never refused.
for n in 1 2 3 4 5 6 7 8 9 10; do
	rmdir "$top/$svc" && mkdir "$top/$svc" || die "restart $n of $top/$svc"
	got=$(probe "cg:$top/$svc:bob" tcp 127.0.0.1 7100 2>/dev/null)
	[ "$got" = connected ] || fail "restart $n: the unit's first connection got '$got'"
done
log "ok: ten restarts, each first connection accepted"

# Globs: new scopes of the pattern match, others do not.
mkdir "$top/lgt-$$-app-1.scope" && LG_CGROUPS+=("$top/lgt-$$-app-1.scope")
mkdir "$top/lgt-$$-other.scope" && LG_CGROUPS+=("$top/lgt-$$-other.scope")
expect_connect "cg:$top/lgt-$$-app-1.scope:alice" tcp 127.0.0.1 7200
expect_refused "cg:$top/lgt-$$-other.scope:alice" tcp 127.0.0.1 7200

# A subtree delegated to alice: she can name a cgroup like the allowed unit; it must not match.
mkdir "$top/deleg" && LG_CGROUPS+=("$top/deleg")
chown alice "$top/deleg"
as_user alice mkdir "$top/deleg/$svc" && LG_CGROUPS+=("$top/deleg/$svc")
sleep 0.2
expect_refused "cg:$top/deleg/$svc:bob" tcp 127.0.0.1 7100
expect_connect "cg:$top/$svc:bob" tcp 127.0.0.1 7100

stop_daemon
grep -q "followed [0-9]* cgroups appearing" "$LG_DAEMON_ERR" && log "ok: exit summary" ||
	fail "no exit summary: $(tail -3 "$LG_DAEMON_ERR")"
lg_done
