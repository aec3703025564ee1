#!/bin/bash
# The kernel-side log rate limit is per guarded port and user, and counted: one user's burst of
# denials to a port yields the limit's burst of records plus a rate_limited count for the rest,
# while another user's denial on the same port, and the same user on another port, are still
# logged (records + rate_limited == denials). Packets without a socket (no uid: here a vxlan
# device's outer datagrams, sent by the kernel) cannot be metered per user: they share one
# bucket of the same burst instead of being logged without limit.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy rl <<'YAML'
version: 1
mode: enforce
log: { rate: 1/minute, burst: 5 }
guards:
  - name: noisy
    ports: [7001]
  - name: quiet
    ports: [7002]
  - name: tunnel
    ports: [7003]
    protocol: udp
YAML
)
start_daemon "$p"
for i in $(seq 20); do probe bob tcp 127.0.0.1 7001 >/dev/null; done
for i in $(seq 3); do probe alice tcp 127.0.0.1 7001 >/dev/null; done
for i in $(seq 3); do probe bob tcp 127.0.0.1 7002 >/dev/null; done

# A vxlan device's outer UDP datagrams come from the kernel, without a socket: each ARP request
# for an address behind vx0 is one, sent to the multicast group on port 7003 (and looped back
# to the device's own socket, so the guard judges them). 10 ms between retries, 50 tries for
# each of 5 addresses: ~250 datagrams.
if ip link add vx0 type vxlan id 42 group 239.1.1.1 dev d0 dstport 7003 2>/dev/null; then
	sysctl -q -w net.ipv4.neigh.vx0.retrans_time_ms=10 net.ipv4.neigh.vx0.mcast_solicit=50
	ip link set vx0 up
	ip addr add 192.168.77.1/24 dev vx0
	python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for h in range(2, 7):
    s.sendto(b"x", ("192.168.77.%d" % h, 9))
time.sleep(1)
'
	ip link del vx0
	tunnel_pkts=$(nft list map inet loguard guards |
		sed -n 's/.*udp \. 7003 counter packets \([0-9]*\) .*/\1/p')
else
	log "no vxlan in this kernel: the socketless part is not checked"
	tunnel_pkts=0
fi
sleep 0.3
stop_daemon TERM

bob_noisy=$(records 'r["guard"] == "noisy" and r["uid"] == 1002' | wc -l)
alice_noisy=$(records 'r["guard"] == "noisy" and r["uid"] == 1001' | wc -l)
quiet=$(records 'r["guard"] == "quiet"' | wc -l)
tunnel=$(records 'r["guard"] == "tunnel"' | wc -l)
limited=$(grep '"type":"stats"' "$LG_DAEMON_OUT" | tail -1 | sed 's/.*"rate_limited":\([0-9]*\).*/\1/')
log "noisy: bob $bob_noisy, alice $alice_noisy records; quiet: $quiet; tunnel: $tunnel of $tunnel_pkts datagrams; rate_limited: $limited"
[ "$bob_noisy" = 5 ] && log "ok: bob's 20 denials gave the burst of 5 records" ||
	fail "noisy port, bob: expected the burst (5) of records, got $bob_noisy"
[ "$alice_noisy" = 3 ] && log "ok: alice's denials on bob's flooded port are all logged" ||
	fail "noisy port, alice: $alice_noisy of 3 records (bob's flood spent her budget)"
[ "$quiet" = 3 ] && log "ok: the quiet port kept its own budget" || fail "quiet port: $quiet of 3 records"
if [ "$tunnel_pkts" -gt 0 ]; then
	[ "$tunnel_pkts" -gt 10 ] || fail "only $tunnel_pkts vxlan datagrams: the check below proves nothing"
	[ "$tunnel" -ge 1 ] && [ "$tunnel" -le 5 ] &&
		log "ok: socketless datagrams shared one bucket ($tunnel records)" ||
		fail "socketless datagrams: expected 1-5 records (shared bucket), got $tunnel of $tunnel_pkts"
fi
total=$((20 + 3 + 3 + tunnel_pkts))
[ $((bob_noisy + alice_noisy + quiet + tunnel + limited)) = "$total" ] &&
	log "ok: records + rate_limited == $total denials" ||
	fail "records ($((bob_noisy + alice_noisy + quiet + tunnel))) + rate_limited ($limited) != $total"
lg_done
