/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_ENRICH_H
#define LOGUARD_ENRICH_H

#include "record.h"

/* Caches and sockets for finding who sent a logged packet. */
struct enrich;

/* cgroup_root: the cgroup2 mount, NULL = find it in /proc/self/mountinfo. */
int enrich_new(const char *cgroup_root, struct enrich **ret);
void enrich_free(struct enrich *e);

/* Fill r's identity fields from r->ev: user/group names (cached), then sock_diag by the
 * exact 4-tuple (socket inode, cgroup id), cgroup path and unit, then the process that
 * holds the socket (pid, exe, argv). Best effort: what is not found stays null.
 * Returns 0, or -errno only for allocation failures. */
int enrich_record(struct enrich *e, struct record *r);

#endif
