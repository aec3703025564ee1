// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Records as JSON lines and as text for people; journal.c sends them to journald.
 *
 * Strings in a record (exe, argv, cgroup path, unit names, even user names) come from other
 * users: no byte sequence in them may create a field, a line, or change how a viewer shows the
 * rest (terminal controls, bidi overrides). Escaped in every format: C0 controls, DEL, C1
 * controls, and the code points a terminal or a log viewer does not show as themselves
 * (cp_hidden(): bidi controls U+200E/F, U+202A..E, U+2066..9, U+061C; line and paragraph
 * separators U+2028/9; zero-width and invisible characters; spaces other than U+0020).
 *
 * - JSON: '"' and '\\' escaped; \b \f \n \r \t in short form; the rest as \uXXXX (a surrogate
 *   pair above U+FFFF); every byte that is not part of a well-formed UTF-8 sequence (RFC 3629:
 *   no overlongs, no surrogates, nothing above U+10FFFF) becomes \ufffd. That is lossy on
 *   purpose: JSON strings are Unicode, and Latin-1 style \u00XX escapes of raw bytes would
 *   collide with real characters.
 * - Text: "key=value" fields separated by one space, lossless. A value is written bare when it
 *   is exactly its bytes: printable, no space, '=', '"', '(', ')' or '\\', not empty and not
 *   "-" (which means unknown). Otherwise it is quoted, with \\ \" \n \r \t, \xNN for other C0
 *   controls, DEL and bytes of invalid UTF-8, \uXXXX / \UXXXXXXXX for hidden code points.
 * - journald (journal.c): the same escapes as text, without quotes (a journal field is
 *   delimited already): journalctl prints fields raw, so they get the same treatment.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "record.h"

void record_listener_clear(struct record_listener *l)
{
	free(l->user);
	free(l->exe);
	free(l->unit);
	free(l->user_unit);
	memset(l, 0, sizeof(*l));
}

void record_clear(struct record *r)
{
	if (!r)
		return;
	free(r->user);
	free(r->group);
	free(r->exe);
	if (r->argv)
		for (char **a = r->argv; *a; a++)
			free(*a);
	free(r->argv);
	free(r->cgroup);
	free(r->unit);
	free(r->user_unit);
	free(r->granted_by);
	record_listener_clear(&r->listener);
	memset(r, 0, sizeof(*r));
}

static const char *const verdict_names[__RECORD_VERDICT_MAX] = {
	[RECORD_ALLOW] = "allow",
	[RECORD_DENY] = "deny",
	[RECORD_WOULD_DENY] = "would-deny",
};

const char *record_verdict_name(enum record_verdict v)
{
	if ((unsigned)v >= __RECORD_VERDICT_MAX)
		return NULL;
	return verdict_names[v];
}

static int format_time(const struct timespec *ts, char out[RECORD_TIME_LEN])
{
	struct tm tm;

	if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
		return -EINVAL;
	if (!gmtime_r(&ts->tv_sec, &tm))
		return -EOVERFLOW;
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -ERANGE;
	if (snprintf(out, RECORD_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts->tv_nsec / 1000) != RECORD_TIME_LEN - 1)
		return -ERANGE;
	return 0;
}

static int format_addr(int family, const struct in6_addr *a, char out[INET6_ADDRSTRLEN])
{
	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	/* struct conn_event keeps AF_INET addresses in the first 4 bytes of the in6_addr */
	if (!inet_ntop(family, a, out, INET6_ADDRSTRLEN))
		return -errno;
	return 0;
}

int record_to_parts(const struct record *r, struct record_parts *ret)
{
	const struct conn_event *ev = &r->ev;
	struct record_parts p;
	int err;

	p.verdict = record_verdict_name(ev->verdict);
	if (!p.verdict)
		return -EINVAL;
	err = format_time(&ev->time, p.time);
	if (err)
		return err;
	err = format_addr(ev->family, &ev->src, p.src);
	if (err)
		return err;
	err = format_addr(ev->family, &ev->dst, p.dst);
	if (err)
		return err;
	p.v6 = ev->family == AF_INET6;
	/* The ruleset only logs TCP and UDP; anything else is shown by number, not guessed. */
	if (ev->ports_unknown && !ev->proto)
		p.proto[0] = '\0'; /* the transport header was not in the copy */
	else if (ev->proto == IPPROTO_TCP)
		strcpy(p.proto, "tcp");
	else if (ev->proto == IPPROTO_UDP)
		strcpy(p.proto, "udp");
	else
		snprintf(p.proto, sizeof(p.proto), "%u", ev->proto);
	*ret = p;
	return 0;
}

static bool is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Length of the well-formed UTF-8 sequence at s (NUL-terminated), 0 if s[0] does not start
 * one. Table 3-7 of the Unicode standard: rejects overlongs, surrogates and > U+10FFFF. The &&
 * chains stop at the first mismatch, so they never read past the terminating NUL. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return is_cont(s[1]) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		return s[1] >= lo && s[1] <= hi && is_cont(s[2]) ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		return s[1] >= lo && s[1] <= hi && is_cont(s[2]) && is_cont(s[3]) ? 4 : 0;
	}
	return 0;
}

/* The code point of the well-formed n-byte sequence at s. */
static uint32_t utf8_cp(const unsigned char *s, size_t n)
{
	switch (n) {
	case 1:
		return s[0];
	case 2:
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	case 3:
		return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	default:
		return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
		       (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	}
}

/* Code points that do not show as themselves: controls (C0, DEL, C1, where terminals act on
 * ESC-like sequences), bidi controls (reorder what follows on the line), line and paragraph
 * separators (a new line in many viewers), zero-width and invisible characters and spaces
 * other than U+0020 (make one word look like two, or hide text). */
static bool cp_hidden(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || cp == 0x061c ||
	       cp == 0x115f || cp == 0x1160 || cp == 0x1680 || cp == 0x180e ||
	       (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
	       (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0x3164 || cp == 0xfeff ||
	       (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe007f);
}

/* The two-character escape of c, or NULL: JSON has " \\ b f n r t, text \\ n r t (and " in
 * quoted values). */
static const char *short_escape(unsigned char c, bool json, bool quote)
{
	switch (c) {
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	case '"':
		return json || quote ? "\\\"" : NULL;
	case '\b':
		return json ? "\\b" : NULL;
	case '\f':
		return json ? "\\f" : NULL;
	default:
		return NULL;
	}
}

static void json_cp(struct buf *b, uint32_t cp)
{
	if (cp < 0x10000) {
		buf_addf(b, "\\u%04x", cp);
		return;
	}
	cp -= 0x10000;
	buf_addf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
}

static void json_str(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	const char *esc;

	if (!s) {
		buf_adds(b, "null");
		return;
	}
	buf_addc(b, '"');
	while (*s) {
		size_t n = utf8_len(s);
		uint32_t cp;

		if (n == 0) {
			buf_adds(b, "\\ufffd");
			s++;
			continue;
		}
		cp = utf8_cp(s, n);
		if (n == 1 && (esc = short_escape(*s, true, true)))
			buf_adds(b, esc);
		else if (cp_hidden(cp))
			json_cp(b, cp);
		else
			buf_add(b, s, n);
		s += n;
	}
	buf_addc(b, '"');
}

/* Can s be written bare in a text line: exactly its bytes, one field, not "-" (unknown)? */
static bool text_bare(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	if (!*s || !strcmp(str, "-"))
		return false;
	while (*s) {
		size_t n = utf8_len(s);

		if (n == 0 || cp_hidden(utf8_cp(s, n)) || (n == 1 && strchr(" =\"()\\", *s)))
			return false;
		s += n;
	}
	return true;
}

/* The escaped bytes of s (see the top of the file); with quote, '"' is escaped too. */
void record_text_escape(struct buf *b, const char *str, bool quote)
{
	const unsigned char *s = (const unsigned char *)str;
	const char *esc;

	while (*s) {
		size_t n = utf8_len(s);
		uint32_t cp;

		if (n == 0) {
			/* per byte, so the escaped line still tells the exact bytes */
			buf_addf(b, "\\x%02x", *s);
			s++;
			continue;
		}
		cp = utf8_cp(s, n);
		if (n == 1 && (esc = short_escape(*s, false, quote)))
			buf_adds(b, esc);
		else if (n == 1 && cp_hidden(cp))
			buf_addf(b, "\\x%02x", *s);
		else if (cp_hidden(cp))
			buf_addf(b, cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
		else
			buf_add(b, s, n);
		s += n;
	}
}

/* A text value: "-" when unknown, bare when that is unambiguous, else quoted and escaped. */
void record_text_value(struct buf *b, const char *str)
{
	if (!str) {
		buf_addc(b, '-');
		return;
	}
	if (text_bare(str)) {
		buf_adds(b, str);
		return;
	}
	buf_addc(b, '"');
	record_text_escape(b, str, true);
	buf_addc(b, '"');
}

static void json_u64(struct buf *b, bool known, uint64_t v)
{
	if (known)
		buf_addf(b, "%" PRIu64, v);
	else
		buf_adds(b, "null");
}

static void json_argv(struct buf *b, char *const *argv)
{
	if (!argv) {
		buf_adds(b, "null");
		return;
	}
	buf_addc(b, '[');
	for (char *const *a = argv; *a; a++) {
		if (a != argv)
			buf_addc(b, ',');
		json_str(b, *a);
	}
	buf_addc(b, ']');
}

/* "listening": true, false (nothing would receive it) or null (not looked up); then who. */
static void json_listener(struct buf *b, const struct record_listener *l)
{
	bool found = l->state == RECORD_LISTENER_FOUND;

	buf_addf(b, ",\"listening\":%s,\"listener_uid\":",
		 l->state == RECORD_LISTENER_UNKNOWN ? "null" : found ? "true" : "false");
	json_u64(b, found, l->uid);
	buf_adds(b, ",\"listener_user\":");
	json_str(b, l->user);
	buf_adds(b, ",\"listener_pid\":");
	json_u64(b, l->has_pid, (uint64_t)l->pid);
	buf_adds(b, ",\"listener_exe\":");
	json_str(b, l->exe);
	buf_adds(b, ",\"listener_unit\":");
	json_str(b, l->unit);
	buf_adds(b, ",\"listener_user_unit\":");
	json_str(b, l->user_unit);
}

int record_format_json(const struct record *r, char **ret)
{
	const struct conn_event *ev = &r->ev;
	struct buf b = { 0 };
	struct record_parts p;
	int err;

	err = record_to_parts(r, &p);
	if (err)
		return err;
	buf_addf(&b, "{\"time\":\"%s\",\"type\":\"connection\",\"guard\":", p.time);
	json_str(&b, r->guard);
	buf_addf(&b, ",\"verdict\":\"%s\",\"protocol\":", p.verdict);
	json_str(&b, p.proto[0] ? p.proto : NULL);
	buf_addf(&b, ",\"src\":\"%s\",\"sport\":", p.src);
	json_u64(&b, !ev->ports_unknown, ev->sport);
	buf_addf(&b, ",\"dst\":\"%s\",\"dport\":", p.dst);
	json_u64(&b, !ev->ports_unknown, ev->dport);
	buf_adds(&b, ",\"uid\":");
	json_u64(&b, ev->has_uid, ev->uid);
	buf_adds(&b, ",\"user\":");
	json_str(&b, r->user);
	buf_adds(&b, ",\"gid\":");
	json_u64(&b, ev->has_gid, ev->gid);
	buf_adds(&b, ",\"group\":");
	json_str(&b, r->group);
	buf_adds(&b, ",\"pid\":");
	json_u64(&b, r->has_pid, (uint64_t)r->pid);
	buf_adds(&b, ",\"exe\":");
	json_str(&b, r->exe);
	buf_adds(&b, ",\"cmdline\":");
	json_argv(&b, r->argv);
	buf_adds(&b, ",\"cgroup\":");
	json_str(&b, r->cgroup);
	buf_adds(&b, ",\"unit\":");
	json_str(&b, r->unit);
	buf_adds(&b, ",\"user_unit\":");
	json_str(&b, r->user_unit);
	if (r->has_granted_by) {
		buf_adds(&b, ",\"granted_by\":");
		json_str(&b, r->granted_by);
		buf_addf(&b, ",\"granted_by_uid\":%" PRIu32, r->granted_by_uid);
	}
	json_listener(&b, &r->listener);
	buf_addc(&b, '}');
	return buf_finish(&b, ret);
}

/* "uid=1001(alice)", "uid=1001" without a name, "uid=-" when not known. */
static void text_id(struct buf *b, const char *key, bool known, uint32_t id, const char *name)
{
	if (!known) {
		buf_addf(b, " %s=-", key);
		return;
	}
	buf_addf(b, " %s=%" PRIu32, key, id);
	if (name) {
		buf_addc(b, '(');
		record_text_value(b, name);
		buf_addc(b, ')');
	}
}

/* " listener=none", or " listener=UID(USER) listener_pid=... listener_exe=...
 * listener_unit=..." (listener_user_unit only when set); nothing when not looked up. */
static void text_listener(struct buf *b, const struct record_listener *l)
{
	if (l->state == RECORD_LISTENER_UNKNOWN)
		return;
	if (l->state == RECORD_LISTENER_NONE) {
		buf_adds(b, " listener=none");
		return;
	}
	text_id(b, "listener", true, l->uid, l->user);
	if (l->has_pid)
		buf_addf(b, " listener_pid=%d", (int)l->pid);
	else
		buf_adds(b, " listener_pid=-");
	buf_adds(b, " listener_exe=");
	record_text_value(b, l->exe);
	buf_adds(b, " listener_unit=");
	record_text_value(b, l->unit);
	if (l->user_unit) {
		buf_adds(b, " listener_user_unit=");
		record_text_value(b, l->user_unit);
	}
}

/* The text line; journald stamps entries itself, so MESSAGE= leaves the time out. */
void record_text_line(struct buf *b, const struct record *r, const struct record_parts *p,
		      bool with_time)
{
	const struct conn_event *ev = &r->ev;
	const char *lb = p->v6 ? "[" : "", *rb = p->v6 ? "]" : "";

	if (with_time)
		buf_addf(b, "%s ", p->time);
	buf_addf(b, "%s ", p->verdict);
	record_text_value(b, r->guard);
	buf_addf(b, " %s", p->proto[0] ? p->proto : "-");
	if (ev->ports_unknown)
		buf_addf(b, " %s%s%s:- -> %s%s%s:-", lb, p->src, rb, lb, p->dst, rb);
	else
		buf_addf(b, " %s%s%s:%u -> %s%s%s:%u", lb, p->src, rb, ev->sport, lb, p->dst, rb,
			 ev->dport);
	text_id(b, "uid", ev->has_uid, ev->uid, r->user);
	text_id(b, "gid", ev->has_gid, ev->gid, r->group);
	if (r->has_pid)
		buf_addf(b, " pid=%d", (int)r->pid);
	else
		buf_adds(b, " pid=-");
	buf_adds(b, " exe=");
	record_text_value(b, r->exe);
	buf_adds(b, " unit=");
	record_text_value(b, r->unit);
	/* only below a user manager: lines of other records keep their shape */
	if (r->user_unit) {
		buf_adds(b, " user_unit=");
		record_text_value(b, r->user_unit);
	}
	if (r->has_granted_by)
		text_id(b, "granted_by", true, r->granted_by_uid, r->granted_by);
	text_listener(b, &r->listener);
}

int record_format_text(const struct record *r, char **ret)
{
	struct buf b = { 0 };
	struct record_parts p;
	int err;

	err = record_to_parts(r, &p);
	if (err)
		return err;
	record_text_line(&b, r, &p, true);
	return buf_finish(&b, ret);
}

int record_stats_format_json(const struct record_stats *s, const struct timespec *now, char **ret)
{
	char time[RECORD_TIME_LEN];
	struct buf b = { 0 };
	int err;

	err = format_time(now, time);
	if (err)
		return err;
	buf_addf(&b,
		 "{\"time\":\"%s\",\"type\":\"stats\",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
		 ",\"enobufs\":%" PRIu64 ",\"rate_limited\":%" PRIu64 ",\"unmatched\":%" PRIu64
		 ",\"identity_skipped\":%" PRIu64 ",\"ports_unknown\":%" PRIu64
		 ",\"journal_unsent\":%" PRIu64 ",\"queued\":%" PRIu64 ",\"queue_allowed\":%" PRIu64
		 ",\"receivers\":%" PRIu64 ",\"cgroups\":%" PRIu64 "}",
		 time, s->received, s->lost, s->enobufs, s->rate_limited, s->unmatched,
		 s->identity_skipped, s->ports_unknown, s->journal_unsent, s->queued,
		 s->queue_allowed, s->receivers, s->cgroups);
	return buf_finish(&b, ret);
}

void record_text_stats(struct buf *b, const struct record_stats *s)
{
	buf_addf(b,
		 "stats received=%" PRIu64 " lost=%" PRIu64 " enobufs=%" PRIu64
		 " rate_limited=%" PRIu64 " unmatched=%" PRIu64 " identity_skipped=%" PRIu64
		 " ports_unknown=%" PRIu64 " journal_unsent=%" PRIu64 " queued=%" PRIu64
		 " queue_allowed=%" PRIu64 " receivers=%" PRIu64 " cgroups=%" PRIu64,
		 s->received, s->lost, s->enobufs, s->rate_limited, s->unmatched,
		 s->identity_skipped, s->ports_unknown, s->journal_unsent, s->queued,
		 s->queue_allowed, s->receivers, s->cgroups);
}

int record_stats_format_text(const struct record_stats *s, const struct timespec *now, char **ret)
{
	char time[RECORD_TIME_LEN];
	struct buf b = { 0 };
	int err;

	err = format_time(now, time);
	if (err)
		return err;
	buf_addf(&b, "%s ", time);
	record_text_stats(&b, s);
	return buf_finish(&b, ret);
}
