#!/bin/bash
# SIGHUP is how an admin says /etc/passwd changed: after a reload, records name a renamed user
# by the new name (the daemon's name cache is dropped on reload, not kept for its lifetime).
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy audit <<'YAML'
version: 1
mode: audit
log: { group: 6289, rate: 0 }
guards:
  - name: watched
    ports: [7100]
    allow:
      users: [root]
YAML
)
start_server tcp 127.0.0.1 7100
start_daemon "$p"
expect_connect alice tcp 127.0.0.1 7100
expect_records 1 'r["uid"] == 1001 and r["user"] == "alice"'

# Rename alice (uid 1001) to alicia in place: /etc/passwd is a bind mount of this very file.
python3 - "$LG_TMP/passwd" <<'PY'
import sys
with open(sys.argv[1], "r+") as f:
    lines = ["alicia" + l[len("alice"):] if l.startswith("alice:") else l for l in f]
    f.seek(0)
    f.truncate()
    f.writelines(lines)
PY
getent passwd 1001 | grep -q '^alicia:' || die "the test passwd was not rewritten"
n=$(grep -c '^loguard: reloaded' "$LG_DAEMON_ERR")
kill -HUP "$LG_DAEMON_PID"
for ((i = 0; i < 250; i++)); do
	[ "$(grep -c '^loguard: reloaded' "$LG_DAEMON_ERR")" -gt "$n" ] && break
	sleep 0.02
done
expect_connect alicia tcp 127.0.0.1 7100
expect_records 1 'r["uid"] == 1001 and r["user"] == "alicia"'

stop_daemon TERM
[ "$LG_DAEMON_RC" = 0 ] || fail "daemon exit status $LG_DAEMON_RC"
lg_done
