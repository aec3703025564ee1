#!/bin/bash
# The command line contract: exit codes 0 ok / 1 invalid policy / 2 usage / 3 system, located
# error messages, version and help.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

good=$(fixture web-alice)
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
expect_code() { # WANT CMD...
	local want=$1 rc out
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		log "ok: $(lg_quote "${@##*/}") -> exit $rc"
	else
		fail "expected exit $want, got $rc: $(lg_quote "$@")"
		printf '%s\n' "$out" | head -10 | sed 's/^/      | /'
	fi
	CODE_OUT=$out
}
expect_code 0 "$LOGUARD" version
[ -n "$CODE_OUT" ] || fail "version printed nothing"
expect_code 0 "$LOGUARD" --help
grep -q apply <<<"$CODE_OUT" || fail "--help does not mention apply"
expect_code 2 "$LOGUARD"
expect_code 2 "$LOGUARD" no-such-command
expect_code 2 "$LOGUARD" -f "$good" apply --no-such-option
expect_code 0 "$LOGUARD" -f "$good" check
expect_code 0 "$LOGUARD" check -f "$good" # -f may follow the command
expect_code 0 "$LOGUARD" check --help
expect_code 1 "$LOGUARD" -f "$bad" check
# the unknown user is on line 8, column 15 of the bad policy
grep -q "^$bad:8:15: error: .*no-such-user-xyz" <<<"$CODE_OUT" ||
	fail "check: expected '$bad:8:15: error: ... no-such-user-xyz', got: $CODE_OUT"
expect_code 0 "$LOGUARD" -f "$good" print
grep -q 'table inet loguard' <<<"$CODE_OUT" || fail "print does not print table inet loguard"
expect_code 1 "$LOGUARD" -f "$bad" print
# a missing policy file: an error naming the file (invalid policy or system error)
out=$("$LOGUARD" -f "$LG_TMP/missing.yaml" check 2>&1)
rc=$?
case $rc in
1 | 3) log "ok: missing policy file -> exit $rc" ;;
*) fail "missing policy file: expected exit 1 or 3, got $rc" ;;
esac
grep -q "missing.yaml" <<<"$out" || fail "missing policy file: message does not name it: $out"
# check and print never need the kernel: they work without CAP_NET_ADMIN
cp "$good" "$LG_TMP/good-copy.yaml" && chmod 644 "$LG_TMP/good-copy.yaml"
expect_code 0 as_user bob "$LOGUARD" -f "$LG_TMP/good-copy.yaml" check
expect_code 0 as_user bob "$LOGUARD" -f "$LG_TMP/good-copy.yaml" print
# apply without privileges is a system error, not a crash
expect_code 3 as_user bob "$LOGUARD" -f "$LG_TMP/good-copy.yaml" apply
have_table inet loguard && fail "unprivileged apply installed a table"
lg_done
