#!/bin/bash
# `launched: [NAME]` with loguard run and loguard exec: the daemon adds the cgroup
# loguard/launched/NAME to allow_cgroup_l3 when exec creates it, exec waits for that, so the
# command's very first connection gets through; the same user outside it, or in another
# launched cgroup, is refused; a second exec joins the same cgroup and connects at once.
# Needs the policy key `launched:` and the daemon's cgroup watcher (cgwatch): fails until both
# are there. What needs neither is in t_exec.sh.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users
lg_setup_launched

tool=lgt$$-mytool # unique to this run: the cgroup tree is the host's
other=lgt$$-other
lg_launched "$tool"
lg_launched "$other"
cgt=$LG_CG2/loguard/launched/$tool

p=$(policy launched <<YAML
version: 1
mode: enforce
guards:
  - name: tool
    ports: [7001]
    allow: { launched: [$tool] }
YAML
)
lg "$p" check || die "the policy parser does not accept launched: yet: $LG_OUT"
start_server tcp 127.0.0.1 7001
start_daemon "$p"
[ ! -e "$cgt" ] || die "$cgt exists before the first exec"

# exec_probe WANT NAME: alice, launched as NAME, connects to 7001; stderr in ERR.
ERR=
exec_probe() {
	local want=$1 name=$2 got start ms
	shift 2
	start=$(date +%s%N)
	got=$("$LOGUARD" exec --as "$name" --user alice "$@" -- \
		"$LGPROBE" connect tcp 127.0.0.1 7001 --timeout-ms "$LG_TIMEOUT_MS" 2>"$LG_TMP/exec.err")
	ms=$((($(date +%s%N) - start) / 1000000))
	ERR=$(cat "$LG_TMP/exec.err")
	if [ "$got" = "$want" ]; then
		log "ok: alice launched as $name -> $got ($ms ms)"
	else
		fail "alice launched as $name: expected '$want', got '$got' ($ms ms; stderr: $ERR)"
	fi
}

# The first exec creates the cgroup; the daemon must allow it before the probe connects.
exec_probe connected "$tool"
[ -z "$ERR" ] || fail "first exec as $tool warned: $ERR"
id1=$(stat -c %i "$cgt")
expect_refused alice tcp 127.0.0.1 7001
# Another launched name is not allowed: refused, after exec's warning.
exec_probe refused "$other" --wait 300
[ "$ERR" = "loguard exec: no guard of the running policy allows launched '$other' (is \`loguard run\` running with it?)" ] &&
	log "ok: exec as $other warned" || fail "exec as $other: stderr '$ERR'"
# The second exec reuses the cgroup and its element.
exec_probe connected "$tool" --wait 0
[ "$(stat -c %i "$cgt")" = "$id1" ] && log "ok: the second exec reused $cgt" || fail "$cgt was recreated"
# The daemon logged the two denials (alice outside, alice as other), not the allows.
expect_records 2 'r["uid"] == 1001 and r["verdict"] == "deny"'

stop_daemon
lg_done
