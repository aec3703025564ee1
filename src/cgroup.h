/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_CGROUP_H
#define LOGUARD_CGROUP_H

#include <stdint.h>
#include <sys/stat.h>

/* The first cgroup2 mount point in /proc/self/mountinfo, malloc()ed.
 * 0, -ENOENT (no cgroup2 mount), -ENOMEM or another -errno. */
int cgroup2_find_mount(char **ret);

/* Depth of a path below the mount: "a.slice/b.service" is level 2. */
unsigned cgroup_path_level(const char *rel);

/* The id `socket cgroupv2 level N` and sock_diag's INET_DIAG_CGROUP_ID report for directory
 * rel under dirfd (st: its stat, for the fallback on filesystems without file handles). */
uint64_t cgroup_id_at(int dirfd, const char *rel, const struct stat *st);

#endif
