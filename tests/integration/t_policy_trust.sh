#!/bin/bash
# A policy that someone other than root can change is refused by apply, run and (as root)
# check: anyone who can write it, or replace it or any directory above it, would control the
# firewall. The file judged is the one the path resolves to, through symbolic links, with every
# directory from / down; a FIFO is refused at once, never waited for. A user checking a draft of
# their own gets the findings as a warning. A daemon keeps its old rules when a reload finds the
# file made writable or replaced by a FIFO, and still stops on SIGTERM.
. "$(dirname "$0")/lib.sh"
lg_setup_net
lg_setup_users

p=$(policy trust <<'YAML'
version: 1
guards:
  - name: web
    ports: [8080]
    allow:
      users: [alice]
YAML
)
chmod 0664 "$p"
expect_lg 1 "$p" apply
grep -q "refusing a policy that someone other than root can change (owner uid 0, mode 0664)" \
	<<<"$LG_OUT" && log "ok: group-writable refused with a reason" || fail "message: $LG_OUT"
have_table inet loguard && fail "an untrusted policy was installed"
# root's check judges as apply does: ExecReload= runs it before SIGHUP.
expect_lg 1 "$p" check
chmod 0644 "$p"
chown alice "$p"
expect_lg 1 "$p" apply
chown root "$p"
expect_lg 0 "$p" apply
expect_lg 0 "$p" flush

# expect_refused_everywhere WHY-REGEX FILE: apply, run and check (as root) all exit 1 at once
# (5 s: a FIFO must not be waited for), each saying WHY, and nothing is installed.
expect_untrusted() {
	local why=$1 f=$2 cmd out rc
	for cmd in apply run check; do
		out=$(timeout -k 2 5 "$LOGUARD" -f "$f" $cmd 2>&1 </dev/null)
		rc=$?
		if [ $rc -eq 1 ] && grep -q -E -e "$why" <<<"$out"; then
			log "ok: $cmd $f: refused: $(head -1 <<<"$out")"
		else
			fail "$cmd $f: expected exit 1 and '$why', got exit $rc$([ $rc -eq 124 ] && echo ' (hung)'): $out"
		fi
		have_table inet loguard && { fail "$cmd $f installed the table"; nft delete table inet loguard; }
	done
}

# A root-owned directory of links and files, and a directory alice owns.
etc=$LG_TMP/etc
home=$LG_TMP/alice
mkdir -m 0755 "$etc" "$home"
chown alice "$home"
cp "$p" "$home/policy.yaml" # root's file, 0644, but in alice's directory: she can replace it

# 1. A symbolic link in root's directory to a file in a directory alice can write.
ln -s ../alice/policy.yaml "$etc/link.yaml"
expect_untrusted "refusing a policy in a directory that someone other than root can change \\($home: owner uid 1001, mode 0755\\)" \
	"$etc/link.yaml"
# ... which she really could swap (so the refusal matters):
as_user alice sh -c "mv '$home/policy.yaml' '$home/old.yaml' && cp '$home/old.yaml' '$home/policy.yaml'" &&
	log "ok: alice can replace the file the link points to" || fail "alice could not replace $home/policy.yaml"

# 2. A directory further up that alice can write: $LG_TMP/up (alice's) / sub (root's) / file.
mkdir -m 0755 -p "$LG_TMP/up/sub"
chown alice "$LG_TMP/up"
cp "$p" "$LG_TMP/up/sub/policy.yaml"
expect_untrusted "refusing a policy in a directory that someone other than root can change \\($LG_TMP/up: owner uid 1001" \
	"$LG_TMP/up/sub/policy.yaml"
# ... and through a relative path from inside it.
(cd "$LG_TMP/up/sub" && expect_untrusted "\\($LG_TMP/up: owner uid 1001" policy.yaml)

# 3. A FIFO: refused at once (no writer ever comes).
mkfifo -m 0644 "$etc/fifo.yaml"
expect_untrusted "refusing a policy that is not a regular file \\($etc/fifo.yaml is a FIFO\\)" "$etc/fifo.yaml"

# 4. Sticky directories: root's file in root's sticky directory is fine (others cannot replace
# it); alice's link there, or any entry of a sticky directory alice owns, is not.
mkdir -m 1777 "$LG_TMP/sticky"
cp "$p" "$LG_TMP/sticky/policy.yaml"
expect_lg 0 "$LG_TMP/sticky/policy.yaml" apply
expect_lg 0 "$p" flush
ln -s ../etc/../trust.yaml "$LG_TMP/sticky/alices-link.yaml"
chown -h alice "$LG_TMP/sticky/alices-link.yaml"
expect_untrusted "symbolic link that someone other than root can replace \\($LG_TMP/sticky/alices-link.yaml: owner uid 1001" \
	"$LG_TMP/sticky/alices-link.yaml"
ln -s ../trust.yaml "$LG_TMP/sticky/roots-link.yaml"
expect_lg 0 "$LG_TMP/sticky/roots-link.yaml" check
chown alice "$LG_TMP/sticky"
expect_untrusted "\\($LG_TMP/sticky: owner uid 1001, mode 1777\\)" "$LG_TMP/sticky/policy.yaml"

# 5. A user checking a draft of their own: a warning, exit 0; as root the same file fails.
cp "$p" "$home/draft.yaml"
chown alice "$home/draft.yaml"
out=$(as_user alice "$LOGUARD" -f "$home/draft.yaml" check 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "warning: \`apply\` and \`run\` would refuse it: .*$home: owner uid 1001" <<<"$out" &&
	log "ok: alice's check of her draft: exit 0 with a warning" || fail "alice's check of her draft: exit $rc: $out"
expect_lg 1 "$home/draft.yaml" check

# 6. The daemon: a reload that finds the file group-writable, or a FIFO, keeps the old rules,
# and the daemon still stops on SIGTERM.
start_server tcp 127.0.0.1 8080
live=$etc/live.yaml
cp "$p" "$live"
start_daemon "$live"
chmod 0666 "$live"
sed -i 's/alice/bob/' "$live"
kill -HUP "$LG_DAEMON_PID"
wait_log_line "$LG_DAEMON_ERR" 'reload of .* failed' || fail "reload of a world-writable policy did not fail"
expect_connect alice tcp 127.0.0.1 8080
expect_refused bob tcp 127.0.0.1 8080
rm "$live"
mkfifo -m 0644 "$live"
kill -HUP "$LG_DAEMON_PID"
if wait_log_line "$LG_DAEMON_ERR" "$live.*not a regular file" 5; then
	log "ok: reload of a FIFO failed at once"
else
	fail "reload of a FIFO: no 'not a regular file' within 5 s: $(tail -3 "$LG_DAEMON_ERR")"
fi
expect_connect alice tcp 127.0.0.1 8080
kill -TERM "$LG_DAEMON_PID"
for ((i = 0; i < 250; i++)); do
	kill -0 "$LG_DAEMON_PID" 2>/dev/null || break
	sleep 0.02
done
if kill -0 "$LG_DAEMON_PID" 2>/dev/null; then
	fail "the daemon ignored SIGTERM after a FIFO reload"
	kill -KILL "$LG_DAEMON_PID"
else
	log "ok: the daemon stopped on SIGTERM"
fi
wait "$LG_DAEMON_PID" 2>/dev/null
lg_done
