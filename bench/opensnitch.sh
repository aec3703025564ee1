#!/bin/bash
# bench/opensnitch.sh LOGUARD [LGPROBE] — OpenSnitch (Debian's opensnitch package) as a
# reference for judging connections by process, side by side with loguard's executables guard.
# bench/opensnitch.sh --prepare — only fetch and extract OpenSnitch (exit 0 when it can run).
# Needs root. Everything it measures runs inside its own network namespace (unshare -n).
#
# OpenSnitch is never installed: the package's maintainer scripts would start its daemon on the
# host, where it would intercept the host's traffic. `apt-get download` fetches the package (and
# the libraries it needs that the host lacks) into OPENSNITCH_DIR (/tmp/loguard-opensnitch),
# `dpkg-deb -x` unpacks them there, and opensnitchd runs from that tree, only inside this
# script's network namespace and in a mount namespace of its own (it reads its configuration
# from /etc/opensnitchd, a fixed path: a private overlay over /etc gives it one).
#
# How OpenSnitch 1.5.8 intercepts (read from its source, checked in the namespace): it inserts
# `-t mangle -I OUTPUT -m conntrack --ctstate NEW,RELATED -j NFQUEUE --queue-num Q
# --queue-bypass` (and a DNS-response rule on INPUT) with the iptables binary, then judges every
# queued packet: sock_diag by 4-tuple → socket inode → the pid holding it (a /proc fd walk, with
# a cache) → /proc/PID (exe, cmdline, cwd, environment) → its rules → verdict. Loopback is
# judged like anything else. Its nftables mode needs the kernel's nft `queue` expression
# (CONFIG_NFT_QUEUE), which this VM lacks: there it installs empty chains and judges nothing,
# so this script uses its iptables mode (iptables-nft goes through the xtables NFQUEUE target).
#
# Configuration: the proc process monitor (no eBPF module), no UI, default action allow (the
# flood must get through: the figure is the cost of judging each connection by process), one
# rule denying the plain lgprobe binary. Before each measurement the script checks that the
# queue rule is in place, that the flood's binary connects and that the plain lgprobe is denied
# (so OpenSnitch did identify the process of a loopback connection).
#
# Configurations, interleaved over ROUNDS rounds per thread count (order reversed every other
# round), the same lgprobe flood as bench/process.sh (client and sink as one uid, client a
# root-owned copy of lgprobe): (a) no table, (o) OpenSnitch, (l) loguard run with
# `executables: [the copy]` (process index). Medians, ratios to (a) of the same run, daemon CPU
# µs per connection, connections queued to OpenSnitch and those it let through unjudged.
# Environment: BENCH_SECONDS (2), BENCH_ROUNDS (4), BENCH_THREAD_LIST ("2 8"), OPENSNITCH_DIR.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# The proc connector answers only in the initial network namespace: keep a handle on ours for
# loguard's daemon (as bench/process.sh does).
[ -n "${LG_BENCH_INNER:-}" ] || exec 9</proc/self/ns/net
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
OS_DIR=${OPENSNITCH_DIR:-/tmp/loguard-opensnitch}
OS_ROOT=$OS_DIR/root
OSD=$OS_ROOT/usr/bin/opensnitchd

os_libpath() { # the library directories of the extracted tree, for LD_LIBRARY_PATH
	find "$OS_ROOT" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:
}
os_missing_libs() { LD_LIBRARY_PATH=$(os_libpath) ldd "$OSD" 2>&1 | grep 'not found' || true; }

newest() { # FILES...: the last modified (apt-get download may leave older versions beside it)
	local f n=
	for f in "$@"; do [ -n "$n" ] && [ ! "$f" -nt "$n" ] || n=$f; done
	echo "$n"
}

skip() { # REASON: OpenSnitch cannot be measured here
	echo "OpenSnitch: not measured: $*" >&2
	exit 3
}

# Fetch and unpack into OS_DIR what is not there yet. Outside the network namespace: apt needs
# the network. Exit 3 when it cannot be done.
os_prepare() {
	local deb pkgs p
	command -v iptables >/dev/null || skip "no iptables binary (OpenSnitch's iptables mode runs it)"
	if [ ! -x "$OSD" ]; then
		mkdir -p "$OS_DIR"
		(cd "$OS_DIR" && apt-get -q -o APT::Sandbox::User=root download opensnitch >/dev/null) ||
			skip "'apt-get download opensnitch' failed (no Debian mirror reachable?)"
		deb=$(newest "$OS_DIR"/opensnitch_*.deb)
		dpkg-deb -x "$deb" "$OS_ROOT"
		[ -x "$OSD" ] || skip "$deb has no usr/bin/opensnitchd"
	fi
	if [ -n "$(os_missing_libs)" ]; then
		# The package's library dependencies, unpacked beside it rather than installed.
		deb=$(newest "$OS_DIR"/opensnitch_*.deb)
		[ -e "$deb" ] || skip "libraries missing and no package to read them from: $(os_missing_libs)"
		pkgs=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*//; s/[[:space:]]//g' |
			grep -v -x -e libc6 -e '')
		for p in $pkgs; do
			(cd "$OS_DIR" && apt-get -q -o APT::Sandbox::User=root download "$p" >/dev/null) ||
				skip "'apt-get download $p' failed"
			dpkg-deb -x "$(newest "$OS_DIR/${p}"_*.deb)" "$OS_ROOT"
		done
		[ -z "$(os_missing_libs)" ] || skip "still missing: $(os_missing_libs)"
	fi
}

if [ "${1:-}" = --prepare ]; then
	[ "$(id -u)" -eq 0 ] || { echo "$0 needs root" >&2; exit 1; }
	os_prepare
	echo "OpenSnitch $(LD_LIBRARY_PATH=$(os_libpath) "$OSD" -version) ready in $OS_ROOT"
	exit 0
fi
[ -n "${LG_BENCH_INNER:-}" ] || [ "$(id -u)" -ne 0 ] || os_prepare
bench_enter_netns "$HERE/$(basename "$0")" "$@"
SECONDS_PER=${BENCH_SECONDS:-2}
ROUNDS=${BENCH_ROUNDS:-4}
THREAD_LIST=${BENCH_THREAD_LIST:-2 8}
PORT=17000
U=106000
Q=0 # OpenSnitch's queue (it also takes Q+1); loguard never runs at the same time
OS_VERSION=$(LD_LIBRARY_PATH=$(os_libpath) "$OSD" -version)
tmp=$(mktemp -d /tmp/loguard-bench.XXXXXX)
chmod 755 "$tmp"
exe="$tmp/client" # the flood's binary: a root-owned copy of lgprobe, the one OpenSnitch allows
cp "$LGPROBE" "$exe"
chmod 755 "$exe"
sink='' echo='' osd='' lgd=
cleanup() { # SIGTERM first: each daemon removes its rules (the namespace goes with them anyway)
	# shellcheck disable=SC2086 # the unset ones are left out
	kill $osd $lgd $sink $echo 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip link set lo up
# The checks connect to an echo server on PORT+1 (guarded too): the sink on PORT closes at once,
# which lgprobe connect cannot tell from a refusal.
verdict() { # UID BIN: what one connection gets ("connected", "refused", "timeout", ...)
	setpriv --reuid="$1" --regid="$1" --clear-groups -- "$2" connect tcp 127.0.0.1 \
		"$((PORT + 1))" --timeout-ms 1500 2>/dev/null || true
}

# shellcheck disable=SC2086 # the list splits on purpose
max_threads=$(printf '%s\n' $THREAD_LIST | sort -n | tail -1)
# --pdeathsig: every process this script starts dies with it, even by SIGKILL.
setpriv --reuid="$U" --regid="$U" --clear-groups --pdeathsig KILL -- "$LGPROBE" sink tcp 127.0.0.1 "$PORT" \
	--threads "$max_threads" >"$tmp/sink.out" 2>&1 &
sink=$!
# Another uid runs the echo server: U's processes are the sink and the client, as in
# process.sh's (b1).
setpriv --reuid=$((U + 2)) --regid=$((U + 2)) --clear-groups --pdeathsig KILL -- "$LGPROBE" \
	listen tcp 127.0.0.1 "$((PORT + 1))" >"$tmp/echo.out" 2>&1 &
echo=$!
bench_servers_ready "$tmp" sink echo
bench_exec_policy "$tmp/exec.yaml" "$PORT" "$exe"

# OpenSnitch's files, made anew for each start: its configuration and firewall files (copied
# into its private /etc/opensnitchd), its rules directory, its log.
os_files() {
	local d=$tmp/os
	rm -rf "$d"
	mkdir -p "$d/etc.up" "$d/etc.work" "$d/rules"
	cat >"$d/default-config.json" <<JSON
{
	"Server": { "Address": "unix://$d/ui.sock", "LogFile": "$d/opensnitchd.log" },
	"DefaultAction": "allow",
	"DefaultDuration": "once",
	"InterceptUnknown": false,
	"ProcMonitorMethod": "proc",
	"LogLevel": 2,
	"Firewall": "iptables",
	"Stats": { "MaxEvents": 150, "MaxStats": 25 }
}
JSON
	echo '{ "SystemRules": [] }' >"$d/system-fw.json"
	cat >"$d/rules/deny-plain-lgprobe.json" <<JSON
{
	"created": "2026-12-04T00:00:00Z",
	"updated": "2026-12-04T00:00:00Z",
	"name": "deny-plain-lgprobe",
	"enabled": true,
	"precedence": false,
	"action": "deny",
	"duration": "always",
	"operator": { "type": "simple", "operand": "process.path", "sensitive": false,
		"data": "$LGPROBE", "list": [] }
}
JSON
}

# Start opensnitchd in a mount namespace of its own (a private /run and an overlay over /etc
# whose writes land in $tmp), inside this network namespace; it dies with this script.
os_start() {
	local d=$tmp/os
	os_files
	# shellcheck disable=SC2016 # expanded by that sh
	unshare -m --propagation private -- sh -c '
		mount -t tmpfs tmpfs /run &&
		mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/etc.up,workdir=$1/etc.work" /etc &&
		mkdir -p /etc/opensnitchd &&
		cp "$1/default-config.json" "$1/system-fw.json" /etc/opensnitchd/ &&
		shift && exec "$@"' sh "$d" \
		env LD_LIBRARY_PATH="$(os_libpath)" setpriv --pdeathsig KILL -- \
		"$OSD" -rules-path "$d/rules" -process-monitor-method proc -queue-num "$Q" \
		-log-file "$d/opensnitchd.log" -no-live-reload >"$d/out" 2>"$d/err" &
	osd=$!
	local i
	for i in $(seq 1000); do
		iptables -t mangle -S OUTPUT 2>/dev/null | grep -q -- "--queue-num $Q" && break
		kill -0 "$osd" 2>/dev/null || break
		[ "$i" -lt 1000 ] && sleep 0.02
	done
	iptables -t mangle -S OUTPUT 2>/dev/null | grep -q -- "--queue-num $Q" || {
		echo "opensnitchd did not install its queue rule:" >&2
		cat "$d/opensnitchd.log" "$d/err" >&2
		exit 1
	}
	[ "$(readlink "/proc/$osd/exe")" = "$OSD" ] ||
		{ echo "pid $osd is not opensnitchd" >&2; exit 1; }
}

# SIGTERM makes it remove its rules; whatever it left, the flush removes (this namespace only).
os_stop() {
	local i
	kill "$osd" 2>/dev/null || true
	for i in $(seq 250); do kill -0 "$osd" 2>/dev/null || break; [ "$i" -lt 250 ] && sleep 0.02; done
	kill -9 "$osd" 2>/dev/null || true
	wait "$osd" 2>/dev/null || true
	osd=
	nft flush ruleset
}

lg_start() {
	rm -f "$tmp/daemon.err" # else the wait can see the last start's "guarding" line
	LOGUARD_PROC_EVENTS_NETNS=/proc/self/fd/9 setpriv --pdeathsig KILL -- \
		"$LOGUARD" -f "$tmp/exec.yaml" run >"$tmp/records" 2>"$tmp/daemon.err" &
	lgd=$!
	bench_wait_for "$tmp/daemon.err" '^loguard: guarding' 60 || {
		echo "loguard did not say 'guarding' within 60 s:" >&2
		cat "$tmp/daemon.err" >&2
		exit 1
	}
	grep -q 'executables: following' "$tmp/daemon.err" ||
		{ echo "loguard does not follow process events:" >&2; cat "$tmp/daemon.err" >&2; exit 1; }
}

lg_stop() {
	kill "$lgd"
	wait "$lgd" || true
	lgd=
}

# queue Q's "id sequence" (packets queued so far) and "queue dropped", from the kernel
queue_stats() { awk -v q="$Q" '$1 == q { print $8, $6 }' /proc/net/netfilter/nfnetlink_queue; }

setup() { # a|o|l: start what the configuration needs and check that it judges
	local v w
	case $1 in
	a) return 0 ;;
	o) os_start ;;
	l) lg_start ;;
	esac
	v=$(verdict "$U" "$exe")
	w=$(verdict "$U" "$LGPROBE")
	# OpenSnitch's deny drops (timeout), loguard rejects (refused).
	case $v.$w in
	connected.refused | connected.timeout) ;;
	*)
		echo "config $1: the copy got '$v' (want connected), plain lgprobe '$w'" >&2
		exit 1
		;;
	esac
}

teardown() {
	case $1 in
	o) os_stop ;;
	l) lg_stop ;;
	esac
}

echo "OpenSnitch $OS_VERSION against loguard's executables guard: kernel $(uname -r)," \
	"$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), client threads: $THREAD_LIST"
# OpenSnitch's lookups (a sock_diag dump of the TCP sockets, a /proc walk when its pid cache
# misses) grow with the host: this namespace shares its pids and its socket hash table.
echo "processes on the host: $(find /proc -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l)"
bench_flood "$U" "$exe" "$PORT" 1 "$max_threads" >/dev/null
configs="a o l"
declare -A rates=() ratios=() dcpu=() last=() queued=() unjudged=()
for r in $(seq "$ROUNDS"); do
	for t in $THREAD_LIST; do
		# shellcheck disable=SC2086 # the list splits on purpose
		for c in $(bench_order "$r" $configs); do
			setup "$c"
			d=${osd:-$lgd}
			t0=0 q0=0 drop0=0 to0=0
			[ -z "$d" ] || t0=$(bench_cpu_ticks "$d")
			if [ "$c" = o ]; then
				read -r q0 drop0 < <(queue_stats)
				to0=$(grep -c 'Timed out' "$tmp/os/err" || true)
			fi
			read -r v cpu < <(bench_flood "$U" "$exe" "$PORT" "$SECONDS_PER" "$t")
			if [ -n "$d" ]; then
				t1=$(bench_cpu_ticks "$d")
				dcpu[$t.$c]+="$(bench_us_per_conn $((t1 - t0)) "$v" "$SECONDS_PER") "
			fi
			if [ "$c" = o ]; then
				# Queued packets against connections made; the ones OpenSnitch let
				# through without a verdict (its 1 ms hand-off timeout accepts) or the
				# kernel dropped from a full queue.
				read -r q1 drop1 < <(queue_stats)
				to1=$(grep -c 'Timed out' "$tmp/os/err" || true)
				queued[$t]=$((${queued[$t]:-0} + q1 - q0))
				unjudged[$t]=$((${unjudged[$t]:-0} + to1 - to0 + drop1 - drop0))
			fi
			teardown "$c"
			bench_note "$r" "$t" "$c" "$v" "$cpu"
		done
		# shellcheck disable=SC2086 # the list splits on purpose
		bench_round_ratios "$t" a $configs
	done
done

declare -A names=([a]="(a) no table" [o]="(o) OpenSnitch $OS_VERSION (proc, NFQUEUE)"
	[l]="(l) loguard run, executables guard")
figures=""
echo
echo "================================================================================"
for t in $THREAD_LIST; do
	# shellcheck disable=SC2086 # the list splits on purpose
	bench_rate_block 38 "$t" $configs
	# shellcheck disable=SC2086
	ma=$(median ${rates[$t.a]}) mo=$(median ${rates[$t.o]}) ml=$(median ${rates[$t.l]})
	made=$(awk -v s="${rates[$t.o]}" -v p="$SECONDS_PER" \
		'BEGIN { n = split(s, v, " "); for (i = 1; i <= n; i++) c += v[i] * p; printf "%.0f", c }')
	printf '  %-46s %s\n' "(l) / (o)" "$(ratio "$ml" "$mo")"
	printf '  %-46s %s queued of ~%s made; %s let through unjudged\n' "(o) connections" \
		"${queued[$t]}" "$made" "${unjudged[$t]}"
	# shellcheck disable=SC2086
	figures+="os_ratio_$t=$(ratio "$mo" "$ma") os_us_$t=$(median ${dcpu[$t.o]}) "
	# shellcheck disable=SC2086
	figures+="lg_ratio_$t=$(ratio "$ml" "$ma") lg_us_$t=$(median ${dcpu[$t.l]}) "
	figures+="os_unjudged_$t=${unjudged[$t]} "
done
echo "figures: os_version=$OS_VERSION $figures" # one line for bench/all.sh
