/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loguard's exit statuses: the one list main (every command), the daemon (`run`) and the launch
 * supervisor (`exec`) return. Documented in loguard(8) and README; scripts and systemd's
 * RestartPreventExitStatus= depend on them, so a value never changes meaning.
 */
#ifndef LOGUARD_EXIT_STATUS_H
#define LOGUARD_EXIT_STATUS_H

enum exit_status {
	EXIT_OK = 0,
	EXIT_POLICY = 1,	/* the policy is invalid */
	EXIT_USAGE = 2,		/* bad command line */
	EXIT_SYSTEM = 3,	/* kernel, permission or I/O error */
	EXIT_NOT_INSTALLED = 4, /* show: no table inet loguard */
	/* exec: as env(1) and the shells, when the command itself could not run */
	EXIT_CANNOT_INVOKE = 126,
	EXIT_NOT_FOUND = 127,
};

#endif
