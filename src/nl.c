// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The netlink boundary: one NETLINK_NETFILTER socket, batches out, errors in.
 * Facts this relies on (checked on kernel 6.18; docs/architecture.md, "Kernel facts"):
 *  - a batch is processed synchronously inside sendmsg(), so every error and
 *    ACK is queued on our socket when sendmsg() returns;
 *  - on any failing message the kernel reports it by seq and aborts the whole
 *    batch; ACKs for good messages still arrive then, so an ACK is no commit;
 *  - a batch must fit one skb: SO_SNDBUFFORCE lifts the default limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>

#include "nl.h"

#define RECV_BUF_SIZE (64 * 1024)

struct nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	int sndbuf;    /* current send buffer size we asked for */
	char *buf;     /* RECV_BUF_SIZE */
	bool queue_xt; /* the kernel refused nft's queue expression: use the xtables target */
};

int nl_open(struct nl **ret_nl)
{
	struct nl *nl = calloc(1, sizeof(*nl));
	int one = 1, r;

	if (!nl)
		return -ENOMEM;
	nl->buf = malloc(RECV_BUF_SIZE);
	if (!nl->buf) {
		r = -ENOMEM;
		goto fail;
	}
	nl->sock = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl->sock) {
		r = -errno;
		goto fail;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	/* Extended ACKs carry the kernel's reason and the offending attribute;
	 * capped ACKs keep a big failing batch from flooding our receive buffer. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	*ret_nl = nl;
	return 0;
fail:
	nl_close(nl);
	return r;
}

void nl_close(struct nl *nl)
{
	if (!nl)
		return;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->buf);
	free(nl);
}

uint32_t nl_portid(const struct nl *nl)
{
	return nl->portid;
}

uint32_t nl_seq_reserve(struct nl *nl, uint32_t n)
{
	uint32_t first = nl->seq;

	nl->seq += n;
	return first;
}

int nl_request(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	uint32_t seq = nl_seq_reserve(nl, 1);
	ssize_t n;
	int r;

	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl->sock, nl->buf, RECV_BUF_SIZE);
		if (n < 0)
			return -errno;
		r = mnl_cb_run(nl->buf, n, seq, nl->portid, cb, data);
		if (r < 0)
			return -errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *gen = nftnl_gen_alloc();
	uint32_t *genid = data;

	if (!gen)
		return MNL_CB_ERROR;
	if (nftnl_gen_nlmsg_parse(nlh, gen) < 0) {
		nftnl_gen_free(gen);
		return MNL_CB_ERROR;
	}
	*genid = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	return MNL_CB_STOP;
}

int nl_get_genid(struct nl *nl, uint32_t *ret_genid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	uint32_t genid = 0;
	int r;

	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, 0, 0);
	r = nl_request(nl, nlh, gen_cb, &genid);
	if (r < 0)
		return r;
	*ret_genid = genid;
	return 0;
}

/* Raise the send buffer so the whole batch fits one skb; FORCE needs CAP_NET_ADMIN,
 * which applying needs anyway. */
static int ensure_sndbuf(struct nl *nl, size_t len)
{
	int want, fd = mnl_socket_get_fd(nl->sock);

	if (len > (size_t)(INT32_MAX / 2 - 65536))
		return -EMSGSIZE;
	want = (int)len + 65536;
	if (want <= nl->sndbuf)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)) < 0)
		return -errno;
	nl->sndbuf = want;
	return 0;
}

/* Extended ACK attributes: the kernel's message and the offending attribute offset. */
struct ext_ack {
	const char *msg;
	uint32_t offset;
};

static int ext_ack_attr_cb(const struct nlattr *a, void *data)
{
	struct ext_ack *ea = data;

	switch (mnl_attr_get_type(a)) {
	case NLMSGERR_ATTR_MSG:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
			ea->msg = mnl_attr_get_str(a);
		break;
	case NLMSGERR_ATTR_OFFS:
		if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
			ea->offset = mnl_attr_get_u32(a);
		break;
	}
	return MNL_CB_OK;
}

static void parse_ext_ack(const struct nlmsghdr *nlh, struct ext_ack *ea)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*err);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += err->msg.nlmsg_len - sizeof(err->msg);
	if (mnl_nlmsg_get_payload_len(nlh) < off)
		return;
	mnl_attr_parse(nlh, off, ext_ack_attr_cb, ea);
}

/* Turn one kernel error into a diagnostic that names the policy node. */
static void report_error(const struct emit_batch *b, const struct nlmsghdr *nlh,
			 struct diags *diags)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	struct ext_ack ea = { 0 };
	const struct loc *loc = NULL;
	char *what = NULL;

	parse_ext_ack(nlh, &ea);
	if (emit_batch_describe(b, err->msg.nlmsg_seq, ea.offset, &what, &loc) < 0)
		what = NULL;
	if (err->error == -ERESTART || err->error == -EINTR)
		diags_add(diags, DIAG_ERROR, loc,
			  "the ruleset changed while loguard was applying it; nothing was changed");
	else
		diags_add(diags, DIAG_ERROR, loc, "kernel rejected %s: %s%s%s%s",
			  what ? what : "a message", strerror(-err->error), ea.msg ? " (" : "",
			  ea.msg ? ea.msg : "", ea.msg ? ")" : "");
	free(what);
}

int nl_send_batch(struct nl *nl, const struct emit_batch *b, struct diags *diags)
{
	struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
	struct msghdr msg = { .msg_name = &snl, .msg_namelen = sizeof(snl) };
	struct iovec *iov = NULL;
	size_t n_iov, len;
	int first_err = 0, r;

	r = emit_batch_iovec(b, &iov, &n_iov, &len);
	if (r < 0)
		return r;
	r = ensure_sndbuf(nl, len);
	if (r < 0)
		goto out;
	msg.msg_iov = iov;
	msg.msg_iovlen = n_iov;
	if (sendmsg(mnl_socket_get_fd(nl->sock), &msg, 0) < 0) {
		r = -errno;
		goto out;
	}
	/* Everything the kernel has to say is queued now: drain without blocking. */
	for (;;) {
		ssize_t got =
			recv(mnl_socket_get_fd(nl->sock), nl->buf, RECV_BUF_SIZE, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int left;

		if (got < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			/* ENOBUFS: errors overflowed the buffer; the batch failed. */
			r = -errno;
			if (!first_err)
				first_err = r;
			diags_add(diags, DIAG_ERROR, NULL, "reading kernel replies: %s",
				  strerror(errno));
			break;
		}
		left = (int)got;
		for (nlh = (const struct nlmsghdr *)nl->buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *err;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			err = mnl_nlmsg_get_payload(nlh);
			if (err->error == 0)
				continue; /* an ACK says nothing about the commit */
			if (!first_err)
				first_err = err->error;
			report_error(b, nlh, diags);
		}
	}
	r = first_err;
out:
	free(iov);
	return r;
}

bool nl_queue_xt(const struct nl *nl)
{
	return nl->queue_xt;
}

void nl_set_queue_xt(struct nl *nl)
{
	nl->queue_xt = true;
}
