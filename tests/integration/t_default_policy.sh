#!/bin/bash
# The shipped policies/default.yaml under `loguard run`, as `make run` starts it: an owner-based
# audit. alice's own connection to her Jupyter on 8888 is logged as allow, never as would-deny;
# bob's connection passes (audit blocks nothing) and yields exactly one would-deny record that
# names bob; root is allowed.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p="$LG_TMP/default.yaml"
install -m 0644 "$LG_ROOT/policies/default.yaml" "$p"
start_server_as alice tcp 127.0.0.1 8888
start_daemon "$p"

expect_connect alice tcp 127.0.0.1 8888
expect_connect alice tcp 127.0.0.1 8888 # the second one decided by the kernel's owner set
expect_connect bob tcp 127.0.0.1 8888
expect_connect root tcp 127.0.0.1 8888
expect_records 1 'r["verdict"] == "would-deny"'
expect_field 'r["verdict"] == "would-deny"' \
	'r["uid"] == 1002 and r["user"] == "bob" and r["guard"] == "jupyter" and r["dport"] == 8888'
expect_records 0 'r["uid"] == 1001 and r["verdict"] != "allow"'
expect_records 2 'r["uid"] == 1001 and r["verdict"] == "allow" and r["guard"] == "jupyter"'
expect_records 1 'r["uid"] == 0 and r["verdict"] == "allow"'
stop_daemon
[ "$LG_DAEMON_RC" -eq 0 ] && log "ok: loguard run exited 0" || fail "loguard run exited $LG_DAEMON_RC"
have_table inet loguard && fail "the table is still installed after SIGTERM"
lg_done
