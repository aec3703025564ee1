#!/bin/bash
# A generated policy of 10,000 guards (ports 10000-19999, one distinct numeric uid each:
# port P allows uid 100000 + P - 10000) applies in one go; spot checks: the allowed uid connects,
# the neighbouring guard's uid is refused, an unguarded port is open.
. "$(dirname "$0")/lib.sh"
lg_setup_net

n=10000
"$LG_ROOT/bench/gen_policy.sh" "$n" >"$LG_TMP/big.yaml" || die "gen_policy.sh failed"
log "policy: $(grep -c '^  - name:' "$LG_TMP/big.yaml") guards, $(wc -c <"$LG_TMP/big.yaml") bytes"
t0=$(date +%s%N)
apply "$LG_TMP/big.yaml"
log "apply took $((($(date +%s%N) - t0) / 1000000)) ms (informational, no assertion)"

start_server tcp 127.0.0.1 15000
start_server tcp 127.0.0.1 10000
start_server tcp 127.0.0.1 19999
start_server tcp 127.0.0.1 20000
expect_connect 105000 tcp 127.0.0.1 15000
expect_refused 105001 tcp 127.0.0.1 15000
expect_refused 104999 tcp 127.0.0.1 15000
expect_connect 100000 tcp 127.0.0.1 10000
expect_refused 109999 tcp 127.0.0.1 10000
expect_connect 109999 tcp 127.0.0.1 19999
expect_refused root tcp 127.0.0.1 19999
expect_connect 105001 tcp 127.0.0.1 20000

# all 10,000 uids made it into the kernel
# (allow_uid is a verdict map: each element is a [key, verdict] pair)
cnt=$(nft -j list map inet loguard allow_uid | python3 -c '
import json, sys
n = 0
for obj in json.load(sys.stdin)["nftables"]:
    for e in obj.get("map", {}).get("elem", []):
        e = e[0] if isinstance(e, list) else e
        e = e.get("elem", {}).get("val", e) if isinstance(e, dict) and "elem" in e else e
        key = e.get("concat", []) if isinstance(e, dict) else []
        uid = key[-1] if key else None
        if isinstance(uid, dict) and "range" in uid and uid["range"][0] == uid["range"][1]:
            uid = uid["range"][0]
        if isinstance(uid, int) and 100000 <= uid < 110000:
            n += 1
print(n)')
if [ "$cnt" != "$n" ]; then
	fail "allow_uid holds $cnt elements with uids 100000-109999, expected $n"
	nft list map inet loguard allow_uid | head -20 | sed 's/^/      /'
else
	log "ok: allow_uid holds $cnt elements"
fi
# re-apply of the big policy (replaces the table in one transaction) works too
apply "$LG_TMP/big.yaml"
expect_connect 105000 tcp 127.0.0.1 15000
lg_done
