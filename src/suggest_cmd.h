/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_SUGGEST_CMD_H
#define LOGUARD_SUGGEST_CMD_H

#include <stdbool.h>

#include "suggest.h"

/* What `loguard suggest` was asked to do. */
struct suggest_cmd_opts {
	const char *policy_file;
	const char *input; /* run's --log-file or `journalctl -o json`; NULL or "-": stdin */
	bool diff;	   /* print a unified diff against policy_file instead of the policy */
	struct suggest_opts o;
};

/* Run `loguard suggest`: prints the suggestion (or diff) on stdout and located warnings on
 * stderr; returns the exit status (0, 1 invalid policy, 3 unreadable input). */
int suggest_cmd_run(const struct suggest_cmd_opts *o);

#endif
