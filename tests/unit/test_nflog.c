// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The NFLOG packet parser on buffers, as the kernel copies them (NFLOG_COPY_RANGE bytes at
 * most): IPv4 with options, IPv6 with the extension headers a client can add (a segment routing
 * header of up to 127 segments without privileges; hop-by-hop and destination options with
 * CAP_NET_RAW), packets cut in their headers (ports unknown, never dropped), and what is not
 * TCP or UDP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nflog.h"

/* A packet being built: bytes and where the next header's "next header" byte is. */
struct pkt {
	uint8_t b[3 * 2048 + 256];
	size_t len;
	size_t next_at; /* offset of the byte naming the next header */
};

static void v6_start(struct pkt *p)
{
	memset(p, 0, sizeof(*p));
	p->b[0] = 0x60;
	inet_pton(AF_INET6, "fd00::1", p->b + 8);
	inet_pton(AF_INET6, "::1", p->b + 24);
	p->len = 40;
	p->next_at = 6;
}

/* An options or routing header of len bytes (a multiple of 8). */
static void v6_ext(struct pkt *p, uint8_t type, size_t len)
{
	p->b[p->next_at] = type;
	p->next_at = p->len;
	p->b[p->len + 1] = (uint8_t)(len / 8 - 1);
	p->len += len;
}

static void v6_frag(struct pkt *p, uint16_t offset)
{
	p->b[p->next_at] = IPPROTO_FRAGMENT;
	p->next_at = p->len;
	p->b[p->len + 2] = (uint8_t)(offset >> 8);
	p->b[p->len + 3] = (uint8_t)offset;
	p->len += 8;
}

static void ports(struct pkt *p, uint8_t proto, uint16_t sport, uint16_t dport)
{
	p->b[p->next_at] = proto;
	p->b[p->len] = (uint8_t)(sport >> 8);
	p->b[p->len + 1] = (uint8_t)sport;
	p->b[p->len + 2] = (uint8_t)(dport >> 8);
	p->b[p->len + 3] = (uint8_t)dport;
	p->len += proto == IPPROTO_TCP ? 20 : 8;
}

/* Parse the first n bytes (the copy) with a zeroed event. */
static int parse(const struct pkt *p, size_t n, uint16_t hw, struct conn_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	return nflog_parse_ip(hw, p->b, n < p->len ? n : p->len, ev);
}

static void test_ipv4(void **state)
{
	struct conn_event ev;
	struct pkt p;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.b[0] = 0x4f; /* 40 bytes of options: the most IPv4 has */
	p.b[9] = IPPROTO_UDP;
	p.b[12] = p.b[16] = 127;
	p.b[15] = p.b[19] = 1;
	p.len = 60;
	p.next_at = 9;
	ports(&p, IPPROTO_UDP, 5353, 53);
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x0800, &ev), 0);
	assert_int_equal(ev.family, AF_INET);
	assert_int_equal(ev.proto, IPPROTO_UDP);
	assert_int_equal(ev.sport, 5353);
	assert_int_equal(ev.dport, 53);
	assert_false(ev.ports_unknown);
	assert_int_equal(ev.dst.s6_addr[0], 127);
	/* the version nibble decides without an ethertype */
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0, &ev), 0);
	/* cut in the options or the ports: recorded without ports */
	assert_int_equal(parse(&p, 50, 0x0800, &ev), -EMSGSIZE);
	assert_true(ev.ports_unknown);
	assert_int_equal(ev.proto, IPPROTO_UDP);
	assert_int_equal(ev.dport, 0);
	assert_int_equal(parse(&p, 62, 0x0800, &ev), -EMSGSIZE);
	/* not an IP header at all, another protocol, a later fragment: not ours to record */
	assert_int_equal(parse(&p, 19, 0x0800, &ev), -ENOENT);
	p.b[9] = IPPROTO_ICMP;
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x0800, &ev), -ENOENT);
	p.b[9] = IPPROTO_UDP;
	p.b[7] = 1;
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x0800, &ev), -ENOENT);
	p.b[7] = 0;
	p.b[0] = 0x44; /* IHL below 5 */
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x0800, &ev), -ENOENT);
}

/* Issue 9.8: a segment routing header of 12 segments (200 bytes) pushed the ports past the old
 * 160-byte copy, and the packet was neither recorded nor counted. Any user may add one of up to
 * 127 segments: all of it is in the copy now. */
static void test_ipv6_routing_header(void **state)
{
	static const unsigned segs[] = { 0, 1, 12, 127 };
	struct conn_event ev;
	struct pkt p;

	(void)state;
	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		v6_start(&p);
		if (segs[i])
			v6_ext(&p, IPPROTO_ROUTING, 8 + 16 * segs[i]);
		ports(&p, IPPROTO_TCP, 40000, 62893);
		assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), 0);
		assert_int_equal(ev.family, AF_INET6);
		assert_int_equal(ev.proto, IPPROTO_TCP);
		assert_int_equal(ev.sport, 40000);
		assert_int_equal(ev.dport, 62893);
		assert_false(ev.ports_unknown);
		assert_true(IN6_IS_ADDR_LOOPBACK(&ev.dst));
	}
	/* the largest a routing header can be, plus the kernel's own jumbo hop-by-hop */
	v6_start(&p);
	v6_ext(&p, IPPROTO_HOPOPTS, 8);
	v6_ext(&p, IPPROTO_ROUTING, 2048);
	ports(&p, IPPROTO_UDP, 1, 2);
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), 0);
	assert_int_equal(ev.dport, 2);
}

/* With CAP_NET_RAW, hop-by-hop and destination options can push the ports past any copy: the
 * packet is still an event, with what is known. */
static void test_ipv6_cut(void **state)
{
	struct conn_event ev;
	struct pkt p;

	(void)state;
	v6_start(&p);
	v6_ext(&p, IPPROTO_HOPOPTS, 2040);
	v6_ext(&p, IPPROTO_DSTOPTS, 2040);
	v6_ext(&p, IPPROTO_ROUTING, 2040);
	ports(&p, IPPROTO_TCP, 40000, 62893);
	assert_int_equal(parse(&p, p.len, 0x86dd, &ev), 0);
	assert_int_equal(ev.dport, 62893);
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), -EMSGSIZE);
	assert_true(ev.ports_unknown);
	assert_int_equal(ev.family, AF_INET6);
	assert_int_equal(ev.proto, 0); /* the transport header was not reached */
	assert_int_equal(ev.sport, 0);
	assert_int_equal(ev.dport, 0);
	assert_true(IN6_IS_ADDR_LOOPBACK(&ev.dst));
	/* reached, but the ports cut off: the protocol is known */
	assert_int_equal(parse(&p, p.len - 18, 0x86dd, &ev), -EMSGSIZE);
	assert_int_equal(ev.proto, IPPROTO_TCP);
	assert_true(ev.ports_unknown);
	/* cut inside an extension header's first two bytes */
	assert_int_equal(parse(&p, 41, 0x86dd, &ev), -EMSGSIZE);
	assert_true(ev.ports_unknown);
	/* no IPv6 header at all */
	assert_int_equal(parse(&p, 39, 0x86dd, &ev), -ENOENT);
}

static void test_ipv6_other(void **state)
{
	struct conn_event ev;
	struct pkt p;

	(void)state;
	/* a first fragment has the ports, a later one does not */
	v6_start(&p);
	v6_frag(&p, 0);
	ports(&p, IPPROTO_UDP, 7, 9);
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), 0);
	assert_int_equal(ev.dport, 9);
	v6_start(&p);
	v6_frag(&p, 8);
	ports(&p, IPPROTO_UDP, 7, 9);
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), -ENOENT);
	/* AH is walked by its own length unit (4 bytes, + 2) */
	v6_start(&p);
	p.b[6] = IPPROTO_AH;
	p.next_at = 40;
	p.b[41] = 4; /* (4 + 2) * 4 = 24 bytes */
	p.len = 64;
	ports(&p, IPPROTO_TCP, 1, 443);
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), 0);
	assert_int_equal(ev.dport, 443);
	/* not TCP or UDP */
	v6_start(&p);
	v6_ext(&p, IPPROTO_DSTOPTS, 16);
	ports(&p, IPPROTO_ICMPV6, 0, 0);
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), -ENOENT);
	/* a v4 header under the v6 ethertype is not v6 */
	v6_start(&p);
	p.b[0] = 0x45;
	assert_int_equal(parse(&p, NFLOG_COPY_RANGE, 0x86dd, &ev), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6_routing_header),
		cmocka_unit_test(test_ipv6_cut),
		cmocka_unit_test(test_ipv6_other),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
