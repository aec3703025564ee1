/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_CONN_EVENT_H
#define LOGUARD_CONN_EVENT_H

/* A connection attempt as one packet showed it, before any lookup: what the NFLOG reader
 * (nflog.c) and the NFQUEUE reader (nfqueue.c) decode, and what records, holds, grants and
 * the daemon's own judging (live.c) start from. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* What the ruleset decided, from the NFLOG prefix. */
enum record_verdict { RECORD_ALLOW, RECORD_DENY, RECORD_WOULD_DENY, __RECORD_VERDICT_MAX };

/* One logged or queued packet as the kernel reported it: plain data, no lookups. */
struct conn_event {
	struct timespec time; /* CLOCK_REALTIME when loguard received it */
	enum record_verdict verdict;
	uint8_t proto;		  /* IPPROTO_TCP or IPPROTO_UDP */
	int family;		  /* AF_INET or AF_INET6: the packet's, not the socket's */
	struct in6_addr src, dst; /* AF_INET: the 4 address bytes first, rest zero */
	uint16_t sport, dport;	  /* host order */
	/* The headers in front of the ports did not fit in what the kernel copied: sport and dport
	 * are 0, proto is 0 when the transport header itself was not reached. */
	bool ports_unknown;
	bool has_uid, has_gid; /* NFULA_UID/GID: only for packets with a full socket */
	uint32_t uid, gid;
	bool has_seq; /* NFULA_SEQ (per group), for loss detection */
	uint32_t seq;
};

#endif
