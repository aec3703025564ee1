// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * NFQUEUE reader, speaking nfnetlink_queue over libmnl (no libnetfilter_queue). The sibling of
 * nflog.c: the ruleset queues the packets its rules cannot judge, this reads them and gives
 * verdicts. Facts used (checked on kernel 6.18 in a network namespace):
 *  - the whole config (bind, copy mode, maxlen, flags) goes in one message, which the kernel
 *    applies in one go: after its ACK every queued packet has our copy mode and uid/gid;
 *  - binding a queue another socket holds fails with EPERM, the error that a missing
 *    CAP_NET_ADMIN gives too: an obsolete PF_UNBIND, which the kernel answers with 0 once the
 *    capability check passed, tells the two apart;
 *  - NF_REPEAT runs the queueing base chain again from its first rule, with the mark the
 *    verdict set; NF_ACCEPT continues after the queueing chain;
 *  - NFQA_UID/GID come with every TCP SYN from connect() and every UDP datagram, IPv4, IPv6
 *    and v4-mapped alike: those packets carry their full socket;
 *  - a verdict gets no ACK; one the kernel rejects (an id no longer queued) comes back as
 *    an NLMSG_ERROR message among the packets.
 * Those checks queued with the xtables NFQUEUE target through nft_compat: that kernel has no
 * nft_queue (CONFIG_NFT_QUEUE unset), so nft's own `queue` statement fails with ENOENT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include "nflog.h"
#include "nfqueue.h"

/* An IPv6 header, a few extension headers and the ports; the rest is not ours to read. */
#define COPY_RANGE 160
/* Packets waiting for a verdict; beyond it the kernel drops new ones (no FAIL_OPEN). */
#define QUEUE_MAXLEN 4096
/* Each queued packet is one skb of 832 bytes truesize (measured, SYNs of either family): a
 * full queue fits the socket with room to spare, so the kernel's queue limit comes first. */
#define RCVBUF_SIZE (QUEUE_MAXLEN * 2048)
/* One packet per datagram, so this is plenty. */
#define READ_BUF_SIZE (64 * 1024)
/* Verdicts gathered for one send (~40 bytes each): nfnetlink takes every message of a
 * datagram in turn, so a turn's verdicts cost one syscall, not one each. */
#define VERDICT_BUF_SIZE (8 * 1024)
#define VERDICT_MAX_LEN	 64

struct nfqueue {
	struct mnl_socket *sock;
	uint16_t num;
	unsigned flags; /* NFQUEUE_* */
	uint32_t seq;
	size_t vlen; /* verdicts waiting in vbuf */
	char buf[READ_BUF_SIZE];
	char vbuf[VERDICT_BUF_SIZE];
};

/* A queue message for our queue number; config messages are numbered for their ACKs. */
static struct nlmsghdr *put_msg(struct nfqueue *q, char *buf, uint16_t type)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	/* Not nftnl_nlmsg_build_hdr(): it ORs in the nf_tables subsystem. */
	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++q->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(q->num);
	return nlh;
}

static struct nlmsghdr *put_config(struct nfqueue *q, char *buf, uint8_t command)
{
	struct nfqnl_msg_config_cmd cmd = { .command = command };
	struct nlmsghdr *nlh;

	/* Every caller's buf is MNL_SOCKET_BUFFER_SIZE; zeroed: padding is sent as it is. */
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE);
	nlh = put_msg(q, buf, NFQNL_MSG_CONFIG);

	mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
	return nlh;
}

/* A packet queued while the kernel was still applying our config (another CPU, right after
 * the bind) may lack its payload or uid/gid: have it run the chain again and be queued anew. */
static int requeue_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nfqueue_packet p;

	if (nfqueue_parse_packet(nlh, &p) == -EINVAL)
		return MNL_CB_OK;
	return nfqueue_verdict(data, p.id, NF_REPEAT, false, 0) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/* Send a config message with NLM_F_ACK and wait for the answer. The kernel handles it inside
 * sendto(), so the ACK is already queued: reading cannot block on the non-blocking socket. */
static int request(struct nfqueue *q, struct nlmsghdr *nlh)
{
	uint32_t portid = mnl_socket_get_portid(q->sock);
	int r;

	nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(q->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		ssize_t n = mnl_socket_recvfrom(q->sock, q->buf, sizeof(q->buf));

		if (n < 0)
			return -errno;
		r = mnl_cb_run(q->buf, (size_t)n, nlh->nlmsg_seq, portid, requeue_cb, q);
	} while (r == MNL_CB_OK); /* packets only so far: the ACK comes after them */
	return r < 0 ? -errno : 0;
}

/* Binding failed with EPERM: another socket holds the queue unless we lack CAP_NET_ADMIN. */
static int bind_error(struct nfqueue *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	return request(q, put_config(q, buf, NFQNL_CFG_CMD_PF_UNBIND)) == 0 ? -EBUSY : -EPERM;
}

int nfqueue_open(uint16_t num, struct nfqueue **ret)
{
	return nfqueue_open_flags(num, 0, ret);
}

int nfqueue_open_flags(uint16_t num, unsigned open_flags, struct nfqueue **ret)
{
	uint32_t range = open_flags & NFQUEUE_COPY_ALL_HEADERS ? NFLOG_COPY_RANGE : COPY_RANGE;
	struct nfqnl_msg_config_params params = { .copy_range = htonl(range),
						  .copy_mode = NFQNL_COPY_PACKET };
	/* GSO: hand over large packets whole and skip checksumming; we read headers only. */
	uint32_t flags = NFQA_CFG_F_UID_GID | NFQA_CFG_F_GSO |
			 (open_flags & NFQUEUE_FAIL_OPEN ? NFQA_CFG_F_FAIL_OPEN : 0);
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nfqueue *q = calloc(1, sizeof(*q));
	struct nlmsghdr *nlh;
	int rcvbuf = RCVBUF_SIZE, fd, r;

	if (!q)
		return -ENOMEM;
	q->num = num;
	q->flags = open_flags;
	q->seq = (uint32_t)time(NULL);
	q->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!q->sock || mnl_socket_bind(q->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	fd = mnl_socket_get_fd(q->sock);
	/* FORCE needs CAP_NET_ADMIN, which binding a queue needs anyway. NETLINK_NO_ENOBUFS stays
	 * off: an overflow must be seen. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* One message, so that no packet is queued to us with a half-applied config. */
	nlh = put_config(q, buf, NFQNL_CFG_CMD_BIND);
	mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);
	mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(QUEUE_MAXLEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
	r = request(q, nlh);
	if (r == -EPERM)
		r = bind_error(q);
	if (r < 0)
		goto fail;
	*ret = q;
	return 0;
fail:
	nfqueue_close(q);
	return r;
}

int nfqueue_fd(const struct nfqueue *q)
{
	return mnl_socket_get_fd(q->sock);
}

/* A verdict message at buf (at least VERDICT_MAX_LEN bytes), or NULL for an unknown verdict. */
static struct nlmsghdr *put_verdict(struct nfqueue *q, char *buf, uint32_t id, uint32_t verdict,
				    bool set_mark, uint32_t mark)
{
	struct nfqnl_msg_verdict_hdr vh = { .verdict = htonl(verdict), .id = htonl(id) };
	struct nlmsghdr *nlh;

	if (verdict != NF_ACCEPT && verdict != NF_DROP && verdict != NF_REPEAT)
		return NULL;
	nlh = put_msg(q, buf, NFQNL_MSG_VERDICT);
	mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(vh), &vh);
	if (set_mark)
		mnl_attr_put_u32(nlh, NFQA_MARK, htonl(mark));
	return nlh;
}

int nfqueue_verdict(struct nfqueue *q, uint32_t id, uint32_t verdict, bool set_mark, uint32_t mark)
{
	char buf[VERDICT_MAX_LEN];
	struct nlmsghdr *nlh = put_verdict(q, buf, id, verdict, set_mark, mark);

	if (!nlh)
		return -EINVAL;
	if (mnl_socket_sendto(q->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

int nfqueue_verdict_add(struct nfqueue *q, uint32_t id, uint32_t verdict, bool set_mark,
			uint32_t mark)
{
	struct nlmsghdr *nlh;
	int r;

	if (q->vlen + VERDICT_MAX_LEN > sizeof(q->vbuf) && (r = nfqueue_verdict_flush(q)) < 0)
		return r;
	nlh = put_verdict(q, q->vbuf + q->vlen, id, verdict, set_mark, mark);
	if (!nlh)
		return -EINVAL;
	q->vlen += NLMSG_ALIGN(nlh->nlmsg_len);
	return 0;
}

int nfqueue_verdict_flush(struct nfqueue *q)
{
	size_t len = q->vlen;

	q->vlen = 0;
	if (len && mnl_socket_sendto(q->sock, q->vbuf, len) < 0)
		return -errno;
	return 0;
}

void nfqueue_close(struct nfqueue *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	if (!q)
		return;
	if (q->sock) {
		nfqueue_verdict_flush(q);
		/* Closing alone would unbind too; no ACK: packets may be ahead of it. The kernel
		 * drops what still waits for a verdict. */
		struct nlmsghdr *nlh = put_config(q, buf, NFQNL_CFG_CMD_UNBIND);

		mnl_socket_sendto(q->sock, nlh, nlh->nlmsg_len);
		mnl_socket_close(q->sock);
	}
	free(q);
}

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, NFQA_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static bool attr_u32(const struct nlattr *a, uint32_t *ret)
{
	if (!a || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return false;
	*ret = ntohl(mnl_attr_get_u32(a));
	return true;
}

int nfqueue_parse_packet(const struct nlmsghdr *nlh, struct nfqueue_packet *p)
{
	const struct nlattr *tb[NFQA_MAX + 1] = { 0 };
	const struct nfqnl_msg_packet_hdr *ph;

	if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET) ||
	    nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nfgenmsg))
		return -EINVAL;
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, tb) < 0)
		return -EINVAL;
	if (!tb[NFQA_PACKET_HDR] || mnl_attr_get_payload_len(tb[NFQA_PACKET_HDR]) < sizeof(*ph))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	ph = mnl_attr_get_payload(tb[NFQA_PACKET_HDR]);
	p->id = ntohl(ph->packet_id);
	attr_u32(tb[NFQA_MARK], &p->mark); /* absent: mark 0 */
	p->ev.has_uid = attr_u32(tb[NFQA_UID], &p->ev.uid);
	p->ev.has_gid = attr_u32(tb[NFQA_GID], &p->ev.gid);
	clock_gettime(CLOCK_REALTIME, &p->ev.time);
	if (!tb[NFQA_PAYLOAD] ||
	    nflog_parse_ip(ntohs(ph->hw_protocol), mnl_attr_get_payload(tb[NFQA_PAYLOAD]),
			   mnl_attr_get_payload_len(tb[NFQA_PAYLOAD]), &p->ev) < 0)
		return -ENOENT;
	return 0;
}

int nfqueue_read(struct nfqueue *q, nfqueue_cb cb, void *data, size_t max, uint64_t *enobufs)
{
	int n_packets = 0;

	while (!max || (size_t)n_packets < max) {
		ssize_t n = recv(mnl_socket_get_fd(q->sock), q->buf, sizeof(q->buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int left;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return n_packets;
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* The kernel could not deliver a packet and dropped it. */
				if (enobufs)
					(*enobufs)++;
				continue;
			}
			return -errno;
		}
		left = (int)n;
		for (nlh = (const struct nlmsghdr *)q->buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			struct nfqueue_packet p;
			int r = nfqueue_parse_packet(nlh, &p);

			/* Not a packet: a rejected verdict's error, for an id that is gone. */
			if (r == -EINVAL)
				continue;
			/* Nothing we can judge must pass (a routing header can push the ports past
			 * the copy range): drop it, a sender of TCP retransmits. Unless the rules
			 * after the queue decide (NFQUEUE_PASS_UNREADABLE): then cb gets it. */
			if (r == -ENOENT && (q->flags & NFQUEUE_PASS_UNREADABLE)) {
				p.ev.ports_unknown = true;
				n_packets++;
				r = cb(&p, data);
			} else if (r < 0) {
				r = nfqueue_verdict(q, p.id, NF_DROP, false, 0);
			} else {
				n_packets++;
				r = cb(&p, data);
			}
			if (r < 0)
				return r;
		}
	}
	return n_packets;
}
