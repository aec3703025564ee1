#!/bin/bash
# loguard run under valgrind through everything the process-identity code does: owner-only
# receivers learned and forgotten, an executable allowed and refused (audit), a unit pattern
# with a cgroup appearing, a reload, a stop. No memory error, no uninitialised byte sent to
# the kernel, no definite leak.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users
command -v valgrind >/dev/null || skip "valgrind not installed"

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1)
mkdir -p "$LG_TMP/bin" && cp "$LGPROBE" "$LG_TMP/bin/ok" && chmod 755 "$LG_TMP/bin" "$LG_TMP/bin/ok"
p=$(policy vg <<YAML
version: 1
guards:
  - name: private
    ports: ["20000-20999"]
    protocol: both
    allow: { owner: true }
    share: true
  - name: exe
    ports: [5432]
    mode: audit
    allow: { executables: [$LG_TMP/bin/ok] }
  - name: units
    ports: [7100]
    allow: { units: ["lgvg-$$-*.service"] }
YAML
)
start_server_as alice tcp 127.0.0.1 20001
alice_pid=$LG_SERVER_PID
start_server tcp 127.0.0.1 5432
start_server tcp 127.0.0.1 7100
valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 -q \
	"$LOGUARD" -f "$p" run >"$LG_TMP/vg.out" 2>"$LG_TMP/vg.err" &
vg=$!
lg_track "$vg"
wait_log_line "$LG_TMP/vg.err" '^loguard: guarding with' 30 || die "loguard run under valgrind did not start"

expect_connect alice tcp 127.0.0.1 20001
expect_refused bob tcp 127.0.0.1 20001
expect_connect alice tcp 127.0.0.1 20001
# Sharing: a grant made, used, listed, replaced by an untimed one, a malformed request.
as_user alice "$LOGUARD" share 20001 --with bob --for 1h >/dev/null || fail "share under valgrind"
expect_connect bob tcp 127.0.0.1 20001
as_user alice "$LOGUARD" share 20001 --with @developers >/dev/null || fail "group share under valgrind"
as_user bob "$LOGUARD" shares >/dev/null || fail "shares under valgrind"
as_user bob "$LOGUARD" share 20001 --with carol >/dev/null 2>&1 && fail "bob shared alice's port"
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1]); s.send(b"LG\x01\x01" + b"\xff" * 300); s.recv(600)' \
	"$RUNTIME_DIRECTORY/control" || fail "malformed request under valgrind"
as_user bob "$LG_TMP/bin/ok" connect tcp 127.0.0.1 5432 >/dev/null
expect_connect bob tcp 127.0.0.1 5432 # audit: would-deny, passes
if [ -n "$cg2" ]; then
	mkdir "$cg2/lgvg-$$-a.service" && LG_CGROUPS+=("$cg2/lgvg-$$-a.service")
	expect_connect "cg:$cg2/lgvg-$$-a.service:bob" tcp 127.0.0.1 7100
fi
kill "$alice_pid"
sleep 0.3
kill -HUP "$vg"
wait_log_line "$LG_TMP/vg.err" '^loguard: reloaded' 30 || fail "no reload under valgrind"
expect_refused bob tcp 127.0.0.1 7100
kill -TERM "$vg"
wait "$vg"
rc=$?
if [ "$rc" = 0 ]; then
	log "ok: valgrind found nothing (exit 0)"
else
	fail "loguard run under valgrind exited $rc:"
	grep -v '^loguard:' "$LG_TMP/vg.err" | head -60 | sed 's/^/      | /'
fi
lg_done
