#!/bin/bash
# Under `loguard run` every deny and would-deny record names the process that connected (pid,
# exe, cmdline, cgroup, unit) even when the client exits at once, and the listener it tried
# to reach (uid, user, pid, exe, unit), or that nothing listened. A burst of 500 one-shot
# clients from 3 users, in enforce (all refused) and in audit (all connect): 100 % complete.
# Then the kernel's verdicts stand without the daemon (SIGKILL: reject and audit as before),
# and the log meter still bounds what is held.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users
lg_cgroup_top

p=$(policy identity <<'YAML'
version: 1
mode: enforce
log: { rate: 1/minute, burst: 200 }
guards:
  - name: db
    ports: [7101, 7103]
    allow:
      users: [erin]
    action: reject
  - name: notebook
    ports: [7102]
    mode: audit
    allow:
      users: [erin]
  - name: dns
    ports: [7104]
    protocol: udp
    allow:
      users: [erin]
YAML
)

# Servers run by alice in a cgroup named like a unit, top-level (below a directory that is no
# unit, the names are the delegate's, not units), clients in one per user: records name them.
cg() { mkdir "$LG_CG2/lgtest-$$-$1" && LG_CGROUPS+=("$LG_CG2/lgtest-$$-$1") || die "mkdir cgroup $1"; }
cg server.service
# serve PORT: alice's server on PORT, its pid in SRV.
SRV=
serve() {
	local port=$1 out="$LG_TMP/serve.$1.out" i
	(
		echo "$BASHPID" >"$LG_CG2/lgtest-$$-server.service/cgroup.procs" || exit 3
		exec setpriv --reuid=alice --regid=1001 --init-groups -- \
			"$LGPROBE" listen tcp 127.0.0.1 "$port"
	) >"$out" 2>&1 &
	SRV=$!
	lg_track "$SRV"
	for ((i = 0; i < 250; i++)); do
		grep -q '^ready$' "$out" 2>/dev/null && return 0
		sleep 0.02
	done
	die "server on $port did not start"
}
serve 7101
srv1=$SRV
serve 7102
srv2=$SRV
for u in alice bob carol; do cg "client-$u.scope"; done
start_daemon "$p"
chain=$(nft list chain inet loguard log_deny 2>/dev/null)
grep -q 'comment "hold for the record' <<<"$chain" ||
	fail "the daemon's log_deny chain does not hold: $chain"

# burst PORT: 167 + 167 + 166 one-shot clients (each its own process, gone right after its
# verdict), all started at once, niced: prints how many got each verdict. Run in $(...): the
# subshell's wait is for its clients only.
burst() {
	local port=$1 u i n=0
	for u in alice bob carol; do
		for ((i = 0; i < 167 && n < 500; i++, n++)); do
			nice -n 10 bash -c 'echo $$ >"$1/cgroup.procs" && exec setpriv --reuid="$2" \
				--regid="$(id -g "$2")" --init-groups -- "$3" connect tcp 127.0.0.1 "$4" \
				--timeout-ms 30000' _ "$LG_CG2/lgtest-$$-client-$u.scope" "$u" "$LGPROBE" "$port" \
				>>"$LG_TMP/burst.$port" 2>&1 &
		done
	done
	wait
	sort "$LG_TMP/burst.$port" | uniq -c | tr '\n' ' '
}

# Every record of PORT has the sender's identity and the listener's; prints the count.
complete() {
	python3 - "$LG_DAEMON_OUT" "$1" "$2" "$(readlink -f "$LGPROBE")" "$3" $$ <<'PY'
import json, sys
out, port, verdict, exe, lpid, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
users = {1001: "alice", 1002: "bob", 1003: "carol"}
n = bad = sender = 0
for line in open(out):
    r = json.loads(line)
    if r.get("type") != "connection" or r["dport"] != port:
        continue
    n += 1
    why = []
    if r["verdict"] != verdict: why.append("verdict")
    if r["uid"] not in users: why.append("uid")
    if not isinstance(r["pid"], int): why.append("pid")
    if r["exe"] != exe: why.append("exe")
    if not r["cmdline"] or r["cmdline"][1:3] != ["connect", "tcp"]: why.append("cmdline")
    unit = "lgtest-%s-client-%s.scope" % (tag, users.get(r["uid"]))
    if r["cgroup"] != "/" + unit: why.append("cgroup")
    if r["unit"] != unit: why.append("unit")
    if r.get("listening") is not True: why.append("listening")
    if r.get("listener_uid") != 1001 or r.get("listener_user") != "alice": why.append("listener user")
    if r.get("listener_pid") != int(lpid) or r.get("listener_exe") != exe: why.append("listener process")
    if r.get("listener_unit") != "lgtest-%s-server.service" % tag: why.append("listener unit")
    if why:
        bad += 1
        if bad <= 5:
            print("incomplete (%s): %s" % (", ".join(why), line.strip()), file=sys.stderr)
    sender += bool(set(why) & {"pid", "exe", "cmdline", "cgroup", "unit"})
print(n, bad, sender)
PY
}

# Enforce: all 500 refused, 500 deny records, every one complete.
got=$(burst 7101)
[ "$got" = "    500 refused " ] && log "ok: enforce burst: $got" || fail "enforce burst: $got"
expect_records 500 'r["dport"] == 7101' 20
read -r n bad sender < <(complete 7101 deny "$srv1")
[ "$n" = 500 ] && [ "$bad" = 0 ] && log "ok: 500 of 500 deny records complete" ||
	fail "deny records: $n, $bad incomplete ($sender without the sender's process)"
for uid in 1001 1002 1003; do
	c=$(records "r['dport'] == 7101 and r['uid'] == $uid" | wc -l)
	[ "$c" -ge 166 ] || fail "uid $uid: $c deny records"
done

# Audit: all 500 connect, 500 would-deny records, every one complete.
got=$(burst 7102)
[ "$got" = "    500 connected " ] && log "ok: audit burst: $got" || fail "audit burst: $got"
expect_records 500 'r["dport"] == 7102' 20
read -r n bad sender < <(complete 7102 would-deny "$srv2")
[ "$n" = 500 ] && [ "$bad" = 0 ] && log "ok: 500 of 500 would-deny records complete" ||
	fail "would-deny records: $n, $bad incomplete ($sender without the sender's process)"

# Nothing listens on 7103: the record says so.
expect_refused bob tcp 127.0.0.1 7103
expect_records 1 'r["dport"] == 7103'
expect_field 'r["dport"] == 7103' 'r.get("listening") is False and r["listener_uid"] is None and r["pid"] is not None'

# UDP: the datagram is held as a SYN is; a sender that waits for the answer (here the ICMP
# error of the reject) is still there to be named.
expect_refused bob udp 127.0.0.1 7104
expect_records 1 'r["dport"] == 7104'
expect_field 'r["dport"] == 7104' 'r["protocol"] == "udp" and r["pid"] is not None and r["exe"] is not None and r["listening"] is False'

# The meter still bounds what is held: erin is allowed, dave gets 200 records of 230 (burst
# 200 at 1/minute), the rest counted as rate limited; every one refused.
for ((i = 0; i < 230; i++)); do probe dave tcp 127.0.0.1 7101; done >"$LG_TMP/dave"
[ "$(grep -c refused "$LG_TMP/dave")" = 230 ] || fail "dave: $(sort "$LG_TMP/dave" | uniq -c)"
expect_records 200 'r["dport"] == 7101 and r["uid"] == 1004' 10
expect_connect erin tcp 127.0.0.1 7101

# A held SYN is not sent again while it waits (the kernel sees its copy still queued), even
# when the daemon is stopped past TCP's 1 s retransmission time: one SYN, one record, the
# client refused and named once the daemon goes on.
sent() { nft list counter inet loguard log_sent | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
n0=$(records 'r["dport"] == 7101 and r["uid"] == 1003' | wc -l)
s0=$(sent)
kill -STOP "$LG_DAEMON_PID"
as_user carol "$LGPROBE" connect tcp 127.0.0.1 7101 --timeout-ms 10000 >"$LG_TMP/again" 2>&1 &
again=$!
sleep 1.5
kill -CONT "$LG_DAEMON_PID"
wait "$again"
[ "$(cat "$LG_TMP/again")" = refused ] || fail "held twice: $(cat "$LG_TMP/again")"
expect_records $((n0 + 1)) 'r["dport"] == 7101 and r["uid"] == 1003'
last=$(records 'r["dport"] == 7101 and r["uid"] == 1003' | tail -1)
python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1])["pid"] is None)' "$last" ||
	fail "the record of a SYN sent twice has no pid: $last"
[ $(($(sent) - s0)) -eq 1 ] && log "ok: the SYN was held 1.5 s, sent once, recorded once" ||
	fail "the held SYN was sent $(($(sent) - s0)) times"

# A reload to an unlimited log rate holds nothing (the held chain goes): still refused, the
# record comes through NFLOG. And back: held again.
reloads() { grep -c '^loguard: reloaded' "$LG_DAEMON_ERR"; }
sed -i 's|rate: 1/minute, burst: 200|rate: 0|' "$p"
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" '^loguard: reloaded' 10 || fail "no reload"
nft list chain inet loguard held >/dev/null 2>&1 && fail "the held chain stayed with rate 0"
expect_refused carol tcp 127.0.0.1 7103
expect_records 1 'r["dport"] == 7103 and r["uid"] == 1003'
sed -i 's|rate: 0|rate: 1/minute, burst: 200|' "$p"
kill -HUP "$LG_DAEMON_PID"
for ((i = 0; i < 250 && $(reloads) < 2; i++)); do sleep 0.04; done
[ "$(reloads)" = 2 ] || fail "no second reload: $(cat "$LG_DAEMON_ERR")"
nft list chain inet loguard held >/dev/null 2>&1 || fail "no held chain after the reload back"
expect_refused carol tcp 127.0.0.1 7103
expect_records 2 'r["dport"] == 7103 and r["uid"] == 1003'
last=$(records 'r["dport"] == 7103 and r["uid"] == 1003' | tail -1)
python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1])["pid"] is None)' "$last" &&
	log "ok: held again after the reload back" || fail "no pid after the reload back: $last"

# Without the daemon the kernel still decides: a denial is refused (reset, not a hang), an
# audited connection goes through.
stop_daemon KILL
have_table inet loguard || fail "the table went with the daemon"
expect_refused bob tcp 127.0.0.1 7101
expect_connect bob tcp 127.0.0.1 7102
expect_connect erin tcp 127.0.0.1 7101
lg_done
