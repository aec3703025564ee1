#!/bin/bash
# flush removes table inet loguard (and with it all enforcement); flushing again is a no-op.
# Applying twice leaves exactly one table.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy web <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [8080]
    protocol: both
    allow:
      users: [alice]
    action: reject
YAML
)
start_server tcp 127.0.0.1 8080
start_server udp 127.0.0.1 8080
apply "$p"
apply "$p"
n=$(nft list tables | grep -c '^table inet loguard$')
[ "$n" -eq 1 ] || fail "expected one table inet loguard after two applies, found $n"
expect_refused bob tcp 127.0.0.1 8080
expect_refused bob udp 127.0.0.1 8080
expect_lg 0 "$p" flush
have_table inet loguard && fail "table inet loguard still present after flush"
[ -z "$(nft list tables)" ] || fail "tables left after flush: $(nft list tables | tr '\n' ' ')"
expect_connect bob tcp 127.0.0.1 8080
expect_connect bob udp 127.0.0.1 8080
expect_lg 0 "$p" flush # nothing installed: still success
# and it can be applied again after a flush
apply "$p"
expect_refused bob tcp 127.0.0.1 8080
lg_done
