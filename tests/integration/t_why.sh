#!/bin/bash
# `loguard why PORT` as an ordinary user would run it (no root): which guard covers the port
# and from which file, who is allowed, whether the user would pass and why not, what a refused
# client sees, who listens. Its answers are checked against real connections under the daemon.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

lg_private_ports_etc
dir=$LG_DROPINS main=$LG_MAIN
cat >"$dir/50-devs.yaml" <<'YAML'
guards:
  - name: devs-8888
    ports: [8888]
    allow: { owner: true, groups: [developers] }
  - name: quiet
    ports: [7000]
    allow: { users: [alice] }
    action: drop
  - name: by-gid
    ports: [7001]
    allow: { groups: [2001] }
YAML
chmod 0644 "$dir/50-devs.yaml"

start_server_as alice tcp 127.0.0.1 8888
start_server_as alice tcp 127.0.0.1 9000

# why WHO ARGS...: run `loguard -f main -d dir why ARGS` as WHO; output in WHY_OUT.
why() {
	local who=$1
	shift
	WHY_OUT=$(as_user "$who" "$LOGUARD" -f "$main" -d "$dir" why "$@" 2>&1)
}
has() { # has WHAT REGEX...: every REGEX matches a line of WHY_OUT
	local what=$1 re
	shift
	for re in "$@"; do
		grep -q -E -- "$re" <<<"$WHY_OUT" || {
			fail "$what: no line matches '$re'; output:"
			sed 's/^/      | /' <<<"$WHY_OUT"
			return
		}
	done
	log "ok: $what"
}

why bob 8888
has "bob asks about 8888 (default user: the caller)" \
	"^port 8888/tcp: guard 'devs-8888' \\($dir/50-devs.yaml:2:5\\), enforce, action reject\$" \
	"it takes the port from guard 'private' \\(1024-65535, $main:" \
	"^  groups \\(every member\\): developers\$" \
	"^bob \\(1002\\): refused; the listener's owner is alice \\(1001\\); not in its users or groups\$" \
	"a refused tcp client sees \"Connection refused\" at once" \
	"^listening: 127.0.0.1:8888 tcp, user alice \\(1001\\)"
why alice 8888
has "alice sees her own server's process" "^listening: 127.0.0.1:8888 tcp, user alice \\(1001\\), pid [0-9]+ \\([a-z0-9]+\\)\$"
why bob 8888 --user carol
has "carol through a supplementary group" "^carol \\(1003\\): allowed, a member of group 'developers' \\($dir/50-devs.yaml:4:36\\)\$"
why bob 7001 --user carol
has "a group named by its gid, as the policy resolves it" "^carol \\(1003\\): allowed, a member of group '2001'"
why bob 8888 --user dave
has "dave through his primary group" "^dave \\(1004\\): allowed, a member of group 'developers'"
why bob 8888 --user 1001
has "alice (by uid) as the listener's owner" "^alice \\(1001\\): allowed, the owner of the listening socket\$"
why carol 9000
has "9000 is the main file's owner-only guard" "^port 9000/tcp: guard 'private' \\($main:" \
	"^carol \\(1003\\): refused; the listener's owner is alice"
why erin 9001
has "a port nobody listens on" "^erin \\(1005\\): refused; nobody listens, so no owner yet" \
	"^listening: nobody on port 9001/tcp"
why bob 7000
has "a drop guard: the client hangs" "^bob \\(1002\\): refused; not in its users or groups\$" \
	"a refused tcp client sees nothing: connect\\(\\) hangs until it times out"
why bob 1000
has "below the private range: no guard" "^port 1000/tcp: no guard"
why bob 8888 --udp
has "udp: private-ports guards tcp only" "^port 8888/udp: no guard"

# The answers are the kernel's: the same users, real connections.
start_daemon "$main" -d "$dir"
expect_refused bob tcp 127.0.0.1 8888
expect_connect carol tcp 127.0.0.1 8888
expect_connect dave tcp 127.0.0.1 8888
expect_connect alice tcp 127.0.0.1 8888
expect_refused carol tcp 127.0.0.1 9000
LG_TIMEOUT_MS=400 expect_timeout bob tcp 127.0.0.1 7000
stop_daemon

# Usage errors and a policy the user may not read.
as_user bob "$LOGUARD" -f "$main" why 0 >/dev/null 2>&1
[ $? = 2 ] && log "ok: why 0 is a usage error" || fail "why 0: not exit 2"
as_user bob "$LOGUARD" -f "$main" why 80 --user no-such-user-q >/dev/null 2>&1
[ $? = 2 ] && log "ok: an unknown --user is a usage error" || fail "unknown --user: not exit 2"
chmod 0600 "$main"
out=$(as_user bob "$LOGUARD" -f "$main" why 8888 2>&1)
rc=$?
[ $rc = 1 ] && grep -q "Permission denied" <<<"$out" && log "ok: an unreadable policy says so ($rc)" ||
	fail "unreadable policy: exit $rc: $out"
lg_done
