#!/bin/bash
# loguard.service under a real systemd (started by tests/systemd/run.sh; see lib.sh).
#
#  1. make install (PREFIX, DESTDIR): every file in place, ExecStart= rewritten, an existing
#     policy kept; make uninstall removes all but the policy.
#  2. Boot with loguard enabled: active before sysinit.target, as a non-root user holding only
#     CAP_NET_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH; systemd-analyze verify passes;
#     systemd-analyze security's exposure is reported.
#  3. An enforce policy through `systemctl reload`: allowed user connects, another is
#     refused, the denial is a journal entry with LOGUARD_* fields; a held connection shows
#     who made it (pid, exe, unit, cgroup).
#  4. Reload with a changed policy takes effect; with a broken one (through systemctl reload and
#     through a bare SIGHUP) the service stays active with the old rules.
#  5. The policy must be root's and not group/world-writable.            [needs src/ work]
#  6. Tamper: nobody else may change the table while loguard lives.     [needs OWNER flag]
#  7. kill -9: the rules stay in force; the restarted daemon adopts the table again.
#                                                       [adoption needs OWNER|PERSIST]
#  8. Each capability (and open_by_handle_at) is needed: without it, what goes missing.
#  9. systemctl stop removes the table. Bash completion is installed and works.
. "$(dirname "$0")/lib.sh"

POLICY=/etc/loguard/policy.yaml
MPOLICY=$MERGED$POLICY

# ---- 1. installation -------------------------------------------------------------------------

ct_mount
mk() { make -C "$LGSD_ROOT" --no-print-directory "$@"; }

# First into a scratch tree with another prefix: paths, the ExecStart= rewrite, uninstall.
stage=$CT_DIR/stage
out=$(mk install DESTDIR="$stage" PREFIX=/opt/lg 2>&1) || { printf '%s\n' "$out"; die "make install failed"; }
unitdir=$(make -C "$LGSD_ROOT" -s --no-print-directory -f - print-unitdir <<'EOF' 2>/dev/null
include Makefile
print-unitdir: ; @echo $(SYSTEMDUNITDIR) $(BASHCOMPDIR)
EOF
)
read -r sysunitdir bashcompdir <<<"$unitdir"
[ -n "$sysunitdir" ] && [ -n "$bashcompdir" ] || die "cannot read SYSTEMDUNITDIR/BASHCOMPDIR from the Makefile"
log "Makefile: SYSTEMDUNITDIR=$sysunitdir BASHCOMPDIR=$bashcompdir"
installed=(/opt/lg/sbin/loguard /opt/lg/share/man/man8/loguard.8 /opt/lg/share/man/man8/loguard.service.8
	/opt/lg/share/man/man5/loguard.yaml.5 "$sysunitdir/loguard.service" "$bashcompdir/loguard"
	/etc/loguard/policy.yaml)
for f in "${installed[@]}"; do
	check "make install created $f" test -f "$stage$f"
done
check "installed unit runs \$(SBINDIR)/loguard" \
	grep -q -x 'ExecStart=/opt/lg/sbin/loguard -f /etc/loguard/policy.yaml run' "$stage$sysunitdir/loguard.service"
check "no /usr/sbin/loguard left in the unit's commands" \
	bash -c "! grep '^Exec.*/usr/sbin/loguard' '$stage$sysunitdir/loguard.service'"
check "policy installed from policies/default.yaml" cmp "$LGSD_ROOT/policies/default.yaml" "$stage/etc/loguard/policy.yaml"
echo "# edited by the admin" >>"$stage/etc/loguard/policy.yaml"
out=$(mk install DESTDIR="$stage" PREFIX=/opt/lg 2>&1)
check "a second make install keeps an existing policy" grep -q -x "# edited by the admin" "$stage/etc/loguard/policy.yaml"
out=$(mk uninstall DESTDIR="$stage" PREFIX=/opt/lg 2>&1) || { printf '%s\n' "$out"; fail "make uninstall failed"; }
for f in "${installed[@]}"; do
	[ "$f" = /etc/loguard/policy.yaml ] && continue
	check "make uninstall removed $f" test ! -e "$stage$f"
done
check "make uninstall keeps the policy" test -f "$stage/etc/loguard/policy.yaml"
check "make uninstall says it kept the policy" grep -q "kept .*policy.yaml" <<<"$out"

# Then into the container's tree, as a distribution would.
out=$(mk install DESTDIR="$MERGED" PREFIX=/usr 2>&1) || { printf '%s\n' "$out"; die "make install DESTDIR=$MERGED failed"; }
install -m 0755 "$LGPROBE" "$MERGED$CT_LGPROBE"

# ---- the container ---------------------------------------------------------------------------

od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$MERGED/etc/machine-id"
echo >>"$MERGED/etc/machine-id"
# The host's mounts and encrypted volumes are not the container's business (and waiting for
# their devices would stall the boot).
: >"$MERGED/etc/fstab"
[ -e "$MERGED/etc/crypttab" ] && : >"$MERGED/etc/crypttab"
mkdir -p "$MERGED/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' >"$MERGED/etc/systemd/journald.conf.d/loguard-test.conf"
# Boot into a target of our own: sysinit.target (where loguard is enabled, and what it must
# come before) and D-Bus (systemd-run --wait needs it), nothing else: no getty, no timers, no
# network management, no host services.
cat >"$MERGED/etc/systemd/system/loguard-test.target" <<'EOF'
[Unit]
Description=loguard test boot: sysinit.target and D-Bus, nothing else
Requires=sysinit.target
Wants=dbus.socket dbus.service
After=sysinit.target dbus.socket dbus.service
AllowIsolate=yes
EOF
ct_mask systemd-timesyncd.service systemd-pstore.service systemd-firstboot.service \
	systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-repart.service \
	systemd-random-seed.service systemd-machine-id-commit.service systemd-update-utmp.service \
	systemd-journal-catalog-update.service systemd-hwdb-update.service ldconfig.service \
	systemd-networkd.service systemd-resolved.service
# Test users: alice may connect, bob and carol may not (until a reload says otherwise).
ct_users alice:2901 bob:2902 carol:2903
systemctl --root="$MERGED" --quiet enable loguard.service || die "systemctl --root enable loguard.service"
check "enabled into sysinit.target.wants" test -L "$MERGED/etc/systemd/system/sysinit.target.wants/loguard.service"

ct_boot loguard-test.target

# ---- 2. boot ---------------------------------------------------------------------------------

if ! check "loguard.service active after boot" test "$(ct systemctl is-active loguard.service)" = active; then
	ct systemctl status --no-pager -l loguard.service 2>&1 | sed 's/^/      | /'
	ct journalctl -b --no-pager -n 40 2>&1 | sed 's/^/      | /'
	die "loguard.service did not start at boot"
fi
t_lg=$(prop loguard.service ActiveEnterTimestampMonotonic)
t_si=$(prop sysinit.target ActiveEnterTimestampMonotonic)
check "active ($t_lg us) before sysinit.target ($t_si us)" test "$t_lg" -gt 0 -a "$t_lg" -le "$t_si"
check "no ordering cycle at boot" bash -c "! nsenter -t $CT_PID -a journalctl -b --no-pager -q | grep -i 'ordering cycle'"
check "STATUS= says it is guarding" grep -q "guarding with $POLICY" <<<"$(prop loguard.service StatusText)"
check "boot policy's table installed" grep -q "9222" <<<"$(ct_nft_table)"

main=$(prop loguard.service MainPID)
st=$(ct cat "/proc/$main/status")
uid=$(awk '/^Uid:/ { print $2 }' <<<"$st")
check "runs as a non-root user (uid $uid)" test "$uid" -ne 0
# CAP_DAC_READ_SEARCH (2) | CAP_NET_ADMIN (12) | CAP_SYS_PTRACE (19)
for c in CapEff CapPrm CapBnd CapAmb; do
	v=$(awk -v c="$c:" '$1 == c { print $2 }' <<<"$st")
	check "$c = $v: only the three capabilities" test "$v" = 0000000000081004
done
check "no_new_privs set" grep -q -P '^NoNewPrivs:\t1$' <<<"$st"
check "seccomp filter on" grep -q -P '^Seccomp:\t2$' <<<"$st"

vout=$(ct systemd-analyze verify loguard.service 2>&1)
vrc=$?
check "systemd-analyze verify loguard.service: exit 0" test $vrc -eq 0
check "systemd-analyze verify: nothing to say about loguard" \
	bash -c "! grep -i loguard <<<'$(printf '%s' "$vout" | tr -d "'")'"
[ -n "$vout" ] && printf '%s\n' "$vout" | sed 's/^/      verify| /'
sec=$(ct systemd-analyze security --offline=yes --no-pager "$sysunitdir/loguard.service" 2>&1)
exposure=$(sed -n 's/.*Overall exposure level for loguard.service: \([0-9.]*\).*/\1/p' <<<"$sec")
log "systemd-analyze security --offline=yes: exposure $exposure"
# 1.7 is the floor on systemd 252 with the capabilities loguard needs (see the unit's header).
check "exposure $exposure <= ${LGSD_MAX_EXPOSURE:=1.7}" \
	python3 -c "import sys; sys.exit(0 if float('$exposure' or 99) <= float('$LGSD_MAX_EXPOSURE') else 1)"


# ---- 3. an enforce policy, through systemctl reload ------------------------------------------

# write_policy NAME: the policy named NAME (below) becomes /etc/loguard/policy.yaml (root's,
# 0644, written from outside: the file is in the container's tree).
write_policy() {
	case $1 in
	p1) printf '%s\n' 'version: 1' 'mode: enforce' 'guards:' \
		'  - name: web' '    ports: [8080]' '    protocol: tcp' '    allow:' '      users: [alice]' \
		'    action: reject' '    log: denied' \
		'  - name: watched' '    ports: [8081]' '    protocol: tcp' '    mode: audit' \
		'    allow:' '      users: [alice]' '    log: denied' ;;
	p2) write_policy p1 && sed -i 's/users: \[alice\]/users: [alice, bob]/' "$MPOLICY" && return ;;
	broken) printf '%s\n' 'version: 1' 'mode: enforce' 'guards:' \
		'  - name: web' '    ports: [80800]' '    allow:' '      users: [alice]' ;;
	esac >"$MPOLICY"
	chown 0:0 "$MPOLICY"
	chmod 0644 "$MPOLICY"
}

# reload: systemctl reload (checks the policy, then SIGHUP), then wait until the daemon says
# it reloaded (systemd 252 has no notify-reload: the reload job ends when SIGHUP is sent).
reload() {
	local n0 i out rc
	n0=$(jsel '"reloaded " in e.get("MESSAGE", "")' | wc -l)
	out=$(ct systemctl reload loguard.service 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		fail "systemctl reload loguard.service: exit $rc"
		printf '%s\n' "$out" | sed 's/^/      | /'
		ct journalctl -u loguard.service -n 15 --no-pager | sed 's/^/      | /'
		return 1
	fi
	for ((i = 0; i < 50; i++)); do
		[ "$(jsel '"reloaded " in e.get("MESSAGE", "")' | wc -l)" -gt "$n0" ] && { ok "reloaded"; return 0; }
		sleep 0.1
	done
	fail "systemctl reload returned, but loguard did not say 'reloaded'"
	return 1
}

jmark
write_policy p1
reload
ct_server alice 8080
ct_server alice 8081
expect connected alice 8080
expect refused bob 8080
check "table has guard web" grep -q 'web' <<<"$(ct_nft_table)"
e=$(jwait 'e.get("LOGUARD_DPORT") == "8080" and e.get("LOGUARD_USER") == "bob"') ||
	fail "no journal entry for bob's refused connection to 8080"
if [ -n "$e" ]; then
	jcheck "$e" 'e["LOGUARD_TYPE"] == "connection"'
	jcheck "$e" 'e["LOGUARD_GUARD"] == "web"'
	jcheck "$e" 'e["LOGUARD_VERDICT"] == "deny"'
	jcheck "$e" 'e["LOGUARD_PROTOCOL"] == "tcp"'
	jcheck "$e" 'e["LOGUARD_SRC"] == "127.0.0.1"'
	jcheck "$e" 'e["LOGUARD_UID"] == "2902"'
	jcheck "$e" 'e["_SYSTEMD_UNIT"] == "loguard.service"'
	jcheck "$e" 'e["SYSLOG_IDENTIFIER"] == "loguard"'
fi
check "alice's connection was not logged (log: denied)" \
	test -z "$(jsel 'e.get("LOGUARD_DPORT") == "8080" and e.get("LOGUARD_USER") == "alice"')"

# A held connection (audit guard: allowed, logged), so the daemon finds who holds the socket.
jmark
ct_hold_start bob 8081
e=$(jwait 'e.get("LOGUARD_DPORT") == "8081" and e.get("LOGUARD_USER") == "bob"') ||
	fail "no journal entry for bob's held connection to 8081"
if [ -n "$e" ]; then
	jcheck "$e" 'e["LOGUARD_VERDICT"] == "would-deny"'
	jcheck "$e" 'e["LOGUARD_GUARD"] == "watched"'
	jcheck "$e" "e.get('LOGUARD_PID') == '$HOLD_PID'"
	jcheck "$e" "e.get('LOGUARD_EXE') == '$CT_LGPROBE'"
	jcheck "$e" "e.get('LOGUARD_UNIT') == '$HOLD_UNIT'"
	jcheck "$e" "e.get('LOGUARD_CGROUP', '').endswith('/$HOLD_UNIT')"
	jcheck "$e" "'lgprobe' in e.get('LOGUARD_CMDLINE', '') and 'hold' in e.get('LOGUARD_CMDLINE', '')"
fi
ct_hold_finish
check "one journal entry per logged connection (no duplicate text line)" \
	test "$(jsel 'e.get("LOGUARD_DPORT") == "8081" or "8081" in e.get("MESSAGE", "")' | wc -l)" -eq 1

lgsd_done
