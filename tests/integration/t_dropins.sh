#!/bin/bash
# Drop-ins and precedence, as an admin composes them: the shipped private-ports.yaml
# (1024-65535 owner-only) as the main file, and policy.d/50-devs.yaml giving port 8888 to its
# owner and group developers as well. Real connections: 8888 takes the narrower guard, every
# other port stays owner-only. check/print/show name each guard's file; SIGHUP takes the whole
# set or, with one bad or untrusted drop-in, none of it.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

lg_private_ports_etc
dir=$LG_DROPINS main=$LG_MAIN
cat >"$dir/50-devs.yaml" <<'YAML'
# Port 8888: the notebook's owner and the developers (this guard replaces 'private' there,
# so it says owner: true again).
guards:
  - name: devs-8888
    ports: [8888]
    allow:
      owner: true
      groups: [developers]
YAML
chmod 0644 "$dir/50-devs.yaml"

# check names both files and which guard came from where.
expect_lg 0 "$main" -d "$dir" check
grep -q -x "$main: private" <<<"$LG_OUT" && grep -q -x "$dir/50-devs.yaml: devs-8888" <<<"$LG_OUT" &&
	log "ok: check names each guard's file" || fail "check output: $LG_OUT"
# print: 8888 is the drop-in's, the owner-only range is split around it.
expect_lg 0 "$main" -d "$dir" print
grep -q 'tcp . 8888 comment "devs-8888"' <<<"$LG_OUT" &&
	grep -q 'tcp . 1024-8887 comment "private"' <<<"$LG_OUT" &&
	grep -q 'tcp . 8889-65535 comment "private"' <<<"$LG_OUT" &&
	log "ok: print shows 8888 owned by devs-8888, private split around it" ||
	fail "print: $(grep comment <<<"$LG_OUT" | head -20)"
# Without the drop-in directory, the main file alone.
expect_lg 0 "$main" print
grep -q 'devs-8888' <<<"$LG_OUT" && fail "-f alone read the drop-ins" || log "ok: -f alone reads one file"

start_server_as alice tcp 127.0.0.1 8888
start_server_as alice tcp 127.0.0.1 9000
start_daemon "$main" -d "$dir"

expect_connect alice tcp 127.0.0.1 8888 # owner
expect_connect carol tcp 127.0.0.1 8888 # developers, supplementary
expect_connect dave tcp 127.0.0.1 8888  # developers, primary group
expect_refused bob tcp 127.0.0.1 8888
expect_connect alice tcp 127.0.0.1 9000 # owner-only, as the main file says
expect_refused carol tcp 127.0.0.1 9000
expect_records 1 'r["uid"] == 1002 and r["dport"] == 8888 and r["guard"] == "devs-8888"'
expect_records 1 'r["uid"] == 1003 and r["dport"] == 9000 and r["guard"] == "private"'
# show says which file each installed guard is from (read from the policy files now).
out=$("$LOGUARD" -f "$main" -d "$dir" show 2>&1)
grep -E "^devs-8888 .* $dir/50-devs.yaml\$" <<<"$out" >/dev/null &&
	grep -E "^private .* $main\$" <<<"$out" >/dev/null &&
	log "ok: show names each guard's file" || fail "show: $out"

before=$(nft list table inet loguard | nft_normalize)
reload_fails() { # reload_fails WHAT REGEX: SIGHUP must fail saying REGEX, nothing changes
	: >"$LG_DAEMON_ERR.mark"
	local n
	n=$(grep -c 'reload of .* failed' "$LG_DAEMON_ERR")
	kill -HUP "$LG_DAEMON_PID"
	for ((i = 0; i < 250; i++)); do
		[ "$(grep -c 'reload of .* failed' "$LG_DAEMON_ERR")" -gt "$n" ] && break
		sleep 0.02
	done
	[ "$(grep -c 'reload of .* failed' "$LG_DAEMON_ERR")" -gt "$n" ] ||
		fail "$1: no 'reload failed' after SIGHUP"
	grep -q -E "$2" "$LG_DAEMON_ERR" && log "ok: $1: reload refused: $2" ||
		fail "$1: reload error lacks '$2': $(tail -5 "$LG_DAEMON_ERR")"
	[ "$(nft list table inet loguard | nft_normalize)" = "$before" ] &&
		log "ok: $1: the table is unchanged" || fail "$1: a failed reload changed the table"
}

# A bad drop-in, and one guard as wide as the drop-in's on 8888: both errors, each in its own
# file, in one reload; the old rules stay.
printf 'guards:\n  - { name: web, ports: [80/tcp] }\n' >"$dir/60-bad.yaml"
printf 'guards:\n  - { name: also-8888, ports: [8888] }\n' >"$dir/70-same.yaml"
chmod 0644 "$dir"/*.yaml
reload_fails "invalid drop-ins" "$dir/60-bad.yaml:2:26: error: invalid port '80/tcp'"
grep -q -E "$dir/70-same.yaml:2:32: error: port 8888/tcp is also in guard 'devs-8888' \\($dir/50-devs.yaml:[0-9]+:[0-9]+\\), as wide" "$LG_DAEMON_ERR" &&
	log "ok: the equal-width overlap is reported in the same reload" ||
	fail "overlap not reported: $(tail -6 "$LG_DAEMON_ERR")"
expect_connect carol tcp 127.0.0.1 8888
expect_refused bob tcp 127.0.0.1 8888
rm -f "$dir/60-bad.yaml" "$dir/70-same.yaml"

# Trust: a drop-in others can write, and a directory others can add files to.
printf 'guards:\n  - { name: open-9000, ports: 9000, allow: { users: [bob] } }\n' >"$dir/80-bob.yaml"
chown bob "$dir/80-bob.yaml"
reload_fails "a drop-in owned by bob" "refusing a policy that someone other than root can change"
chown root "$dir/80-bob.yaml"
chmod 0775 "$dir"
reload_fails "a group-writable policy.d" "$dir: error: refusing a policy in a directory that someone other than root can change"
expect_refused bob tcp 127.0.0.1 9000
chmod 0755 "$dir"
# A drop-in the daemon parsed before, its bytes unchanged (the daemon reuses that parse), is
# judged again all the same.
chmod 0664 "$dir/50-devs.yaml"
reload_fails "an unchanged drop-in made group-writable" "$dir/50-devs.yaml: error: refusing a policy that someone other than root can change"
chmod 0644 "$dir/50-devs.yaml"

# A good change to the set takes effect in one reload: bob now reaches alice's 9000.
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" '^loguard: reloaded' || fail "no reload after fixing the drop-ins"
expect_connect bob tcp 127.0.0.1 9000
expect_refused carol tcp 127.0.0.1 9000
expect_refused bob tcp 127.0.0.1 8888
stop_daemon
[ "$LG_DAEMON_RC" = 0 ] && log "ok: loguard run exits 0" || fail "exit status $LG_DAEMON_RC"
lg_done
