/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_RECORD_H
#define LOGUARD_RECORD_H

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

/* A connected socket to journald's native socket; -errno if journald is not there. */
int journal_open(int *ret_fd);
/* The same for a socket at path (tests run a fake journald). */
int journal_open_path(const char *path, int *ret_fd);
/* Send r as one entry with LOGUARD_* fields (escaped as in text, without quotes). 0, or -errno
 * when journald did not take it (-EAGAIN: its queue stayed full for JOURNAL_SEND_TIMEOUT_MS):
 * the caller counts that in record_stats.journal_unsent. */
int journal_send_record(int fd, const struct record *r);
/* The stats record as one entry; returns as journal_send_record(). */
int journal_send_stats(int fd, const struct record_stats *s);

/* How long a send may wait for journald to drain its queue before the entry is counted as
 * unsent: long enough for a journald busy with a flood's backlog on a loaded machine (100 ms
 * lost a record there), short enough that a stuck journald does not stall NFQUEUE verdicts
 * (a SYN is retransmitted after 1 s). */
#define JOURNAL_SEND_TIMEOUT_MS 500

#endif
