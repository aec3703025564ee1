/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_COMPILE_H
#define LOGUARD_COMPILE_H

#include "diag.h"
#include "policy.h"
#include "ruleset.h"

/* Compile a checked policy into the ruleset IR. The ruleset borrows guard names
 * and locations from the policy: free it before the policy. Returns 0 or -errno. */
int compile_policy(const struct policy *p, struct diags *diags, struct ruleset **ret_rs);

/* Decode a deny-profile chain name made by the compiler ("audit",
 * "enforce_reject_log_denied", ...) so `show` can report a guard's mode. */
int compile_profile_from_chain(const char *chain, enum policy_mode *ret_mode,
			       enum policy_action *ret_action, enum policy_log *ret_log);

#endif
