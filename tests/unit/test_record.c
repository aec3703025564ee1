// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Record formats: exact JSON and text for full, unknown-only, IPv6 and hostile records; the
 * JSON is also checked by an independent parser (python3's json); and the journald native
 * datagrams as a fake journald receives them, parsed back field by field (text and binary
 * fields, and the sealed-memfd path for entries too big for a datagram).
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "record.h"

#define TIME_SEC  1795669651 /* 2026-11-26T05:07:31Z */
#define TIME_NSEC 123456789

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* A NULL-terminated malloc()ed argv of n strings, as enrich builds it. */
static char **xargv(size_t n, ...)
{
	char **v = calloc(n + 1, sizeof(*v));
	va_list ap;

	assert_non_null(v);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		v[i] = xstrdup(va_arg(ap, const char *));
	va_end(ap);
	return v;
}

static void v4(struct in6_addr *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
	memset(a, 0, sizeof(*a));
	a->s6_addr[0] = b0;
	a->s6_addr[1] = b1;
	a->s6_addr[2] = b2;
	a->s6_addr[3] = b3;
}

/* The listener part of a record whose listener was not looked up. */
#define NO_LISTENER                                                                          \
	",\"listening\":null,\"listener_uid\":null,\"listener_user\":null,"                     \
	"\"listener_pid\":null,\"listener_exe\":null,\"listener_unit\":null,"                   \
	"\"listener_user_unit\":null"

/* Only what NFLOG gives for every packet: everything else unknown. */
static void record_minimal(struct record *r)
{
	memset(r, 0, sizeof(*r));
	r->ev.time = (struct timespec){ TIME_SEC, TIME_NSEC };
	r->ev.verdict = RECORD_WOULD_DENY;
	r->ev.proto = IPPROTO_UDP;
	r->ev.family = AF_INET;
	v4(&r->ev.src, 127, 0, 0, 1);
	v4(&r->ev.dst, 127, 0, 0, 1);
	r->ev.sport = 5353;
	r->ev.dport = 53;
}

/* The example record of the format description. */
static void record_full(struct record *r)
{
	record_minimal(r);
	r->ev.proto = IPPROTO_TCP;
	r->ev.sport = 45678;
	r->ev.dport = 62893;
	r->ev.has_uid = r->ev.has_gid = true;
	r->ev.uid = r->ev.gid = 1001;
	r->guard = "jupyter";
	r->user = xstrdup("alice");
	r->group = xstrdup("alice");
	r->has_pid = true;
	r->pid = 4242;
	r->exe = xstrdup("/usr/bin/curl");
	r->argv = xargv(2, "curl", "http://127.0.0.1:62893/");
	r->has_cgroup_id = true;
	r->cgroup_id = 12345;
	r->cgroup = xstrdup("/user.slice/user-1001.slice/session-3.scope");
	r->unit = xstrdup("session-3.scope");
	r->has_inode = true;
	r->inode = 987654;
}

static const char full_json[] =
	"{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\",\"guard\":\"jupyter\","
	"\"verdict\":\"would-deny\",\"protocol\":\"tcp\",\"src\":\"127.0.0.1\",\"sport\":45678,"
	"\"dst\":\"127.0.0.1\",\"dport\":62893,\"uid\":1001,\"user\":\"alice\",\"gid\":1001,"
	"\"group\":\"alice\",\"pid\":4242,\"exe\":\"/usr/bin/curl\","
	"\"cmdline\":[\"curl\",\"http://127.0.0.1:62893/\"],"
	"\"cgroup\":\"/user.slice/user-1001.slice/"
	"session-3.scope\",\"unit\":\"session-3.scope\",\"user_unit\":null" NO_LISTENER "}";

static void assert_json(const struct record *r, const char *want)
{
	char *got = NULL;

	assert_int_equal(record_format_json(r, &got), 0);
	assert_string_equal(got, want);
	free(got);
}

static void assert_text(const struct record *r, const char *want)
{
	char *got = NULL;

	assert_int_equal(record_format_text(r, &got), 0);
	assert_string_equal(got, want);
	free(got);
}

static void test_json_full(void **state)
{
	struct record r;

	(void)state;
	record_full(&r);
	assert_json(&r, full_json);
	record_clear(&r);
}

static void test_json_unknown(void **state)
{
	struct record r;

	(void)state;
	record_minimal(&r);
	assert_json(
		&r,
		"{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
		"\"guard\":null,\"verdict\":\"would-deny\",\"protocol\":\"udp\","
		"\"src\":\"127.0.0.1\",\"sport\":5353,\"dst\":\"127.0.0.1\",\"dport\":53,"
		"\"uid\":null,\"user\":null,\"gid\":null,\"group\":null,\"pid\":null,"
		"\"exe\":null,\"cmdline\":null,\"cgroup\":null,\"unit\":null,\"user_unit\":null" NO_LISTENER "}");
	/* a uid without a name, an empty argv (kernel thread): known, so not null */
	r.ev.has_uid = true;
	r.ev.uid = 0;
	r.argv = xargv(0);
	r.ev.verdict = RECORD_ALLOW;
	assert_json(
		&r,
		"{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
		"\"guard\":null,\"verdict\":\"allow\",\"protocol\":\"udp\","
		"\"src\":\"127.0.0.1\",\"sport\":5353,\"dst\":\"127.0.0.1\",\"dport\":53,"
		"\"uid\":0,\"user\":null,\"gid\":null,\"group\":null,\"pid\":null,"
		"\"exe\":null,\"cmdline\":[],\"cgroup\":null,\"unit\":null,\"user_unit\":null" NO_LISTENER "}");
	record_clear(&r);
}

static void test_json_ipv6(void **state)
{
	struct record r;

	(void)state;
	record_minimal(&r);
	r.ev.family = AF_INET6;
	r.ev.verdict = RECORD_DENY;
	r.ev.src = in6addr_loopback;
	inet_pton(AF_INET6, "fd00::1:2", &r.ev.dst);
	assert_json(
		&r,
		"{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
		"\"guard\":null,\"verdict\":\"deny\",\"protocol\":\"udp\","
		"\"src\":\"::1\",\"sport\":5353,\"dst\":\"fd00::1:2\",\"dport\":53,"
		"\"uid\":null,\"user\":null,\"gid\":null,\"group\":null,\"pid\":null,"
		"\"exe\":null,\"cmdline\":null,\"cgroup\":null,\"unit\":null,\"user_unit\":null" NO_LISTENER "}");
	assert_text(&r, "2026-11-26T05:07:31.123456Z deny - udp [::1]:5353 -> [fd00::1:2]:53 "
			"uid=- gid=- pid=- exe=- unit=-");

	/* a v4 client on a dual-stack socket: shown as inet_ntop shows it */
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &r.ev.src);
	r.ev.dst = r.ev.src;
	assert_json(&r, "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
			"\"guard\":null,\"verdict\":\"deny\",\"protocol\":\"udp\","
			"\"src\":\"::ffff:127.0.0.1\",\"sport\":5353,\"dst\":\"::ffff:127.0.0.1\","
			"\"dport\":53,\"uid\":null,\"user\":null,\"gid\":null,\"group\":null,"
			"\"pid\":null,\"exe\":null,\"cmdline\":null,\"cgroup\":null,\"unit\":null,"
			"\"user_unit\":null" NO_LISTENER "}");
	assert_text(&r, "2026-11-26T05:07:31.123456Z deny - udp [::ffff:127.0.0.1]:5353 -> "
			"[::ffff:127.0.0.1]:53 uid=- gid=- pid=- exe=- unit=-");
	record_clear(&r);
}

/* Hostile bytes: quote, backslash, newline, tab, CR, other C0, DEL, C1 (U+0085), valid
 * multi-byte (é € 😀), and invalid UTF-8: a stray continuation byte, 0xff, an overlong '/',
 * a UTF-16 surrogate, a code point above U+10FFFF and a sequence cut off at the end. */
#define HOSTILE                                                                            \
	"/tmp/a\"b\\c\nd\te\rf\x01g\x1f\x7fh\xc2\x85i\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" \
	"j\x80k\xffl\xc0\xafm\xed\xa0\x80n\xf4\x90\x80\x80o\xe2\x82"
#define HOSTILE_JSON                                                          \
	"/tmp/a\\\"b\\\\c\\nd\\te\\rf\\u0001g\\u001f\\u007fh\\u0085i\xc3\xa9" \
	"\xe2\x82\xac\xf0\x9f\x98\x80j\\ufffdk\\ufffdl\\ufffd\\ufffdm\\ufffd" \
	"\\ufffd\\ufffdn\\ufffd\\ufffd\\ufffd\\ufffdo\\ufffd\\ufffd"
#define HOSTILE_TEXT                                                           \
	"\"/tmp/a\\\"b\\\\c\\nd\\te\\rf\\x01g\\x1f\\x7fh\\u0085i\xc3\xa9"      \
	"\xe2\x82\xac\xf0\x9f\x98\x80j\\x80k\\xffl\\xc0\\xafm\\xed\\xa0\\x80n" \
	"\\xf4\\x90\\x80\\x80o\\xe2\\x82\""

static void test_escaping(void **state)
{
	struct record r;

	(void)state;
	record_minimal(&r);
	r.guard = "g\"1";
	r.exe = xstrdup(HOSTILE);
	r.argv = xargv(3, HOSTILE, "", "x y");
	r.ev.has_uid = true;
	r.ev.uid = 1000;
	r.user = xstrdup("ev\x1b[1mil");
	assert_json(&r, "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
			"\"guard\":\"g\\\"1\",\"verdict\":\"would-deny\",\"protocol\":\"udp\","
			"\"src\":\"127.0.0.1\",\"sport\":5353,\"dst\":\"127.0.0.1\",\"dport\":53,"
			"\"uid\":1000,\"user\":\"ev\\u001b[1mil\",\"gid\":null,\"group\":null,"
			"\"pid\":null,\"exe\":\"" HOSTILE_JSON "\",\"cmdline\":[\"" HOSTILE_JSON
			"\",\"\",\"x y\"],\"cgroup\":null,\"unit\":null,\"user_unit\":null" NO_LISTENER "}");
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny \"g\\\"1\" udp 127.0.0.1:5353 -> "
			"127.0.0.1:53 uid=1000(\"ev\\x1b[1mil\") gid=- pid=- exe=" HOSTILE_TEXT
			" unit=-");
	record_clear(&r);
}

/* Issue 9.8: a user picks the bytes of its executable's path, its command line, its cgroup
 * names (so unit names) and, through a directory service, even user names. None may add a
 * field, end the line, or reorder what a terminal shows (bidi controls). */
static void test_forgery(void **state)
{
	struct record r;

	(void)state;
	record_full(&r);
	free(r.exe);
	r.exe = xstrdup("x uid=0(root) pid=1 exe=/usr/sbin/sshd");
	free(r.user);
	r.user = xstrdup("a) pid=1 (b");
	free(r.unit);
	r.unit = xstrdup("-");
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny jupyter tcp 127.0.0.1:45678 -> "
			"127.0.0.1:62893 uid=1001(\"a) pid=1 (b\") gid=1001(alice) pid=4242 "
			"exe=\"x uid=0(root) pid=1 exe=/usr/sbin/sshd\" unit=\"-\"");
	record_clear(&r);

	/* bidi override, isolate, marks, line/paragraph separators, zero width, NBSP, BOM,
	 * a tag character, C1 CSI: escaped as code points in text and in JSON */
	record_full(&r);
	free(r.exe);
	r.exe = xstrdup("/tmp/\xe2\x80\xae"
			"hs.exe\xe2\x81\xa6x\xe2\x80\x8e\xe2\x80\x8f"
			"\xe2\x80\xa8y\xe2\x80\xa9z\xe2\x80\x8b\xc2\xa0\xef\xbb\xbf"
			"\xf3\xa0\x81\x81\xc2\x9b");
	free(r.unit);
	r.unit = xstrdup("a\xe2\x80\xaa"
			 "b.service");
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny jupyter tcp 127.0.0.1:45678 -> "
			"127.0.0.1:62893 uid=1001(alice) gid=1001(alice) pid=4242 "
			"exe=\"/tmp/\\u202ehs.exe\\u2066x\\u200e\\u200f\\u2028y\\u2029z\\u200b"
			"\\u00a0\\ufeff\\U000e0041\\u009b\" unit=\"a\\u202ab.service\"");
	assert_json(&r,
		    "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
		    "\"guard\":\"jupyter\",\"verdict\":\"would-deny\",\"protocol\":\"tcp\","
		    "\"src\":\"127.0.0.1\",\"sport\":45678,\"dst\":\"127.0.0.1\","
		    "\"dport\":62893,\"uid\":1001,\"user\":\"alice\",\"gid\":1001,"
		    "\"group\":\"alice\",\"pid\":4242,\"exe\":\"/tmp/\\u202ehs.exe\\u2066x"
		    "\\u200e\\u200f\\u2028y\\u2029z\\u200b\\u00a0\\ufeff\\udb40\\udc41\\u009b\","
		    "\"cmdline\":[\"curl\",\"http://127.0.0.1:62893/\"],"
		    "\"cgroup\":\"/user.slice/user-1001.slice/session-3.scope\","
		    "\"unit\":\"a\\u202ab.service\",\"user_unit\":null" NO_LISTENER "}");
	record_clear(&r);

	/* empty and plain values; a backslash makes a value quoted (bare values are literal) */
	record_full(&r);
	free(r.exe);
	r.exe = xstrdup("");
	free(r.unit);
	r.unit = xstrdup("C:\\x");
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny jupyter tcp 127.0.0.1:45678 -> "
			"127.0.0.1:62893 uid=1001(alice) gid=1001(alice) pid=4242 exe=\"\" "
			"unit=\"C:\\\\x\"");
	record_clear(&r);
}

/* A user's own manager names its units: they come as user_unit, below the manager's unit. */
static void test_user_unit(void **state)
{
	struct record r;

	(void)state;
	record_full(&r);
	free(r.cgroup);
	r.cgroup = xstrdup("/user.slice/user-1002.slice/user@1002.service/app.slice/sshd.service");
	free(r.unit);
	r.unit = xstrdup("user@1002.service");
	r.user_unit = xstrdup("sshd.service");
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny jupyter tcp 127.0.0.1:45678 -> "
			"127.0.0.1:62893 uid=1001(alice) gid=1001(alice) pid=4242 "
			"exe=/usr/bin/curl unit=user@1002.service user_unit=sshd.service");
	assert_json(&r, "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
			"\"guard\":\"jupyter\",\"verdict\":\"would-deny\",\"protocol\":\"tcp\","
			"\"src\":\"127.0.0.1\",\"sport\":45678,\"dst\":\"127.0.0.1\","
			"\"dport\":62893,\"uid\":1001,\"user\":\"alice\",\"gid\":1001,"
			"\"group\":\"alice\",\"pid\":4242,\"exe\":\"/usr/bin/curl\","
			"\"cmdline\":[\"curl\",\"http://127.0.0.1:62893/\"],\"cgroup\":"
			"\"/user.slice/user-1002.slice/user@1002.service/app.slice/sshd.service\","
			"\"unit\":\"user@1002.service\",\"user_unit\":\"sshd.service\"" NO_LISTENER "}");
	record_clear(&r);
}

/* Ports beyond what the kernel copied (extension headers): a record, with ports and, when the
 * transport header was not reached, the protocol unknown. */
static void test_ports_unknown(void **state)
{
	struct record r;

	(void)state;
	record_minimal(&r);
	r.ev.family = AF_INET6;
	r.ev.src = r.ev.dst = in6addr_loopback;
	r.ev.verdict = RECORD_DENY;
	r.ev.proto = 0;
	r.ev.sport = r.ev.dport = 0;
	r.ev.ports_unknown = true;
	r.ev.has_uid = true;
	r.ev.uid = 1002;
	assert_json(&r, "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
			"\"guard\":null,\"verdict\":\"deny\",\"protocol\":null,"
			"\"src\":\"::1\",\"sport\":null,\"dst\":\"::1\",\"dport\":null,"
			"\"uid\":1002,\"user\":null,\"gid\":null,\"group\":null,\"pid\":null,"
			"\"exe\":null,\"cmdline\":null,\"cgroup\":null,\"unit\":null,"
			"\"user_unit\":null" NO_LISTENER "}");
	assert_text(&r, "2026-11-26T05:07:31.123456Z deny - - [::1]:- -> [::1]:- uid=1002 gid=- "
			"pid=- exe=- unit=-");
	r.ev.proto = IPPROTO_TCP;
	assert_text(&r, "2026-11-26T05:07:31.123456Z deny - tcp [::1]:- -> [::1]:- uid=1002 "
			"gid=- pid=- exe=- unit=-");
	record_clear(&r);
}

/* Feed lines to python3's strict JSON parser; each must be one object. Returns false when
 * python3 is not there (the test is then skipped, not passed). */
static bool python_json_lines_ok(char **lines, size_t n, int *ret_status)
{
	FILE *p = popen("python3 -c 'import json, sys\n"
			"for l in sys.stdin.buffer.read().split(b\"\\n\")[:-1]:\n"
			"    assert type(json.loads(l.decode(\"utf-8\"))) is dict\n' 2>&1",
			"w");

	if (!p)
		return false;
	for (size_t i = 0; i < n; i++) {
		fputs(lines[i], p);
		fputc('\n', p);
	}
	*ret_status = pclose(p);
	return !(WIFEXITED(*ret_status) && WEXITSTATUS(*ret_status) == 127);
}

/* Every byte value and many random byte strings in every string field: python3 must accept
 * all the output as JSON. */
static void test_json_parses(void **state)
{
	enum { N = 300 };
	char *lines[N + 2];
	unsigned seed = 1;
	struct record r;
	char all[256];
	int status = 0;

	(void)state;
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	record_full(&r);
	free(r.exe);
	r.exe = xstrdup(all);
	assert_int_equal(record_format_json(&r, &lines[0]), 0);
	free(r.exe);
	r.exe = xstrdup(HOSTILE);
	assert_int_equal(record_format_json(&r, &lines[1]), 0);
	for (int i = 0; i < N; i++) {
		char s[4][24];

		for (int k = 0; k < 4; k++) {
			size_t len = (size_t)rand_r(&seed) % (sizeof(s[k]) - 1);

			for (size_t j = 0; j < len; j++) {
				/* mostly high bytes, where UTF-8 goes wrong */
				int c = rand_r(&seed) % 4 ? 0x80 + rand_r(&seed) % 0x80
							  : 1 + rand_r(&seed) % 0x7f;
				s[k][j] = (char)c;
			}
			s[k][len] = '\0';
		}
		record_clear(&r);
		record_full(&r);
		free(r.exe);
		free(r.user);
		free(r.cgroup);
		r.exe = xstrdup(s[0]);
		r.user = xstrdup(s[1]);
		r.cgroup = xstrdup(s[2]);
		for (char **a = r.argv; *a; a++)
			free(*a);
		free(r.argv);
		r.argv = xargv(2, s[3], s[0]);
		assert_int_equal(record_format_json(&r, &lines[i + 2]), 0);
	}
	record_clear(&r);
	if (!python_json_lines_ok(lines, N + 2, &status)) {
		for (int i = 0; i < N + 2; i++)
			free(lines[i]);
		skip();
	}
	for (int i = 0; i < N + 2; i++)
		free(lines[i]);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_text(void **state)
{
	struct record r;

	(void)state;
	record_full(&r);
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny jupyter tcp 127.0.0.1:45678 -> "
			"127.0.0.1:62893 uid=1001(alice) gid=1001(alice) pid=4242 "
			"exe=/usr/bin/curl unit=session-3.scope");
	record_clear(&r);

	record_minimal(&r);
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny - udp 127.0.0.1:5353 -> "
			"127.0.0.1:53 uid=- gid=- pid=- exe=- unit=-");
	r.ev.has_gid = true;
	r.ev.gid = 100;
	r.has_pid = true;
	r.pid = 1;
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny - udp 127.0.0.1:5353 -> "
			"127.0.0.1:53 uid=- gid=100 pid=1 exe=- unit=-");
	record_clear(&r);
}

static void test_bad_records(void **state)
{
	struct record r;
	char *s = (char *)"untouched";

	(void)state;
	record_minimal(&r);
	r.ev.verdict = __RECORD_VERDICT_MAX;
	assert_int_equal(record_format_json(&r, &s), -EINVAL);
	assert_int_equal(record_format_text(&r, &s), -EINVAL);
	record_minimal(&r);
	r.ev.family = AF_UNIX;
	assert_int_equal(record_format_json(&r, &s), -EAFNOSUPPORT);
	record_minimal(&r);
	r.ev.time.tv_nsec = 1000000000;
	assert_int_equal(record_format_json(&r, &s), -EINVAL);
	assert_string_equal(s, "untouched");

	/* other protocols by number, not by a guessed name */
	record_minimal(&r);
	r.ev.proto = IPPROTO_SCTP;
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny - 132 127.0.0.1:5353 -> "
			"127.0.0.1:53 uid=- gid=- pid=- exe=- unit=-");
	/* microseconds are cut, not rounded up into the next second */
	r.ev.time = (struct timespec){ TIME_SEC, 999999999 };
	assert_text(&r, "2026-11-26T05:07:31.999999Z would-deny - 132 127.0.0.1:5353 -> "
			"127.0.0.1:53 uid=- gid=- pid=- exe=- unit=-");
}

static void test_verdict_names(void **state)
{
	(void)state;
	assert_string_equal(record_verdict_name(RECORD_ALLOW), "allow");
	assert_string_equal(record_verdict_name(RECORD_DENY), "deny");
	assert_string_equal(record_verdict_name(RECORD_WOULD_DENY), "would-deny");
	assert_null(record_verdict_name(__RECORD_VERDICT_MAX));
	assert_null(record_verdict_name((enum record_verdict) - 1));
}

static void test_clear(void **state)
{
	struct record r;

	(void)state;
	record_clear(NULL);
	record_full(&r);
	record_clear(&r);
	assert_null(r.exe);
	assert_null(r.argv);
	assert_false(r.has_pid);
	record_clear(&r);
}

static const struct record_stats stats = {
	.received = 1234,
	.lost = 5,
	.enobufs = 2,
	.rate_limited = 17,
	.unmatched = UINT64_MAX,
	.identity_skipped = 3,
	.ports_unknown = 6,
	.journal_unsent = 7,
	.queued = 40,
	.queue_allowed = 30,
	.receivers = 2,
	.cgroups = 1,
};

static void test_stats(void **state)
{
	struct timespec now = { TIME_SEC, TIME_NSEC };
	char *s = NULL;

	(void)state;
	assert_int_equal(record_stats_format_json(&stats, &now, &s), 0);
	assert_string_equal(s, "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"stats\","
			       "\"received\":1234,\"lost\":5,\"enobufs\":2,\"rate_limited\":17,"
			       "\"unmatched\":18446744073709551615,\"identity_skipped\":3,"
			       "\"ports_unknown\":6,\"journal_unsent\":7,\"queued\":40,\"queue_"
			       "allowed\":30,\"receivers\":2,\"cgroups\":1}");
	free(s);
	assert_int_equal(record_stats_format_text(&stats, &now, &s), 0);
	assert_string_equal(s, "2026-11-26T05:07:31.123456Z stats received=1234 lost=5 enobufs=2 "
			       "rate_limited=17 unmatched=18446744073709551615 identity_skipped=3 "
			       "ports_unknown=6 journal_unsent=7 queued=40 queue_allowed=30 "
			       "receivers=2 cgroups=1");
	free(s);
}

/* --- a fake journald --- */

struct fake_journal {
	char dir[64];
	char path[80];
	int server; /* bound where journald's socket would be */
	int client; /* from journal_open_path() */
	bool stuck; /* journal_send_*()'s state for client */
};

static int journal_setup(void **state)
{
	struct fake_journal *j = calloc(1, sizeof(*j));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rcvbuf = 4 << 20;

	assert_non_null(j);
	strcpy(j->dir, "/tmp/loguard-journal.XXXXXX");
	assert_non_null(mkdtemp(j->dir));
	snprintf(j->path, sizeof(j->path), "%s/socket", j->dir);
	strcpy(sa.sun_path, j->path);
	j->server = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(j->server >= 0);
	assert_int_equal(bind(j->server, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(j->server, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	assert_int_equal(journal_open_path(j->path, &j->client), 0);
	*state = j;
	return 0;
}

static int journal_teardown(void **state)
{
	struct fake_journal *j = *state;

	close(j->client);
	close(j->server);
	unlink(j->path);
	rmdir(j->dir);
	free(j);
	return 0;
}

struct jfield {
	char key[64];
	const char *val;
	size_t len;
	bool binary;
};

/* One journal entry as journald would parse it. */
struct jentry {
	char *data;
	size_t len;
	bool memfd; /* came as a sealed memfd, not inline */
	struct jfield f[64];
	size_t n;
};

/* Parse KEY=value\n and KEY\n<le64><value>\n fields; any malformation fails the test. */
static void jentry_parse(struct jentry *e)
{
	size_t off = 0;

	e->n = 0;
	while (off < e->len) {
		struct jfield *f = &e->f[e->n++];
		size_t k = off;

		assert_true(e->n <= 64);
		while (k < e->len && e->data[k] != '=' && e->data[k] != '\n') {
			char c = e->data[k];

			/* journald's field name rules */
			assert_true((c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9'));
			k++;
		}
		assert_true(k < e->len);
		assert_true(k > off && k - off < sizeof(f->key));
		memcpy(f->key, e->data + off, k - off);
		f->key[k - off] = '\0';
		if (e->data[k] == '=') {
			const char *nl = memchr(e->data + k + 1, '\n', e->len - k - 1);

			assert_non_null(nl);
			f->val = e->data + k + 1;
			f->len = (size_t)(nl - f->val);
			f->binary = false;
			off = (size_t)(nl - e->data) + 1;
		} else {
			uint64_t le;

			assert_true(e->len - k - 1 >= sizeof(le));
			memcpy(&le, e->data + k + 1, sizeof(le));
			f->len = le64toh(le);
			f->val = e->data + k + 1 + sizeof(le);
			assert_true(f->len < e->len - (k + 1 + sizeof(le)));
			assert_int_equal(f->val[f->len], '\n');
			f->binary = true;
			off = (size_t)(f->val - e->data) + f->len + 1;
		}
	}
}

static const struct jfield *jget(const struct jentry *e, const char *key)
{
	const struct jfield *found = NULL;

	for (size_t i = 0; i < e->n; i++) {
		if (!strcmp(e->f[i].key, key)) {
			assert_null(found); /* each field once */
			found = &e->f[i];
		}
	}
	return found;
}

static void assert_jfield(const struct jentry *e, const char *key, const char *want)
{
	const struct jfield *f = jget(e, key);

	if (!f)
		fail_msg("field %s missing", key);
	if (f->len != strlen(want) || memcmp(f->val, want, f->len))
		fail_msg("field %s: got '%.*s', want '%s'", key, (int)f->len, f->val, want);
}

/* Receive one datagram (or the memfd it carries) and parse it. */
static void journal_recv(struct fake_journal *j, struct jentry *e)
{
	size_t cap = 1 << 20;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;
	int mfd = -1;

	memset(e, 0, sizeof(*e));
	e->data = malloc(cap);
	assert_non_null(e->data);
	iov = (struct iovec){ e->data, cap };
	mh.msg_control = control.buf;
	mh.msg_controllen = sizeof(control.buf);
	n = recvmsg(j->server, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	assert_true(n >= 0);
	assert_false(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		assert_int_equal(cm->cmsg_level, SOL_SOCKET);
		assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
		assert_int_equal(cm->cmsg_len, CMSG_LEN(sizeof(int)));
		assert_int_equal(mfd, -1);
		memcpy(&mfd, CMSG_DATA(cm), sizeof(int));
	}
	if (mfd >= 0) {
		struct stat st;
		int seals = fcntl(mfd, F_GET_SEALS);

		/* journald's rule: an fd comes alone in an empty datagram, fully sealed */
		assert_int_equal(n, 0);
		assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL),
				 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
		assert_int_equal(fstat(mfd, &st), 0);
		assert_true((size_t)st.st_size <= cap);
		assert_int_equal(pread(mfd, e->data, (size_t)st.st_size, 0), st.st_size);
		close(mfd);
		e->len = (size_t)st.st_size;
		e->memfd = true;
	} else {
		e->len = (size_t)n;
	}
	jentry_parse(e);
}

/* The receiving side: who listens (JSON, text, journal), or that nothing does. */
static void test_listener(void **state)
{
	struct fake_journal *j = *state;
	struct jentry e;
	struct record r;

	record_full(&r);
	r.listener = (struct record_listener){ .state = RECORD_LISTENER_FOUND,
					       .uid = 1002,
					       .user = xstrdup("bob"),
					       .has_pid = true,
					       .pid = 77,
					       .exe = xstrdup("/usr/bin/jupyter lab"),
					       .unit = xstrdup("user@1002.service"),
					       .user_unit = xstrdup("jupyter.service") };
	assert_json(&r, "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
			"\"guard\":\"jupyter\",\"verdict\":\"would-deny\",\"protocol\":\"tcp\","
			"\"src\":\"127.0.0.1\",\"sport\":45678,\"dst\":\"127.0.0.1\",\"dport\":62893,"
			"\"uid\":1001,\"user\":\"alice\",\"gid\":1001,\"group\":\"alice\","
			"\"pid\":4242,\"exe\":\"/usr/bin/curl\","
			"\"cmdline\":[\"curl\",\"http://127.0.0.1:62893/\"],"
			"\"cgroup\":\"/user.slice/user-1001.slice/session-3.scope\","
			"\"unit\":\"session-3.scope\",\"user_unit\":null,\"listening\":true,"
			"\"listener_uid\":1002,\"listener_user\":\"bob\",\"listener_pid\":77,"
			"\"listener_exe\":\"/usr/bin/jupyter lab\","
			"\"listener_unit\":\"user@1002.service\","
			"\"listener_user_unit\":\"jupyter.service\"}");
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny jupyter tcp 127.0.0.1:45678 -> "
			"127.0.0.1:62893 uid=1001(alice) gid=1001(alice) pid=4242 "
			"exe=/usr/bin/curl unit=session-3.scope listener=1002(bob) listener_pid=77 "
			"listener_exe=\"/usr/bin/jupyter lab\" listener_unit=user@1002.service "
			"listener_user_unit=jupyter.service");
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_int_equal(e.n, 27);
	assert_jfield(&e, "LOGUARD_LISTENING", "yes");
	assert_jfield(&e, "LOGUARD_LISTENER_UID", "1002");
	assert_jfield(&e, "LOGUARD_LISTENER_USER", "bob");
	assert_jfield(&e, "LOGUARD_LISTENER_PID", "77");
	assert_jfield(&e, "LOGUARD_LISTENER_EXE", "/usr/bin/jupyter lab");
	assert_jfield(&e, "LOGUARD_LISTENER_UNIT", "user@1002.service");
	assert_jfield(&e, "LOGUARD_LISTENER_USER_UNIT", "jupyter.service");
	free(e.data);

	/* Nothing listened: said, with no listener fields. */
	record_listener_clear(&r.listener);
	r.listener.state = RECORD_LISTENER_NONE;
	assert_text(&r, "2026-11-26T05:07:31.123456Z would-deny jupyter tcp 127.0.0.1:45678 -> "
			"127.0.0.1:62893 uid=1001(alice) gid=1001(alice) pid=4242 "
			"exe=/usr/bin/curl unit=session-3.scope listener=none");
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_int_equal(e.n, 21);
	assert_jfield(&e, "LOGUARD_LISTENING", "no");
	free(e.data);
	record_clear(&r);
	record_minimal(&r);
	r.listener.state = RECORD_LISTENER_NONE;
	assert_json(&r, "{\"time\":\"2026-11-26T05:07:31.123456Z\",\"type\":\"connection\","
			"\"guard\":null,\"verdict\":\"would-deny\",\"protocol\":\"udp\","
			"\"src\":\"127.0.0.1\",\"sport\":5353,\"dst\":\"127.0.0.1\",\"dport\":53,"
			"\"uid\":null,\"user\":null,\"gid\":null,\"group\":null,\"pid\":null,"
			"\"exe\":null,\"cmdline\":null,\"cgroup\":null,\"unit\":null,"
			"\"user_unit\":null,\"listening\":false,\"listener_uid\":null,"
			"\"listener_user\":null,\"listener_pid\":null,\"listener_exe\":null,"
			"\"listener_unit\":null,\"listener_user_unit\":null}");
	record_clear(&r);
}

static void test_journal_full(void **state)
{
	struct fake_journal *j = *state;
	struct jentry e;
	struct record r;

	record_full(&r);
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_false(e.memfd);
	assert_int_equal(e.n, 20);
	assert_jfield(&e, "MESSAGE",
		      "would-deny jupyter tcp 127.0.0.1:45678 -> 127.0.0.1:62893 uid=1001(alice) "
		      "gid=1001(alice) pid=4242 exe=/usr/bin/curl unit=session-3.scope");
	assert_jfield(&e, "PRIORITY", "5");
	assert_jfield(&e, "SYSLOG_IDENTIFIER", "loguard");
	assert_jfield(&e, "LOGUARD_TYPE", "connection");
	assert_jfield(&e, "LOGUARD_GUARD", "jupyter");
	assert_jfield(&e, "LOGUARD_VERDICT", "would-deny");
	assert_jfield(&e, "LOGUARD_PROTOCOL", "tcp");
	assert_jfield(&e, "LOGUARD_SRC", "127.0.0.1");
	assert_jfield(&e, "LOGUARD_SPORT", "45678");
	assert_jfield(&e, "LOGUARD_DST", "127.0.0.1");
	assert_jfield(&e, "LOGUARD_DPORT", "62893");
	assert_jfield(&e, "LOGUARD_UID", "1001");
	assert_jfield(&e, "LOGUARD_USER", "alice");
	assert_jfield(&e, "LOGUARD_GID", "1001");
	assert_jfield(&e, "LOGUARD_GROUP", "alice");
	assert_jfield(&e, "LOGUARD_PID", "4242");
	assert_jfield(&e, "LOGUARD_EXE", "/usr/bin/curl");
	assert_jfield(&e, "LOGUARD_CMDLINE", "curl http://127.0.0.1:62893/");
	assert_jfield(&e, "LOGUARD_CGROUP", "/user.slice/user-1001.slice/session-3.scope");
	assert_jfield(&e, "LOGUARD_UNIT", "session-3.scope");
	for (size_t i = 0; i < e.n; i++)
		assert_false(e.f[i].binary);
	free(e.data);
	record_clear(&r);
}

static void test_journal_unknown(void **state)
{
	static const char *const absent[] = { "LOGUARD_GUARD", "LOGUARD_UID",	  "LOGUARD_USER",
					      "LOGUARD_GID",   "LOGUARD_GROUP",	  "LOGUARD_PID",
					      "LOGUARD_EXE",   "LOGUARD_CMDLINE", "LOGUARD_CGROUP",
					      "LOGUARD_UNIT" };
	struct fake_journal *j = *state;
	struct jentry e;
	struct record r;

	record_minimal(&r);
	r.ev.family = AF_INET6;
	r.ev.src = r.ev.dst = in6addr_loopback;
	r.ev.verdict = RECORD_DENY;
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_int_equal(e.n, 10);
	assert_jfield(&e, "MESSAGE",
		      "deny - udp [::1]:5353 -> [::1]:53 uid=- gid=- pid=- exe=- unit=-");
	assert_jfield(&e, "PRIORITY", "4");
	assert_jfield(&e, "SYSLOG_IDENTIFIER", "loguard");
	assert_jfield(&e, "LOGUARD_TYPE", "connection");
	assert_jfield(&e, "LOGUARD_VERDICT", "deny");
	assert_jfield(&e, "LOGUARD_PROTOCOL", "udp");
	assert_jfield(&e, "LOGUARD_SRC", "::1");
	assert_jfield(&e, "LOGUARD_SPORT", "5353");
	assert_jfield(&e, "LOGUARD_DST", "::1");
	assert_jfield(&e, "LOGUARD_DPORT", "53");
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		assert_null(jget(&e, absent[i]));
	free(e.data);

	/* ports beyond the copy: left out, as the protocol when it is not known either */
	r.ev.ports_unknown = true;
	r.ev.proto = 0;
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_int_equal(e.n, 7);
	assert_jfield(&e, "MESSAGE", "deny - - [::1]:- -> [::1]:- uid=- gid=- pid=- exe=- unit=-");
	assert_null(jget(&e, "LOGUARD_SPORT"));
	assert_null(jget(&e, "LOGUARD_DPORT"));
	assert_null(jget(&e, "LOGUARD_PROTOCOL"));
	free(e.data);
	r.ev.ports_unknown = false;
	r.ev.proto = IPPROTO_UDP;

	/* allow is info; an empty argv is known, so sent empty */
	r.ev.verdict = RECORD_ALLOW;
	r.argv = xargv(0);
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_jfield(&e, "PRIORITY", "6");
	assert_jfield(&e, "LOGUARD_CMDLINE", "");
	free(e.data);
	record_clear(&r);
}

/* Hostile values reach journald escaped as in text (without quotes): journalctl prints fields
 * as they are, so a raw newline, ESC or bidi control there would forge or hide what it shows.
 * Arguments are quoted where needed, so LOGUARD_CMDLINE splits back into them. */
static void test_journal_escaped(void **state)
{
	static const char want_cmd[] = "sh -c \"echo hi\\nid\" " HOSTILE_TEXT;
	struct fake_journal *j = *state;
	const struct jfield *f;
	struct jentry e;
	struct record r;

	record_full(&r);
	r.ev.verdict = RECORD_DENY;
	for (char **a = r.argv; *a; a++)
		free(*a);
	free(r.argv);
	r.argv = xargv(4, "sh", "-c", "echo hi\nid", HOSTILE);
	free(r.exe);
	r.exe = xstrdup("/tmp/bad\xff\x1b[2J\xe2\x80\xae"
			"exe \"x\"");
	free(r.unit);
	r.unit = xstrdup("user@1002.service");
	r.user_unit = xstrdup("sshd\xe2\x80\xa8.service");
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_int_equal(e.n, 21);
	f = jget(&e, "LOGUARD_CMDLINE");
	assert_non_null(f);
	assert_false(f->binary);
	assert_int_equal(f->len, sizeof(want_cmd) - 1);
	assert_memory_equal(f->val, want_cmd, sizeof(want_cmd) - 1);
	assert_jfield(&e, "LOGUARD_EXE", "/tmp/bad\\xff\\x1b[2J\\u202eexe \"x\"");
	assert_jfield(&e, "LOGUARD_UNIT", "user@1002.service");
	assert_jfield(&e, "LOGUARD_USER_UNIT", "sshd\\u2028.service");
	assert_jfield(&e, "PRIORITY", "4");
	/* MESSAGE is the text line: one line, no control characters, fields quoted */
	assert_jfield(&e, "MESSAGE",
		      "deny jupyter tcp 127.0.0.1:45678 -> 127.0.0.1:62893 uid=1001(alice) "
		      "gid=1001(alice) pid=4242 exe=\"/tmp/bad\\xff\\x1b[2J\\u202eexe \\\"x\\\"\" "
		      "unit=user@1002.service user_unit=\"sshd\\u2028.service\"");
	for (size_t i = 0; i < e.n; i++) {
		assert_false(e.f[i].binary);
		for (size_t k = 0; k < e.f[i].len; k++) {
			unsigned char c = (unsigned char)e.f[i].val[k];

			/* no controls anywhere; ASCII only but for HOSTILE's letters (é € 😀) in
			 * the command line: every other non-ASCII byte here is hostile */
			assert_true(c >= 0x20 && c != 0x7f);
			if (strcmp(e.f[i].key, "LOGUARD_CMDLINE"))
				assert_true(c < 0x7f);
		}
	}
	free(e.data);
	record_clear(&r);
}

/* An entry larger than the socket's send buffer goes through a sealed memfd. */
static void test_journal_memfd(void **state)
{
	enum { BIG = 300 * 1024 };
	struct fake_journal *j = *state;
	int sndbuf = 64 * 1024;
	const struct jfield *f;
	char *big, *want;
	struct jentry e;
	struct record r;

	/* default buffers differ between machines: make the datagram path fail for certain */
	assert_int_equal(setsockopt(j->client, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	big = malloc(BIG + 1);
	assert_non_null(big);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)('a' + i % 26);
	big[BIG] = '\0';
	big[1000] = '\n'; /* escaped: the argument is quoted */
	record_full(&r);
	for (char **a = r.argv; *a; a++)
		free(*a);
	free(r.argv);
	r.argv = xargv(2, "python3", big);
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_true(e.memfd);
	assert_int_equal(e.n, 20);
	big[1000] = '\0';
	assert_true(asprintf(&want, "python3 \"%s\\n%s\"", big, big + 1001) > 0);
	f = jget(&e, "LOGUARD_CMDLINE");
	assert_non_null(f);
	assert_false(f->binary);
	assert_int_equal(f->len, strlen(want));
	assert_memory_equal(f->val, want, f->len);
	assert_jfield(&e, "LOGUARD_EXE", "/usr/bin/curl");
	assert_jfield(&e, "LOGUARD_UNIT", "session-3.scope");
	free(e.data);
	free(want);
	free(big);
	record_clear(&r);

	/* small entries still go inline on the same socket */
	record_full(&r);
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	journal_recv(j, &e);
	assert_false(e.memfd);
	assert_int_equal(e.n, 20);
	free(e.data);
	record_clear(&r);
}

static void test_journal_stats(void **state)
{
	struct fake_journal *j = *state;
	struct jentry e;

	assert_int_equal(journal_send_stats(j->client, &stats, &j->stuck), 0);
	journal_recv(j, &e);
	assert_int_equal(e.n, 16);
	assert_jfield(&e, "MESSAGE",
		      "stats received=1234 lost=5 enobufs=2 rate_limited=17 "
		      "unmatched=18446744073709551615 identity_skipped=3 ports_unknown=6 "
		      "journal_unsent=7 queued=40 queue_allowed=30 receivers=2 cgroups=1");
	assert_jfield(&e, "PRIORITY", "6");
	assert_jfield(&e, "SYSLOG_IDENTIFIER", "loguard");
	assert_jfield(&e, "LOGUARD_TYPE", "stats");
	assert_jfield(&e, "LOGUARD_RECEIVED", "1234");
	assert_jfield(&e, "LOGUARD_LOST", "5");
	assert_jfield(&e, "LOGUARD_ENOBUFS", "2");
	assert_jfield(&e, "LOGUARD_RATE_LIMITED", "17");
	assert_jfield(&e, "LOGUARD_UNMATCHED", "18446744073709551615");
	assert_jfield(&e, "LOGUARD_IDENTITY_SKIPPED", "3");
	assert_jfield(&e, "LOGUARD_PORTS_UNKNOWN", "6");
	assert_jfield(&e, "LOGUARD_JOURNAL_UNSENT", "7");
	assert_jfield(&e, "LOGUARD_QUEUED", "40");
	assert_jfield(&e, "LOGUARD_QUEUE_ALLOWED", "30");
	assert_jfield(&e, "LOGUARD_RECEIVERS", "2");
	assert_jfield(&e, "LOGUARD_CGROUPS", "1");
	free(e.data);
}

static void test_journal_errors(void **state)
{
	struct fake_journal *j = *state;
	char longpath[200];
	struct record r;
	int fd = -1;

	assert_int_equal(journal_open_path("/nonexistent/loguard/socket", &fd), -ENOENT);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(journal_open_path(longpath, &fd), -ENAMETOOLONG);
	assert_int_equal(journal_open_path("", &fd), -EINVAL);
	assert_int_equal(fd, -1);

	/* a record that cannot be formatted sends nothing */
	record_minimal(&r);
	r.ev.family = 0;
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), -EAFNOSUPPORT);
	assert_int_equal(recv(j->server, longpath, sizeof(longpath), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);

	/* journald gone: the error comes back, nothing crashes (no SIGPIPE) */
	close(j->server);
	j->server = -1;
	record_full(&r);
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), -ECONNREFUSED);
	record_clear(&r);
}

/* A journald that does not read (stuck, or slower than a flood): once its queue is full a send
 * gives up after JOURNAL_SEND_TIMEOUT_MS with -EAGAIN, which the daemon counts as
 * journal_unsent, instead of blocking the daemon's loop for good; the entries after it are
 * not waited for until journald takes one again. */
static void test_journal_stuck(void **state)
{
	struct fake_journal *j = *state;
	static char buf[1 << 17];
	struct timespec t0, t1;
	struct record r;
	int err = 0, sent = 0;
	long ms;

	record_full(&r);
	/* the kernel queues a bounded number of datagrams (net.unix.max_dgram_qlen) */
	while (sent < 100000 && (err = journal_send_record(j->client, &r, &j->stuck)) == 0)
		sent++;
	assert_int_equal(err, -EAGAIN);
	assert_true(sent > 0);
	assert_true(j->stuck);
	/* The first entry after journald got stuck waits (a short stall is better than a lost
	 * record), as the last one of the loop did. */
	j->stuck = false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), -EAGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	/* it waited for journald, but not for ever (generous upper bound: a loaded machine) */
	assert_true(ms >= JOURNAL_SEND_TIMEOUT_MS / 2);
	assert_true(ms < 20 * JOURNAL_SEND_TIMEOUT_MS);
	assert_true(j->stuck);
	/* Still stuck: the next entries are not waited for (a flood of records must not cost
	 * the daemon JOURNAL_SEND_TIMEOUT_MS each). 20 of them well within one wait. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(journal_send_record(j->client, &r, &j->stuck), -EAGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < JOURNAL_SEND_TIMEOUT_MS / 2);
	/* journald catches up: the next entry goes through and sends wait again. */
	while (recv(j->server, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
	assert_int_equal(journal_send_record(j->client, &r, &j->stuck), 0);
	assert_false(j->stuck);
	record_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_full),
		cmocka_unit_test(test_json_unknown),
		cmocka_unit_test(test_json_ipv6),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_forgery),
		cmocka_unit_test(test_user_unit),
		cmocka_unit_test(test_ports_unknown),
		cmocka_unit_test(test_json_parses),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_bad_records),
		cmocka_unit_test(test_verdict_names),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_stats),
		cmocka_unit_test_setup_teardown(test_journal_full, journal_setup, journal_teardown),
		cmocka_unit_test_setup_teardown(test_listener, journal_setup, journal_teardown),
		cmocka_unit_test_setup_teardown(test_journal_unknown, journal_setup,
						journal_teardown),
		cmocka_unit_test_setup_teardown(test_journal_escaped, journal_setup,
						journal_teardown),
		cmocka_unit_test_setup_teardown(test_journal_memfd, journal_setup,
						journal_teardown),
		cmocka_unit_test_setup_teardown(test_journal_stats, journal_setup,
						journal_teardown),
		cmocka_unit_test_setup_teardown(test_journal_stuck, journal_setup,
						journal_teardown),
		cmocka_unit_test_setup_teardown(test_journal_errors, journal_setup,
						journal_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
