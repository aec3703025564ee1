#!/bin/bash
# apply --dry-run validates (kernel included) but installs nothing: no table when there was
# none, the old table untouched when there was one. An invalid policy still fails with exit 1.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p1=$(fixture web-alice)
p2=$(policy p2 <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [8080]
    protocol: tcp
    allow:
      users: [bob]
    action: reject
YAML
)
bad=$(policy bad <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [8080]
    protocol: tcp
    allow:
      users: [no-such-user-xyz]
    action: reject
YAML
)
start_server tcp 127.0.0.1 8080
expect_lg 0 "$p1" apply --dry-run
have_table inet loguard && fail "apply --dry-run installed table inet loguard"
[ -z "$(nft list tables)" ] || fail "apply --dry-run left tables: $(nft list tables | tr '\n' ' ')"
expect_connect bob tcp 127.0.0.1 8080

apply "$p1"
before=$(nft list table inet loguard | nft_normalize)
expect_lg 0 "$p2" apply --dry-run
after=$(nft list table inet loguard | nft_normalize)
nft_same "$before" "$after" || { fail "apply --dry-run of another policy changed the installed table:"; nft_diff "$before" "$after"; }
expect_refused bob tcp 127.0.0.1 8080
expect_connect alice tcp 127.0.0.1 8080
expect_lg 1 "$bad" apply --dry-run
lg_done
