#!/bin/bash
# The Debian package under a real systemd, driven as an admin would (started by
# tests/systemd/run.sh with LGSD_TEST=package and LGSD_DEB=the .deb `make deb` built; see
# lib.sh for the container).
#
#  1. `apt-get install ./loguard_*.deb` in a booted container: every file in place, the policy
#     is the audit default and a conffile, loguard.service enabled and active, its table in
#     the container's netns, a connection to 62893 goes through and is a journal record.
#  2. Upgrade over itself (`--reinstall`, dpkg's upgrade path) after an admin edited the
#     policy: the edit is kept, a new daemon runs, and the table was never deleted (nft monitor
#     sees every deletion) and is owned again.
#  3. `apt-get remove`: service stopped, table deleted, no unit; of the files only the edited
#     conffile is left.
#  4. `apt-get purge`: nothing of the package is left in the container's tree (the overlay's
#     upper layer holds every file the container created).
# shellcheck source=tests/systemd/lib.sh disable=SC2015 # "A && ok || fail": ok never fails
# shellcheck disable=SC2016 # dpkg-query's -f '${Field}' is dpkg-query's, not the shell's
. "$(dirname "$0")/lib.sh"

: "${LGSD_DEB:?LGSD_DEB=path of the .deb to test (make package-test builds it)}"
[ -f "$LGSD_DEB" ] || die "no package $LGSD_DEB (make deb)"
T0=$(date +%s%N)
section() { log "=== $* (at $((($(date +%s%N) - T0) / 1000000)) ms)"; }

POLICY=/etc/loguard/policy.yaml
DEB=/var/tmp/$(basename "$LGSD_DEB")
version=$(dpkg-deb -f "$LGSD_DEB" Version)
# What the package installs (bookworm's unit directory, see debian/rules).
FILES=(/usr/sbin/loguard /lib/systemd/system/loguard.service /usr/share/man/man8/loguard.8.gz
	/usr/share/man/man8/loguard.service.8.gz /usr/share/man/man5/loguard.yaml.5.gz
	/usr/share/bash-completion/completions/loguard /usr/share/doc/loguard/README.Debian
	/usr/share/doc/loguard/copyright "$POLICY")

# Paths in the container's tree (the overlay's upper layer: only what the container changed)
# that say loguard, except the test's own: its boot target and journald drop-in.
leftovers() {
	(cd "$CT_DIR/upper" && find . -path '*loguard*' ! -name 'loguard-test.*' | sed 's|^\.||' | sort)
}
# apt-get in the container, as an admin types it; its output goes to the log.
ct_apt() {
	local t
	t=$(date +%s%N)
	ct env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0 "$@" 2>&1 |
		sed 's/^/      apt| /'
	log "apt-get $1 took $((($(date +%s%N) - t) / 1000000)) ms"
}

section "1. install"
ct_mount
ct_prepare
# The host may be a Docker-style image whose policy-rc.d forbids starting services from
# packages (exit 101); a real Debian system has none, and with it the test would not see what
# the package's scripts do.
rm -f "$MERGED/usr/sbin/policy-rc.d"
# man-db's trigger rebuilds the whole manual page index after every dpkg run (~10 s each
# here); its switch is this file. Not the package's business, and the pages are checked below.
rm -f "$MERGED/var/lib/man-db/auto-update"
install -m 0755 "$LGPROBE" "$MERGED$CT_LGPROBE"
ct_users alice:2901
ct_boot loguard-test.target
check "the container has no loguard before the package" test -z "$(leftovers)"
cp "$LGSD_DEB" "$MERGED$DEB"

ct_apt install "$DEB"
check "dpkg: loguard $version installed" \
	test "$(ct dpkg-query -W -f='${Status} ${Version}' loguard)" = "install ok installed $version"
for f in "${FILES[@]}"; do
	check "installed $f" test -f "$MERGED$f"
done
check "the policy is the audit default" cmp "$LGSD_ROOT/policies/default.yaml" "$MERGED$POLICY"
check "the policy is a conffile" grep -q "^ $POLICY " <<<"$(ct dpkg-query -W -f='${Conffiles}\n' loguard)"
check "loguard version says the package's version" test "$(ct loguard version)" = "loguard $version"
check "enabled" test "$(ct systemctl is-enabled loguard.service)" = enabled
if ! check "started on install" test "$(ct systemctl is-active loguard.service)" = active; then
	ct journalctl -b --no-pager -n 30 2>&1 | sed 's/^/      | /'
fi
check "table inet loguard in the container's netns" grep -q 62893 <<<"$(ct_nft_table)"
check "... and not in the host's" bash -c '! nft list table inet loguard >/dev/null 2>&1'
check "auditing (loguard show)" grep -qi audit <<<"$(ct loguard show 2>&1)"

# audit_record TAG: alice connects to 62893 (audit mode: the connection goes through) and her
# connection is a journal record of loguard.service.
ct_server root 62893
audit_record() {
	jmark
	expect connected alice 62893
	if jwait 'e.get("LOGUARD_DPORT") == "62893" and e.get("LOGUARD_USER") == "alice"' >/dev/null; then
		ok "$1: alice's connection to 62893 is in the journal"
	else
		fail "$1: no journal record of alice's connection to 62893"
	fi
}
audit_record install

section "2. upgrade over itself, with an edited policy"
echo "# edited by the admin" >>"$MERGED$POLICY"
pid0=$(prop loguard.service MainPID)
# nft monitor prints every change to the ruleset of the container's netns: a deleted table
# shows, however short the gap.
# (Appending: the file is emptied between steps.)
ct nft monitor tables >>"$LGSD_TMP/monitor" 2>&1 &
monitor=$!
sleep 0.3
ct_apt install --reinstall "$DEB"
pid1=$(prop loguard.service MainPID)
check "active after the upgrade" test "$(ct systemctl is-active loguard.service)" = active
check "a new daemon (pid $pid0 -> $pid1)" test "$pid1" != 0 -a "$pid1" != "$pid0"
check "the admin's policy edit is kept" grep -q -x "# edited by the admin" "$MERGED$POLICY"
check "the table was never deleted" bash -c "! grep 'delete table inet loguard' '$LGSD_TMP/monitor'"
check "the new daemon owns the table (delete refused)" bash -c "! nsenter -t $CT_PID -n nft delete table inet loguard 2>/dev/null"
check "the upgrade's drop-in is gone" test ! -e "$MERGED/run/systemd/system/loguard.service.d/50-debian-upgrade.conf"
check "RestartKillSignal back to SIGTERM" test "$(prop loguard.service RestartKillSignal)" = 15
audit_record upgrade
# What the drop-in avoids, and proof that the monitor sees a gap: a plain restart deletes the
# table (SIGTERM) and the new daemon makes it again.
: >"$LGSD_TMP/monitor"
ct systemctl restart loguard.service
check "(a plain systemctl restart does delete the table)" grep -q 'delete table inet loguard' "$LGSD_TMP/monitor"

section "3. remove"
: >"$LGSD_TMP/monitor"
ct_apt remove loguard
check "the monitor saw the stop delete the table" grep -q 'delete table inet loguard' "$LGSD_TMP/monitor"
kill "$monitor" 2>/dev/null
wait "$monitor" 2>/dev/null
check "no table" test -z "$(ct_nft_table)"
check "no unit" test "$(prop loguard.service LoadState)" = not-found
check "no loguard process" test -z "$(ct pgrep -x loguard)"
check "dpkg: config files only" test "$(ct dpkg-query -W -f='${Status}' loguard)" = "deinstall ok config-files"
check "the edited policy stays" grep -q -x "# edited by the admin" "$MERGED$POLICY"
expect connected alice 62893
# Besides the policy, Debian keeps the admin's configuration until purge: dpkg's record of the
# conffile (/var/lib/dpkg/info/loguard.*) and the enablement (deb-systemd-helper's state and
# the now dangling sysinit.target.wants link), so that a reinstall keeps the admin's choices.
wants=/etc/systemd/system/sysinit.target.wants/loguard.service
check "the enablement link stays, dangling" test -L "$MERGED$wants" -a ! -e "$MERGED$wants"
left=$(leftovers | grep -v -e '^/var/lib/dpkg/info/loguard\.' -e '^/var/lib/systemd/deb-systemd-helper-enabled/' \
	-e "^$DEB\$" -e "^$wants\$")
check "of the files, only $POLICY is left" test "$left" = "$(printf '/etc/loguard\n%s' "$POLICY")"
[ "$left" = "$(printf '/etc/loguard\n%s' "$POLICY")" ] || printf '%s\n' "$left" | sed 's/^/      left| /'

section "4. purge"
ct_apt purge loguard
check "dpkg: not installed" bash -c "! nsenter -t $CT_PID -a dpkg-query -W -f='\${Status}' loguard 2>/dev/null | grep -q ok"
rm -f "$MERGED$DEB"
left=$(leftovers)
check "nothing of the package left" test -z "$left"
[ -z "$left" ] || printf '%s\n' "$left" | sed 's/^/      left| /'
check "no table" test -z "$(ct_nft_table)"
check "no loguard process" test -z "$(ct pgrep -x loguard)"

lgsd_done
