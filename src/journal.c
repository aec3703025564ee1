// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Records and the stats record as journald entries, over its native protocol (one datagram
 * per entry, a sealed memfd for entries larger than a datagram), without libsystemd. Values
 * are escaped as in record.c's text format, without quotes; MESSAGE= is the text line without
 * its time: journald stamps every entry itself, and journalctl would show it twice.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "journal.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* journald's syslog priorities (sd-daemon.h LOG_* values, without pulling in syslog.h). */
#define PRIO_WARNING 4
#define PRIO_NOTICE  5
#define PRIO_INFO    6

int journal_open_path(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tmo = { .tv_usec = JOURNAL_SEND_TIMEOUT_MS * 1000 };
	size_t len = strlen(path);
	int sndbuf = 8 * 1024 * 1024, fd, err;

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	/* Blocking, as sd_journal_send(), but only for JOURNAL_SEND_TIMEOUT_MS: journald drains
	 * fast, and a short wait is better than a dropped record; a journald that stays stuck
	 * must not stall the daemon's loop (queued connections wait for its verdicts), so then
	 * the entry is dropped and counted, and the next ones are not waited for until one
	 * goes through (see journal_send()). Connected, so a missing journald shows up here, at
	 * startup. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/* Room for a burst while journald catches up (sd-journal asks for 8 MiB too); the
	 * kernel's maximum applies without CAP_NET_ADMIN. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + len + 1)) {
		err = -errno;
		close(fd);
		return err;
	}
	*ret_fd = fd;
	return 0;
}

int journal_open(int *ret_fd)
{
	return journal_open_path(JOURNAL_SOCKET, ret_fd);
}

/* KEY=value\n, or when the value has a newline KEY\n<le64 length><value>\n. */
static void jfield(struct buf *b, const char *key, const char *val, size_t len)
{
	buf_adds(b, key);
	if (memchr(val, '\n', len)) {
		uint64_t le = htole64(len);

		buf_addc(b, '\n');
		buf_add(b, &le, sizeof(le));
	} else {
		buf_addc(b, '=');
	}
	buf_add(b, val, len);
	buf_addc(b, '\n');
}

/* Values from records are escaped as in text, without quotes (journalctl shows fields raw);
 * unknown values are left out, never sent empty. */
static void jfield_str(struct buf *b, const char *key, const char *val)
{
	struct buf e = { 0 };

	if (!val)
		return;
	record_text_escape(&e, val, false);
	if (e.err)
		b->err = b->err ? b->err : e.err;
	else
		jfield(b, key, e.p ? e.p : "", e.len);
	free(e.p);
}

static void jfield_u64(struct buf *b, const char *key, bool known, uint64_t v)
{
	char s[24];

	if (!known)
		return;
	snprintf(s, sizeof(s), "%" PRIu64, v);
	jfield_str(b, key, s);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* systemd's way for entries larger than a datagram: a sealed memfd passed as the only content
 * of an empty datagram. journald only accepts it fully sealed (it must not change while read). */
static int journal_send_memfd(int fd, const void *data, size_t len, int flags)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr mh = { .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm;
	int mfd, err;

	mfd = memfd_create("loguard-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -errno;
	err = write_all(mfd, data, len);
	if (err)
		goto out;
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) {
		err = -errno;
		goto out;
	}
	memset(&control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
	while (sendmsg(fd, &mh, MSG_NOSIGNAL | flags) < 0) {
		if (errno != EINTR) {
			err = -errno;
			goto out;
		}
	}
	err = 0;
out:
	close(mfd);
	return err;
}

/* One wait of JOURNAL_SEND_TIMEOUT_MS per episode, not per entry: after a send timed out,
 * *stuck is set and sends do not wait until one goes through (journald drained its queue).
 * Otherwise a stuck journald would hold the daemon 500 ms for every record, and with it every
 * queued connection waiting for a verdict. */
static int journal_send(int fd, const struct buf *b, bool *stuck)
{
	struct iovec iov = { .iov_base = b->p, .iov_len = b->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int flags = *stuck ? MSG_DONTWAIT : 0, r = 0;

	while (sendmsg(fd, &mh, MSG_NOSIGNAL | flags) < 0) {
		if (errno == EINTR)
			continue;
		/* too big for the socket's send buffer: the same as sd_journal_sendv() does */
		if (errno == EMSGSIZE || errno == ENOBUFS)
			r = journal_send_memfd(fd, b->p, b->len, flags);
		else
			r = -errno;
		break;
	}
	if (r == -EAGAIN || r == -EWOULDBLOCK)
		*stuck = true;
	else if (r == 0)
		*stuck = false;
	return r;
}

static int verdict_priority(enum record_verdict v)
{
	switch (v) {
	case RECORD_DENY:
		return PRIO_WARNING;
	case RECORD_WOULD_DENY:
		return PRIO_NOTICE;
	default:
		return PRIO_INFO;
	}
}

/* LOGUARD_LISTENING=yes|no, then the LOGUARD_LISTENER_* fields known; none when not looked
 * up. */
static void jfield_listener(struct buf *b, const struct record_listener *l)
{
	bool found = l->state == RECORD_LISTENER_FOUND;

	if (l->state == RECORD_LISTENER_UNKNOWN)
		return;
	jfield_str(b, "LOGUARD_LISTENING", found ? "yes" : "no");
	jfield_u64(b, "LOGUARD_LISTENER_UID", found, l->uid);
	jfield_str(b, "LOGUARD_LISTENER_USER", l->user);
	jfield_u64(b, "LOGUARD_LISTENER_PID", l->has_pid, (uint64_t)l->pid);
	jfield_str(b, "LOGUARD_LISTENER_EXE", l->exe);
	jfield_str(b, "LOGUARD_LISTENER_UNIT", l->unit);
	jfield_str(b, "LOGUARD_LISTENER_USER_UNIT", l->user_unit);
}

int journal_send_record(int fd, const struct record *r, bool *stuck)
{
	const struct conn_event *ev = &r->ev;
	struct buf b = { 0 }, msg = { 0 }, cmd = { 0 };
	struct record_parts p;
	int err;

	err = record_to_parts(r, &p);
	if (err)
		return err;
	record_text_line(&msg, r, &p, false);
	if (msg.err) {
		err = msg.err;
		goto out;
	}
	jfield(&b, "MESSAGE", msg.p, msg.len);
	buf_addf(&b, "PRIORITY=%d\n", verdict_priority(ev->verdict));
	buf_adds(&b, "SYSLOG_IDENTIFIER=loguard\nLOGUARD_TYPE=connection\n");
	jfield_str(&b, "LOGUARD_GUARD", r->guard);
	jfield_str(&b, "LOGUARD_VERDICT", p.verdict);
	jfield_str(&b, "LOGUARD_PROTOCOL", p.proto[0] ? p.proto : NULL);
	jfield_str(&b, "LOGUARD_SRC", p.src);
	jfield_u64(&b, "LOGUARD_SPORT", !ev->ports_unknown, ev->sport);
	jfield_str(&b, "LOGUARD_DST", p.dst);
	jfield_u64(&b, "LOGUARD_DPORT", !ev->ports_unknown, ev->dport);
	jfield_u64(&b, "LOGUARD_UID", ev->has_uid, ev->uid);
	jfield_str(&b, "LOGUARD_USER", r->user);
	jfield_u64(&b, "LOGUARD_GID", ev->has_gid, ev->gid);
	jfield_str(&b, "LOGUARD_GROUP", r->group);
	jfield_u64(&b, "LOGUARD_PID", r->has_pid, (uint64_t)r->pid);
	jfield_str(&b, "LOGUARD_EXE", r->exe);
	if (r->argv) {
		/* arguments as text values: one with a space is quoted, so they split again */
		for (char *const *a = r->argv; *a; a++) {
			if (a != r->argv)
				buf_addc(&cmd, ' ');
			record_text_value(&cmd, *a);
		}
		/* an empty argv (kernel thread, zombie) is known to be empty: sent as "" */
		if (cmd.err)
			b.err = cmd.err;
		else
			jfield(&b, "LOGUARD_CMDLINE", cmd.p ? cmd.p : "", cmd.len);
	}
	jfield_str(&b, "LOGUARD_CGROUP", r->cgroup);
	jfield_str(&b, "LOGUARD_UNIT", r->unit);
	jfield_str(&b, "LOGUARD_USER_UNIT", r->user_unit);
	if (r->has_granted_by) {
		jfield_str(&b, "LOGUARD_GRANTED_BY", r->granted_by);
		jfield_u64(&b, "LOGUARD_GRANTED_BY_UID", true, r->granted_by_uid);
	}
	jfield_listener(&b, &r->listener);
	err = b.err ? b.err : journal_send(fd, &b, stuck);
out:
	free(b.p);
	free(msg.p);
	free(cmd.p);
	return err;
}

int journal_send_stats(int fd, const struct record_stats *s, bool *stuck)
{
	struct buf b = { 0 }, msg = { 0 };
	int err;

	record_text_stats(&msg, s);
	if (msg.err) {
		err = msg.err;
		goto out;
	}
	jfield(&b, "MESSAGE", msg.p, msg.len);
	buf_addf(&b, "PRIORITY=%d\nSYSLOG_IDENTIFIER=loguard\nLOGUARD_TYPE=stats\n", PRIO_INFO);
	buf_addf(&b,
		 "LOGUARD_RECEIVED=%" PRIu64 "\nLOGUARD_LOST=%" PRIu64 "\nLOGUARD_ENOBUFS=%" PRIu64
		 "\nLOGUARD_RATE_LIMITED=%" PRIu64 "\nLOGUARD_UNMATCHED=%" PRIu64
		 "\nLOGUARD_IDENTITY_SKIPPED=%" PRIu64 "\nLOGUARD_PORTS_UNKNOWN=%" PRIu64
		 "\nLOGUARD_JOURNAL_UNSENT=%" PRIu64 "\nLOGUARD_QUEUED=%" PRIu64
		 "\nLOGUARD_QUEUE_ALLOWED=%" PRIu64 "\nLOGUARD_RECEIVERS=%" PRIu64
		 "\nLOGUARD_CGROUPS=%" PRIu64 "\n",
		 s->received, s->lost, s->enobufs, s->rate_limited, s->unmatched,
		 s->identity_skipped, s->ports_unknown, s->journal_unsent, s->queued,
		 s->queue_allowed, s->receivers, s->cgroups);
	err = b.err ? b.err : journal_send(fd, &b, stuck);
out:
	free(b.p);
	free(msg.p);
	return err;
}
