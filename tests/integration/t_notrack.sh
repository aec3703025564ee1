#!/bin/bash
# `notrack` on lo is common: loguard must not depend on conntrack. With a raw-priority notrack
# rule for everything out lo, allowed users still connect and others are still refused, TCP and
# UDP.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

run nft -f - <<'NFT'
table inet raw {
	chain output {
		type filter hook output priority raw; policy accept;
		oif "lo" notrack
	}
	chain prerouting {
		type filter hook prerouting priority raw; policy accept;
		iif "lo" notrack
	}
}
NFT
p=$(policy notrack <<'YAML'
version: 1
mode: enforce
guards:
  - name: svc
    ports: [6000]
    protocol: both
    allow:
      users: [alice]
    action: reject
  - name: quiet
    ports: [6001]
    protocol: both
    allow:
      users: [alice]
    action: drop
YAML
)
for port in 6000 6001; do
	start_server tcp :: "$port" --dual
	start_server udp :: "$port" --dual
done
apply "$p"
for addr in 127.0.0.1 ::1; do
	for proto in tcp udp; do
		expect_connect alice "$proto" "$addr" 6000
		expect_refused bob "$proto" "$addr" 6000
		expect_connect alice "$proto" "$addr" 6001
		LG_TIMEOUT_MS=500 expect_timeout bob "$proto" "$addr" 6001
	done
done
# conntrack really was off for these flows
if [ -r /proc/net/nf_conntrack ] && grep -q 'dport=6000' /proc/net/nf_conntrack; then
	fail "conntrack entries for port 6000 exist although lo is notrack"
fi
# a held connection keeps working without conntrack (only SYNs are judged)
hold_start alice tcp 127.0.0.1 6000
hold_send a
hold_send b
hold_finish
lg_done
