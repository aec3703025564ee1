// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the NFLOG packet parser: the headers of a logged packet are the
 * client's (IPv4 options, IPv6 extension headers up to the copy range). The first byte picks
 * the ethertype the kernel reports and whether the packet goes through nflog_parse_ip() alone
 * or wrapped in a whole NFULNL_MSG_PACKET message (prefix, uid, seq) through
 * nflog_parse_packet(). Checked besides memory safety: the documented results and what each
 * promises about the event.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

#include "nflog.h"
#include "ruleset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t hw_protocols[] = { 0, 0x0800, 0x86dd, 0x0806 };

/* What nflog_parse_ip() promises for each result. */
static void check_ip(int r, const struct conn_event *ev)
{
	switch (r) {
	case 0:
		if (ev->proto != IPPROTO_TCP && ev->proto != IPPROTO_UDP)
			abort();
		if (ev->ports_unknown || (ev->family != AF_INET && ev->family != AF_INET6))
			abort();
		break;
	case -EMSGSIZE:
		if (!ev->ports_unknown || ev->sport || ev->dport)
			abort();
		if (ev->family != AF_INET && ev->family != AF_INET6)
			abort();
		if (ev->proto && ev->proto != IPPROTO_TCP && ev->proto != IPPROTO_UDP)
			abort();
		break;
	case -ENOENT:
		if (ev->ports_unknown)
			abort();
		break;
	default:
		abort();
	}
}

/* The packet as the kernel would send it on the group: header, prefix, uid, seq, payload. */
static void check_nflog(uint16_t hw, const uint8_t *p, size_t len, uint8_t sel)
{
	static const char *const prefixes[] = { LOGUARD_PREFIX_ALLOW, LOGUARD_PREFIX_DENY,
						LOGUARD_PREFIX_WOULD_DENY, "someone else" };
	char *buf = calloc(1, MNL_NLMSG_HDRLEN + 256 + len + 64);
	struct nfulnl_msg_packet_hdr ph = { .hw_protocol = htons(hw), .hook = 3 };
	struct conn_event ev;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	int r;

	if (!buf)
		abort();
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = hw == 0x86dd ? AF_INET6 : AF_INET;
	mnl_attr_put(nlh, NFULA_PACKET_HDR, sizeof(ph), &ph);
	mnl_attr_put_strz(nlh, NFULA_PREFIX, prefixes[sel & 3]);
	if (sel & 4)
		mnl_attr_put_u32(nlh, NFULA_UID, htonl(1002));
	mnl_attr_put_u32(nlh, NFULA_SEQ, htonl(7));
	mnl_attr_put(nlh, NFULA_PAYLOAD, len, p);
	r = nflog_parse_packet(nlh, &ev);
	if ((sel & 3) == 3) {
		if (r != -ENOENT || !ev.has_seq || ev.seq != 7)
			abort();
	} else if (r == 0) {
		if (ev.has_uid != !!(sel & 4) || (ev.has_uid && ev.uid != 1002))
			abort();
		check_ip(ev.ports_unknown ? -EMSGSIZE : 0, &ev);
	} else if (r != -EBADMSG || !ev.has_seq) {
		abort();
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn_event ev;
	uint16_t hw;
	uint8_t sel;
	int r;

	if (size < 1)
		return 0;
	sel = data[0];
	hw = hw_protocols[sel & 3];
	data++;
	size--;
	/* never more than the kernel copies */
	if (size > NFLOG_COPY_RANGE)
		size = NFLOG_COPY_RANGE;
	memset(&ev, 0, sizeof(ev));
	r = nflog_parse_ip(hw, data, size, &ev);
	check_ip(r, &ev);
	if (sel & 0x80)
		check_nflog(hw, data, size, (uint8_t)(sel >> 2));
	return 0;
}
