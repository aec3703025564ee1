// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * NFLOG reader. The ruleset logs to one group with a prefix naming the verdict;
 * this reads those packets and turns them into conn_events. Facts used (see
 * docs/architecture.md): NFULA_UID/GID come with packets that have a full socket, which
 * every SYN and UDP datagram we log has; output-hook packets carry no
 * timestamp, so events are stamped on receipt; NFULNL_CFG_F_SEQ numbers every
 * logged packet, so a gap means the kernel could not deliver some.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

#include "nflog.h"
#include "ruleset.h"

/* Big enough that a burst of SYNs does not overflow while we write records. */
#define RCVBUF_SIZE (32 * 1024 * 1024)
/* The kernel allocates max(nlbufsiz, message) per skb, and with qthreshold 1 every message
 * is its own skb: with 64 KiB each ~300-byte record took a 64 KiB skb, so the receive
 * buffer held a few hundred records and a burst overflowed it. */
#define NLBUFSIZ	 1024
#define NLBUFSIZ_BATCHED (16 * 1024) /* 32 records of ~300 bytes */
#define READ_BUF_SIZE	 (256 * 1024)

struct nflog {
	struct mnl_socket *sock;
	uint16_t group;
	bool have_seq;
	uint32_t next_seq;
	bool batching; /* qthreshold > 1: see nflog_set_batching() */
	char *buf;
};

/* Send one config attribute; with ack, wait for the kernel's answer (only before the
 * socket carries packets: later, answers would interleave with them). */
static int config_msg(struct nflog *a, uint16_t type, const void *data, size_t len, bool ack)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	ssize_t n;

	memset(buf, 0, sizeof(buf)); /* attribute padding goes out as it is */
	nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	nlh->nlmsg_flags = NLM_F_REQUEST | (ack ? NLM_F_ACK : 0);
	nlh->nlmsg_seq = type;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(a->group);
	mnl_attr_put(nlh, type, len, data);
	if (mnl_socket_sendto(a->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	if (!ack)
		return 0;
	n = mnl_socket_recvfrom(a->sock, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, n, nlh->nlmsg_seq, mnl_socket_get_portid(a->sock), NULL, NULL) < 0)
		return -errno;
	return 0;
}

static int config(struct nflog *a, uint16_t type, const void *data, size_t len)
{
	return config_msg(a, type, data, len, true);
}

int nflog_open(uint16_t group, struct nflog **ret_nflog)
{
	struct nfulnl_msg_config_cmd bind_cmd = { .command = NFULNL_CFG_CMD_BIND };
	struct nfulnl_msg_config_mode mode = { .copy_range = htonl(NFLOG_COPY_RANGE),
					       .copy_mode = NFULNL_COPY_PACKET };
	uint16_t flags = htons(NFULNL_CFG_F_SEQ);
	uint32_t qthresh = htonl(1); /* deliver at once: pid lookups race with the client */
	uint32_t nlbufsiz = htonl(NLBUFSIZ);
	struct nflog *a = calloc(1, sizeof(*a));
	int rcvbuf = RCVBUF_SIZE, fd, r;

	if (!a)
		return -ENOMEM;
	a->group = group;
	a->buf = malloc(READ_BUF_SIZE);
	if (!a->buf) {
		r = -ENOMEM;
		goto fail;
	}
	a->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!a->sock || mnl_socket_bind(a->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	fd = mnl_socket_get_fd(a->sock);
	/* FORCE needs CAP_NET_ADMIN, which binding a group needs anyway. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	r = config(a, NFULA_CFG_CMD, &bind_cmd, sizeof(bind_cmd));
	/* Another socket's group fails with EPERM, as a missing CAP_NET_ADMIN does. The obsolete
	 * PF_UNBIND tells them apart: nfnetlink checks the capability, then it is a no-op. */
	if (r == -EPERM) {
		struct nfulnl_msg_config_cmd probe = { .command = NFULNL_CFG_CMD_PF_UNBIND };

		r = config(a, NFULA_CFG_CMD, &probe, sizeof(probe)) == 0 ? -EBUSY : -EPERM;
	}
	if (r >= 0)
		r = config(a, NFULA_CFG_MODE, &mode, sizeof(mode));
	if (r >= 0)
		r = config(a, NFULA_CFG_FLAGS, &flags, sizeof(flags));
	if (r >= 0)
		r = config(a, NFULA_CFG_QTHRESH, &qthresh, sizeof(qthresh));
	if (r >= 0)
		r = config(a, NFULA_CFG_NLBUFSIZ, &nlbufsiz, sizeof(nlbufsiz));
	if (r < 0)
		goto fail;
	/* From now on the poll loop reads: never block in it. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_nflog = a;
	return 0;
fail:
	nflog_close(a);
	return r;
}

int nflog_set_batching(struct nflog *a, bool batch)
{
	/* Batched: up to 32 records per message, flushed after 10 ms at most. */
	uint32_t qthresh = htonl(batch ? 32 : 1), timeout = htonl(1);
	uint32_t nlbufsiz = htonl(batch ? NLBUFSIZ_BATCHED : NLBUFSIZ);
	int r;

	if (batch == a->batching)
		return 0;
	r = config_msg(a, NFULA_CFG_NLBUFSIZ, &nlbufsiz, sizeof(nlbufsiz), false);
	if (r >= 0)
		r = config_msg(a, NFULA_CFG_TIMEOUT, &timeout, sizeof(timeout), false);
	if (r >= 0)
		r = config_msg(a, NFULA_CFG_QTHRESH, &qthresh, sizeof(qthresh), false);
	if (r >= 0)
		a->batching = batch;
	return r;
}

int nflog_fd(const struct nflog *a)
{
	return mnl_socket_get_fd(a->sock);
}

void nflog_close(struct nflog *a)
{
	if (!a)
		return;
	if (a->sock)
		mnl_socket_close(a->sock); /* the kernel unbinds the group with the socket */
	free(a->buf);
	free(a);
}

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, NFULA_MAX) > 0)
		tb[type] = attr;
	return MNL_CB_OK;
}

static bool attr_u32(const struct nlattr *a, uint32_t *ret)
{
	if (!a || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return false;
	*ret = ntohl(mnl_attr_get_u32(a));
	return true;
}

/* The ports of a TCP or UDP header at p (len bytes left); -EMSGSIZE: cut off. */
static int parse_ports(const uint8_t *p, size_t len, struct conn_event *ev)
{
	if (len < 4)
		return -EMSGSIZE;
	ev->sport = (uint16_t)(p[0] << 8 | p[1]);
	ev->dport = (uint16_t)(p[2] << 8 | p[3]);
	return 0;
}

static int parse_ipv4(const uint8_t *p, size_t len, struct conn_event *ev)
{
	size_t ihl;

	if (len < 20 || p[0] >> 4 != 4)
		return -EINVAL;
	ihl = (size_t)(p[0] & 0xf) * 4;
	if (ihl < 20)
		return -EINVAL;
	if (((p[6] & 0x1f) << 8 | p[7]) != 0)
		return -ENOENT; /* a non-first fragment has no ports */
	ev->family = AF_INET;
	ev->proto = p[9];
	memcpy(&ev->src, p + 12, 4);
	memcpy(&ev->dst, p + 16, 4);
	if (ev->proto != IPPROTO_TCP && ev->proto != IPPROTO_UDP)
		return -ENOENT;
	if (ihl > len)
		return -EMSGSIZE;
	return parse_ports(p + ihl, len - ihl, ev);
}

static int parse_ipv6(const uint8_t *p, size_t len, struct conn_event *ev)
{
	uint8_t next;
	size_t off = 40;

	if (len < 40 || p[0] >> 4 != 6)
		return -EINVAL;
	ev->family = AF_INET6;
	memcpy(&ev->src, p + 8, 16);
	memcpy(&ev->dst, p + 16 + 8, 16);
	next = p[6];
	/* Every header that chains on is 8 bytes or more, so this ends within len / 8 steps. */
	for (;;) {
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (off + 2 > len)
				return -EMSGSIZE;
			next = p[off];
			off += ((size_t)p[off + 1] + 1) * 8;
			continue;
		case IPPROTO_AH: /* not at the output hook, but harmless to walk */
			if (off + 2 > len)
				return -EMSGSIZE;
			next = p[off];
			off += ((size_t)p[off + 1] + 2) * 4;
			continue;
		case IPPROTO_FRAGMENT:
			if (off + 8 > len)
				return -EMSGSIZE;
			if ((p[off + 2] << 8 | p[off + 3]) & 0xfff8)
				return -ENOENT; /* non-first fragment: no ports */
			next = p[off];
			off += 8;
			continue;
		default:
			break;
		}
		break;
	}
	ev->proto = next;
	if (next != IPPROTO_TCP && next != IPPROTO_UDP)
		return -ENOENT;
	if (off > len)
		return -EMSGSIZE;
	return parse_ports(p + off, len - off, ev);
}

int nflog_parse_ip(uint16_t hw_protocol, const uint8_t *p, size_t len, struct conn_event *ev)
{
	int r;

	switch (hw_protocol) {
	case 0x0800: /* ETH_P_IP */
		r = parse_ipv4(p, len, ev);
		break;
	case 0x86dd: /* ETH_P_IPV6 */
		r = parse_ipv6(p, len, ev);
		break;
	default:
		/* The inet family hands over the packet's own protocol; trust the header. */
		r = len && p[0] >> 4 == 6 ? parse_ipv6(p, len, ev) : parse_ipv4(p, len, ev);
	}
	if (r == -EMSGSIZE) {
		/* addresses and (if reached) the protocol are right; the ports are not known */
		ev->sport = ev->dport = 0;
		ev->ports_unknown = true;
		return r;
	}
	return r < 0 ? -ENOENT : 0;
}

static int verdict_from_prefix(const char *prefix, enum record_verdict *ret)
{
	static const struct {
		const char *prefix;
		enum record_verdict v;
	} map[] = {
		{ LOGUARD_PREFIX_ALLOW, RECORD_ALLOW },
		{ LOGUARD_PREFIX_DENY, RECORD_DENY },
		{ LOGUARD_PREFIX_WOULD_DENY, RECORD_WOULD_DENY },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(prefix, map[i].prefix)) {
			*ret = map[i].v;
			return 0;
		}
	return -EINVAL;
}

int nflog_parse_packet(const struct nlmsghdr *nlh, struct conn_event *ev)
{
	const struct nlattr *tb[NFULA_MAX + 1] = { 0 };
	const struct nfulnl_msg_packet_hdr *ph;
	int r;

	if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
		return -EINVAL;
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, tb) < 0)
		return -EINVAL;
	if (!tb[NFULA_PREFIX] || !tb[NFULA_PAYLOAD] || !tb[NFULA_PACKET_HDR] ||
	    mnl_attr_validate(tb[NFULA_PREFIX], MNL_TYPE_NUL_STRING) < 0 ||
	    mnl_attr_get_payload_len(tb[NFULA_PACKET_HDR]) < sizeof(*ph))
		return -EINVAL;
	memset(ev, 0, sizeof(*ev));
	/* Every packet on the group takes a sequence number, ours or not. */
	ev->has_seq = attr_u32(tb[NFULA_SEQ], &ev->seq);
	if (verdict_from_prefix(mnl_attr_get_str(tb[NFULA_PREFIX]), &ev->verdict) < 0)
		return -ENOENT; /* someone else's log statement on our group */
	ph = mnl_attr_get_payload(tb[NFULA_PACKET_HDR]);
	r = nflog_parse_ip(ntohs(ph->hw_protocol), mnl_attr_get_payload(tb[NFULA_PAYLOAD]),
			   mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]), ev);
	/* The ruleset logs TCP and UDP only: a packet of ours that does not read as one must
	 * not vanish either (the caller counts it). */
	if (r < 0 && r != -EMSGSIZE)
		return -EBADMSG;
	ev->has_uid = attr_u32(tb[NFULA_UID], &ev->uid);
	ev->has_gid = attr_u32(tb[NFULA_GID], &ev->gid);
	return 0;
}

/* Count a sequence gap: packets the kernel logged but could not deliver. */
static void track_seq(struct nflog *a, const struct conn_event *ev, struct record_stats *st)
{
	if (!ev->has_seq)
		return;
	if (a->have_seq && ev->seq != a->next_seq)
		st->lost += (uint32_t)(ev->seq - a->next_seq);
	a->have_seq = true;
	a->next_seq = ev->seq + 1;
}

int nflog_read(struct nflog *a, nflog_cb cb, void *data, struct record_stats *stats)
{
	int n_events = 0;

	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(a->sock), a->buf, READ_BUF_SIZE, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		struct timespec now;
		int left;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return n_events;
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* The socket overflowed: the sequence gap tells how much. */
				stats->enobufs++;
				continue;
			}
			return -errno;
		}
		clock_gettime(CLOCK_REALTIME, &now);
		left = (int)n;
		for (nlh = (const struct nlmsghdr *)a->buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			struct conn_event ev;
			int r = nflog_parse_packet(nlh, &ev);

			if (r == -ENOENT || r == -EBADMSG)
				track_seq(a, &ev, stats);
			if (r == -EBADMSG)
				stats->ports_unknown++; /* not even the IP header: counted only */
			if (r < 0)
				continue;
			ev.time = now;
			stats->received++;
			if (ev.ports_unknown)
				stats->ports_unknown++;
			track_seq(a, &ev, stats);
			n_events++;
			r = cb(&ev, data);
			if (r < 0)
				return r;
		}
	}
}
