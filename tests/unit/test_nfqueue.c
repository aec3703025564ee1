// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * NFQUEUE packet messages, crafted the way the kernel builds them (nfgenmsg, then
 * NFQA_PACKET_HDR, NFQA_MARK, NFQA_PAYLOAD, NFQA_UID, NFQA_GID), parsed back. Pure: no socket,
 * no kernel; the kernel's side is covered by the daemon's integration tests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include "nfqueue.h"

#define ETH_IP	 0x0800
#define ETH_IPV6 0x86dd

/* What goes into one crafted message; a NULL pointer leaves that attribute out. */
struct msg {
	uint32_t id;
	uint16_t hw_protocol;
	const uint8_t *payload;
	size_t len;
	const uint32_t *mark, *uid, *gid;
};

static struct nlmsghdr *put_packet(char *buf, const struct msg *m)
{
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(m->id),
					   .hw_protocol = htons(m->hw_protocol),
					   .hook = 3 /* NF_INET_LOCAL_OUT */ };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = m->hw_protocol == ETH_IPV6 ? AF_INET6 : AF_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFQUEUE_DEFAULT_NUM);
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	if (m->mark)
		mnl_attr_put_u32(nlh, NFQA_MARK, htonl(*m->mark));
	if (m->payload)
		mnl_attr_put(nlh, NFQA_PAYLOAD, m->len, m->payload);
	if (m->uid)
		mnl_attr_put_u32(nlh, NFQA_UID, htonl(*m->uid));
	if (m->gid)
		mnl_attr_put_u32(nlh, NFQA_GID, htonl(*m->gid));
	return nlh;
}

static void ports(uint8_t *p, uint16_t sport, uint16_t dport)
{
	p[0] = (uint8_t)(sport >> 8);
	p[1] = (uint8_t)sport;
	p[2] = (uint8_t)(dport >> 8);
	p[3] = (uint8_t)dport;
}

/* An IPv4 header (no options) for proto, 127.0.0.1 -> 127.0.0.2, then 4 bytes of ports. */
static size_t ipv4(uint8_t *p, uint8_t proto, uint16_t sport, uint16_t dport)
{
	memset(p, 0, 40);
	p[0] = 0x45;
	p[9] = proto;
	memcpy(p + 12, "\x7f\x00\x00\x01\x7f\x00\x00\x02", 8);
	ports(p + 20, sport, dport);
	return 40; /* a TCP header's worth */
}

/* An IPv6 header ::1 -> ::1 with next header `next`; the caller writes what follows at 40. */
static void ipv6(uint8_t *p, uint8_t next)
{
	memset(p, 0, 40);
	p[0] = 0x60;
	p[6] = next;
	p[7] = 64;
	p[23] = 1;
	p[39] = 1;
}

/* Every field as wanted, and the receipt time set. */
static void assert_packet(const struct nfqueue_packet *got, const struct nfqueue_packet *want)
{
	assert_int_equal(got->id, want->id);
	assert_int_equal(got->mark, want->mark);
	assert_int_equal(got->ev.family, want->ev.family);
	assert_int_equal(got->ev.proto, want->ev.proto);
	assert_memory_equal(&got->ev.src, &want->ev.src, sizeof(want->ev.src));
	assert_memory_equal(&got->ev.dst, &want->ev.dst, sizeof(want->ev.dst));
	assert_int_equal(got->ev.sport, want->ev.sport);
	assert_int_equal(got->ev.dport, want->ev.dport);
	assert_int_equal(got->ev.has_uid, want->ev.has_uid);
	assert_int_equal(got->ev.uid, want->ev.uid);
	assert_int_equal(got->ev.has_gid, want->ev.has_gid);
	assert_int_equal(got->ev.gid, want->ev.gid);
	assert_false(got->ev.has_seq);
	assert_true(got->ev.time.tv_sec > 0);
}

static void test_ipv4_tcp(void **state)
{
	uint32_t mark = 0x20000000, uid = 1000, gid = 1001;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint8_t pkt[64];
	struct msg m = { .id = 42,
			 .hw_protocol = ETH_IP,
			 .payload = pkt,
			 .mark = &mark,
			 .uid = &uid,
			 .gid = &gid };
	struct nfqueue_packet p, want = {
		.id = 42,
		.mark = 0x20000000,
		.ev = { .family = AF_INET,
			.proto = IPPROTO_TCP,
			.src.s6_addr = { 127, 0, 0, 1 },
			.dst.s6_addr = { 127, 0, 0, 2 },
			.sport = 40000,
			.dport = 7777,
			.has_uid = true,
			.uid = 1000,
			.has_gid = true,
			.gid = 1001 },
	};

	(void)state;
	m.len = ipv4(pkt, IPPROTO_TCP, 40000, 7777);
	assert_int_equal(nfqueue_parse_packet(put_packet(buf, &m), &p), 0);
	assert_packet(&p, &want);
}

static void test_ipv6_udp_bare(void **state)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint8_t pkt[48];
	struct msg m = { .id = 7, .hw_protocol = ETH_IPV6, .payload = pkt, .len = sizeof(pkt) };
	struct nfqueue_packet p, want = {
		.id = 7,
		.ev = { .family = AF_INET6,
			.proto = IPPROTO_UDP,
			.src = IN6ADDR_LOOPBACK_INIT,
			.dst = IN6ADDR_LOOPBACK_INIT,
			.sport = 53000,
			.dport = 5353 },
	};

	(void)state;
	ipv6(pkt, IPPROTO_UDP);
	ports(pkt + 40, 53000, 5353);
	memset(&p, 0xa5, sizeof(p)); /* everything absent must come back zero */
	assert_int_equal(nfqueue_parse_packet(put_packet(buf, &m), &p), 0);
	assert_packet(&p, &want);
}

/* A hop-by-hop header before TCP is walked; hw_protocol 0 falls back to the version nibble. */
static void test_ipv6_hopopts_no_hw_protocol(void **state)
{
	uint32_t uid = 0;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nfqueue_packet p;
	uint8_t pkt[68] = { 0 };
	struct msg m = { .id = 9, .payload = pkt, .len = sizeof(pkt), .uid = &uid };

	(void)state;
	ipv6(pkt, IPPROTO_HOPOPTS);
	pkt[40] = IPPROTO_TCP; /* next header; length 0: 8 bytes */
	ports(pkt + 48, 1234, 22);
	assert_int_equal(nfqueue_parse_packet(put_packet(buf, &m), &p), 0);
	assert_int_equal(p.ev.family, AF_INET6);
	assert_int_equal(p.ev.proto, IPPROTO_TCP);
	assert_int_equal(p.ev.dport, 22);
	assert_true(p.ev.has_uid); /* uid 0 is an answer, not an absence */
	assert_int_equal(p.ev.uid, 0);
	assert_false(p.ev.has_gid);
}

/* Valid messages we cannot judge: -ENOENT, but the id is there for the verdict. */
static void expect_enoent(uint32_t id, uint16_t hw_protocol, const uint8_t *payload, size_t len)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nfqueue_packet p;
	struct msg m = { .id = id, .hw_protocol = hw_protocol, .payload = payload, .len = len };

	assert_int_equal(nfqueue_parse_packet(put_packet(buf, &m), &p), -ENOENT);
	assert_int_equal(p.id, id);
}

static void test_truncated(void **state)
{
	uint8_t pkt[64];

	(void)state;
	ipv4(pkt, IPPROTO_TCP, 40000, 7777);
	expect_enoent(1, ETH_IP, pkt, 22); /* half the ports */
	expect_enoent(2, ETH_IP, pkt, 19); /* not even the IPv4 header */
	pkt[0] = 0x46;			   /* 24-byte header, but only 22 bytes copied */
	expect_enoent(3, ETH_IP, pkt, 22);
	ipv6(pkt, IPPROTO_TCP);
	expect_enoent(4, ETH_IPV6, pkt, 39);
	expect_enoent(5, ETH_IPV6, pkt, 42);
	ipv6(pkt, IPPROTO_DSTOPTS); /* an extension header cut short */
	expect_enoent(6, ETH_IPV6, pkt, 44);
	expect_enoent(7, ETH_IPV6, NULL, 0); /* no payload at all */
}

static void test_not_tcp_udp(void **state)
{
	uint8_t pkt[64];

	(void)state;
	ipv4(pkt, IPPROTO_ICMP, 0x0800, 0);
	expect_enoent(11, ETH_IP, pkt, 28);
	ipv6(pkt, IPPROTO_ICMPV6);
	expect_enoent(12, ETH_IPV6, pkt, 48);
	ipv6(pkt, IPPROTO_NONE);
	expect_enoent(13, ETH_IPV6, pkt, 48);
	ipv4(pkt, IPPROTO_TCP, 1, 2);
	pkt[7] = 1; /* fragment offset 8: no ports here */
	expect_enoent(14, ETH_IP, pkt, 40);
	expect_enoent(15, 0x0806 /* ARP */, (const uint8_t *)"\x00\x01\x08\x00", 4);
}

/* A message for an IPv4 packet 127.0.0.1:40000 -> 127.0.0.2:dport, without mark or uid/gid. */
static struct nlmsghdr *put_ipv4_packet(char *buf, uint32_t id, uint8_t proto, uint16_t dport)
{
	uint8_t pkt[40];
	struct msg m = { .id = id, .hw_protocol = ETH_IP, .payload = pkt };

	m.len = ipv4(pkt, proto, 40000, dport);
	return put_packet(buf, &m);
}

static void test_invalid(void **state)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nfqueue_packet p;
	struct nlmsghdr *nlh;

	(void)state;
	/* Another message type: a rejected verdict's error, NFLOG's packet. */
	nlh = put_ipv4_packet(buf, 5, IPPROTO_TCP, 7777);
	nlh->nlmsg_type = NLMSG_ERROR;
	assert_int_equal(nfqueue_parse_packet(nlh, &p), -EINVAL);
	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFQNL_MSG_PACKET;
	assert_int_equal(nfqueue_parse_packet(nlh, &p), -EINVAL);
	/* No packet header, or one too short: no id to answer. */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
	mnl_attr_put_u32(nlh, NFQA_PAYLOAD, 0x45000000);
	assert_int_equal(nfqueue_parse_packet(nlh, &p), -EINVAL);
	mnl_attr_put_u32(nlh, NFQA_PACKET_HDR, htonl(5));
	assert_int_equal(nfqueue_parse_packet(nlh, &p), -EINVAL);
	/* Shorter than the nfgenmsg. */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
	assert_int_equal(nfqueue_parse_packet(nlh, &p), -EINVAL);
}

/* A malformed NFQA_MARK/UID (wrong size) is treated as absent, the packet still parses. */
static void test_bad_u32_attrs(void **state)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = put_ipv4_packet(buf, 8, IPPROTO_UDP, 53);
	struct nfqueue_packet p;

	(void)state;
	mnl_attr_put_u16(nlh, NFQA_MARK, 1);
	mnl_attr_put_u16(nlh, NFQA_UID, 1);
	assert_int_equal(nfqueue_parse_packet(nlh, &p), 0);
	assert_int_equal(p.id, 8);
	assert_int_equal(p.mark, 0);
	assert_false(p.ev.has_uid);
	assert_int_equal(p.ev.proto, IPPROTO_UDP);
	assert_int_equal(p.ev.dport, 53);
}

static void test_close_null(void **state)
{
	(void)state;
	nfqueue_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_tcp),
		cmocka_unit_test(test_ipv6_udp_bare),
		cmocka_unit_test(test_ipv6_hopopts_no_hw_protocol),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_not_tcp_udp),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_bad_u32_attrs),
		cmocka_unit_test(test_close_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
