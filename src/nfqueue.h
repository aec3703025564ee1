/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_NFQUEUE_H
#define LOGUARD_NFQUEUE_H

#include <libmnl/libmnl.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn_event.h"

/* Default queue number for connections the kernel rules cannot judge (executables, listeners
 * not yet known); the policy's `queue:` key overrides it. */
#define NFQUEUE_DEFAULT_NUM 6289

/* One bound NFQUEUE (nfnetlink_queue) over libmnl. */
struct nfqueue;

/* A queued packet: its verdict id, mark and the same plain data NFLOG gives (family, proto,
 * addresses, ports, uid/gid when the packet has a full socket). ev.verdict and ev.seq unused. */
struct nfqueue_packet {
	uint32_t id;
	uint32_t mark;
	struct conn_event ev;
};

/* Bind queue `num` (CAP_NET_ADMIN, else -EPERM; -EBUSY if another socket has it): copy only
 * the headers, ask for the sender's uid/gid. The socket is non-blocking. */
int nfqueue_open(uint16_t num, struct nfqueue **ret);

/* The same with flags (NFQUEUE_*): NFQUEUE_FAIL_OPEN lets the kernel accept what a full queue cannot take
 * (NFQA_CFG_F_FAIL_OPEN) instead of dropping it: only for queues whose packets pass anyway. */
#define NFQUEUE_FAIL_OPEN (1U << 0)
/* Copy NFLOG_COPY_RANGE bytes, as NFLOG does: the ports behind any header an unprivileged
 * client can add, for queues whose packets must not be dropped as unreadable. */
#define NFQUEUE_COPY_ALL_HEADERS (1U << 1)
/* A packet nfqueue_read() cannot read (ports past even that copy: more than 2 KiB of headers,
 * which needs CAP_NET_RAW) goes to the callback with ev.ports_unknown (family and addresses
 * when they were read, else family 0) instead of being dropped: for queues whose packets the
 * rules after the queue decide on. */
#define NFQUEUE_PASS_UNREADABLE (1U << 2)
int nfqueue_open_flags(uint16_t num, unsigned flags, struct nfqueue **ret);

/* The socket to poll for POLLIN. */
int nfqueue_fd(const struct nfqueue *q);

typedef int (*nfqueue_cb)(const struct nfqueue_packet *p, void *data);

/* Read what is queued without blocking, cb for each TCP/UDP packet, until the queue is empty
 * or at least `max` packets were read (whole socket reads: a few hundred more at most; 0: no
 * limit), so that a caller under a flood gets back to its signals and other sources. cb must
 * give its verdict (now or later), and a negative return stops the read with that error. A
 * packet that cannot be judged (not TCP/UDP, headers cut short) gets NF_DROP here. Returns
 * the number of packets passed to cb, or -errno. -ENOBUFS is counted in *enobufs (may be
 * NULL) and not returned: the kernel then dropped packets (fail closed), and senders
 * retransmit. */
int nfqueue_read(struct nfqueue *q, nfqueue_cb cb, void *data, size_t max, uint64_t *enobufs);

/* Give the verdict for packet id: NF_ACCEPT, NF_DROP or NF_REPEAT; with set_mark the packet's
 * mark becomes `mark` first (NF_REPEAT then lets the rules see it). */
int nfqueue_verdict(struct nfqueue *q, uint32_t id, uint32_t verdict, bool set_mark, uint32_t mark);

/* nfqueue_verdict() gathered with others, sent by nfqueue_verdict_flush() (or when the buffer
 * is full, or on close): one send for a turn's verdicts. The packet waits until then. */
int nfqueue_verdict_add(struct nfqueue *q, uint32_t id, uint32_t verdict, bool set_mark,
			uint32_t mark);
int nfqueue_verdict_flush(struct nfqueue *q);

/* Decode one NFQNL_MSG_PACKET; ev.time is now. -EINVAL: not a valid queue message (no id);
 * -ENOENT: valid, but not a TCP/UDP packet over IPv4/IPv6 whose ports are in the copied part
 * (p->id, mark, uid and gid are still set, so the caller can give a verdict). */
int nfqueue_parse_packet(const struct nlmsghdr *nlh, struct nfqueue_packet *p);

/* Unbind and close; accepts NULL. */
void nfqueue_close(struct nfqueue *q);

#endif
