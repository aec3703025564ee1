#!/bin/bash
# UDP is judged per datagram: allowed user gets the echo; others get ICMP port unreachable
# (action reject → "refused") or nothing at all (action drop → "timeout"). protocol: both
# guards TCP and UDP on the same ports.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy udp <<'YAML'
version: 1
mode: enforce
guards:
  - name: dns
    ports: [5353]
    protocol: udp
    allow:
      users: [alice]
    action: reject
  - name: quiet
    ports: [5354]
    protocol: udp
    allow:
      users: [alice]
    action: drop
  - name: both
    ports: [5355]
    protocol: both
    allow:
      users: [carol]
    action: reject
YAML
)
for port in 5353 5354 5355; do start_server udp :: "$port" --dual; done
start_server tcp 127.0.0.1 5355
start_server tcp 127.0.0.1 5353
apply "$p"

for addr in 127.0.0.1 127.0.0.2 ::1 "$LG_V4_EXTRA" "$LG_V6_EXTRA" ::ffff:127.0.0.1; do
	expect_connect alice udp "$addr" 5353
	expect_refused bob udp "$addr" 5353
	expect_refused root udp "$addr" 5353
done
LG_TIMEOUT_MS=500
expect_connect alice udp 127.0.0.1 5354
expect_timeout bob udp 127.0.0.1 5354
expect_timeout bob udp ::1 5354
LG_TIMEOUT_MS=1500
expect_connect carol udp 127.0.0.1 5355
expect_connect carol tcp 127.0.0.1 5355
expect_refused alice udp 127.0.0.1 5355
expect_refused alice tcp 127.0.0.1 5355
# a UDP-only guard leaves TCP on the same port alone
expect_connect bob tcp 127.0.0.1 5353
lg_done
