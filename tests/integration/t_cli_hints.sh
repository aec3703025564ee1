#!/bin/bash
# What the CLI says where a new user stumbled (issue 11): flush with no table does not claim to
# have removed one; flush and run as a non-root user say CAP_NET_ADMIN is needed; apply notes
# that nothing keeps its table; check warns about a guard that allows nobody.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy web <<'YAML'
version: 1
guards:
  - name: web
    ports: [8080]
    allow: { users: [alice] }
  - name: closed
    ports: [8081]
YAML
)
chmod 0644 "$p"

# says CMD... REGEX: the combined output of CMD matches REGEX.
says() {
	local re=${*: -1} out
	out=$("${@:1:$#-1}" 2>&1)
	grep -q -E -- "$re" <<<"$out" && log "ok: $(lg_quote "${@:1:$#-1}"): $re" ||
		fail "$(lg_quote "${@:1:$#-1}") does not say '$re': $out"
}

says "$LOGUARD" flush '^no table inet loguard: nothing to remove$'
says as_user bob "$LOGUARD" flush 'CAP_NET_ADMIN needed: run as root'
says as_user bob "$LOGUARD" -f "$p" run 'CAP_NET_ADMIN needed: run as root'
says "$LOGUARD" -f "$p" check "$p:6:5: warning: guard 'closed' allows nobody: in enforce mode it refuses every connection to its ports, root's included"
says "$LOGUARD" -f "$p" apply 'note: nothing keeps this table: `nft flush ruleset`'
# The note is true: a flush ruleset (what nftables.service does) takes the table away.
nft flush ruleset
have_table inet loguard && fail "the table survived nft flush ruleset" ||
	log "ok: nft flush ruleset removed apply's table, as the note says"
apply "$p"
says "$LOGUARD" flush '^removed table inet loguard$'
lg_done
