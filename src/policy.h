/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_POLICY_H
#define LOGUARD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag.h"

#define POLICY_DEFAULT_PATH	 "/etc/loguard/policy.yaml"
#define POLICY_DEFAULT_LOG_GROUP 6289
#define POLICY_DEFAULT_QUEUE	 6289

enum policy_mode { POLICY_MODE_ENFORCE, POLICY_MODE_AUDIT, __POLICY_MODE_MAX };

enum policy_action { POLICY_ACTION_REJECT, POLICY_ACTION_DROP, __POLICY_ACTION_MAX };

/* What the kernel does with a connection only the daemon can judge (executables, listeners not
 * yet known) while no daemon listens on the queue: drop it (closed) or let it pass (open). */
enum policy_fail { POLICY_FAIL_CLOSED, POLICY_FAIL_OPEN, __POLICY_FAIL_MAX };

/* Which enforce-mode decisions are logged; audit mode always logs every decision. */
enum policy_log { POLICY_LOG_NONE, POLICY_LOG_DENIED, POLICY_LOG_ALL, __POLICY_LOG_MAX };

#define POLICY_PROTO_TCP (1U << 0)
#define POLICY_PROTO_UDP (1U << 1)

/* Inclusive port interval as written (a single port has first == last). */
struct policy_ports {
	uint16_t first, last;
	struct loc loc;
};

/* A user, group, unit or cgroup reference exactly as written in the policy. */
struct policy_ref {
	char *name;
	struct loc loc;
};

/* A resolved cgroup: matched by `socket cgroupv2 level N` against its id. */
struct policy_cgroup {
	char *path;	/* relative to the cgroup2 mount, no leading '/' */
	unsigned level; /* path depth: "a.slice/b.service" is level 2 */
	uint64_t id;
	struct loc loc;
};

/* An executable found at a policy path: compared by device and inode, never by name. */
struct policy_file_id {
	uint64_t dev, ino;
};

/* One guard: a set of ports and who may connect to them. */
struct policy_guard {
	char *name;
	struct loc loc; /* loc.file: the file it was written in (the main file or a drop-in) */
	struct loc name_loc;
	struct policy_ports *ports;
	size_t n_ports;
	unsigned protocols; /* POLICY_PROTO_* */
	struct policy_ref *users, *groups, *units, *cgroups;
	size_t n_users, n_groups, n_units, n_cgroups;
	struct policy_ref *executables; /* absolute paths */
	struct policy_ref *launched;	/* `loguard exec --as NAME` names */
	size_t n_executables, n_launched;
	bool owner; /* the listener's own user may connect */
	struct loc owner_loc;
	bool share; /* that user may grant others access (`loguard share`); needs owner */
	enum policy_fail fail;
	enum policy_action action;
	enum policy_mode mode; /* already defaulted from the policy-level mode */
	enum policy_log log;
	/* NULL, or one block holding name, ports and the references' arrays and names
	 * (guard_copy_packed(), policy_reparse.h): freed as one. */
	void *pack;

	/* Filled by policy_check(): sorted, unique uids (users + group members); a slice of
	 * the policy's uid_pool. */
	uid_t *uids;
	size_t n_uids;
	/* Filled by policy_check(): cgroups of units/cgroups that exist now. */
	struct policy_cgroup *cgroup_ids;
	size_t n_cgroup_ids;
	/* Filled by policy_check(): the files at the executables' paths now (those that exist). */
	struct policy_file_id *exe_ids;
	size_t n_exe_ids;
};

/* Owner-only ports and executables are judged by `loguard run` (through NFQUEUE). */
static inline bool policy_guard_needs_daemon(const struct policy_guard *g)
{
	return g->owner || g->n_executables;
}

/*
 * Whether the daemon judges this guard's connections the sets do not allow (compile.c's
 * profile.ask): executables always; when compiled for the daemon (live) also unit, cgroup
 * and launched guards, whose cgroups may appear a moment before their first connection.
 */
static inline bool policy_guard_asks(const struct policy_guard *g, bool live)
{
	return g->n_executables || (live && (g->n_units || g->n_cgroups || g->n_launched));
}

/* Whether the guard's packets go to the daemon through NFQUEUE (compile.c's profile_queues):
 * the one answer for compile.c, which writes the queue rules, and live.c, which binds the
 * queue. */
static inline bool policy_guard_queued(const struct policy_guard *g, bool live)
{
	return g->owner || policy_guard_asks(g, live);
}

/* Log rate limit per time unit; rate 0 means unlimited. */
enum policy_rate_unit {
	POLICY_RATE_SECOND,
	POLICY_RATE_MINUTE,
	POLICY_RATE_HOUR,
	POLICY_RATE_DAY,
	__POLICY_RATE_MAX
};

/* Log records a port and user may send at once before the rate applies: ordinary bursts (a
 * dozen quick connections) are logged in full, floods are cut (kernel default: 5). */
#define POLICY_LOG_BURST_DEFAULT 100

/* The whole policy (AST plus resolution results). */
struct policy {
	char *file;	 /* path as given; the main file's locs point here */
	char **dropins;	 /* drop-in files merged in (policy_merge), in order; their locs */
	size_t n_dropins; /* point into these */
	unsigned version;
	enum policy_mode mode;
	uint16_t log_group;
	uint16_t queue_num; /* NFQUEUE for connections the daemon judges */
	bool counters;	    /* per-guard counters in the kernel (default true; each costs ~4 us to
			       install) */
	uint32_t log_rate;
	enum policy_rate_unit log_rate_unit;
	uint32_t log_burst; /* records per port and user before the rate applies */
	bool services;	    /* a port was given by service name (/etc/services, at parse time) */
	struct policy_guard *guards;
	size_t n_guards;
	/* A merged policy (policy_merged_new(), policy_merge()) shares what its guards point at
	 * (names, ports, references, locs) with the parsed files in parts, each of which it holds
	 * a reference on: a reload reuses the files that did not change without copying them.
	 * It owns its guards array and what policy_check() fills in. parts[0] is the main file;
	 * file and dropins[] are the parts' names. NULL in a policy as parsed. */
	struct policy **parts;
	size_t n_parts;
	/* Filled by policy_check(): every guard's uids, one array (10,000 guards made 10,000
	 * allocations and frees per reload). */
	uid_t *uid_pool;
	unsigned refs; /* holders besides the first: policy_ref() adds one, policy_free() drops one */
};

/* Parse YAML text (len bytes, need not be NUL-terminated) named file. On success
 * *ret_policy is set; errors and warnings go to diags. Returns 0, -EINVAL on
 * policy errors (diags says why) or another -errno. */
int policy_parse_buffer(const char *file, const char *buf, size_t len, struct diags *diags,
			struct policy **ret_policy);

/* Read and parse a policy from an open file descriptor; file names it in diagnostics. */
int policy_parse_fd(const char *file, int fd, struct diags *diags, struct policy **ret_policy);

/* How a file is parsed: as a drop-in (policy.d/NAME.yaml: guards only, their mode defaulting
 * to the main file's) when main_file is set; and whether to keep what parsed of an invalid one. */
struct policy_parse_opts {
	const char *main_file; /* a drop-in of this main file, named in messages about keys only
				  it may set; NULL: a main policy file */
	enum policy_mode mode; /* the main file's default mode */
	/* When not NULL and the file is invalid (-EINVAL), receives the guards that parsed (those
	 * with a name; only the ports that parsed), for the checks after parsing to report what
	 * the parse errors would hide until fixed. Never installed. Freed by the caller. */
	struct policy **ret_partial;
};

/* policy_parse_buffer() with opts (NULL: a main file). */
int policy_parse_buffer_opts(const char *file, const char *buf, size_t len,
			     const struct policy_parse_opts *opts, struct diags *diags,
			     struct policy **ret_policy);

/* policy_parse_fd() with opts (NULL: a main file). In a drop-in 'version' is optional and the
 * global keys ('mode', 'log', 'counters', 'queue') are errors. */
int policy_parse_fd_opts(const char *file, int fd, const struct policy_parse_opts *opts,
			 struct diags *diags, struct policy **ret_policy);

/* Read a whole policy file (at most 16 MiB and one byte) into *ret_buf (malloc()ed, *ret_len
 * bytes); a read failure is a located error in diags. */
int policy_read_fd(const char *file, int fd, struct diags *diags, char **ret_buf, size_t *ret_len);

/* dst: src's global keys (version, mode, log, queue, counters, services), and nothing of its
 * own yet: no file name, guards, drop-ins, parts, holders or check results. */
void policy_copy_settings(struct policy *dst, const struct policy *src);

/* p, with one more holder; policy_free() drops one. */
struct policy *policy_ref(struct policy *p);

/* A merged policy of main (as parsed, not checked) alone, for policy_merge() to add drop-ins
 * to: its guards share main's contents. Takes the caller's reference to main (released on
 * failure). 0 or -ENOMEM. */
int policy_merged_new(struct policy *main, struct policy **ret_policy);

/* Read and parse a policy file; a read failure is a located error too. */
int policy_parse_file(const char *file, struct diags *diags, struct policy **ret_policy);

/* How policy_check() finds the system's users and cgroups. */
struct policy_check_opts {
	const char *cgroup_root; /* cgroup2 mount point; NULL = find it in /proc/self/mountinfo */
};

/* Resolve names: users → uids, groups → member uids (supplementary and primary),
 * units/cgroups → cgroup ids. Unknown users/groups and ambiguous overlaps (the same interval
 * in two guards, crossing ranges, a guard overlapping itself) are errors, every one reported;
 * units/cgroups that do not exist are warnings. Returns 0 or -EINVAL. After success any two
 * intervals of different guards that share a (protocol, port) nest, the inner one narrower:
 * it takes precedence there (compile.c splits the outer one around it). */
int policy_check(struct policy *p, const struct policy_check_opts *opts, struct diags *diags);

/* Drop one holder of p (see refs); the last frees it and its share of the parts. Accepts
 * NULL. */
void policy_free(struct policy *p);

/* Why a unit name or glob ("app-*.scope", "user@*.service/NAME": see cgwatch.h) cannot name a
 * cgroup (e.g. "has no cgroup (...)"), or NULL if it can. Shared by the parser (located errors) and
 * policy_check (defence for hand-built policies). */
const char *policy_unit_name_invalid(const char *name);

/* Why a cgroup path or path glob as written is unusable (root, empty, '.' or '..' components,
 * an unclosed '['), or NULL. */
const char *policy_cgroup_path_invalid(const char *path);

/* Names for printing. */
const char *policy_mode_name(enum policy_mode m);
const char *policy_action_name(enum policy_action a);
const char *policy_log_name(enum policy_log l);
const char *policy_rate_unit_name(enum policy_rate_unit u);
const char *policy_fail_name(enum policy_fail f);

#endif
