// SPDX-License-Identifier: GPL-2.0-or-later
/* The control protocol of `loguard share`: what the daemon accepts from any local user. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>

#include "share.h"

static int enc(enum share_op op, uint8_t proto, uint16_t port, uint32_t secs, unsigned flags,
	       const char *name, uint8_t buf[SHARE_REQ_MAX])
{
	struct share_request q = { .op = op, .proto = proto, .port = port, .seconds = secs,
				   .flags = flags };

	strcpy(q.name, name);
	return share_request_encode(&q, buf);
}

static void test_roundtrip(void **state)
{
	uint8_t b[SHARE_REQ_MAX];
	struct share_request q;
	int n;

	(void)state;
	n = enc(SHARE_OP_SHARE, IPPROTO_TCP, 8888, 7200, 0, "bob", b);
	assert_int_equal(n, SHARE_REQ_HEADER + 3);
	assert_int_equal(share_request_parse(b, (size_t)n, &q), 0);
	assert_int_equal(q.op, SHARE_OP_SHARE);
	assert_int_equal(q.port, 8888);
	assert_int_equal(q.seconds, 7200);
	assert_string_equal(q.name, "bob");
	n = enc(SHARE_OP_UNSHARE, IPPROTO_UDP, 53, 0, SHARE_F_GROUP, "dev-ops_1.x", b);
	assert_int_equal(share_request_parse(b, (size_t)n, &q), 0);
	assert_int_equal(q.flags, SHARE_F_GROUP);
	n = enc(SHARE_OP_LIST, 0, 0, 0, 0, "", b);
	assert_int_equal(n, SHARE_REQ_HEADER);
	assert_int_equal(share_request_parse(b, (size_t)n, &q), 0);
}

/* Everything else is refused: lengths, versions, reserved bytes, names, missing fields. */
static void test_refused(void **state)
{
	uint8_t b[SHARE_REQ_MAX + 8];
	struct share_request q;
	int n;

	(void)state;
	n = enc(SHARE_OP_SHARE, IPPROTO_TCP, 8888, 60, 0, "bob", b);
	assert_int_equal(share_request_parse(b, (size_t)n - 1, &q), -EINVAL); /* short */
	b[n] = 'x';
	assert_int_equal(share_request_parse(b, (size_t)n + 1, &q), -EINVAL); /* long */
	assert_int_equal(share_request_parse(b, 0, &q), -EINVAL);
	for (int i = 0; i < SHARE_REQ_HEADER; i++) {
		static const int fine[] = { 3, 4, 5, 8, 9, 12, 13, 14, 15 }; /* fields, not checks */
		uint8_t c[SHARE_REQ_MAX];
		bool is_field = false;

		for (size_t k = 0; k < sizeof(fine) / sizeof(fine[0]); k++)
			is_field |= fine[k] == i;
		if (is_field)
			continue;
		memcpy(c, b, (size_t)n);
		c[i] ^= 0x40; /* magic, version, length, reserved */
		assert_int_equal(share_request_parse(c, (size_t)n, &q), -EINVAL);
	}
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 8888, 60, 0, "-rf", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 8888, 60, 0, "../x", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 8888, 60, 0, "a b", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 8888, 60, 0, "", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 0, 60, 0, "bob", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_ICMP, 1, 60, 0, "bob", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 1, SHARE_SECONDS_MAX + 1, 0, "bob", b),
			 -EINVAL);
	assert_int_equal(enc(SHARE_OP_UNSHARE, IPPROTO_TCP, 1, 5, 0, "bob", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_LIST, IPPROTO_TCP, 0, 0, 0, "", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_LIST, 0, 0, 0, 0, "bob", b), -EINVAL);
	assert_int_equal(enc(__SHARE_OP_MAX, IPPROTO_TCP, 1, 0, 0, "bob", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 1, 0, 0x80, "bob", b), -EINVAL);
	assert_int_equal(enc(SHARE_OP_SHARE, IPPROTO_TCP, 1, 0, 0, "abcdefghijabcdefghijabcdefghijab", b),
			 SHARE_REQ_HEADER + 32);
}

static void test_duration(void **state)
{
	uint32_t s;

	(void)state;
	assert_int_equal(share_duration_parse("90", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(share_duration_parse("30m", &s), 0);
	assert_int_equal(s, 1800);
	assert_int_equal(share_duration_parse("2h", &s), 0);
	assert_int_equal(s, 7200);
	assert_int_equal(share_duration_parse("1d", &s), 0);
	assert_int_equal(s, 86400);
	assert_int_equal(share_duration_parse("366d", &s), 0);
	assert_int_equal(share_duration_parse("367d", &s), -ERANGE);
	assert_int_equal(share_duration_parse("99999999999999999999", &s), -ERANGE);
	assert_int_equal(share_duration_parse("0", &s), -EINVAL);
	assert_int_equal(share_duration_parse("-1h", &s), -EINVAL);
	assert_int_equal(share_duration_parse("1hh", &s), -EINVAL);
	assert_int_equal(share_duration_parse("h", &s), -EINVAL);
	assert_int_equal(share_duration_parse("", &s), -EINVAL);
	assert_int_equal(share_duration_parse("1w", &s), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
