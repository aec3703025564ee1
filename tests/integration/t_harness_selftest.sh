#!/bin/bash
# Proves the harness itself without loguard: a hand-written ruleset of loguard's shape (vmap on
# l4proto . dport, allow set on l4proto . dport . skuid, reject/drop per guard) must give
# connected/refused/timeout for the right users, so a failing loguard test is loguard's fault.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

cat >"$LG_TMP/hand.nft" <<'NFT'
table inet loguard {
	map guards {
		type inet_proto . inet_service : verdict
		flags interval
		elements = { tcp . 8080 : goto g_web, udp . 8080 : goto g_web,
			     tcp . 8081 : goto g_drop, udp . 8081 : goto g_drop }
	}
	set allow_uid {
		type inet_proto . inet_service . uid
		flags interval
		elements = { tcp . 8080 . 1001, udp . 8080 . 1001, tcp . 8080 . 1003, udp . 8080 . 1003,
			     tcp . 8081 . 1001, udp . 8081 . 1001 }
	}
	chain g_web {
		meta l4proto . th dport . meta skuid @allow_uid accept
		counter meta l4proto tcp reject with tcp reset
		counter reject
	}
	chain g_drop {
		meta l4proto . th dport . meta skuid @allow_uid accept
		counter drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
		meta oif != "lo" accept
		meta l4proto tcp tcp flags & (syn | ack) != syn accept
		meta l4proto udp ct state established,related accept
		meta l4proto . th dport vmap @guards
	}
}
NFT

# Before any ruleset everybody connects.
start_server tcp :: 8080 --dual
start_server udp :: 8080 --dual
start_server tcp 127.0.0.1 8081
start_server udp 127.0.0.1 8081
start_server tcp 127.0.0.1 8082
for who in alice bob; do
	expect_connect "$who" tcp 127.0.0.1 8080
	expect_connect "$who" udp 127.0.0.1 8080
done

run nft -f "$LG_TMP/hand.nft"
for addr in 127.0.0.1 127.0.0.2 ::1 "$LG_V4_EXTRA" "$LG_V6_EXTRA" ::ffff:127.0.0.1; do
	for proto in tcp udp; do
		expect_connect alice "$proto" "$addr" 8080
		expect_connect carol "$proto" "$addr" 8080
		expect_refused bob "$proto" "$addr" 8080
		expect_refused root "$proto" "$addr" 8080
	done
done
expect_connect 1001 tcp 127.0.0.1 8080 --v6only-mapped
expect_refused 1002 tcp 127.0.0.1 8080 --v6only-mapped
# drop guard: a short timeout is enough, nothing ever comes back
LG_TIMEOUT_MS=400
expect_connect alice tcp 127.0.0.1 8081
expect_connect alice udp 127.0.0.1 8081
expect_timeout bob tcp 127.0.0.1 8081
expect_timeout bob udp 127.0.0.1 8081
# unguarded port: everybody
expect_connect bob tcp 127.0.0.1 8082
# nothing listening: refused by the kernel, not by us
expect_refused bob tcp 127.0.0.1 8083
expect_refused bob udp 127.0.0.1 8083

# counters moved for the denials above
grep -q 'counter packets [1-9]' <<<"$(nft list chain inet loguard g_web)" ||
	fail "g_web reject counters did not move"

# cgroup plumbing of the probe: a client placed in a cgroup really is in it
cg2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
if [ -n "$cg2" ]; then
	cg="$cg2/loguard-test-$$"
	mkdir -p "$cg/app" && LG_CGROUPS+=("$cg" "$cg/app")
	got=$( (echo "$BASHPID" >"$cg/app/cgroup.procs" && exec cat /proc/self/cgroup) | grep '^0::')
	[ "$got" = "0::/loguard-test-$$/app" ] || fail "client not in test cgroup: $got"
	expect_connect "cg:$cg/app:alice" tcp 127.0.0.1 8080
	expect_refused "cg:$cg/app:bob" tcp 127.0.0.1 8080
fi

# lgprobe hold keeps a connection across a ruleset change that denies its user.
hold_start alice tcp 127.0.0.1 8080
hold_send one
run nft flush set inet loguard allow_uid
expect_refused alice tcp 127.0.0.1 8080
hold_send two
hold_finish
lg_done
