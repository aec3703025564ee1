#!/bin/bash
# An invalid policy makes `apply` exit 1 and leaves the previously applied ruleset in force:
# the table is unchanged and the denied user is still refused.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

good=$(fixture web-alice)
bad_user=$(policy bad_user <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [8080, 8081]
    protocol: tcp
    allow:
      users: [bob, no-such-user-xyz]
    action: reject
YAML
)
bad_syntax=$(policy bad_syntax <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [8080
    protocol: tcp
YAML
)
bad_port=$(policy bad_port <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [70000]
    protocol: tcp
    allow:
      users: [bob]
    action: reject
YAML
)
bad_version=$(policy bad_version <<'YAML'
version: 99
guards: []
YAML
)
start_server tcp 127.0.0.1 8080
apply "$good"
before=$(nft list table inet loguard | nft_normalize)
for bad in "$bad_user" "$bad_syntax" "$bad_port" "$bad_version"; do
	if expect_lg 1 "$bad" apply; then
		# errors are located: file:line:col: error: message
		grep -q "^$bad:[0-9]*:[0-9]*: error: " <<<"$LG_OUT" ||
			fail "no 'FILE:LINE:COL: error:' message for $(basename "$bad"): $LG_OUT"
	fi
	after=$(nft list table inet loguard 2>&1 | nft_normalize)
	if ! nft_same "$before" "$after"; then
		fail "table changed by failed apply of $(basename "$bad"):"
		nft_diff "$before" "$after"
	fi
	expect_connect alice tcp 127.0.0.1 8080
	expect_refused bob tcp 127.0.0.1 8080
done
lg_done
