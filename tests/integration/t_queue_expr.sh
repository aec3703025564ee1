#!/bin/bash
# How connections reach the daemon: nft's own `queue` expression where the kernel has it
# (CONFIG_NFT_QUEUE), else the xtables NFQUEUE target, found out from the kernel's refusal.
# Both forced with LOGUARD_QUEUE=nft|xt. Either way the daemon judges (an allowed executable
# connects, another program is refused); with nft's expression, `nft list` shows the queue
# rule as `loguard print` does; forcing it on a kernel without it fails, naming the option.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

bin="$LG_TMP/bin"
mkdir -p "$bin"
cp "$LGPROBE" "$bin/probe-allowed"
chmod 755 "$bin" "$bin/probe-allowed"
p=$(policy exe <<YAML
version: 1
log: { rate: 0 }
guards:
  - name: db
    ports: [5432]
    fail: open
    allow:
      executables: [$bin/probe-allowed]
YAML
)
start_server tcp 127.0.0.1 5432

judges() { # the daemon judges: an allowed executable connects, another program is refused
	LGPROBE=$bin/probe-allowed expect connected alice tcp 127.0.0.1 5432
	expect refused alice tcp 127.0.0.1 5432
}

start_daemon "$p"
line=$(grep '^loguard: queueing to NFQUEUE' "$LG_DAEMON_ERR") || fail "no queueing line: $(cat "$LG_DAEMON_ERR")"
log "auto: $line"
judges
listed=$(nft list table inet loguard)
case $line in
*"nft's queue expression"*)
	native=1
	grep -q 'queue flags bypass to 6289 comment "not allowed by the sets: ask loguard run"' <<<"$listed" ||
		fail "nft does not list the queue rule as loguard prints it: $(grep queue <<<"$listed")"
	grep -q 'managed by iptables-nft\|libxtables' <<<"$listed" && fail "nft list shows xtables parts: $listed"
	;;
*"xtables NFQUEUE target"*)
	native=0
	log "this kernel has no nft queue expression: the xtables target is used"
	;;
*) fail "unknown queueing: $line" ;;
esac
stop_daemon

LOGUARD_QUEUE=xt start_daemon "$p"
grep -q 'queueing to NFQUEUE 6289 with the xtables NFQUEUE target' "$LG_DAEMON_ERR" ||
	fail "LOGUARD_QUEUE=xt: $(cat "$LG_DAEMON_ERR")"
judges
stop_daemon

if [ "$native" = 1 ]; then
	LOGUARD_QUEUE=nft start_daemon "$p"
	grep -q "queueing to NFQUEUE 6289 with nft's queue expression" "$LG_DAEMON_ERR" ||
		fail "LOGUARD_QUEUE=nft: $(cat "$LG_DAEMON_ERR")"
	judges
	stop_daemon
else
	LOGUARD_QUEUE=nft "$LOGUARD" -f "$p" run >"$LG_TMP/nft.out" 2>"$LG_TMP/nft.err" &
	pid=$!
	lg_track "$pid"
	wait "$pid" && fail "LOGUARD_QUEUE=nft ran on a kernel without the queue expression"
	grep -q 'LOGUARD_QUEUE=nft: this kernel has no nft queue expression' "$LG_TMP/nft.err" &&
		log "ok: LOGUARD_QUEUE=nft refused here: $(tail -1 "$LG_TMP/nft.err")" ||
		fail "LOGUARD_QUEUE=nft: $(cat "$LG_TMP/nft.err")"
fi
nft delete table inet loguard 2>/dev/null
lg_done
