/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_TABLE_READ_H
#define LOGUARD_TABLE_READ_H

/* Table inet loguard read back from the kernel, the reverse of nft_emit.c: the guards with
 * their counters (for show), the table's flags and owner, single counters and allow-set
 * elements (for installed.c, the daemon and launch). installed.c reads the whole table as raw
 * chains, sets and elements for in-place updates. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon_stats.h"
#include "nl.h"
#include "policy.h"

/* One guarded (protocol, port interval) as installed. */
struct table_ports {
	uint8_t proto;
	uint16_t first, last;
};

/* One guard read back from the kernel, with its counters. */
struct table_guard {
	char *name;
	enum policy_mode mode;
	enum policy_action action;
	enum policy_log log;
	struct table_ports *ports;
	size_t n_ports;
	uint64_t connections; /* new connections / datagrams that reached the guard */
	uint64_t allowed;     /* of those, matched an allow entry */
	size_t n_allow;	      /* allow entries (uid or cgroup elements) */
	/* Guards loguard run judges (owner, executables, live units) count their denials and the
	 * daemon's repeats in sets of their own (LOGUARD_DENIED_SET, LOGUARD_ASKED_SET). */
	bool judged;
	uint64_t asked, denied;
	char *file;	      /* the policy file that has a guard of this name now; NULL: none */
};

/* The installed table as `show` reports it. */
struct table_state {
	bool installed;
	bool counters;	       /* the table keeps counters (policy did not say counters: false) */
	uint32_t flags, owner; /* NFT_TABLE_F_OWNER etc., and the owner's netlink port id */
	bool has_rate_limit;   /* the policy limits the log rate ... */
	uint64_t rate_limited; /* ... and this many records were suppressed */
	struct daemon_stats daemon; /* counters of a running `loguard run`, if any */
	uint32_t genid;
	struct table_guard *guards; /* sorted by name */
	size_t n_guards;
};

/* Read table inet loguard back from the kernel. Returns 0 (installed or not) or -errno. */
int table_read(struct nl *nl, struct table_state **ret_table);

/* Whether table inet loguard exists, its flags and owner (netlink port id, 0 = none). */
int table_read_info(struct nl *nl, bool *ret_exists, uint32_t *ret_flags, uint32_t *ret_owner);

/* Packets of a named counter of table inet loguard (-ENOENT: no such counter). */
int table_read_counter(struct nl *nl, const char *name, uint64_t *ret_packets);

/* Whether set allow_cgroup_lLEVEL or its _ranges twin has an element for cgroup id (any
 * protocol and port). No table or set: false. 0 or -errno. */
int table_cgroup_allowed(struct nl *nl, unsigned level, uint64_t id, bool *ret_allowed);

/* Name each guard's file from the policy files as they are now (p, main file and drop-ins):
 * the kernel keeps guard names, not files. Returns 0 or -ENOMEM. */
int table_label_files(struct table_state *t, const struct policy *p);

/* Free; accepts NULL. */
void table_state_free(struct table_state *t);

#endif
