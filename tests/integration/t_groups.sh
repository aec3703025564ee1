#!/bin/bash
# groups: expands to every member at compile time — supplementary members (carol is listed in
# developers in /etc/group) and primary members (dave's passwd gid is developers). loguard judges
# the socket's uid, so a user outside the group is refused even when it runs with the group's
# gid (erin with --regid=2001).
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy groups <<'YAML'
version: 1
mode: enforce
guards:
  - name: dev
    ports: [3000]
    protocol: both
    allow:
      groups: [developers]
    action: reject
YAML
)
start_server tcp 127.0.0.1 3000
start_server udp 127.0.0.1 3000
apply "$p"
for proto in tcp udp; do
	expect_connect carol "$proto" 127.0.0.1 3000
	expect_connect dave "$proto" 127.0.0.1 3000
	expect_refused alice "$proto" 127.0.0.1 3000
	expect_refused bob "$proto" 127.0.0.1 3000
done
got=$(setpriv --reuid=1005 --regid=2001 --groups=2001 "$LGPROBE" connect tcp 127.0.0.1 3000 --timeout-ms 1500)
if [ "$got" = refused ]; then
	log "ok: erin with gid developers (not a member) -> refused"
else
	fail "erin running with gid 2001 but not a member: expected refused, got $got"
fi
lg_done
