/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_CGROUP_H
#define LOGUARD_CGROUP_H

/* The first cgroup2 mount point in /proc/self/mountinfo, malloc()ed.
 * 0, -ENOENT (no cgroup2 mount), -ENOMEM or another -errno. */
int cgroup2_find_mount(char **ret);

#endif
