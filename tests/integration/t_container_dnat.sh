#!/bin/bash
# Ports published by a container runtime are guarded. Rootful podman (netavark) and docker with
# userland-proxy=false publish a port by DNATing 127.0.0.1:PORT and the host's own addresses to
# the container in the nat output hook (priority -100), with route_localnet=1: after that the
# packet leaves by the container's veth, not lo. loguard judges before destination NAT, on the
# address and port the client asked for. Here a second network namespace plays the container
# (veth pair, servers inside it); a denied user is refused and logged, an allowed user reaches
# the container. A local redirect away from a guarded port is judged at the guarded port too.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

# The container: its own network namespace, held by a sleeping process.
unshare -n sleep infinity &
ctr=$!
lg_track "$ctr"
for ((i = 0; i < 100; i++)); do
	[ "$(readlink /proc/$ctr/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.02
done
in_ctr() { nsenter -t "$ctr" -n "$@"; }
run ip link add ctr0 type veth peer name eth0 netns "$ctr"
run ip addr add 10.88.0.1/24 dev ctr0
run ip link set ctr0 up
run in_ctr ip link set lo up
run in_ctr ip addr add 10.88.0.2/24 dev eth0
run in_ctr ip link set eth0 up
run in_ctr ip route add default via 10.88.0.1
# What the runtime sets so that 127.0.0.1 may be routed to the bridge.
run sysctl -q -w net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.ctr0.route_localnet=1

for proto in tcp udp; do
	out="$LG_TMP/ctr.$proto.out"
	in_ctr "$LGPROBE" listen "$proto" 0.0.0.0 80 >"$out" 2>&1 &
	lg_track $!
	for ((i = 0; i < 250; i++)); do
		grep -q '^ready$' "$out" && break
		sleep 0.02
	done
	grep -q '^ready$' "$out" || die "container $proto server did not start: $(cat "$out")"
done

# The runtime's port publishing, as netavark and docker (userland-proxy=false) do it.
run nft -f - <<'NFT'
table ip runtime_nat {
	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local meta l4proto { tcp, udp } th dport 8080 dnat to 10.88.0.2:80
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 127.0.0.0/8 oifname "ctr0" masquerade
	}
}
NFT
# Without loguard, everyone reaches the container (the setup is right).
expect_connect bob tcp 127.0.0.1 8080
expect_connect bob tcp "$LG_V4_EXTRA" 8080
expect_connect bob udp 127.0.0.1 8080

p=$(policy published <<'YAML'
version: 1
mode: enforce
log: { rate: 0 }
guards:
  - name: published
    ports: [8080]
    protocol: both
    allow:
      users: [alice]
  - name: local
    ports: [7070]
    allow:
      users: [alice]
YAML
)
start_daemon "$p"
for addr in 127.0.0.1 "$LG_V4_EXTRA"; do
	expect_connect alice tcp "$addr" 8080
	expect_refused bob tcp "$addr" 8080
done
expect_connect alice udp 127.0.0.1 8080
expect_refused bob udp 127.0.0.1 8080
expect_records 1 'r["uid"] == 1002 and r["protocol"] == "tcp" and r["dst"] == "127.0.0.1" and r["dport"] == 8080 and r["verdict"] == "deny" and r["guard"] == "published"'
expect_records 1 'r["uid"] == 1002 and r["protocol"] == "tcp" and r["dst"] == "'"$LG_V4_EXTRA"'" and r["dport"] == 8080 and r["verdict"] == "deny"'
expect_records 1 'r["uid"] == 1002 and r["protocol"] == "udp" and r["dport"] == 8080 and r["verdict"] == "deny"'
expect_records 0 'r["uid"] == 1001'

# A redirect from a guarded port to an unguarded local one: judged at the port asked for.
start_server tcp 127.0.0.1 7071
run nft add chain ip runtime_nat redir '{ type nat hook output priority -100; policy accept; }'
run nft add rule ip runtime_nat redir tcp dport 7070 redirect to :7071
expect_connect alice tcp 127.0.0.1 7070
expect_refused bob tcp 127.0.0.1 7070
expect_records 1 'r["uid"] == 1002 and r["dport"] == 7070 and r["guard"] == "local"'
lg_done
