/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_NFLOG_H
#define LOGUARD_NFLOG_H

#include <libmnl/libmnl.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* What the kernel copies of each logged packet: enough for every header a client without
 * CAP_NET_RAW can put in front of the ports. At the output hook there are no fragment, AH or ESP
 * headers yet; an unprivileged socket may set one routing header (IPV6_RTHDR, segment routing,
 * at most (255 + 1) * 8 bytes), the kernel may add an 8-byte hop-by-hop (jumbo payload), and
 * IPv4 options are 40 bytes at most. Hop-by-hop and destination options of up to 2 KiB each
 * need CAP_NET_RAW: those packets are still recorded, with ports unknown, and counted. The
 * kernel copies min(range, packet): a SYN costs what it did with a small range. */
#define NFLOG_COPY_RANGE (40 + 8 + 2048 + 8)

/* A subscription to one NFLOG group (nfnetlink_log). */
struct nflog;

/* Bind NFLOG group `group` (needs CAP_NET_ADMIN; -EBUSY if another process has it). */
int nflog_open(uint16_t group, struct nflog **ret_nflog);

/* Under heavy traffic, let the kernel put many records in one message (fewer wakeups,
 * up to 10 ms later); else deliver each at once, which pid lookups need. */
int nflog_set_batching(struct nflog *a, bool batch);

/* The socket to poll for POLLIN. */
int nflog_fd(const struct nflog *a);

/* Called for every logged packet; a negative return stops the read with that error. */
typedef int (*nflog_cb)(const struct conn_event *ev, void *data);

/* Read everything queued, without blocking; count receipts and losses in stats
 * (sequence gaps and socket overflows). Returns the number of events or -errno. */
int nflog_read(struct nflog *a, nflog_cb cb, void *data, struct record_stats *stats);

/* Decode one NFULNL_MSG_PACKET. 0 also when the ports were beyond the copied bytes
 * (ev->ports_unknown); -EINVAL: not a valid NFLOG packet message; -ENOENT: valid, but not
 * logged by loguard; -EBADMSG: loguard's, but not readable as TCP or UDP over IP
 * (ev->has_seq/seq are filled for both). */
int nflog_parse_packet(const struct nlmsghdr *nlh, struct conn_event *ev);

/* Fill ev's family, proto, addresses and ports from the IPv4 or IPv6 packet at p (len bytes
 * copied), whose ethertype is hw_protocol (host order; else the version nibble decides); ev
 * must be zeroed. Shared with nfqueue; needs no socket (fuzzed). 0; -EMSGSIZE: the copy ended
 * in the headers before the ports (family and addresses filled, proto if reached,
 * ev->ports_unknown set); -ENOENT: not TCP/UDP, a fragment without the ports, or no IP header. */
int nflog_parse_ip(uint16_t hw_protocol, const uint8_t *p, size_t len, struct conn_event *ev);

/* Unbind and close; accepts NULL. */
void nflog_close(struct nflog *a);

#endif
