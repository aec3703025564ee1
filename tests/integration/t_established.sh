#!/bin/bash
# An established connection survives a re-apply whose policy now denies its user: only new
# connections (TCP SYN) are judged. New connections by that user are refused afterwards.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p1=$(policy allow_alice <<'YAML'
version: 1
mode: enforce
guards:
  - name: db
    ports: [5432]
    protocol: tcp
    allow:
      users: [alice]
    action: reject
YAML
)
p2=$(policy allow_bob <<'YAML'
version: 1
mode: enforce
guards:
  - name: db
    ports: [5432]
    protocol: tcp
    allow:
      users: [bob]
    action: reject
YAML
)
start_server tcp 127.0.0.1 5432
start_server tcp ::1 5432
apply "$p1"
expect_connect alice tcp 127.0.0.1 5432
expect_refused bob tcp 127.0.0.1 5432

hold_start alice tcp 127.0.0.1 5432
hold_send before-reapply
apply "$p2"
expect_refused alice tcp 127.0.0.1 5432
expect_connect bob tcp 127.0.0.1 5432
hold_send after-reapply
# re-applying the same policy is fine too, and still leaves the old connection alone
apply "$p2"
hold_send after-second-reapply
hold_finish

# same for IPv6, and for a flush
apply "$p1"
hold_start alice tcp ::1 5432
apply "$p2"
expect_refused alice tcp ::1 5432
hold_send v6-after-p2
lg "$p1" flush || fail "flush failed: $LG_OUT"
hold_send v6-after-flush
hold_finish
[ "$(nft list tables | grep -c 'table inet loguard')" -eq 0 ] || fail "table still there after flush"
lg_done
