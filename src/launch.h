/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_LAUNCH_H
#define LOGUARD_LAUNCH_H

#include <stdbool.h>

/* `loguard exec --as NAME` puts the command in the cgroup LAUNCH_CGROUP_PARENT/NAME below the
 * cgroup2 mount; the policy's `launched: [NAME]` allows exactly that cgroup (and its children).
 * The parent is created root-owned and 0755: only root can move processes in. */
#define LAUNCH_CGROUP_PARENT "loguard/launched"
#define LAUNCH_NAME_MAX	     64

/* Why NAME cannot name a launched cgroup (empty, '/', '.', '..', too long, characters other
 * than [A-Za-z0-9_.@-]), or NULL. Shared by the policy parser and `loguard exec`. */
const char *launch_name_invalid(const char *name);

struct launch_opts {
	const char *name;	 /* --as NAME */
	const char *user;	 /* --user USER: run as this user (initgroups + setgid + setuid) */
	const char *cgroup_root; /* NULL: find the cgroup2 mount */
	unsigned wait_ms;	 /* wait this long for the running policy to allow the cgroup */
	char *const *argv;	 /* the command */
};

/* Create the cgroup NAME and this run's cgroup below it, wait until the kernel's table allows
 * NAME (or warn), run the command there (as opts->user: in a session of its own, with the
 * user's environment and no fd above 2), wait for it, then kill what it left in the run's cgroup
 * and remove that. Returns the exit status: the command's (128 + signal if killed), or 2 usage,
 * 3 system error, 127 command not found, 126 not executable, with the error printed. */
int launch_exec(const struct launch_opts *opts);

#endif
