/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_POLICY_DIR_H
#define LOGUARD_POLICY_DIR_H

#include <stdbool.h>

#include "diag.h"
#include "policy.h"
#include "trust.h"

#define POLICY_DEFAULT_DIR "/etc/loguard/policy.d"
/* More drop-ins than this is a mistake (or an attack on the loader), not a policy. */
#define POLICY_DIR_MAX_FILES 4096

/* Files a load parsed, kept for the next load (the daemon's reloads): a file whose bytes are
 * the same as then is not parsed again. Opaque. */
struct policy_cache;

/* An empty cache; NULL when out of memory (then loads simply parse everything). */
struct policy_cache *policy_cache_new(void);
/* Accepts NULL. */
void policy_cache_free(struct policy_cache *c);

/* Which files make the policy: the main file, then DIR/ *.yaml in lexical (strcmp) order. */
struct policy_source {
	const char *file;  /* the main policy: global keys and guards */
	const char *dir;   /* drop-ins, guards only; NULL: none */
	bool dir_optional; /* a missing dir means no drop-ins (the default pair) */
	/* NULL, or files parsed by the last load with this cache: each file is still opened,
	 * judged (trust.c) and read every time, and parsed again unless its bytes, name and
	 * parse options are those of the cached parse, which is then shared instead. */
	struct policy_cache *cache;
};

/* How policy_source_load() opens each file and the directory. */
enum policy_open {
	POLICY_OPEN_PLAIN,   /* read without judging (print, a user's own files) */
	POLICY_OPEN_TRUSTED, /* trust.h, TRUST_REQUIRE: refuse what others than root can change */
	POLICY_OPEN_WARN,    /* trust.h, TRUST_WARN: say so, read anyway */
	__POLICY_OPEN_MAX
};

/* Parse the main file and every drop-in into one policy whose guards keep their own file in
 * loc.file. Every file is parsed even when an earlier one has errors, so one run reports them
 * all, each in its own file. Returns 0, -EINVAL (diags says why), -EPERM (untrusted) or
 * another -errno; nothing is returned unless every file is good. */
int policy_source_load(const struct policy_source *src, enum policy_open how, struct diags *d,
		       struct policy **ret_policy);

/* policy_source_load(), and when it fails with -EINVAL (a file did not parse) but the main file
 * did, the guards of the files that parsed in *ret_partial (the caller frees it): checking them
 * reports what the parse errors would otherwise hide until they are fixed. */
int policy_source_load_partial(const struct policy_source *src, enum policy_open how,
			       struct diags *d, struct policy **ret_policy,
			       struct policy **ret_partial);

/* Append the guards of the n dropins (each parsed with policy_parse_fd_opts), in order, to p
 * (policy_merged_new()), sharing them: takes the caller's reference to each, whose file names
 * p->dropins lists (their locs point there). Names are not compared here:
 * policy_source_load() does it once for all files. Returns 0 or -ENOMEM (p unchanged; every
 * dropin released). */
int policy_merge(struct policy *p, struct policy **dropins, size_t n);

#endif
