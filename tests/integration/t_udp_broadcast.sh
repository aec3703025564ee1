#!/bin/bash
# A guarded UDP port also governs broadcast and multicast. Datagrams to 255.255.255.255, a
# subnet broadcast, 224.0.0.1 or ff02::1 leave by the real interface and are looped back to
# local sockets bound to 0.0.0.0 / ::, so the guard judges the sender: an allowed user's
# datagram reaches the local receivers and the network, a denied user's reaches neither (it is
# dropped as a whole, and logged). Real sockets: receivers bound to the wildcard addresses, a
# packet socket on the veth peer playing the network, senders running as the policy's users.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

PORT=5355
run ip link add b0 type veth peer name b0p
run sysctl -q -w net.ipv6.conf.b0.accept_dad=0 net.ipv6.conf.b0p.accept_dad=0
run ip link set b0p up
run ip link set b0 up
run ip addr add 10.77.0.1/24 brd + dev b0
run ip addr add fd00:77::1/64 dev b0 nodad
run ip neigh add 10.77.0.2 lladdr 02:00:00:00:77:02 dev b0 # a unicast peer, no ARP wait
ifindex=$(ip -o link show b0 | cut -d: -f1)

cat >"$LG_TMP/cast.py" <<'PY'
import errno, select, socket, sys

port = int(sys.argv[2])
if sys.argv[1] == "recv4":
    # A user's own wildcard receiver (no packet socket: that needs root).
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data = v4.recv(65535)
        print("owner4", data.split(b"\n")[0].decode(), flush=True)
elif sys.argv[1] == "recv":
    # Wildcard receivers, and the veth peer's packet socket: what reached "the network".
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v4.bind(("0.0.0.0", port))
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    v6.bind(("::", port))
    wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    wire.bind(("b0p", 0))
    print("ready", flush=True)
    names = {v4: "local4", v6: "local6", wire: "wire"}
    while True:
        for s in select.select(list(names), [], [])[0]:
            data = s.recv(65535)
            start = data.find(b"lgcast:")
            if start >= 0:
                print(names[s], data[start:].split(b"\n")[0].decode(), flush=True)
else:
    user, ifindex = sys.argv[3], int(sys.argv[4])
    targets = [("bcast", "255.255.255.255"), ("subnet", "10.77.0.255"), ("mcast4", "224.0.0.1"),
               ("mcast6", "ff02::1")]
    if len(sys.argv) > 5:
        targets = [t for t in targets if t[0] in sys.argv[5].split(",")]
    for kind, addr in targets:
        if ":" in addr:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            dest = (addr, port, 0, ifindex)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.bind(("10.77.0.1", 0))  # the source picks the interface, no default route needed
            dest = (addr, port)
        try:
            s.sendto(("lgcast:%s:%s\n" % (user, kind)).encode(), dest)
            print(kind, "sent")
        except OSError as e:
            print(kind, errno.errorcode.get(e.errno, str(e.errno)))
PY
chmod 644 "$LG_TMP/cast.py"

/usr/bin/python3 "$LG_TMP/cast.py" recv "$PORT" >"$LG_TMP/recv.out" 2>&1 &
lg_track $!
wait_log_line "$LG_TMP/recv.out" '^ready$' 5 || die "receiver did not start: $(cat "$LG_TMP/recv.out")"

# send USER [PORT [KINDS]]
send() { as_user "$1" /usr/bin/python3 "$LG_TMP/cast.py" send "${2:-$PORT}" "$1" "$ifindex" ${3:+"$3"}; }
# got WHERE USER KIND: did the receiver see it?
got() { grep -q -x -F "$1 lgcast:$2:$3" "$LG_TMP/recv.out"; }
kinds="bcast subnet mcast4 mcast6"
local_of() { case $1 in mcast6) echo local6 ;; *) echo local4 ;; esac; }

# Without loguard every datagram arrives: the setup is right.
log "$(send erin | tr '\n' ' ')"
sleep 0.3
for k in $kinds; do
	{ got "$(local_of "$k")" erin "$k" && got wire erin "$k"; } || die "setup: erin's $k datagram did not arrive locally and on the wire: $(cat "$LG_TMP/recv.out")"
done
log "ok: without loguard, broadcast and multicast reach local receivers and the wire"

p=$(policy cast <<YAML
version: 1
mode: enforce
log: { rate: 0 }
guards:
  - name: discovery
    ports: [$PORT]
    protocol: udp
    allow:
      users: [alice]
YAML
)
start_daemon "$p"
log "alice: $(send alice | tr '\n' ' ')"
log "bob: $(send bob | tr '\n' ' ')"
sleep 0.5
for k in $kinds; do
	l=$(local_of "$k")
	got "$l" alice $k && log "ok: alice's $k reached the local receiver" ||
		fail "alice's $k datagram did not reach the local receiver"
	got wire alice $k && log "ok: alice's $k reached the network" ||
		fail "alice's $k datagram did not reach the network"
	got "$l" bob $k && fail "bob's $k datagram reached the local receiver" ||
		log "ok: bob's $k did not reach the local receiver"
	got wire bob $k && fail "bob's $k datagram reached the network" ||
		log "ok: bob's $k did not reach the network"
done
expect_records 1 'r["uid"] == 1002 and r["dst"] == "255.255.255.255" and r["verdict"] == "deny"'
expect_records 1 'r["uid"] == 1002 and r["dst"] == "10.77.0.255" and r["verdict"] == "deny"'
expect_records 1 'r["uid"] == 1002 and r["dst"] == "224.0.0.1" and r["verdict"] == "deny"'
expect_records 1 'r["uid"] == 1002 and r["dst"] == "ff02::1" and r["verdict"] == "deny"'
# Unicast UDP to another host is not judged, whoever sends it.
log "bob to 10.77.0.2: $(as_user bob /usr/bin/python3 -c '
import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"lgcast:bob:unicast\n", ("10.77.0.2", '"$PORT"')); print("sent")')"
sleep 0.3
got wire bob unicast && log "ok: bob's unicast datagram to another host went out" ||
	fail "bob's unicast datagram to another host was stopped"
stop_daemon TERM

# Owner-only UDP ports (private-ports.yaml): a broadcast or multicast that no local socket
# would receive still goes to the network (LAN discovery on high ports); once alice receives
# on the port, only alice may broadcast or multicast to it.
OPORT=17500
p=$(policy owner <<YAML
version: 1
mode: enforce
log: { rate: 0 }
guards:
  - name: private
    ports: [$OPORT]
    protocol: udp
    allow: { owner: true }
YAML
)
start_daemon "$p"
log "bob, no receiver: $(send bob $OPORT bcast,mcast4 | tr '\n' ' ')"
sleep 0.3
for k in bcast mcast4; do
	got wire bob $k && log "ok: bob's $k to an unreceived owner-only port went to the network" ||
		fail "bob's $k to an owner-only port nobody receives did not reach the network"
done
as_user alice /usr/bin/python3 "$LG_TMP/cast.py" recv4 "$OPORT" >"$LG_TMP/owner.out" 2>&1 &
lg_track $!
wait_log_line "$LG_TMP/owner.out" '^ready$' 5 || die "alice's receiver did not start: $(cat "$LG_TMP/owner.out")"
log "bob: $(send bob $OPORT bcast,mcast4 | tr '\n' ' ')"
log "alice: $(send alice $OPORT bcast,mcast4 | tr '\n' ' ')"
sleep 0.5
for k in bcast mcast4; do
	grep -q -x "owner4 lgcast:alice:$k" "$LG_TMP/owner.out" && log "ok: alice's own $k reached her receiver" ||
		fail "alice's $k did not reach her own receiver: $(cat "$LG_TMP/owner.out")"
	grep -q -x "owner4 lgcast:bob:$k" "$LG_TMP/owner.out" && fail "bob's $k reached alice's receiver" ||
		log "ok: bob's $k did not reach alice's receiver"
done
lg_done
