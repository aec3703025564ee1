#!/bin/bash
# No record vanishes unseen: a flood of denied connections while the daemon cannot write (its
# output is stuck) overflows its NFLOG socket at the end of the burst, when no later record can
# show the sequence gap. The final stats must still add up: received + lost = what the kernel
# denied and logged (the guard's counter). Before the kernel counted what it handed to NFLOG
# (counter log_sent), such a loss was reported as "lost":0.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy overflow <<'YAML'
version: 1
mode: enforce
log: { rate: 0 }
guards:
  - name: flood
    ports: [8095]
    protocol: tcp
    allow: { users: [root] }
    action: reject
    log: denied
YAML
)
# The daemon's output goes into a FIFO nobody reads until the flood is over.
mkfifo "$LG_TMP/out.fifo"
(
	exec 3<"$LG_TMP/out.fifo"
	while [ ! -e "$LG_TMP/go" ]; do sleep 0.1; done
	cat <&3 >"$LG_TMP/records"
) &
lg_track $!
"$LOGUARD" -f "$p" run >"$LG_TMP/out.fifo" 2>"$LG_TMP/err" &
daemon=$!
lg_track "$daemon"
wait_log_line "$LG_TMP/err" '^loguard: guarding with' 10 || die "loguard run did not start: $(cat "$LG_TMP/err")"
as_user bob "$LGPROBE" flood tcp 127.0.0.1 8095 --seconds "${LG_FLOOD_SECONDS:-5}" --threads 2 \
	>"$LG_TMP/flood" 2>&1
log "bob's flood: $(cat "$LG_TMP/flood")"
denied=$("$LOGUARD" show --json | python3 -c 'import json, sys
print([g for g in json.load(sys.stdin)["guards"] if g["name"] == "flood"][0]["denied"])')
touch "$LG_TMP/go"
kill -TERM "$daemon"
wait "$daemon" || fail "loguard run exited $?: $(tail -3 "$LG_TMP/err")"
for ((i = 0; i < 100; i++)); do grep -q '"type":"stats"' "$LG_TMP/records" 2>/dev/null && break; sleep 0.1; done
stats=$(grep '"type":"stats"' "$LG_TMP/records" | tail -1)
[ -n "$stats" ] || die "no final stats record"
read -r received lost enobufs < <(python3 -c 'import json, sys
s = json.loads(sys.argv[1]); print(s["received"], s["lost"], s["enobufs"])' "$stats")
records=$(grep -c '"type":"connection"' "$LG_TMP/records")
log "denied (kernel) $denied; records $records; stats: received $received lost $lost enobufs $enobufs"
[ "$enobufs" -gt 0 ] || skip "the flood did not overflow the NFLOG socket here ($denied attempts)"
[ "$records" = "$received" ] && log "ok: every received record was written" ||
	fail "$records records written, $received received"
[ "$((received + lost))" = "$denied" ] && log "ok: received + lost = denied" ||
	fail "received $received + lost $lost != $denied denied: records vanished unseen"
lg_done
