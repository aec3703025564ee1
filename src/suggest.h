/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_SUGGEST_H
#define LOGUARD_SUGGEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "policy.h"
#include "records_read.h"

/* Which identity of a connection the suggested allow entry names. */
enum suggest_by { SUGGEST_BY_USERS, SUGGEST_BY_UNITS, SUGGEST_BY_EXECUTABLES, __SUGGEST_BY_MAX };

/* How `loguard suggest` widens a policy. */
struct suggest_opts {
	bool include_denied;	  /* also allow what enforce mode denied */
	unsigned group_threshold; /* a group once this many members were seen; 0: all of them */
	enum suggest_by by;
};

/* What was seen, per guard of the current policy; opaque. */
struct suggest;

/* Start a suggestion for p (parsed and checked: its guards' uids are resolved); reads the
 * system's groups now. p must outlive s. Returns 0 or -ENOMEM. */
int suggest_new(const struct policy *p, const struct suggest_opts *o, struct suggest **ret);

/* Count one record; returns 1 if it adds to the suggestion, 0 if it is counted only (already
 * allowed, denied in enforce mode, unknown guard), or -ENOMEM. */
int suggest_add(struct suggest *s, const struct seen_record *r);

/* Records for guards the policy lacks, for the caller's warning. */
uint64_t suggest_unknown_guard(const struct suggest *s);

/* The suggested policy as commented YAML (version 1, mode enforce) into a malloc()ed string;
 * source names the input in the header comment. Returns 0 or -errno. */
int suggest_write(const struct suggest *s, const char *source, char **ret);

/* Free everything; accepts NULL. */
void suggest_free(struct suggest *s);

/* "users", "units", "executables"; NULL when out of range. */
const char *suggest_by_name(enum suggest_by by);

#endif
