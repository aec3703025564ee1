/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_LISTENERS_H
#define LOGUARD_LISTENERS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* Who listens on a local port, via sock_diag, and when such sockets go away. */
struct listeners;

/* The socket that would receive a connection (TCP: a LISTEN socket) or a datagram (UDP: a
 * socket bound to the port and not connected) to dst:dport. */
struct listener {
	uint64_t cookie; /* sock_diag's socket cookie: stable for the socket's life */
	uint32_t uid;	 /* the socket's owner (sk_uid) */
	uint64_t inode;	 /* its inode (0: no process holds it any more) */
	bool has_cgroup_id;
	uint64_t cgroup_id; /* the cgroup it was created in (INET_DIAG_CGROUP_ID) */
	bool ambiguous;	 /* sockets of more than one uid could receive it (e.g. UDP
			    SO_REUSEADDR): a per-packet decision, never a cached one */
	bool contested;	 /* a socket of another uid bound to a device (SO_BINDTODEVICE)
			    receives it instead for some senders: nobody's port */
	bool cacheable;	 /* the answer holds for every sender until this socket stops
			    listening: bound to no device, one uid (see listeners.c) */
};

/* Open the sock_diag socket for lookups and the one subscribed to destroy notifications
 * (SKNLGRP_INET{,6}_{TCP,UDP}_DESTROY; CAP_NET_ADMIN). 0 or -errno. */
int listeners_open(struct listeners **ret);

/* The same without the destroy socket: for listeners_find() only (no CAP_NET_ADMIN needed for
 * the groups, nothing queued that nobody reads). */
int listeners_open_lookup(struct listeners **ret);

/* Find the receiver of a packet of `family` (AF_INET, AF_INET6) and `proto` (IPPROTO_TCP,
 * IPPROTO_UDP) to dst:dport (dst as in struct conn_event: AF_INET's 4 bytes first). The most
 * specific bound address wins over wildcards; an IPv4 packet also finds a dual-stack (not
 * IPV6_V6ONLY) AF_INET6 wildcard listener. TCP asks the kernel's own lookup (two exact
 * sock_diag requests, no dump) and dumps the port only when a socket bound to a device is
 * involved. 0, -ENOENT (nobody would receive it) or -errno. */
int listeners_find(struct listeners *l, int family, uint8_t proto, const struct in6_addr *dst,
		   uint16_t dport, unsigned flags, struct listener *ret);

/* listeners_find() flags. NO_DUMP: TCP by the exact lookups alone (bounded work): where only
 * a dump could tell, -ENOENT when they found nobody, else a contested answer. */
#define LISTENERS_FIND_NO_DUMP (1U << 0)

/* Be told only of sockets bound to one of these ports (the receivers we cache): a connection
 * aborted with RST has no peer port any more when it is destroyed, so without this every
 * aborted connection would wake the reader. n == 0 means none; past
 * LISTENERS_FILTER_PORTS_MAX ports (ports may then be NULL), every socket without a peer.
 * 0 or -errno. */
#define LISTENERS_FILTER_PORTS_MAX 2000
int listeners_follow_ports(struct listeners *l, const uint16_t *ports, size_t n);

/* The socket to poll for destroy notifications. */
int listeners_destroy_fd(const struct listeners *l);

/* Called for each destroyed socket that had no peer (listeners, unconnected UDP), by cookie;
 * cookie 0 means notifications were lost (socket overflow): forget every cached listener. */
typedef void (*listeners_destroy_cb)(void *data, uint64_t cookie);

/* Read pending destroy notifications without blocking. Returns how many were read, or -errno. */
int listeners_read_destroyed(struct listeners *l, listeners_destroy_cb cb, void *data);

/* Close both sockets; accepts NULL. */
void listeners_close(struct listeners *l);

#endif
