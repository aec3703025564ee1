// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for record formatting with hostile strings. The input is split at NUL bytes
 * into the strings a user can choose or influence: guard, user, group, exe, cgroup, unit,
 * user_unit, then the command line's arguments; a missing field is unknown (NULL). Each record
 * is formatted as JSON, as text and as a journald entry (through a socketpair), and checked:
 *
 * - every output is one line of valid UTF-8 without controls, DEL, or any code point that a
 *   terminal does not show as itself (the list below is the test's own, from the issue);
 * - JSON: parses (a strict parser here) into an object whose strings are the fields, equal to
 *   the input with each byte of invalid UTF-8 replaced by U+FFFD;
 * - text: the fields after the addresses split unambiguously into key=value (bare or quoted),
 *   in the documented order, and each decodes back to exactly the input bytes;
 * - journald: KEY=VALUE lines, values unquoted-escaped, decoding back to the input bytes;
 *   MESSAGE is the text line without its time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "journal.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define check(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* The fake journald: one socketpair for the whole run (syscalls are most of a run's time). */
static int journal_pair[2] = { -1, -1 };
static bool journal_stuck; /* journal_send_record()'s state for journal_pair[0] */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, journal_pair) == 0);
	return 0;
}

/* A growing byte string. */
struct str {
	char *p;
	size_t len, cap;
};

static void str_add(struct str *s, const void *d, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->p = realloc(s->p, s->cap);
		check(s->p);
	}
	memcpy(s->p + s->len, d, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static void str_cp(struct str *s, uint32_t cp)
{
	uint8_t b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xc0 | cp >> 6);
		b[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xe0 | cp >> 12);
		b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | cp >> 18);
		b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	str_add(s, b, n);
}

/* Decode one UTF-8 character at s[0..n): its length (0: invalid) and code point. Written from
 * RFC 3629's syntax (shortest form, no surrogates, at most U+10FFFF). */
static size_t u8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc0 && s[0] < 0xe0) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] < 0xf0) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] < 0xf8) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* What must never appear raw in any output (issue 9.8): controls, DEL, C1, bidi controls,
 * line/paragraph separators, zero-width and invisible characters, non-ASCII spaces. */
static bool forbidden(uint32_t c)
{
	static const uint32_t ranges[][2] = {
		{ 0x00, 0x1f },	      { 0x7f, 0xa0 },	  { 0xad, 0xad },     { 0x061c, 0x061c },
		{ 0x1680, 0x1680 },   { 0x180e, 0x180e }, { 0x2000, 0x200f }, { 0x2028, 0x202f },
		{ 0x205f, 0x206f },   { 0x3000, 0x3000 }, { 0xfeff, 0xfeff }, { 0xfff9, 0xfffb },
		{ 0xe0000, 0xe007f },
	};

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (c >= ranges[i][0] && c <= ranges[i][1])
			return true;
	return false;
}

/* Valid UTF-8, nothing forbidden: safe to print on one line. */
static void check_clean(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;

	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = u8_decode(p + i, n - i, &c);

		check(k > 0);
		check(!forbidden(c));
		i += k;
	}
}

/* What JSON can carry of s: each byte outside valid UTF-8 becomes U+FFFD. */
static void json_expect(struct str *out, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = u8_decode(p + i, n - i, &c);

		if (k == 0) {
			str_cp(out, 0xfffd);
			i++;
		} else {
			str_add(out, p + i, k);
			i += k;
		}
	}
	if (!out->p)
		str_add(out, "", 0);
}

/* ---- a strict JSON reader, enough for a record ---- */

/* The byte of a two-character escape \c, or -1: JSON has " \\ / b f n r t, text " \\ n r t. */
static int short_unescape(char c, bool json)
{
	switch (c) {
	case '"':
	case '\\':
		return c;
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case '/':
		return json ? '/' : -1;
	case 'b':
		return json ? '\b' : -1;
	case 'f':
		return json ? '\f' : -1;
	default:
		return -1;
	}
}

struct jp {
	const char *s;
	size_t i, n;
};

static void ws(struct jp *j)
{
	while (j->i < j->n && strchr(" \t\r\n", j->s[j->i]))
		j->i++;
}

static unsigned hex4(struct jp *j)
{
	unsigned v = 0;

	check(j->i + 4 <= j->n);
	for (int k = 0; k < 4; k++) {
		char c = j->s[j->i++];

		check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* A JSON string at j (after ws), decoded into out. */
static void jstring(struct jp *j, struct str *out)
{
	check(j->i < j->n && j->s[j->i] == '"');
	j->i++;
	str_add(out, "", 0);
	for (;;) {
		unsigned char c;

		check(j->i < j->n);
		c = (unsigned char)j->s[j->i++];
		if (c == '"')
			return;
		check(c >= 0x20);
		if (c != '\\') {
			str_add(out, &c, 1);
			continue;
		}
		check(j->i < j->n);
		c = (unsigned char)j->s[j->i++];
		if (short_unescape((char)c, true) >= 0) {
			char b = (char)short_unescape((char)c, true);

			str_add(out, &b, 1);
			continue;
		}
		switch (c) {
		case 'u': {
			unsigned u = hex4(j);

			if (u >= 0xd800 && u < 0xdc00) {
				unsigned lo;

				check(j->i + 2 <= j->n && j->s[j->i] == '\\' &&
				      j->s[j->i + 1] == 'u');
				j->i += 2;
				lo = hex4(j);
				check(lo >= 0xdc00 && lo < 0xe000);
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			} else {
				check(u < 0xdc00 || u >= 0xe000);
			}
			str_cp(out, u);
			break;
		}
		default:
			check(0);
		}
	}
}

/* Skip a JSON number, literal or array of strings; with out, the strings of the array (joined
 * with NUL) or the one string. Returns 0 for null. */
static int jvalue(struct jp *j, struct str *out)
{
	ws(j);
	check(j->i < j->n);
	if (j->s[j->i] == '"') {
		struct str tmp = { 0 };

		jstring(j, out ? out : &tmp);
		free(tmp.p);
		return 1;
	}
	if (j->s[j->i] == '[') {
		j->i++;
		ws(j);
		if (j->i < j->n && j->s[j->i] == ']') {
			j->i++;
			return 2;
		}
		for (;;) {
			jvalue(j, out);
			if (out)
				str_add(out, "", 1);
			ws(j);
			check(j->i < j->n);
			if (j->s[j->i++] == ']')
				return 2;
			check(j->s[j->i - 1] == ',');
		}
	}
	if (!strncmp(j->s + j->i, "null", 4)) {
		j->i += 4;
		return 0;
	}
	check(j->s[j->i] == '-' || (j->s[j->i] >= '0' && j->s[j->i] <= '9'));
	while (j->i < j->n && strchr("-+.eE0123456789", j->s[j->i]))
		j->i++;
	return 3;
}

/* The value of key in the record object line (decoded); 0 if null. */
static int json_get(const char *line, const char *key, struct str *out)
{
	struct jp j = { line, 0, strlen(line) };
	int found = -1;

	ws(&j);
	check(j.s[j.i++] == '{');
	for (;;) {
		struct str k = { 0 };
		int r;

		ws(&j);
		jstring(&j, &k);
		ws(&j);
		check(j.s[j.i++] == ':');
		if (!strcmp(k.p, key)) {
			check(found < 0); /* a key once */
			r = jvalue(&j, out);
			found = r;
		} else {
			jvalue(&j, NULL);
		}
		free(k.p);
		ws(&j);
		check(j.i < j.n);
		if (j.s[j.i++] == '}')
			break;
		check(j.s[j.i - 1] == ',');
	}
	ws(&j);
	check(j.i == j.n);
	check(found >= 0);
	return found;
}

static void check_json_str(const char *line, const char *key, const char *want)
{
	struct str got = { 0 }, exp = { 0 };
	int r = json_get(line, key, &got);

	if (!want) {
		check(r == 0);
	} else {
		check(r == 1);
		json_expect(&exp, want);
		check(got.len == exp.len && !memcmp(got.p, exp.p, got.len));
	}
	free(got.p);
	free(exp.p);
}

/* ---- text ---- */

/* Exactly k hex digits at s (within n bytes). */
static unsigned hexn(const char *s, size_t n, size_t k)
{
	unsigned v = 0;

	check(k <= n);
	for (size_t i = 0; i < k; i++) {
		char c = s[i];

		check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	return v;
}

/* Decode an escaped value (quoted: between the quotes) into out. */
static void unescape(const char *s, size_t n, bool quoted, struct str *out)
{
	str_add(out, "", 0);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		uint8_t b;

		if (c != '\\') {
			check(c != '"' || !quoted);
			str_add(out, &c, 1);
			continue;
		}
		check(++i < n);
		check(s[i] != '"' || quoted);
		if (short_unescape(s[i], false) >= 0) {
			char e = (char)short_unescape(s[i], false);

			str_add(out, &e, 1);
			continue;
		}
		switch (s[i]) {
		case 'x':
			b = (uint8_t)hexn(s + i + 1, n - i - 1, 2);
			str_add(out, &b, 1);
			i += 2;
			break;
		case 'u':
			str_cp(out, hexn(s + i + 1, n - i - 1, 4));
			i += 4;
			break;
		case 'U':
			str_cp(out, hexn(s + i + 1, n - i - 1, 8));
			i += 8;
			break;
		default:
			check(0);
		}
	}
}

/* Read one value at *pp: "-" (unknown, returns 0), a bare value or a quoted one, decoded into
 * out; stops at a space, ')' after a bare name, or the end. */
static int text_value(const char **pp, struct str *out, const char *stop)
{
	const char *p = *pp, *e;

	if (*p == '"') {
		for (e = p + 1; *e && *e != '"'; e++)
			if (*e == '\\')
				check(*++e);
		check(*e == '"');
		unescape(p + 1, (size_t)(e - p - 1), true, out);
		*pp = e + 1;
		return 1;
	}
	e = p + strcspn(p, stop);
	check(e > p);
	*pp = e;
	if (e - p == 1 && *p == '-')
		return 0;
	/* bare: exactly its bytes, nothing that would need quoting */
	for (const char *q = p; q < e; q++)
		check(!strchr("=\"()\\", *q));
	str_add(out, p, (size_t)(e - p));
	return 1;
}

static void check_same(int known, const struct str *got, const char *want)
{
	check(!!known == !!want);
	if (want)
		check(got->len == strlen(want) && !memcmp(got->p, want, got->len));
}

/* "uid=N(name)" / "uid=N" / "uid=-". */
static void text_id(const char **pp, const char *key, const char *name)
{
	const char *p = *pp;
	struct str got = { 0 };
	size_t kl = strlen(key);

	check(!strncmp(p, key, kl) && p[kl] == '=');
	p += kl + 1;
	if (*p == '-') {
		p++;
	} else {
		check(*p >= '0' && *p <= '9');
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '(') {
			p++;
			check(text_value(&p, &got, " ()") == 1);
			check(*p++ == ')');
			check_same(1, &got, name);
		}
	}
	check(*p == ' ' || !*p);
	*pp = *p ? p + 1 : p;
	free(got.p);
}

static void text_kv(const char **pp, const char *key, const char *want)
{
	struct str got = { 0 };
	size_t kl = strlen(key);
	int known;

	check(!strncmp(*pp, key, kl) && (*pp)[kl] == '=');
	*pp += kl + 1;
	known = text_value(pp, &got, " ");
	check_same(known, &got, want);
	check(**pp == ' ' || !**pp);
	if (**pp)
		(*pp)++;
	free(got.p);
}

/* The text line (with_time: as record_format_text() writes it, else MESSAGE=). */
static void check_text(const char *line, const struct record *r, bool with_time)
{
	const char *p = line;
	struct str got = { 0 };
	int known;

	check_clean(line, strlen(line));
	if (with_time) {
		p = strchr(p, ' ');
		check(p);
		p++;
	}
	p = strchr(p, ' '); /* verdict */
	check(p);
	p++;
	known = text_value(&p, &got, " "); /* guard */
	check_same(known, &got, r->guard);
	free(got.p);
	check(*p == ' ');
	/* protocol, src, "->", dst: ours, no spaces inside */
	for (int i = 0; i < 4; i++) {
		p = strchr(p + 1, ' ');
		check(p);
	}
	p++;
	text_id(&p, "uid", r->user);
	text_id(&p, "gid", r->group);
	check(!strncmp(p, "pid=", 4));
	p = strchr(p, ' ');
	check(p);
	p++;
	text_kv(&p, "exe", r->exe);
	text_kv(&p, "unit", r->unit);
	if (r->user_unit)
		text_kv(&p, "user_unit", r->user_unit);
	check(!*p);
}

/* ---- journald ---- */

static void check_journal(const char *d, size_t n, const struct record *r, const char *text)
{
	const char *want[][2] = {
		{ "LOGUARD_GUARD", r->guard },	       { "LOGUARD_USER", r->user },
		{ "LOGUARD_GROUP", r->group },	       { "LOGUARD_EXE", r->exe },
		{ "LOGUARD_CGROUP", r->cgroup },       { "LOGUARD_UNIT", r->unit },
		{ "LOGUARD_USER_UNIT", r->user_unit },
	};
	bool seen[sizeof(want) / sizeof(want[0])] = { false };
	bool message = false;

	for (size_t i = 0; i < n;) {
		const char *nl = memchr(d + i, '\n', n - i), *eq;
		size_t len;

		check(nl); /* no binary fields: every value is one escaped line */
		eq = memchr(d + i, '=', (size_t)(nl - d - i));
		check(eq);
		len = (size_t)(nl - eq - 1);
		check_clean(eq + 1, len);
		if (!strncmp(d + i, "MESSAGE=", 8)) {
			const char *t = strchr(text, ' ') + 1; /* without the time */

			check(len == strlen(t) && !memcmp(eq + 1, t, len));
			message = true;
		}
		for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
			size_t kl = strlen(want[k][0]);
			struct str got = { 0 };

			if ((size_t)(eq - d - i) != kl || memcmp(d + i, want[k][0], kl))
				continue;
			check(!seen[k] && want[k][1]);
			seen[k] = true;
			unescape(eq + 1, len, false, &got);
			check_same(1, &got, want[k][1]);
			free(got.p);
		}
		i = (size_t)(nl - d) + 1;
	}
	check(message);
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
		check(seen[k] == !!want[k][1]);
}

/* ---- the harness ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum { N_FIELDS = 7, MAX_ARGS = 8 };
	char *copy, *fields[N_FIELDS] = { NULL }, *args[MAX_ARGS + 1] = { NULL };
	char *json = NULL, *text = NULL, buf[1 << 17];
	struct record r = { 0 };
	size_t nf = 0, na = 0;
	ssize_t n;

	if (size > 8192)
		return 0;
	copy = malloc(size + 1);
	check(copy);
	memcpy(copy, data, size);
	copy[size] = '\0';
	/* fields split at NUL; an empty field 0 byte 0x01 alone means unknown */
	for (char *p = copy; p <= copy + size && nf + na < N_FIELDS + MAX_ARGS;) {
		char *f = p;
		size_t l = strlen(p);

		if (nf < N_FIELDS)
			fields[nf++] = (l == 1 && f[0] == 1) ? NULL : f;
		else
			args[na++] = f;
		p += l + 1;
	}
	r.ev.time = (struct timespec){ 1795669651, 123456789 };
	r.ev.verdict = (enum record_verdict)(size % __RECORD_VERDICT_MAX);
	r.ev.proto = IPPROTO_TCP;
	r.ev.family = size & 1 ? AF_INET6 : AF_INET;
	r.ev.src.s6_addr[0] = r.ev.dst.s6_addr[0] = 127;
	r.ev.dst.s6_addr[15] = 1;
	r.ev.sport = (uint16_t)size;
	r.ev.dport = 62893;
	r.ev.ports_unknown = size & 2;
	r.ev.has_uid = r.ev.has_gid = true;
	r.ev.uid = r.ev.gid = 1002;
	r.guard = fields[0];
	r.user = fields[1];
	r.group = fields[2];
	r.exe = fields[3];
	r.cgroup = fields[4];
	r.unit = fields[5];
	r.user_unit = fields[6];
	r.argv = na ? args : NULL;

	check(record_format_json(&r, &json) == 0);
	check(!strchr(json, '\n'));
	check_clean(json, strlen(json));
	check_json_str(json, "guard", r.guard);
	check_json_str(json, "user", r.user);
	check_json_str(json, "group", r.group);
	check_json_str(json, "exe", r.exe);
	check_json_str(json, "cgroup", r.cgroup);
	check_json_str(json, "unit", r.unit);
	check_json_str(json, "user_unit", r.user_unit);
	if (r.argv) {
		struct str got = { 0 }, exp = { 0 };

		check(json_get(json, "cmdline", &got) == 2);
		for (size_t i = 0; i < na; i++) {
			json_expect(&exp, args[i]);
			str_add(&exp, "", 1);
		}
		check(got.len == exp.len && !memcmp(got.p, exp.p, got.len));
		free(got.p);
		free(exp.p);
	}

	check(record_format_text(&r, &text) == 0);
	check(!strchr(text, '\n'));
	check_text(text, &r, true);

	check(journal_send_record(journal_pair[0], &r, &journal_stuck) == 0);
	n = recv(journal_pair[1], buf, sizeof(buf), MSG_DONTWAIT);
	check(n > 0);
	check_journal(buf, (size_t)n, &r, text);

	free(json);
	free(text);
	free(copy);
	return 0;
}
