#!/bin/bash
# Held denials and IPv6 extension headers. The hold queues copy every header an unprivileged
# client can add (a segment routing header of 127 segments): bob's refused connection is held
# and recorded with its ports and process. With CAP_NET_RAW (root), hop-by-hop and destination
# options push the ports past any copy: the packet cannot be read, and is still let go by its
# mark: refused in enforce (not dropped: the client does not hang), let go in audit, recorded
# with ports unknown.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users
sysctl -qw net.ipv6.conf.all.seg6_enabled=1 net.ipv6.conf.lo.seg6_enabled=1 ||
	die "cannot enable seg6 on lo"

p=$(policy holdext <<'YAML'
version: 1
mode: enforce
guards:
  - name: private
    ports: [62910]
    allow:
      users: [alice]
  - name: watched
    ports: [62911]
    mode: audit
    allow:
      users: [alice]
YAML
)
start_server tcp ::1 62910
start_server tcp ::1 62911
start_daemon "$p"

expect_refused bob tcp ::1 62910 --rthdr 127
expect_records 1 'r["uid"] == 1002'
expect_field 'r["uid"] == 1002' 'r["dport"] == 62910 and r["verdict"] == "deny" and r["pid"] is not None and r["listening"] is True'

# Refused, not dropped: the unreadable packet went on to the held chain, which rejected it by
# its mark (dropped as unreadable, the client would time out).
expect_refused root tcp ::1 62910 --hopopts 2040 --dstopts 2040 --rthdr 127
expect_records 1 'r["uid"] == 0 and r["verdict"] == "deny"'
expect_field 'r["uid"] == 0 and r["verdict"] == "deny"' 'r["dport"] is None and r["src"] == "::1"'
# Audit: recorded and let go. (Such a SYN gets no answer from this kernel even without a table,
# so whether it connects cannot be seen here; the verdict is the deny path's NF_ACCEPT.)
probe root tcp ::1 62911 --hopopts 2040 --dstopts 2040 --rthdr 127 >/dev/null
n=$(records 'r["uid"] == 0 and r["verdict"] == "would-deny" and r["dport"] is None' | wc -l)
[ "$n" -ge 1 ] && log "ok: audit: $n would-deny record(s) with ports unknown" ||
	fail "audit: no would-deny record for the unreadable SYN"
lg_done
