/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_SHARE_H
#define LOGUARD_SHARE_H

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "apply.h"
#include "conn_event.h"

/*
 * Self-service sharing (`share: true` guards): the user whose socket receives connections on a
 * port lets named users in, asking `loguard run` over a unix socket in its runtime directory.
 *
 * The wire protocol is one SOCK_SEQPACKET message each way: a fixed 16-byte request header and
 * a name (the peer's uid comes from SO_PEERCRED, never from the message); the answer is zero or
 * more text lines, each its own message starting with '.', and a last message starting with
 * '=' (done) or '!' (refused, the text says why).
 */

#define SHARE_SOCKET_NAME "control" /* in $RUNTIME_DIRECTORY, else LOGUARD_RUN_DIR */
/* Where loguard-control.socket listens for loguard.service (systemd makes it). */
#define SHARE_SERVICE_SOCKET "/run/loguard-control"
#define SHARE_NAME_MAX	  32	    /* user or group name, as useradd allows */
#define SHARE_REQ_HEADER  16
#define SHARE_REQ_MAX	  (SHARE_REQ_HEADER + SHARE_NAME_MAX)
#define SHARE_REPLY_MAX	  512
#define SHARE_SECONDS_MAX (366U * 24 * 3600) /* --for at most a year */

enum share_op { SHARE_OP_SHARE = 1, SHARE_OP_UNSHARE, SHARE_OP_LIST, __SHARE_OP_MAX };

#define SHARE_F_GROUP (1U << 0) /* name is a group: its members, as the policy resolves groups */

/* A request as decoded; name is NUL-terminated ("" when none). */
struct share_request {
	enum share_op op;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP; 0 for LIST */
	uint16_t port; /* 0 for LIST */
	unsigned flags;
	uint32_t seconds; /* 0: until the receiving socket goes (SHARE) */
	char name[SHARE_NAME_MAX + 1];
};

/* A user or group name as the protocol takes it: 1..SHARE_NAME_MAX of [A-Za-z0-9._-], not
 * starting with '-' (never an option, never a path). */
bool share_name_ok(const char *s, size_t n);

/* Decode and check a request: exact length, known version, op, flags and protocol, no reserved
 * bits, a name of [A-Za-z0-9._-] not starting with '-', present exactly where the op needs it.
 * 0 or -EINVAL (*ret untouched). Never reads past len. */
int share_request_parse(const void *buf, size_t len, struct share_request *ret);

/* Encode a request (checked by share_request_parse's rules); returns its length or -EINVAL. */
int share_request_encode(const struct share_request *req, uint8_t buf[SHARE_REQ_MAX]);

/* Parse "30m", "2h", "1d", "45s" or "90" (seconds) into seconds, 1..SHARE_SECONDS_MAX. */
int share_duration_parse(const char *s, uint32_t *ret);

/* The control socket path: $RUNTIME_DIRECTORY/control (a daemon run by hand), else
 * SHARE_SERVICE_SOCKET if it exists, else LOGUARD_RUN_DIR/control. */
int share_socket_path(char *buf, size_t size);

/* ---- the daemon side ---- */

struct share;
struct live;

/* Open the control socket (replacing a stale one) and load the grants kept by an earlier
 * daemon. dir: the runtime directory (only the daemon writes there). The grant sets of an
 * adopted table were emptied when it was adopted (emit_opts.forget_learned); the grants come
 * back into them as their receivers are learned again. 0 or -errno. */
int share_new(struct live *live, const char *dir, struct share **ret);

/* The table was (re)applied: put in the kernel what cur's share guards allow of the grants;
 * grants of ports no longer shareable stay kept but inert. */
void share_apply(struct share *s, const struct loaded *cur);

/* A receiver of an owner-only port became known to the kernel (added) or is about to be
 * forgotten (!added): put in, or take out first, the grants of its owner there. cleared: every
 * receiver was forgotten at once with the table (no elements left to remove). */
void share_on_owner(void *data, unsigned family, const struct in6_addr *addr, uint8_t proto,
		    uint16_t port, uint32_t uid, uint64_t cookie, bool added);
void share_on_owners_cleared(void *data);

#define SHARE_MAX_FDS 33 /* the listening socket and up to 32 connections waiting */
size_t share_pollfds(const struct share *s, struct pollfd *pfd);
void share_handle(struct share *s);
int share_timeout_ms(const struct share *s);

/* If ev was allowed by a grant (its sender is not the receiver's user but has that user's
 * grant there), the granting uid. */
bool share_granted_by(const struct share *s, const struct conn_event *ev, uint32_t *ret_uid);

struct share_stats {
	uint64_t grants;	   /* kept now (a group counts its members) */
	uint64_t elems;		   /* in the kernel now */
	uint64_t requests, refused; /* requests answered; of them refused */
	uint64_t rate_limited;	   /* requests turned away by the per-uid rate */
	uint64_t over_share;	   /* elements not added: their owner's share of the sets is full */
};
void share_get_stats(const struct share *s, struct share_stats *ret);

void share_free(struct share *s);

/* ---- the client side (loguard share, unshare, shares) ---- */

/* Send req, print the lines of the answer to out and a refusal to err. 0 done, -EPERM refused
 * (said on err), or -errno when the daemon cannot be reached (not said). */
int share_client(const struct share_request *req, FILE *out, FILE *err);

#endif
