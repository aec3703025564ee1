/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_COMPILE_H
#define LOGUARD_COMPILE_H

#include "diag.h"
#include "policy.h"
#include "ruleset.h"

/* Compile a checked policy into the ruleset IR. The ruleset borrows guard names
 * and locations from the policy: free it before the policy. Returns 0 or -errno. */
int compile_policy(const struct policy *p, struct diags *diags, struct ruleset **ret_rs);

struct compile_opts {
	/* For `loguard run`: sets the daemon fills while it runs (cgroups of every level up to
	 * LOGUARD_LIVE_CGROUP_LEVELS for guards with units, cgroups or launched names) get a
	 * size with room to grow. */
	bool live;
};

int compile_policy_opts(const struct policy *p, const struct compile_opts *opts,
			struct diags *diags, struct ruleset **ret_rs);

/* Decode a deny-profile chain name made by the compiler ("audit",
 * "enforce_reject_log_denied", ...) so `show` can report a guard's mode. */
int compile_profile_from_chain(const char *chain, enum policy_mode *ret_mode,
			       enum policy_action *ret_action, enum policy_log *ret_log);

#endif
