/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_AUDIT_H
#define LOGUARD_AUDIT_H

#include <libmnl/libmnl.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* A subscription to one NFLOG group (nfnetlink_log). */
struct audit;

/* Bind NFLOG group `group` (needs CAP_NET_ADMIN; -EBUSY if another process has it). */
int audit_open(uint16_t group, struct audit **ret_audit);

/* Under heavy traffic, let the kernel put many records in one message (fewer wakeups,
 * up to 10 ms later); else deliver each at once, which pid lookups need. */
int audit_set_batching(struct audit *a, bool batch);

/* The socket to poll for POLLIN. */
int audit_fd(const struct audit *a);

/* Called for every logged packet; a negative return stops the read with that error. */
typedef int (*audit_cb)(const struct audit_event *ev, void *data);

/* Read everything queued, without blocking; count receipts and losses in stats
 * (sequence gaps and socket overflows). Returns the number of events or -errno. */
int audit_read(struct audit *a, audit_cb cb, void *data, struct record_stats *stats);

/* Decode one NFULNL_MSG_PACKET. -EINVAL: not a valid NFLOG packet message; -ENOENT: valid,
 * but not a TCP/UDP packet logged by loguard (ev->has_seq/seq are still filled). */
int audit_parse_packet(const struct nlmsghdr *nlh, struct audit_event *ev);

/* Fill ev's family, proto, addresses and ports from the IPv4 or IPv6 packet at p (len bytes
 * copied), whose ethertype is hw_protocol (host order; else the version nibble decides). Shared
 * with nfqueue. 0, or -ENOENT: not TCP/UDP, cut short, or a fragment without the ports. */
int audit_parse_ip(uint16_t hw_protocol, const uint8_t *p, size_t len, struct audit_event *ev);

/* Unbind and close; accepts NULL. */
void audit_close(struct audit *a);

#endif
