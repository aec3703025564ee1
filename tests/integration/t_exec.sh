#!/bin/bash
# loguard exec --as NAME, the parts that need no `launched:` policy key (t_exec_launched.sh has
# those): names are checked, only root may use it, the command runs in loguard/launched/NAME
# (root-owned, 0755, no controllers; each run in a cgroup RUN of its own below it, removed after
# the run), as --user with that user's identity and environment, cannot leave the cgroup, a
# second exec joins the same cgroup, a signal to exec reaches the command, the command's exit
# status or 126/127 comes back, and --wait waits for the kernel's table: an element for the
# cgroup's id in
# allow_cgroup_l3 (or allow_cgroup_l3_ranges) ends the wait, none makes a warning after it.
# The kernel side is exercised with `cgroups: [loguard/launched/NAME]`, which the parser knows.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users
lg_setup_launched

x=lgt$$-x # unique to this run: the cgroup tree is the host's
y=lgt$$-y
lg_launched "$x"
lg_launched "$y"
cgx=$LG_CG2/loguard/launched/$x
warn_x="loguard exec: no guard of the running policy allows launched '$x' (is \`loguard run\` running with it?)"

# exec_out WANT_STATUS ARGS...: loguard exec ARGS..., stdout in OUT, stderr in ERR.
OUT= ERR=
exec_out() {
	local want=$1 rc
	shift
	OUT=$("$LOGUARD" exec "$@" 2>"$LG_TMP/exec.err")
	rc=$?
	ERR=$(cat "$LG_TMP/exec.err")
	if [ "$rc" -ne "$want" ]; then
		fail "expected exit $want, got $rc: $(lg_quote "$LOGUARD" exec "$@")"
		printf '%s\n' "$OUT" "$ERR" | sed 's/^/      | /'
		return 1
	fi
	log "ok: loguard exec $(lg_quote "$@") exited $rc"
}
expect_err() { # GREP-REGEX
	grep -q -e "$1" <<<"$ERR" && log "ok: stderr has '$1'" || fail "stderr lacks '$1': $ERR"
}

# ---- names and privileges: nothing is created ----
long=$(printf 'n%.0s' {1..65})
for name in "" . .. a/b ../x "a b" 'star*' "$long"; do
	exec_out 2 --as "$name" --wait 0 -- true && expect_err "^loguard exec: invalid name '.*' for --as: "
done
exec_out 2 --as "$x" --wait 0 # no command
exec_out 2 -- true            # no --as
exec_out 2 --as "$x" --wait soon -- true
OUT=$(as_user alice "$LOGUARD" exec --as "$x" -- true 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q '^loguard exec: must run as root' <<<"$OUT" &&
	log "ok: a user's exec fails: $OUT" || fail "a user's exec: expected exit 3 and 'must run as root', got $rc: $OUT"
exec_out 2 --as "$x" --user no-such-user-xyz -- true && expect_err "no such user 'no-such-user-xyz'"
[ ! -e "$cgx" ] && log "ok: failed execs created no cgroup" || fail "a failed exec created $cgx"

# ---- placement ----
exec_out 0 --as "$x" --wait 0 -- sh -c 'cat /proc/self/cgroup; stat -c "%u %a" "'"$LG_CG2"'$(sed -n "s/^0:://p" /proc/self/cgroup)"'
grep -q -x -E "0::/loguard/launched/$x/run-[0-9]+" <<<"$OUT" && log "ok: the command runs in /loguard/launched/$x/run-PID" ||
	fail "the command's /proc/self/cgroup: $OUT"
grep -q -x "0 755" <<<"$OUT" && log "ok: its run cgroup is root's, 755" || fail "the run cgroup's owner and mode: $OUT"
[ -z "$ERR" ] || fail "--wait 0 printed: $ERR"
run=$(sed -n "s|^0::/loguard/launched/$x/||p" <<<"$OUT")
[ -n "$run" ] && [ ! -e "$cgx/$run" ] && log "ok: $cgx/$run was removed after the run" ||
	fail "the run cgroup '$run' is still there: $(ls "$cgx")"
for d in "$LG_CG2/loguard" "$LG_CG2/loguard/launched" "$cgx"; do
	got=$(stat -c '%u %a' "$d")
	[ "$got" = "0 755" ] && log "ok: $d is root's, 755" || fail "$d: owner and mode '$got', want '0 755'"
	[ -z "$(cat "$d/cgroup.subtree_control")" ] || fail "$d has controllers enabled: $(cat "$d/cgroup.subtree_control")"
done

# ---- --user: identity and environment as runuser -u, and no way out ----
exec_out 0 --as "$x" --user carol --wait 0 -- sh -c 'id -u; id -g; id -G; echo "$HOME $USER $LOGNAME $SHELL"; grep ^0:: /proc/self/cgroup'
want="1003
1003
1003 2001
/nonexistent carol carol /usr/sbin/nologin
0::/loguard/launched/$x/run-"
[ "$(sed 's/run-[0-9]*$/run-/' <<<"$OUT")" = "$want" ] && [[ $OUT =~ run-[0-9]+$ ]] && log "ok: --user carol: uid, gid, groups, environment" ||
	fail "--user carol: got '$OUT', want '$want'"
exec_out 0 --as "$x" --user alice --wait 0 -- sh -c "echo \$\$ >$LG_CG2/cgroup.procs; echo \$\$ >$cgx/cgroup.procs; grep ^0:: /proc/self/cgroup"
[[ $OUT =~ ^0::/loguard/launched/$x/run-[0-9]+$ ]] && log "ok: alice cannot move out of her run's cgroup" || fail "alice moved out: $OUT"
as_user alice sh -c "echo \$\$ >$cgx/cgroup.procs" 2>/dev/null &&
	fail "alice moved herself into $x" || log "ok: alice cannot move into $x"

# ---- a second exec joins the same cgroup; a signal to exec reaches the command ----
id1=$(stat -c %i "$cgx")
"$LOGUARD" exec --as "$x" --wait 0 -- sleep 60 &
sleeper=$!
lg_track "$sleeper"
for ((i = 0; i < 250; i++)); do
	[ -s "$cgx/run-$sleeper/cgroup.procs" ] && break
	sleep 0.02
done
exec_out 0 --as "$x" --wait 0 -- cat "$cgx/run-$sleeper/cgroup.procs" /proc/self/cgroup
grep -q -x "$(pgrep -P "$sleeper" sleep)" <<<"$OUT" && grep -q -x -E "0::/loguard/launched/$x/run-[0-9]+" <<<"$OUT" &&
	[ "$(stat -c %i "$cgx")" = "$id1" ] &&
	log "ok: a second exec runs beside the first in $x" || fail "second exec: '$OUT', or the cgroup changed"
kill -TERM "$sleeper"
wait "$sleeper"
rc=$?
[ $rc -eq 143 ] && log "ok: SIGTERM to exec ended the command (exit 143)" || fail "SIGTERM to exec: exit $rc, want 143"
[ ! -e "$cgx/run-$sleeper" ] && log "ok: its run cgroup is gone" || fail "$cgx/run-$sleeper is still there"

# ---- exit statuses ----
exec_out 7 --as "$x" --wait 0 -- sh -c 'exit 7'
exec_out 127 --as "$x" --wait 0 -- no-such-command-xyz && expect_err '^loguard exec: no-such-command-xyz: '
printf '#!/bin/sh\n' >"$LG_TMP/not-executable"
exec_out 126 --as "$x" --wait 0 -- "$LG_TMP/not-executable" && expect_err "^loguard exec: $LG_TMP/not-executable: "

# ---- --wait: no table, then a table that allows the cgroup, then one that does not ----
start=$(date +%s%N)
exec_out 0 --as "$x" --wait 300 -- true
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ERR" = "$warn_x" ] && log "ok: no table: warned" || fail "no table: stderr '$ERR', want '$warn_x'"
[ $ms -ge 300 ] && log "ok: waited ${ms} ms for --wait 300" || fail "--wait 300 returned after $ms ms"

start_server tcp 127.0.0.1 7001
start_server tcp 127.0.0.1 7101
exec_out 0 --as "$y" --wait 0 -- true # the policy below names it: it must exist
# PORTS:PROBE-PORT: a hash set, an interval set (big-endian keys), both.
for v in '[7001]:7001' '["7100-7101"]:7101' '[7001, "7100-7101"]:7001'; do
	ports=${v%:*} port=${v##*:}
	p=$(policy cg <<YAML
version: 1
mode: enforce
guards:
  - name: tool
    ports: $ports
    allow:
      cgroups: [loguard/launched/$x]
YAML
)
	apply "$p"
	start=$(date +%s%N)
	exec_out 0 --as "$x" -- true
	ms=$((($(date +%s%N) - start) / 1000000))
	[ -z "$ERR" ] && log "ok: ports $ports: allowed, no warning (${ms} ms)" || fail "ports $ports: $ERR"
	# Under the default --wait 1000: it did not wait for the deadline (loaded machines are slow).
	[ $ms -lt 1000 ] || fail "ports $ports: exec took $ms ms though the table allows the cgroup"
	exec_out 0 --as "$y" --wait 100 -- true
	[ "$ERR" = "${warn_x//$x/$y}" ] && log "ok: ports $ports: $y is not allowed: warned" ||
		fail "ports $ports, $y: stderr '$ERR'"
	exec_out 0 --as "$x" --user alice -- "$LGPROBE" connect tcp 127.0.0.1 "$port" --timeout-ms "$LG_TIMEOUT_MS"
	[ "$OUT" = connected ] && log "ok: alice in $x connects to $port" || fail "alice in $x to $port: $OUT ($ERR)"
	exec_out 1 --as "$y" --user alice --wait 0 -- "$LGPROBE" connect tcp 127.0.0.1 "$port" --timeout-ms "$LG_TIMEOUT_MS"
	[ "$OUT" = refused ] && log "ok: alice in $y is refused on $port" || fail "alice in $y to $port: $OUT ($ERR)"
	expect_refused alice tcp 127.0.0.1 "$port"
done

lg_done
