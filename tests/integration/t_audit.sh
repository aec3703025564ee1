#!/bin/bash
# mode: audit blocks nothing (it only logs): every user connects to the guarded port, TCP and UDP.
# A per-guard mode overrides the policy's.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy audit <<'YAML'
version: 1
mode: audit
log: { group: 6289, rate: 20/second }
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
have_table inet loguard || fail "audit mode installed no table"
for who in alice bob root; do
	expect_connect "$who" tcp 127.0.0.1 8080
	expect_connect "$who" udp 127.0.0.1 8080
done
grep -q 'log .*group 6289' <<<"$(nft list table inet loguard)" || fail "no 'log ... group 6289' statement in audit mode"

# a guard can override the policy's mode: one audit guard inside an enforcing policy
p2=$(policy mixed <<'YAML'
version: 1
mode: enforce
guards:
  - name: watched
    ports: [8080]
    protocol: both
    mode: audit
    allow:
      users: [alice]
  - name: enforced
    ports: [8081]
    protocol: tcp
    allow:
      users: [alice]
YAML
)
start_server tcp 127.0.0.1 8081
apply "$p2"
expect_connect bob tcp 127.0.0.1 8080
expect_connect bob udp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8081
expect_connect alice tcp 127.0.0.1 8081
lg_done
