// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Who would receive a connection to a local port, and when such sockets go away.
 *
 * Facts this relies on (read in the kernel source, checked on 6.18):
 *  - A sock_diag dump honours INET_DIAG_REQ_BYTECODE for TCP listeners and for UDP; S_EQ
 *    compares the socket's own port in host order. (id.idiag_sport, network order, filters a
 *    dump too on 6.18, but that is each protocol's own loop, not an interface: ss(8) uses the
 *    bytecode.) A TCP dump asking only for TCPF_LISTEN walks the listening hash and never
 *    the established one.
 *  - A dump of family F lists sockets of family F only: an IPv4 packet needs an AF_INET and an
 *    AF_INET6 dump, as the receive path also finds AF_INET6 sockets that are not V6ONLY, bound
 *    to :: or to ::ffff:a.b.c.d (their sk_rcv_saddr is the IPv4 address or 0).
 *  - The receive paths (__inet_lookup_listener, __udp4_lib_lookup and their IPv6 twins) look
 *    for the packet's exact destination address first and for the wildcard only when nothing
 *    is bound to that address: an exact match hides every wildcard socket. Within one of the
 *    two, scores prefer sockets bound to the device and of the packet's own family, and
 *    sk_incoming_cpu breaks ties per packet: only one uid among them makes a safe answer.
 *  - A connected UDP socket (peer set) receives only its peer's datagrams, ahead of the
 *    unconnected ones on the same address; we cannot tell the sender here, so one of another
 *    uid makes the answer ambiguous.
 *  - Local traffic goes out lo, but the receive path looks sockets up with the input device
 *    the route gives (rt_iif): lo for 127/8 and ::1, the device that carries the address for
 *    the host's other addresses (10.99.0.1 on d0 arrives "on d0"), the sender's own device
 *    when it is bound to one. So a listener bound to d0 receives local connections to d0's
 *    addresses, and one bound to lo those of senders bound to lo: with device-bound sockets,
 *    who receives depends on the sender, which the kernel's sets cannot see. Checked here
 *    with a d0-bound and a lo-bound listener on one port (t_owner_stale.sh).
 *  - Binding conflicts: a socket bound to no device conflicts with every overlapping address
 *    on the port whatever the other's device, and a listening socket with every bound one
 *    (SO_REUSEADDR only relaxes sockets that do not listen); SO_REUSEPORT needs one uid. So
 *    a TCP listener bound to no device that wins the lookup both for "no device" (dif 0:
 *    only such sockets match) and for lo (dif 1: lo-bound ones too) is the receiver for every
 *    sender until it stops listening.
 *  - An exact (non-dump) TCP request is answered by inet_diag_find_one_icsk(): the kernel's
 *    own __inet_lookup_listener() for idiag_src:idiag_sport with input device idiag_if,
 *    dual-stack sockets included for AF_INET: O(1), whatever the number of listeners, where
 *    a dump walks every listener of the host.
 *  - SO_REUSEPORT requires one uid for every socket of a group, TCP and UDP; UDP SO_REUSEADDR
 *    lets any uid share an address and port.
 *  - Destroy notifications are sent from __sk_free(), when the last reference to the socket
 *    goes (a listener's close() when nothing else holds it), with the socket's cookie, in the
 *    socket's network namespace only. Netlink applies socket filters to multicast delivery,
 *    so a classic BPF filter keeps a connection flood from waking us per closed connection.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include "listeners.h"

/* A dump skb is never larger than our receive buffer, which the kernel caps at 32 KiB. */
#define DUMP_BUF_SIZE	 (32 * 1024)
#define DESTROY_RCVBUF	 (4 * 1024 * 1024)
#define DESTROY_READ_MAX 1024 /* per call, so a flood cannot starve the poll loop */
#define LOOPBACK_IFINDEX 1

/* The exact address of the packet, or a wildcard. */
enum {
	RANK_NONE,
	RANK_WILDCARD,
	RANK_EXACT,
};

struct listeners {
	struct mnl_socket *diag;    /* dumps */
	struct mnl_socket *destroy; /* SKNLGRP_*_DESTROY, filtered */
	uint32_t seq;
	char *buf; /* DUMP_BUF_SIZE */
};

/* Uids seen among sockets of one rank. */
struct uids {
	bool seen;
	bool mixed; /* more than one */
	uint32_t uid;
};

/* One listeners_find(): the packet and what the dumps found so far. */
struct find {
	bool v4; /* an IPv4 packet */
	const struct in6_addr *dst;
	uint16_t dport;
	int err;
	int rank; /* of the best receiver so far */
	int score;
	struct listener best;
	uint32_t best_if;      /* the device best is bound to */
	struct uids receivers; /* without a peer, of rank `rank` */
	struct uids peers[RANK_EXACT + 1];
	struct uids devbound; /* receivers bound to a device other than lo, any rank */
	struct listener dev_best;
};

static void uids_add(struct uids *u, uint32_t uid)
{
	if (!u->seen) {
		u->seen = true;
		u->uid = uid;
	} else if (u->uid != uid) {
		u->mixed = true;
	}
}

static bool mem_is_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

/* ::ffff:0.0.0.0 and ::ffff:a.b.c.d as the 12-byte prefix of an IPv4-mapped address. */
static bool is_v4mapped(const void *addr)
{
	static const unsigned char prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(addr, prefix, sizeof(prefix));
}

/* How a socket's own address (idiag_src, as sock_diag reports it) matches the packet's
 * destination; RANK_NONE if the socket cannot receive it. */
static int local_rank(const struct find *f, uint8_t family, const void *src, bool v6only)
{
	const unsigned char *a = src;

	if (family == AF_INET) {
		if (!f->v4)
			return RANK_NONE;
		if (!memcmp(a, f->dst, 4))
			return RANK_EXACT;
		return mem_is_zero(a, 4) ? RANK_WILDCARD : RANK_NONE;
	}
	if (family != AF_INET6)
		return RANK_NONE;
	if (!f->v4) {
		if (!memcmp(a, f->dst, 16))
			return RANK_EXACT;
		return mem_is_zero(a, 16) ? RANK_WILDCARD : RANK_NONE;
	}
	/* An IPv4 packet reaches a dual-stack socket bound to ::, ::ffff:0.0.0.0 or its own
	 * address mapped: the kernel stores those as the IPv4 sk_rcv_saddr. */
	if (v6only)
		return RANK_NONE;
	if (mem_is_zero(a, 16) || (is_v4mapped(a) && mem_is_zero(a + 12, 4)))
		return RANK_WILDCARD;
	if (is_v4mapped(a) && !memcmp(a + 12, f->dst, 4))
		return RANK_EXACT;
	return RANK_NONE;
}

static uint64_t diag_cookie(const struct inet_diag_msg *m)
{
	return m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
}

/* The socket a sock_diag answer describes: cookie, owner, inode and cgroup (who listens). */
static struct listener diag_listener(const struct nlmsghdr *nlh)
{
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	struct listener ls = { .cookie = diag_cookie(m),
			       .uid = m->idiag_uid,
			       .inode = m->idiag_inode };
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(*m))
	{
		if (mnl_attr_get_type(a) == INET_DIAG_CGROUP_ID &&
		    mnl_attr_validate(a, MNL_TYPE_U64) == 0) {
			ls.has_cgroup_id = true;
			ls.cgroup_id = mnl_attr_get_u64(a);
		}
	}
	return ls;
}

/* One socket of a dump: a receiver, a connected UDP socket, or neither. */
static void find_consider(struct find *f, const struct nlmsghdr *nlh)
{
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	bool v6only = false, peer;
	int rank, score;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m)) {
		f->err = -EPROTO;
		return;
	}
	/* The bytecode filtered already; this keeps a kernel that ignored it honest. */
	if (ntohs(m->id.idiag_sport) != f->dport)
		return;
	mnl_attr_for_each(a, nlh, sizeof(*m))
	{
		if (mnl_attr_get_type(a) == INET_DIAG_SKV6ONLY &&
		    mnl_attr_validate(a, MNL_TYPE_U8) == 0)
			v6only = mnl_attr_get_u8(a);
	}
	rank = local_rank(f, m->idiag_family, m->id.idiag_src, v6only);
	if (rank == RANK_NONE)
		return;
	/* TCP dumps list listeners only; for UDP a peer address or port means connected. */
	peer = m->id.idiag_dport ||
	       !mem_is_zero(m->id.idiag_dst, m->idiag_family == AF_INET ? 4 : 16);
	if (peer) {
		uids_add(&f->peers[rank], m->idiag_uid);
		return;
	}
	/* Receives from senders bound to that device and for that device's addresses. */
	if (m->id.idiag_if && m->id.idiag_if != LOOPBACK_IFINDEX) {
		if (!f->devbound.seen)
			f->dev_best = diag_listener(nlh);
		uids_add(&f->devbound, m->idiag_uid);
		return;
	}
	/* The kernel's order within a rank, but for sk_incoming_cpu: bound to lo, then the
	 * packet's family. It only picks which uid we name first. */
	score = (m->id.idiag_if == LOOPBACK_IFINDEX) * 2 +
		(m->idiag_family == (f->v4 ? AF_INET : AF_INET6));
	if (rank < f->rank)
		return;
	if (rank > f->rank) {
		f->rank = rank;
		f->receivers = (struct uids){ 0 };
		f->score = -1;
	}
	uids_add(&f->receivers, m->idiag_uid);
	if (score > f->score) {
		f->score = score;
		f->best = diag_listener(nlh);
		f->best_if = m->id.idiag_if;
	}
}

/* Start a sock_diag request for sockets of family and proto in states (a bit per TCP state)
 * in l->buf, with the next seq (*ret_seq); the caller fills req->id and sends it. */
static struct inet_diag_req_v2 *diag_request(struct listeners *l, uint16_t nlm_flags,
					     uint8_t family, uint8_t proto, uint32_t states,
					     uint32_t *ret_seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(l->buf);
	struct inet_diag_req_v2 *req;

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | nlm_flags;
	nlh->nlmsg_seq = *ret_seq = ++l->seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = proto;
	req->idiag_states = states;
	req->id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	return req;
}

/* Read the next answer into l->buf (blocking: the kernel always answers). Its length or
 * -errno (-EMSGSIZE: a message larger than the buffer). */
static int diag_recv(struct listeners *l)
{
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(l->diag), l->buf, DUMP_BUF_SIZE, MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return n > DUMP_BUF_SIZE ? -EMSGSIZE : (int)n;
	}
}

/* The error an NLMSG_ERROR carries (never 0: an ACK is not an answer here). */
static int diag_error(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
		return -EPROTO;
	return e->error < 0 ? e->error : -EPROTO;
}

/* Dump the sockets of family and proto bound to f->dport into f. 0 or -errno. */
static int find_dump(struct listeners *l, uint8_t family, uint8_t proto, struct find *f)
{
	/* "Own port == dport": S_EQ jumps past the end (accept) or 4 bytes beyond it (reject),
	 * the port in the second op's `no`, as ss(8) builds it. */
	const struct inet_diag_bc_op bc[2] = {
		{ .code = INET_DIAG_BC_S_EQ, .yes = sizeof(bc), .no = sizeof(bc) + 4 },
		{ .no = f->dport },
	};
	struct nlmsghdr *nlh = (struct nlmsghdr *)l->buf;
	uint32_t seq;

	/* UDP: every state, so that connected sockets on the port are seen too. */
	diag_request(l, NLM_F_DUMP, family, proto, proto == IPPROTO_TCP ? 1U << TCP_LISTEN : ~0U,
		     &seq);
	mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(bc), bc);
	if (mnl_socket_sendto(l->diag, nlh, nlh->nlmsg_len) < 0)
		return -errno;

	/* The kernel always finishes a dump with NLMSG_DONE or an error: blocking is safe.
	 * Messages of another seq are what is left of a dump an earlier call gave up on. */
	for (;;) {
		int len = diag_recv(l);

		if (len < 0)
			return len;
		for (nlh = (struct nlmsghdr *)l->buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_DONE) {
				const int *err = mnl_nlmsg_get_payload(nlh);

				if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(*err) && *err < 0)
					return *err;
				return f->err;
			}
			if (nlh->nlmsg_type == NLMSG_ERROR)
				return diag_error(nlh);
			if (nlh->nlmsg_type == SOCK_DIAG_BY_FAMILY)
				find_consider(f, nlh);
		}
	}
}

/* The TCP listener the kernel picks for a SYN of family to dst:dport arriving on device dif,
 * by one exact request. 0 (ret and *ret_if filled), -ENOENT or -errno. */
static int find_exact(struct listeners *l, int family, const struct in6_addr *dst, uint16_t dport,
		      uint32_t dif, struct listener *ret, uint32_t *ret_if)
{
	struct inet_diag_req_v2 *req;
	struct nlmsghdr *nlh;
	uint32_t seq;

	req = diag_request(l, 0, (uint8_t)family, IPPROTO_TCP, 1U << TCP_LISTEN, &seq);
	/* TCP's exact lookup takes idiag_src:idiag_sport as the local end; no peer. */
	memcpy(req->id.idiag_src, dst, family == AF_INET ? 4 : 16);
	req->id.idiag_sport = htons(dport);
	req->id.idiag_if = dif;
	nlh = (struct nlmsghdr *)l->buf;
	if (mnl_socket_sendto(l->diag, nlh, nlh->nlmsg_len) < 0)
		return -errno;

	/* The kernel answers an exact request at once, with the socket or an error; older
	 * messages (a dump given up on) are skipped by seq. */
	for (;;) {
		int len = diag_recv(l);

		if (len < 0)
			return len;
		for (nlh = (struct nlmsghdr *)l->buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct inet_diag_msg *m;

			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR)
				return diag_error(nlh);
			if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    mnl_nlmsg_get_payload_len(nlh) < sizeof(*m))
				return -EPROTO;
			m = mnl_nlmsg_get_payload(nlh);
			/* A lookup with no peer finds listeners only; be sure. */
			if (m->idiag_state != TCP_LISTEN || ntohs(m->id.idiag_sport) != dport)
				return -ENOENT;
			*ret = diag_listener(nlh);
			*ret_if = m->id.idiag_if;
			return 0;
		}
	}
}

int listeners_find(struct listeners *l, int family, uint8_t proto, const struct in6_addr *dst,
		   uint16_t dport, unsigned flags, struct listener *ret)
{
	struct find f = { .v4 = family == AF_INET, .dst = dst, .dport = dport };
	const struct uids *p;
	int r;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	if (proto == IPPROTO_TCP) {
		struct listener any, lo;
		uint32_t any_if, lo_if;

		/* The common case in O(1): a listener bound to no device that lo-bound ones do
		 * not outrank is every sender's receiver (see the top). Else dump the port. */
		int r_any, r_lo;

		r_any = find_exact(l, family, dst, dport, 0, &any, &any_if);
		if (r_any < 0 && r_any != -ENOENT)
			return r_any;
		r_lo = find_exact(l, family, dst, dport, LOOPBACK_IFINDEX, &lo, &lo_if);
		if (r_lo < 0 && r_lo != -ENOENT)
			return r_lo;
		if (r_any == 0 && r_lo == 0 && lo.cookie == any.cookie && !any_if) {
			*ret = any;
			ret->cacheable = true;
			return 0;
		}
		/* A device-bound socket is involved, or nobody answered: only a dump tells. */
		if (flags & LISTENERS_FIND_NO_DUMP) {
			if (r_any < 0 && r_lo < 0)
				return -ENOENT;
			*ret = r_lo == 0 ? lo : any;
			ret->contested = true;
			return 0;
		}
	}
	if (family == AF_INET) {
		r = find_dump(l, AF_INET, proto, &f);
		if (r < 0)
			return r;
	}
	r = find_dump(l, AF_INET6, proto, &f);
	if (r < 0)
		return r;
	/* Only sockets bound to other devices: theirs for senders on those devices. */
	if (f.rank == RANK_NONE && f.devbound.seen) {
		*ret = f.dev_best;
		ret->contested = f.devbound.mixed;
		return 0;
	}
	/* Only a connected socket: it takes its peer's datagrams, everyone else's are refused. */
	if (f.rank == RANK_NONE)
		return -ENOENT;
	*ret = f.best;
	ret->ambiguous = f.receivers.mixed;
	/* Connected sockets at a less specific address are hidden by the receivers. */
	for (int rank = f.rank; rank <= RANK_EXACT; rank++) {
		p = &f.peers[rank];
		if (p->seen && (p->mixed || p->uid != ret->uid))
			ret->ambiguous = true;
	}
	ret->contested = f.devbound.seen && (f.devbound.mixed || f.devbound.uid != ret->uid);
	/* A receiver bound to lo gets only lo's senders; one bound to nothing, with no
	 * device-bound socket beside it, everyone's. */
	ret->cacheable = !ret->ambiguous && !ret->contested && !f.devbound.seen && !f.best_if;
	return 0;
}

/* ---- destroy notifications ---- */

/*
 * Keep a notification only if the socket had no peer port (listeners, unconnected UDP) and a
 * port of its own (was bound): connections, and sockets made and closed unbound, are dropped
 * in the kernel. Offsets are from the start of the netlink message: the nlmsghdr, then
 * struct inet_diag_msg. A message too short for them is dropped as well.
 */
#define DPORT_OFF                                            \
	(NLMSG_HDRLEN + offsetof(struct inet_diag_msg, id) + \
	 offsetof(struct inet_diag_sockid, idiag_dport))
#define SPORT_OFF                                            \
	(NLMSG_HDRLEN + offsetof(struct inet_diag_msg, id) + \
	 offsetof(struct inet_diag_sockid, idiag_sport))

static const struct sock_filter no_peer_filter[] = {
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, DPORT_OFF),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3), /* peer port: drop */
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SPORT_OFF),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), /* no own port: drop */
	BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	BPF_STMT(BPF_RET | BPF_K, 0),
};

/* LISTENERS_FILTER_PORTS_MAX: two instructions per port; the kernel allows 4096. */

int listeners_follow_ports(struct listeners *l, const uint16_t *ports, size_t n)
{
	struct sock_filter *f;
	struct sock_fprog prog;
	size_t k = 0;
	int r = 0;

	if (n > LISTENERS_FILTER_PORTS_MAX) {
		prog.len = sizeof(no_peer_filter) / sizeof(no_peer_filter[0]);
		prog.filter = (struct sock_filter *)no_peer_filter;
		if (setsockopt(mnl_socket_get_fd(l->destroy), SOL_SOCKET, SO_ATTACH_FILTER, &prog,
			       sizeof(prog)) < 0)
			return -errno;
		return 0;
	}
	/* Load, test, [relay,] load, two per port, return: at most 5 + 2n. */
	f = calloc(5 + 2 * n, sizeof(*f));
	if (!f)
		return -ENOMEM;
	/* dport != 0: a connection, drop (jump to the final return). */
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, DPORT_OFF);
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0,
					      (uint8_t)0); /* patched below */
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SPORT_OFF);
	for (size_t i = 0; i < n; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ports[i], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	/* The peer-port test's false branch goes to the last instruction. A jump offset is 8
	 * bits, so past 255 instructions it lands on a relay: reorder as "jeq 0 → next, else
	 * fall into a ja to the end". */
	if (k - 3 <= 255) {
		f[1].jf = (uint8_t)(k - 3);
	} else {
		k = 0;
		f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, DPORT_OFF);
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, (uint32_t)(2 * n + 1));
		f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SPORT_OFF);
		for (size_t i = 0; i < n; i++) {
			f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ports[i],
							      0, 1);
			f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
		}
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	}
	prog.len = (unsigned short)k;
	prog.filter = f;
	if (setsockopt(mnl_socket_get_fd(l->destroy), SOL_SOCKET, SO_ATTACH_FILTER, &prog,
		       sizeof(prog)) < 0)
		r = -errno;
	free(f);
	return r;
}

static int destroy_open(struct listeners *l)
{
	static const int groups[] = {
		SKNLGRP_INET_TCP_DESTROY,
		SKNLGRP_INET_UDP_DESTROY,
		SKNLGRP_INET6_TCP_DESTROY,
		SKNLGRP_INET6_UDP_DESTROY,
	};
	const struct sock_fprog prog = {
		.len = sizeof(no_peer_filter) / sizeof(no_peer_filter[0]),
		.filter = (struct sock_filter *)no_peer_filter,
	};
	int rcvbuf = DESTROY_RCVBUF, fd;

	l->destroy = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!l->destroy)
		return -errno;
	fd = mnl_socket_get_fd(l->destroy);
	/* The filter before the groups: nothing unfiltered is ever queued. */
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	/* FORCE needs CAP_NET_ADMIN, which the destroy groups need anyway. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (mnl_socket_bind(l->destroy, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		int group = groups[i];

		if (mnl_socket_setsockopt(l->destroy, NETLINK_ADD_MEMBERSHIP, &group,
					  sizeof(group)) < 0)
			return -errno;
	}
	return 0;
}

/* With the destroy socket (follow) or for lookups only. */
static int open_sockets(bool follow, struct listeners **ret)
{
	struct listeners *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->buf = malloc(DUMP_BUF_SIZE);
	if (!l->buf) {
		r = -ENOMEM;
		goto fail;
	}
	l->diag = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!l->diag || mnl_socket_bind(l->diag, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto fail;
	}
	l->seq = (uint32_t)time(NULL);
	r = follow ? destroy_open(l) : 0;
	if (r < 0)
		goto fail;
	*ret = l;
	return 0;
fail:
	listeners_close(l);
	return r;
}

int listeners_open(struct listeners **ret)
{
	return open_sockets(true, ret);
}

int listeners_open_lookup(struct listeners **ret)
{
	return open_sockets(false, ret);
}

int listeners_destroy_fd(const struct listeners *l)
{
	return mnl_socket_get_fd(l->destroy);
}

int listeners_read_destroyed(struct listeners *l, listeners_destroy_cb cb, void *data)
{
	int fd = mnl_socket_get_fd(l->destroy), n = 0;

	while (n < DESTROY_READ_MAX) {
		struct sockaddr_nl from;
		socklen_t from_len = sizeof(from);
		struct nlmsghdr *nlh;
		ssize_t len;
		int left;

		len = recvfrom(fd, l->buf, DUMP_BUF_SIZE, MSG_DONTWAIT, (struct sockaddr *)&from,
			       &from_len);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			if (errno != ENOBUFS)
				return -errno;
			/* The kernel dropped notifications: any cached listener may be gone. */
			cb(data, 0);
			n++;
			continue;
		}
		/* Anyone may unicast to our port id; only the kernel (0) multicasts here. */
		if (from.nl_pid != 0)
			continue;
		left = (int)len;
		for (nlh = (struct nlmsghdr *)l->buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    mnl_nlmsg_get_payload_len(nlh) < sizeof(*m) || m->id.idiag_dport)
				continue;
			cb(data, diag_cookie(m));
			n++;
		}
	}
	return n;
}

void listeners_close(struct listeners *l)
{
	if (!l)
		return;
	if (l->diag)
		mnl_socket_close(l->diag);
	if (l->destroy)
		mnl_socket_close(l->destroy);
	free(l->buf);
	free(l);
}
