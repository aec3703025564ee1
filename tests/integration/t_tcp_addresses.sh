#!/bin/bash
# TCP: the allowed user connects and everybody else is refused, whatever local address the
# client uses: 127.0.0.1, 127.0.0.2 (rest of 127/8), ::1, the namespace's own non-loopback
# addresses (IPv4 and IPv6), and ::ffff:127.0.0.1 from an AF_INET6 socket.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy web <<'YAML'
version: 1
mode: enforce
guards:
  - name: web
    ports: [8080]
    protocol: tcp
    allow:
      users: [alice, 1005]   # by name and by number (erin)
    action: reject
YAML
)
start_server tcp :: 8080 --dual
start_server tcp :: 8081 --dual
apply "$p"

for addr in 127.0.0.1 127.0.0.2 ::1 "$LG_V4_EXTRA" "$LG_V6_EXTRA" ::ffff:127.0.0.1; do
	expect_connect alice tcp "$addr" 8080
	expect_connect erin tcp "$addr" 8080
	expect_refused bob tcp "$addr" 8080
	expect_refused root tcp "$addr" 8080
	# the policy guards 8080 only
	expect_connect bob tcp "$addr" 8081
done
# an IPv4 destination through a v6 socket, as a v4-mapped address
expect_connect alice tcp 127.0.0.1 8080 --v6only-mapped
expect_refused bob tcp 127.0.0.1 8080 --v6only-mapped
# a TCP-only guard leaves UDP alone
start_server udp 127.0.0.1 8080
expect_connect bob udp 127.0.0.1 8080
lg_done
