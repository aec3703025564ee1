// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Reading records back: one JSON object per line, either as `loguard run` writes them or as
 * `journalctl -o json` prints journal entries. The input is untrusted (a log file anyone could
 * have appended to, a journal export with entries of every user): every line is parsed in
 * full with a small strict JSON reader (RFC 8259, nesting limited, no NULs in strings,
 * duplicate keys refused so that two readers cannot disagree on a value), and a bad line is a
 * located warning, never a crash and never half a record.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "records_read.h"

#define JSON_MAX_DEPTH 16

enum jtype { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

/* A top-level member: nested values are checked and skipped, only scalars are kept. */
struct jfield {
	char *key;
	enum jtype type;
	char *str; /* J_STRING: decoded; J_NUMBER: as written */
};

/* The parse of one line; err/err_pos say what went wrong where (0-based byte offset). */
struct jp {
	const char *s;
	size_t len, pos;
	const char *err;
	size_t err_pos;
	struct jfield *f;
	size_t n_f, cap_f;
};

static int jp_fail(struct jp *p, const char *msg)
{
	if (!p->err) {
		p->err = msg;
		p->err_pos = p->pos;
	}
	return -EINVAL;
}

static void jp_ws(struct jp *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
		p->pos++;
}

static bool is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629), 0 if there is none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (!is_cont(s[i]))
			return 0;
	return need;
}

static int hex4(struct jp *p, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++, p->pos++) {
		char c = p->pos < p->len ? p->s[p->pos] : 0;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return jp_fail(p, "bad \\u escape (expected 4 hex digits)");
	}
	*ret = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* \uXXXX (the "\u" already read), with a surrogate pair as one code point. */
static int json_unicode(struct jp *p, unsigned *ret)
{
	unsigned cp, lo;
	int r;

	r = hex4(p, &cp);
	if (r)
		return r;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jp_fail(p, "lone low surrogate in \\u escape");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
			return jp_fail(p, "high surrogate without its low half");
		p->pos += 2;
		r = hex4(p, &lo);
		if (r)
			return r;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail(p, "high surrogate without its low half");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return jp_fail(p, "NUL character in string");
	*ret = cp;
	return 0;
}

/* A string at p->pos (on its '"'); the decoded text in *ret (NULL: only check it). */
static int json_string(struct jp *p, char **ret)
{
	/* Decoded text is never longer than the escaped one. */
	char *o = NULL;
	size_t n = 0, esc;
	int r = -EINVAL;

	p->pos++;
	if (ret) {
		o = malloc(p->len - p->pos + 1);
		if (!o)
			return -ENOMEM;
	}
	for (;;) {
		unsigned char c;
		size_t u;

		if (p->pos >= p->len) {
			r = jp_fail(p, "unterminated string");
			goto out;
		}
		c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			r = jp_fail(p, c ? "control character in string" : "NUL byte in string");
			goto out;
		}
		if (c != '\\') {
			u = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
			if (!u) {
				r = jp_fail(p, "invalid UTF-8 in string");
				goto out;
			}
			if (o)
				memcpy(o + n, p->s + p->pos, u);
			n += u;
			p->pos += u;
			continue;
		}
		esc = p->pos;
		p->pos++;
		c = p->pos < p->len ? (unsigned char)p->s[p->pos] : 0;
		p->pos++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			break;
		case 'b':
			c = '\b';
			break;
		case 'f':
			c = '\f';
			break;
		case 'n':
			c = '\n';
			break;
		case 'r':
			c = '\r';
			break;
		case 't':
			c = '\t';
			break;
		case 'u': {
			unsigned cp;
			char tmp[4];

			r = json_unicode(p, &cp);
			if (r) {
				/* point at the escape, not at where decoding it stopped */
				p->err_pos = esc;
				goto out;
			}
			u = put_utf8(tmp, cp);
			if (o)
				memcpy(o + n, tmp, u);
			n += u;
			continue;
		}
		default:
			p->pos = esc;
			r = jp_fail(p, "unknown escape in string");
			goto out;
		}
		if (o)
			o[n] = (char)c;
		n++;
	}
	if (o) {
		o[n] = '\0';
		*ret = o;
		o = NULL;
	}
	r = 0;
out:
	free(o);
	return r;
}

/* A number as RFC 8259 writes it; *ret = a copy of its text (NULL: only check it). */
static int json_number(struct jp *p, char **ret)
{
	size_t start = p->pos;

#define DIGIT() (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (!DIGIT())
		return jp_fail(p, "invalid number");
	if (p->s[p->pos] == '0')
		p->pos++;
	else
		while (DIGIT())
			p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (!DIGIT())
			return jp_fail(p, "invalid number");
		while (DIGIT())
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!DIGIT())
			return jp_fail(p, "invalid number");
		while (DIGIT())
			p->pos++;
	}
#undef DIGIT
	if (ret) {
		*ret = strndup(p->s + start, p->pos - start);
		if (!*ret)
			return -ENOMEM;
	}
	return 0;
}

/* Skip blanks, then take the character c if it is next. */
static bool jp_take(struct jp *p, char c)
{
	jp_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != c)
		return false;
	p->pos++;
	return true;
}

/* After a member or element: 1 if a ',' announces another, 0 at close, else -EINVAL. */
static int jp_after(struct jp *p, char close)
{
	if (jp_take(p, ','))
		return 1;
	if (jp_take(p, close))
		return 0;
	return jp_fail(p, close == ']' ? "',' or ']' expected" : "',' or '}' expected");
}

static bool jp_word(struct jp *p, const char *w)
{
	size_t n = strlen(w);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n))
		return false;
	p->pos += n;
	return true;
}

/* Any value; for scalars *ret_type and *ret_str (when ret_str is not NULL) say what it was. */
static int json_value(struct jp *p, unsigned depth, enum jtype *ret_type, char **ret_str)
{
	char c;
	int r;

	jp_ws(p);
	if (p->pos >= p->len)
		return jp_fail(p, "value expected");
	c = p->s[p->pos];
	if (c == '"') {
		*ret_type = J_STRING;
		return json_string(p, ret_str);
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		*ret_type = J_NUMBER;
		return json_number(p, ret_str);
	}
	if (jp_word(p, "null")) {
		*ret_type = J_NULL;
		return 0;
	}
	if (jp_word(p, "true") || jp_word(p, "false")) {
		*ret_type = J_BOOL;
		return 0;
	}
	if (c != '[' && c != '{')
		return jp_fail(p, "value expected");
	if (depth >= JSON_MAX_DEPTH)
		return jp_fail(p, "nested too deeply");
	*ret_type = c == '[' ? J_ARRAY : J_OBJECT;
	p->pos++;
	if (jp_take(p, c == '[' ? ']' : '}'))
		return 0;
	for (;;) {
		enum jtype t;

		if (c == '{') {
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return jp_fail(p, "member name expected");
			r = json_string(p, NULL);
			if (r)
				return r;
			if (!jp_take(p, ':'))
				return jp_fail(p, "':' expected");
		}
		r = json_value(p, depth + 1, &t, NULL);
		if (!r)
			r = jp_after(p, c == '[' ? ']' : '}');
		if (r <= 0)
			return r;
	}
}

static struct jfield *jp_find(const struct jp *p, const char *key)
{
	for (size_t i = 0; i < p->n_f; i++)
		if (!strcmp(p->f[i].key, key))
			return &p->f[i];
	return NULL;
}

/* The top-level object: its members into p->f. */
static int json_object(struct jp *p)
{
	int r;

	if (!jp_take(p, '{'))
		return jp_fail(p, "a JSON object expected");
	if (jp_take(p, '}'))
		goto end;
	for (;;) {
		struct jfield f = { 0 };
		size_t key_pos;

		jp_ws(p);
		key_pos = p->pos;
		if (p->pos >= p->len || p->s[p->pos] != '"')
			return jp_fail(p, "member name expected");
		r = json_string(p, &f.key);
		if (r)
			return r;
		if (jp_find(p, f.key)) {
			free(f.key);
			p->pos = key_pos;
			return jp_fail(p, "duplicate member name");
		}
		r = array_grow(&p->f, &p->cap_f, p->n_f, sizeof(*p->f));
		if (r) {
			free(f.key);
			return r;
		}
		p->f[p->n_f++] = f;
		if (!jp_take(p, ':'))
			return jp_fail(p, "':' expected");
		r = json_value(p, 1, &p->f[p->n_f - 1].type, &p->f[p->n_f - 1].str);
		if (!r)
			r = jp_after(p, '}');
		if (r < 0)
			return r;
		if (r == 0)
			break;
	}
end:
	jp_ws(p);
	if (p->pos != p->len)
		return jp_fail(p, "text after the JSON object");
	return 0;
}

static void jp_free(struct jp *p)
{
	for (size_t i = 0; i < p->n_f; i++) {
		free(p->f[i].key);
		free(p->f[i].str);
	}
	free(p->f);
}

void seen_record_clear(struct seen_record *r)
{
	if (!r)
		return;
	free(r->guard);
	free(r->user);
	free(r->exe);
	free(r->cgroup);
	free(r->unit);
	memset(r, 0, sizeof(*r));
}

/* A field that must be a string (or null / absent when optional); *ret a copy or NULL. A
 * journal field too long or not text (journalctl: null, or an array of byte values) is the
 * same as absent: not known. */
static int take_str(struct jp *p, const char *key, bool required, bool journal, char **ret,
		    const char **ret_why)
{
	struct jfield *f = jp_find(p, key);

	*ret = NULL;
	if (f && f->type == J_STRING) {
		*ret = f->str;
		f->str = NULL;
		return 0;
	}
	if (required) {
		*ret_why = f ? "is not a string" : "is missing";
		return -EINVAL;
	}
	if (f && f->type != J_NULL && !(journal && f->type == J_ARRAY)) {
		*ret_why = "is not a string or null";
		return -EINVAL;
	}
	return 0;
}

/* Plain decimal digits, at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

static bool valid_time(const char *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (strlen(t) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? t[i] < '0' || t[i] > '9' : t[i] != shape[i])
			return false;
	return true;
}

/* __REALTIME_TIMESTAMP (µs since the epoch) as loguard writes times. */
static int journal_time(const char *usec, char out[SEEN_TIME_LEN])
{
	uint64_t us;
	struct tm tm;
	time_t sec;
	char tmp[96]; /* room for what the compiler cannot rule out; the range keeps it at 27 */

	if (parse_u64(usec, (uint64_t)253402300799 * 1000000, &us)) /* up to year 9999 */
		return -EINVAL;
	sec = (time_t)(us / 1000000);
	if (!gmtime_r(&sec, &tm))
		return -EINVAL;
	if (snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRIu64 "Z",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     us % 1000000) != SEEN_TIME_LEN - 1)
		return -EINVAL;
	memcpy(out, tmp, SEEN_TIME_LEN);
	return 0;
}

/* The field names of the two formats. */
struct names {
	const char *type, *guard, *verdict, *uid, *user, *exe, *cgroup, *unit;
};
static const struct names json_names = { "type", "guard", "verdict", "uid",
					 "user", "exe",	  "cgroup",  "unit" };
static const struct names journal_names = {
	"LOGUARD_TYPE", "LOGUARD_GUARD", "LOGUARD_VERDICT", "LOGUARD_UID",
	"LOGUARD_USER", "LOGUARD_EXE",	 "LOGUARD_CGROUP",  "LOGUARD_UNIT",
};

/* Fill rec from the members; *ret_why names what was wrong (key in *ret_key). */
static int fill(struct jp *p, bool journal, struct seen_record *rec, enum records_skip *ret_skip,
		const char **ret_key, const char **ret_why)
{
	const struct names *k = journal ? &journal_names : &json_names;
	struct jfield *f;
	char *s = NULL;
	uint64_t v;
	int r;

	if (journal) {
		f = jp_find(p, "_SYSTEMD_UNIT");
		if (!f || f->type != J_STRING || strcmp(f->str, RECORDS_JOURNAL_UNIT)) {
			*ret_skip = RECORDS_SKIP_FOREIGN;
			return 0;
		}
	}
	*ret_key = k->type;
	r = take_str(p, k->type, true, journal, &s, ret_why);
	if (r)
		return r;
	r = strcmp(s, "connection");
	free(s);
	if (r) {
		*ret_skip = RECORDS_SKIP_OTHER_TYPE;
		return 0;
	}
#define TAKE(field, req)                                                       \
	do {                                                                   \
		*ret_key = k->field;                                           \
		r = take_str(p, k->field, req, journal, &rec->field, ret_why); \
		if (r)                                                         \
			return r;                                              \
	} while (0)
	TAKE(guard, true);
	TAKE(user, false);
	TAKE(exe, false);
	TAKE(cgroup, false);
	TAKE(unit, false);
#undef TAKE
	*ret_key = k->verdict;
	r = take_str(p, k->verdict, true, journal, &s, ret_why);
	if (r)
		return r;
	rec->verdict = __RECORD_VERDICT_MAX;
	for (unsigned i = 0; i < __RECORD_VERDICT_MAX; i++)
		if (!strcmp(s, record_verdict_name(i)))
			rec->verdict = i;
	free(s);
	if (rec->verdict == __RECORD_VERDICT_MAX) {
		*ret_why = "is not allow, deny or would-deny";
		return -EINVAL;
	}
	*ret_key = k->uid;
	f = jp_find(p, k->uid);
	/* journald keeps every field as text; the JSON record has a number */
	if (f && f->type == (journal ? J_STRING : J_NUMBER)) {
		if (parse_u64(f->str, UINT32_MAX - 1, &v)) {
			*ret_why = "is not a uid (0-4294967294)";
			return -EINVAL;
		}
		rec->has_uid = true;
		rec->uid = (uint32_t)v;
	} else if (f && f->type != J_NULL) {
		*ret_why = journal ? "is not a string" : "is not a number or null";
		return -EINVAL;
	}
	*ret_key = journal ? "__REALTIME_TIMESTAMP" : "time";
	f = jp_find(p, *ret_key);
	if (f && f->type == J_STRING && journal) {
		if (journal_time(f->str, rec->time)) {
			*ret_why = "is not a time in microseconds";
			return -EINVAL;
		}
	} else if (f && f->type == J_STRING && valid_time(f->str)) {
		memcpy(rec->time, f->str, SEEN_TIME_LEN);
	} else if (f) {
		*ret_why =
			journal ? "is not a string" : "is not a time (YYYY-MM-DDTHH:MM:SS.ffffffZ)";
		return -EINVAL;
	}
	*ret_skip = RECORDS_SKIP_NONE;
	return 1;
}

int records_parse_line(const char *file, unsigned lineno, const char *line, size_t len,
		       struct diags *d, struct seen_record *ret, enum records_skip *ret_skip)
{
	struct jp p = { .s = line, .len = len };
	struct seen_record rec = { 0 };
	const char *key = NULL, *why = NULL;
	struct loc loc = { .file = file, .line = lineno, .col = 1 };
	bool journal = false;
	int r;

	while (len && strchr(" \t\r", line[len - 1]) && line[len - 1])
		len--;
	if (len == 0) {
		*ret_skip = RECORDS_SKIP_BLANK;
		return 0;
	}
	r = json_object(&p);
	if (r == -EINVAL) {
		loc.col = (unsigned)(p.err_pos < 65535 ? p.err_pos + 1 : 65535);
		r = diags_add(d, DIAG_WARNING, &loc, "not a record: %s", p.err) ?: -EINVAL;
		goto out;
	}
	if (r)
		goto out;
	/* journalctl -o json: every entry has a cursor; loguard's records never do. */
	journal = jp_find(&p, "__CURSOR") || jp_find(&p, "_SYSTEMD_UNIT") ||
		  jp_find(&p, "LOGUARD_TYPE");
	r = fill(&p, journal, &rec, ret_skip, &key, &why);
	if (r == -EINVAL)
		r = diags_add(d, DIAG_WARNING, &loc, "not a record: \"%s\" %s", key, why)
			    ?: -EINVAL;
	if (r == 1) {
		*ret = rec;
		memset(&rec, 0, sizeof(rec));
	}
out:
	seen_record_clear(&rec);
	jp_free(&p);
	return r;
}
