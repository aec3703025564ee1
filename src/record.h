/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_RECORD_H
#define LOGUARD_RECORD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "conn_event.h"

/* Whether a record names the receiving side: not looked up, nobody would receive the packet,
 * or a socket (TCP listener, bound UDP socket) would. */
enum record_listener_state { RECORD_LISTENER_UNKNOWN, RECORD_LISTENER_NONE, RECORD_LISTENER_FOUND };

/* The socket that would receive the connection, and who holds it. */
struct record_listener {
	enum record_listener_state state;
	uint32_t uid; /* the socket's owner (FOUND) */
	char *user;
	bool has_pid;
	pid_t pid;
	char *exe;
	char *unit, *user_unit; /* as struct record's */
};

/* An event plus everything loguard could find out about who sent it. Every
 * pointer may be NULL and every has_* false: a field not found is null, never guessed. */
struct record {
	struct conn_event ev;
	const char *guard;  /* from the compiled policy by (proto, dport); borrowed */
	char *user, *group; /* names of ev.uid / ev.gid */
	bool has_pid;
	pid_t pid;
	char *exe;   /* readlink /proc/PID/exe */
	char **argv; /* /proc/PID/cmdline split at NULs; NULL-terminated */
	bool has_cgroup_id;
	uint64_t cgroup_id; /* from sock_diag INET_DIAG_CGROUP_ID */
	char *cgroup;	    /* path below the cgroup2 mount, leading '/' */
	char *unit;	 /* the system manager's unit owning that cgroup (.service, .scope, ...) */
	char *user_unit; /* below unit = user@UID.service: the unit in that user's manager */
	bool has_inode;
	uint64_t inode; /* socket inode, from sock_diag */
	/* Allowed through a grant (`loguard share`): by whom. Written only when set. */
	bool has_granted_by;
	uint32_t granted_by_uid;
	char *granted_by; /* that uid's name; may be NULL */
	struct record_listener listener; /* the receiving side */
};

/* Free the strings of a record's listener part and zero it. */
void record_listener_clear(struct record_listener *l);

/* Free the strings of a record and zero it; accepts NULL. */
void record_clear(struct record *r);

/* Counters for the periodic and final stats record. */
struct record_stats {
	uint64_t received;     /* NFLOG records read */
	uint64_t lost;	       /* gaps in NFULA_SEQ plus records dropped on ENOBUFS (estimated 1) */
	uint64_t enobufs;      /* times the socket overflowed */
	uint64_t rate_limited; /* packets the kernel's log rate limit suppressed */
	uint64_t unmatched;    /* records whose port matches no guard of the current policy */
	uint64_t identity_skipped; /* records written with the kernel's identity only (busy) */
	uint64_t ports_unknown;	   /* logged packets whose ports were beyond the copied bytes */
	uint64_t journal_unsent;   /* records journald's socket did not take (timeout, error) */
	/* What the daemon keeps current itself (owner-only ports, executables, cgroups). */
	uint64_t queued;	/* connections it judged through the queue */
	uint64_t queue_allowed; /* of them, allowed by it */
	uint64_t receivers;	/* receivers of owner-only ports in the kernel now */
	uint64_t cgroups;	/* cgroups of units and cgroup patterns in the kernel now */
};

const char *record_verdict_name(enum record_verdict v);

/* One JSON object, no newline, into a malloc()ed string. */
int record_format_json(const struct record *r, char **ret);

/* One line for people, no newline. */
int record_format_text(const struct record *r, char **ret);

/* The stats record as JSON or text (time = now). */
int record_stats_format_json(const struct record_stats *s, const struct timespec *now, char **ret);
int record_stats_format_text(const struct record_stats *s, const struct timespec *now, char **ret);

/* The pieces of the text format, for the third format built on it (journal.c). */
struct buf;

/* RFC 3339 needs a four-digit year. */
#define RECORD_TIME_LEN sizeof("2026-11-26T05:07:31.123456Z")

/* Everything of a record that needs converting before any format can be written. */
struct record_parts {
	char time[RECORD_TIME_LEN];
	const char *verdict;
	char proto[8]; /* "" when unknown */
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	bool v6; /* addresses need [] around them next to a port */
};

/* Convert r's event: 0, or -errno when a field cannot be (unknown verdict or family, time
 * out of range). */
int record_to_parts(const struct record *r, struct record_parts *ret);
/* The text line of r (record_format_text()); without with_time the time is left out. */
void record_text_line(struct buf *b, const struct record *r, const struct record_parts *p,
		      bool with_time);
/* The stats record's text line without its time. */
void record_text_stats(struct buf *b, const struct record_stats *s);
/* A text value: "-" when unknown, bare when that is unambiguous, else quoted and escaped. */
void record_text_value(struct buf *b, const char *str);
/* The escaped bytes of str (see record.c); with quote, '"' is escaped too. */
void record_text_escape(struct buf *b, const char *str, bool quote);

#endif
