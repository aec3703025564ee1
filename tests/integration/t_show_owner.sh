#!/bin/bash
# show's counters for guards loguard run judges (issue 11): an owner-only guard's successful
# connections are allowed, not denied (5 connections by the owner once showed "5 0 5"), and a
# refusal the daemon sent back through the hook is one connection, one denial; an audit
# owner-only guard counts would-deny the same way. A users: guard is the reference.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy owner <<'YAML'
version: 1
log: { rate: 0 }
guards:
  - name: private
    ports: ["10000-10100"]
    allow: { owner: true }
  - name: watched
    ports: [10200]
    allow: { owner: true }
    mode: audit
  - name: named
    ports: [10300]
    allow: { users: [alice] }
YAML
)
start_server_as alice tcp 127.0.0.1 10050
start_server_as alice tcp 127.0.0.1 10200
start_server_as alice tcp 127.0.0.1 10300
start_daemon "$p"
for i in 1 2 3 4 5; do
	expect_connect alice tcp 127.0.0.1 10050
	expect_connect alice tcp 127.0.0.1 10300
done
expect_refused bob tcp 127.0.0.1 10050
expect_refused bob tcp 127.0.0.1 10050
expect_refused bob tcp 127.0.0.1 10300
expect_connect alice tcp 127.0.0.1 10200
expect_connect bob tcp 127.0.0.1 10200 # audit: would-deny

# counts GUARD: its CONNECTIONS ALLOWED DENIED columns.
counts() { "$LOGUARD" show | awk -v g="$1" '$1 == g { print $4, $5, $6 }'; }
want() {
	local got
	got=$(counts "$1")
	[ "$got" = "$2" ] && log "ok: show $1: $got (connections allowed denied)" ||
		fail "show $1: '$got', want '$2'; $("$LOGUARD" show)"
}
want private "7 5 2"
want named "6 5 1"
want watched "2 1 1"
json=$("$LOGUARD" show --json)
python3 -c '
import json, sys
g = {x["name"]: x for x in json.loads(sys.argv[1])["guards"]}
sys.exit(0 if (g["private"]["allowed"], g["private"]["denied"], g["watched"]["would_deny"]) == (5, 2, 1) else 1)
' "$json" && log "ok: show --json agrees" || fail "show --json: $json"
# The counting rules are what the kernel has (print cannot be compared whole here: nft lists
# the queue as xtables' NFQUEUE).
k=$(nft list table inet loguard)
for rule in 'meta mark & 0x20000000 == 0x20000000 meta l4proto . th dport @asked_ranges' \
	'meta l4proto . th dport @denied_ranges'; do
	grep -q -F "$rule" <<<"$k" && "$LOGUARD" -f "$p" print | grep -q -F "$rule" &&
		log "ok: kernel and print have: $rule" || fail "rule missing in kernel or print: $rule"
done
stop_daemon
lg_done
