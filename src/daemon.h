/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_DAEMON_H
#define LOGUARD_DAEMON_H

#include <stdbool.h>

/* How `loguard run` was asked to behave. */
struct daemon_opts {
	const char *policy_file;
	const char *policy_dir;	  /* drop-ins (policy_dir.h); NULL: none */
	bool policy_dir_optional; /* a missing policy_dir means none (the default pair) */
	bool keep_rules;	 /* leave the table installed on SIGTERM/SIGINT */
	const char *log_file;	 /* append records here instead of stdout; NULL = stdout */
	bool text;		 /* records for people instead of JSON lines */
	unsigned stats_interval; /* seconds between stats records while there is traffic */
};

/* Apply the policy, log every record of its NFLOG group until SIGTERM/SIGINT,
 * reload on SIGHUP. Returns an exit status (exit_status.h): EXIT_OK, EXIT_POLICY or
 * EXIT_SYSTEM. */
int daemon_run(const struct daemon_opts *opts);

#endif
