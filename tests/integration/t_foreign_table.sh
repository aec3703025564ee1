#!/bin/bash
# loguard owns `table inet loguard` only: apply, re-apply and flush leave other tables (here an
# inet table called "other" with a set, a base chain and rules, and an ip table) untouched.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

run nft -f - <<'NFT'
table inet other {
	set blocked {
		type ipv4_addr
		elements = { 192.0.2.1, 192.0.2.2 }
	}
	chain output {
		type filter hook output priority 10; policy accept;
		ip daddr @blocked counter drop comment "not loguard's"
		tcp dport 9999 counter accept
	}
	chain helper {
		udp dport 53 accept
	}
}
table ip loguard {
	chain c {
		counter
	}
}
NFT
snapshot() { nft list ruleset | python3 -c '
import sys, re
# everything except table inet loguard
out, skip = [], False
for line in sys.stdin:
    if line.startswith("table "):
        skip = line.startswith("table inet loguard ")
    if not skip:
        out.append(line)
sys.stdout.write("".join(out))' | nft_normalize; }
before=$(snapshot)
[ -n "$before" ] || die "could not list the foreign tables"

p1=$(policy p1 <<'YAML'
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
p2=$(policy p2 <<'YAML'
version: 1
mode: enforce
guards:
  - name: other
    ports: [9999]
    protocol: tcp
    allow:
      users: [bob]
    action: drop
YAML
)
check_same() {
	local now
	now=$(snapshot)
	if nft_same "$before" "$now"; then
		log "ok: foreign tables unchanged after $1"
	else
		fail "foreign tables changed by $1:"
		nft_diff "$before" "$now"
	fi
}
start_server tcp 127.0.0.1 8080
start_server tcp 127.0.0.1 9999
apply "$p1"
check_same "apply"
have_table inet loguard || fail "apply installed no table inet loguard"
# loguard enforces next to the other table's base chain (which accepts tcp dport 9999)
expect_refused bob tcp 127.0.0.1 8080
expect_connect alice tcp 127.0.0.1 8080
apply "$p2"
check_same "re-apply"
LG_TIMEOUT_MS=500 expect_timeout alice tcp 127.0.0.1 9999
expect_connect bob tcp 127.0.0.1 9999
expect_connect alice tcp 127.0.0.1 8080
expect_lg 0 "$p2" apply --dry-run
check_same "apply --dry-run"
expect_lg 0 "$p2" flush
check_same "flush"
have_table inet loguard && fail "table inet loguard still present after flush"
have_table ip loguard || fail "flush removed table ip loguard (same name, other family)"
have_table inet other || fail "flush removed table inet other"
expect_lg 0 "$p2" flush
check_same "second flush"
lg_done
