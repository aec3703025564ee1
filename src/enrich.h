/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_ENRICH_H
#define LOGUARD_ENRICH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "record.h"

/* Caches and sockets for finding who sent a logged packet. */
struct enrich;

/* cgroup_root: the cgroup2 mount, NULL = find it in /proc/self/mountinfo. Without a cgroup2
 * mount (found or given) enrichment still works, minus cgroup paths and units. -errno when the
 * sock_diag socket, /proc or a given cgroup_root cannot be opened. */
int enrich_new(const char *cgroup_root, struct enrich **ret);
void enrich_free(struct enrich *e);

/* The cgroup2 mount in use (no trailing '/'), or NULL: for logging it once at startup. */
const char *enrich_cgroup_root(const struct enrich *e);

/* Fill r's identity fields from r->ev: user/group names (cached), then sock_diag by the
 * exact 4-tuple (socket inode, cgroup id), cgroup path and unit, then the process that
 * holds the socket (pid, exe, argv). Best effort: what is not found stays null.
 * r's pointer fields must be NULL on entry (a zeroed record, or record_clear() then ev set).
 * Returns 0, or -errno only for allocation failures. */
int enrich_record(struct enrich *e, struct record *r);

/* Only the cached user and group names of r->ev's uid and gid: for when the daemon is
 * behind the kernel and must not spend a sock_diag round trip per record. */
int enrich_names(struct enrich *e, struct record *r);

/* The name of uid from NSS, through the same cache as records' names: malloc()ed in *ret.
 * 0, -ENOENT (no such user, or NSS failed: not cached) or -ENOMEM. */
int enrich_user_name(struct enrich *e, uint32_t uid, char **ret);

/* Forget cached user/group names and cgroup paths (the daemon does on every reload: SIGHUP
 * is how an admin says /etc/passwd or the units changed). */
void enrich_flush(struct enrich *e);

/* What sock_diag reports about the socket that sent a packet. */
struct enrich_sock {
	int family;	/* the socket's: AF_INET6 for a client of ::ffff:127.0.0.1 */
	bool has_inode; /* false once no process holds it (closed, TIME_WAIT) */
	uint64_t inode;
	bool has_uid;
	uint32_t uid;	    /* sk_uid, the creator's fsuid: what `meta skuid` and NFLOG see */
	bool has_cgroup_id; /* INET_DIAG_CGROUP_ID, kernel >= 5.7 */
	uint64_t cgroup_id; /* the cgroup the socket was created in */
};

/* Exact sock_diag lookup (no dump) of the socket that sent ev: local = ev->src:sport, remote =
 * ev->dst:dport; IPv4 events also find AF_INET6 sockets talking to ::ffff:a.b.c.d. A reply
 * that does not match the 4-tuple (a listener, another socket) counts as not found.
 * 0, -ENOENT, or another -errno. */
int enrich_sock_lookup(struct enrich *e, const struct conn_event *ev, struct enrich_sock *ret);

/* Path below the cgroup2 mount (leading '/') of cgroup id, via open_by_handle_at (needs
 * CAP_DAC_READ_SEARCH), cached. 0, -ENOENT (removed, not permitted, no mount) or -ENOMEM. */
int enrich_cgroup_path(struct enrich *e, uint64_t id, char **ret);

/* Pid of a process holding the socket s->inode: first recent holders of sockets of the same
 * cgroup (or uid), then the processes of cgroup (path below the mount; may be NULL), then
 * those whose /proc/PID belongs to s->uid. At most the scan budget of process opens plus fd
 * readlinks (~3 us each here). 0, -ENOENT or -ENOMEM. */
int enrich_socket_pid(struct enrich *e, const struct enrich_sock *s, const char *cgroup,
		      pid_t *ret);

/* Steps one pid search may take (default ENRICH_SCAN_BUDGET); 0 turns the search off, e.g.
 * while the daemon is behind: a client with thousands of fds makes each search hit it. */
#define ENRICH_SCAN_BUDGET 4096
void enrich_set_scan_budget(struct enrich *e, unsigned budget);

/* The system manager's unit a cgroup path belongs to: the first component from the root that
 * names a non-slice unit (.service .scope .socket .mount .swap), else the deepest .slice; names
 * below it are chosen by whoever the subtree is delegated to. When that unit is user@UID.service,
 * *ret_user_unit is the unit in that user's manager (the same rule below it), else NULL. Pure
 * string work. 0 (both malloc()ed), -ENOENT (no unit in the path) or -ENOMEM. */
int enrich_unit_from_cgroup(const char *path, char **ret_unit, char **ret_user_unit);

/* Counters for the stats record. */
struct enrich_stats {
	uint64_t records;	 /* enrich_record() calls */
	uint64_t sock_found;	 /* sock_diag found the sending socket */
	uint64_t pid_found;	 /* a process holding it was found */
	uint64_t scan_exhausted; /* pid searches stopped by the scan budget */
	uint64_t scan_steps;	 /* process opens + fd readlinks, all searches */
};

void enrich_get_stats(const struct enrich *e, struct enrich_stats *ret);

#endif
