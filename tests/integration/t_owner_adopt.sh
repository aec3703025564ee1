#!/bin/bash
# A daemon killed with SIGKILL leaves its table in force (OWNER|PERSIST, fail closed), owner
# sets included. The receivers in them were learned by the dead daemon, which no longer
# follows them: a new daemon that adopts the table must not keep them. Here alice's listener is
# learned, the daemon is killed, alice's listener goes and bob listens on the port instead;
# the new daemon must refuse alice there (bob's port), let bob in, and learn bob, not alice.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(fixture owner-private)
alice_uid=$(id -u alice)
bob_uid=$(id -u bob)
owner_has() { grep -q "127.0.0.1 . tcp . 20001 . $1" <<<"$(nft list set inet loguard owner4)"; }

start_server_as alice tcp 127.0.0.1 20001
alice_server=$LG_SERVER_PID
start_daemon "$p"
expect_connect alice tcp 127.0.0.1 20001
owner_has "$alice_uid" && log "ok: alice learned as the receiver of 20001" ||
	fail "owner4 lacks alice on 20001: $(nft list set inet loguard owner4)"

stop_daemon KILL
kill "$alice_server"
wait "$alice_server" 2>/dev/null
start_server_as bob tcp 127.0.0.1 20001
start_daemon "$p"
owner_has "$alice_uid" && fail "the new daemon kept the dead one's receiver (alice on 20001)" ||
	log "ok: the adopted table forgot the receivers nobody follows"
expect_refused alice tcp 127.0.0.1 20001
expect_connect bob tcp 127.0.0.1 20001
owner_has "$bob_uid" && log "ok: bob learned as the receiver of 20001" ||
	fail "owner4 lacks bob on 20001: $(nft list set inet loguard owner4)"
expect_refused alice tcp 127.0.0.1 20001
stop_daemon TERM
lg_done
