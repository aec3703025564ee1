#!/bin/bash
# From audit to enforce, end to end: audit a scenario of 3 users and 2 programs under
# `loguard run --log-file`, `loguard suggest` from the records, then run the suggestion in
# enforce mode: the same traffic passes, a fourth user (and a fifth) is refused, a guard that
# saw nothing allows nobody new. The same with --by executables (a third program is refused),
# --group-threshold, --include-denied (never widened without it), --diff (a patch that turns
# the policy into the suggestion) and forged journal entries (ignored).
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

bin="$LG_TMP/bin"
mkdir -p "$bin"
cp "$LGPROBE" "$bin/client-a"
cp "$LGPROBE" "$bin/client-b"
cp "$LGPROBE" "$bin/client-c"
chmod 755 "$bin" "$bin"/client-*

p=$(policy audit <<'YAML'
version: 1
mode: audit
log: { rate: 0 }
guards:
  - name: web
    ports: [8080]
    allow:
      users: [root]
  - name: quiet
    ports: [9000]
    allow:
      users: [root]
YAML
)
start_server tcp 127.0.0.1 8080
start_server tcp 127.0.0.1 9000

# client USER PROG WANT [PORT]: PROG connects as USER and holds the connection a moment, so the
# daemon finds the program that made it (a client gone before the lookup has no exe).
client() {
	local user=$1 prog=$2 want=$3 port=${4:-8080} got
	got=$( (sleep 0.5) | as_user "$user" "$prog" hold tcp 127.0.0.1 "$port" --timeout-ms 1500 2>&1 | head -1)
	[ "$got" = "$want" ] && log "ok: $user $(basename "$prog") :$port -> $got" ||
		fail "$user $(basename "$prog") :$port: expected $want, got '$got'"
}

# ---- audit: alice and dave run client-a, carol runs client-b ------------------------------------
# daemon_with POLICY LOG: loguard run on POLICY, records appended to LOG (read by records()).
daemon_with() {
	start_daemon "$1" --log-file "$2"
	LG_DAEMON_OUT=$2
}
# scenario: the traffic that is audited, and must pass once the suggestion is enforced.
scenario() {
	client alice "$bin/client-a" connected
	client carol "$bin/client-b" connected
	client dave "$bin/client-a" connected
}
log1="$LG_TMP/audit.jsonl"
daemon_with "$p" "$log1"
scenario
client alice "$bin/client-a" connected
expect_records 4 'r["guard"] == "web" and r["verdict"] == "would-deny" and r["exe"] is not None'
stop_daemon

s="$LG_TMP/suggested.yaml"
"$LOGUARD" -f "$p" suggest --log-file "$log1" >"$s" 2>"$LG_TMP/suggest.err" ||
	die "loguard suggest failed: $(cat "$LG_TMP/suggest.err")"
sed 's/^/      | /' "$s"
grep -q '4 connection records read from' "$LG_TMP/suggest.err" && log "ok: 4 records read" ||
	fail "suggest did not read 4 records: $(cat "$LG_TMP/suggest.err")"
# carol (supplementary) and dave (primary) are all of developers: the group; alice by name.
py_policy() { python3 -c 'import sys, yaml; p = yaml.safe_load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$@"; }
if python3 -c 'import yaml' 2>/dev/null; then
	py_policy "$s" 'p["mode"] == "enforce" and [g["name"] for g in p["guards"]] == ["web", "quiet"]' &&
		log "ok: enforce policy with both guards" || fail "suggested policy has the wrong shape"
	py_policy "$s" 'p["guards"][0]["allow"] == {"users": ["root", "alice"], "groups": ["developers"]}' &&
		log "ok: web allows root, alice and developers" || fail "web's allow is wrong"
	py_policy "$s" 'p["guards"][1]["allow"] == {"users": ["root"]}' &&
		log "ok: quiet allows root only" || fail "quiet's allow is wrong"
else
	log "note: no python3-yaml: the suggestion is checked by loguard check and by traffic only"
fi
grep -q '"alice" # seen: 2 connections, .* to .*, e.g. .*/client-a$' "$s" &&
	log "ok: comment with count, first/last seen and an example program" ||
	fail "no count/first/last/example comment for alice"
expect_lg 0 "$s" check

# ---- enforce the suggestion: the same traffic passes, others are refused ------------------------
chmod 644 "$s"
log2="$LG_TMP/enforce.jsonl"
daemon_with "$s" "$log2"
scenario
expect_connect root tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080
client erin "$bin/client-a" refused
expect_refused alice tcp 127.0.0.1 9000 # quiet saw nobody but root
expect_records 3 'r["verdict"] == "deny"'
stop_daemon

# Denied in enforce mode: not widened unless asked.
"$LOGUARD" -f "$s" suggest --log-file "$log2" >"$LG_TMP/s2.yaml" 2>/dev/null || fail "suggest from enforce records failed"
grep -q '"bob"' "$LG_TMP/s2.yaml" && fail "bob's denied connection was added without --include-denied" ||
	log "ok: denied connections are not added by default"
grep -q '# 2 denied in enforce mode: not added' "$LG_TMP/s2.yaml" && log "ok: the skipped denials are counted" ||
	fail "no count of skipped denials: $(grep denied "$LG_TMP/s2.yaml")"
"$LOGUARD" -f "$s" suggest --include-denied --log-file "$log2" >"$LG_TMP/s3.yaml" 2>/dev/null
grep -q '^        - "bob" # seen: 1 connection' "$LG_TMP/s3.yaml" && grep -q '"erin"' "$LG_TMP/s3.yaml" &&
	log "ok: --include-denied adds bob and erin" || fail "--include-denied did not add bob and erin"

# ---- --group-threshold: carol alone stands for developers only when asked ------------------------
grep '"user":"carol"' "$log1" >"$LG_TMP/carol.jsonl"
"$LOGUARD" -f "$p" suggest <"$LG_TMP/carol.jsonl" >"$LG_TMP/c1.yaml" 2>/dev/null
"$LOGUARD" -f "$p" suggest --group-threshold 1 <"$LG_TMP/carol.jsonl" >"$LG_TMP/c2.yaml" 2>/dev/null
grep -q '"developers"' "$LG_TMP/c1.yaml" && fail "developers suggested though dave was not seen" ||
	log "ok: no group when not all members were seen"
grep -q '^        - "developers" # 1 of its 2 members seen' "$LG_TMP/c2.yaml" &&
	log "ok: --group-threshold 1 suggests developers" || fail "--group-threshold 1: no developers"

# ---- --by executables: the two programs, whoever runs them; a third program is refused ---------
"$LOGUARD" -f "$p" suggest --by executables --log-file "$log1" >"$LG_TMP/exe.yaml" 2>/dev/null
chmod 644 "$LG_TMP/exe.yaml"
grep -q "^        - \"$bin/client-a\" # seen: 3 connections" "$LG_TMP/exe.yaml" &&
	grep -q "^        - \"$bin/client-b\" # seen: 1 connection" "$LG_TMP/exe.yaml" &&
	log "ok: executables client-a and client-b" || fail "--by executables: $(grep -A8 'allow:' "$LG_TMP/exe.yaml" | head -9)"
start_daemon "$LG_TMP/exe.yaml"
client bob "$bin/client-b" connected
client erin "$bin/client-c" refused
stop_daemon

# ---- --diff: a patch from the policy to the suggestion ------------------------------------------
"$LOGUARD" -f "$p" suggest --diff --log-file "$log1" >"$LG_TMP/d.patch" 2>/dev/null
head -2 "$LG_TMP/d.patch" | grep -q -x -- "--- $p" && log "ok: the diff names the policy" ||
	fail "diff header: $(head -2 "$LG_TMP/d.patch")"
cp "$p" "$LG_TMP/patched.yaml"
if patch -s "$LG_TMP/patched.yaml" <"$LG_TMP/d.patch" && cmp -s "$LG_TMP/patched.yaml" "$s"; then
	log "ok: patch(1) turns the policy into the suggestion"
else
	fail "the diff does not turn the policy into the suggestion"
fi

# ---- journal entries: only loguard.service's count ---------------------------------------------
python3 - "$log1" >"$LG_TMP/journal.json" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    r = json.loads(line)
    if r.get("type") != "connection":
        continue
    e = {"__CURSOR": "s=%d" % i, "__REALTIME_TIMESTAMP": "1795669651000000",
         "_SYSTEMD_UNIT": "loguard.service", "LOGUARD_TYPE": "connection",
         "LOGUARD_GUARD": r["guard"], "LOGUARD_VERDICT": r["verdict"],
         "LOGUARD_UID": str(r["uid"]), "LOGUARD_USER": r["user"], "LOGUARD_EXE": r["exe"]}
    print(json.dumps(e))
# bob forges a record from his own session: the journal names his unit, not loguard's
print(json.dumps({"__CURSOR": "s=99", "_SYSTEMD_UNIT": "user@1002.service",
                  "LOGUARD_TYPE": "connection", "LOGUARD_GUARD": "web",
                  "LOGUARD_VERDICT": "would-deny", "LOGUARD_UID": "1002"}))
PY
"$LOGUARD" -f "$p" suggest <"$LG_TMP/journal.json" >"$LG_TMP/j.yaml" 2>"$LG_TMP/j.err"
grep -q 'ignored 1 journal entries not logged by loguard.service' "$LG_TMP/j.err" &&
	log "ok: the forged journal entry is ignored, and said so" || fail "forged entry: $(cat "$LG_TMP/j.err")"
grep -q '"bob"' "$LG_TMP/j.yaml" && fail "a forged journal entry widened the policy" ||
	log "ok: bob not added from a forged entry"
grep -q '"alice" # seen: 2 connections' "$LG_TMP/j.yaml" && log "ok: journal records counted" ||
	fail "journal records not counted: $(grep alice "$LG_TMP/j.yaml")"
lg_done
