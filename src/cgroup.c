// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Where the cgroup2 hierarchy is mounted. Not always /sys/fs/cgroup: hybrid hosts mount it at
 * /sys/fs/cgroup/unified (this project's machines do), so read /proc/self/mountinfo:
 * "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup.h"

/* Undo the octal escapes (\040 etc.) /proc/self/mountinfo uses for blanks in paths. */
static void unescape_mount_path(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/*
 * The cgroup2 mount is not always /sys/fs/cgroup (hybrid hosts use /sys/fs/cgroup/unified),
 * so read it from mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE ..."
 */
int cgroup2_find_mount(char **ret)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t size = 0;
	char *line = NULL;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &size, f) > 0) {
		char *save = NULL, *mnt = NULL, *tok;
		bool sep = false;
		unsigned field = 0;

		for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
			if (field++ == 4)
				mnt = tok;
			if (sep)
				break;
			if (field > 6 && !strcmp(tok, "-"))
				sep = true;
		}
		if (!tok || !mnt || strcmp(tok, "cgroup2"))
			continue;
		unescape_mount_path(mnt);
		*ret = strdup(mnt);
		r = *ret ? 0 : -ENOMEM;
		break;
	}
	free(line);
	fclose(f);
	return r;
}

unsigned cgroup_path_level(const char *rel)
{
	unsigned level = 1;

	for (; *rel; rel++)
		level += *rel == '/';
	return level;
}

/*
 * The cgroup's file handle on cgroupfs is a u64 kernfs id, which is also its inode number on
 * 64-bit; other filesystems (the tests' stand-in trees) have only st_ino.
 */
uint64_t cgroup_id_at(int dirfd, const char *rel, const struct stat *st)
{
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h;
	uint64_t id;
	int mnt;

	h.fh.handle_bytes = sizeof(uint64_t);
	if (name_to_handle_at(dirfd, rel, &h.fh, &mnt, 0) == 0 &&
	    h.fh.handle_bytes == sizeof(uint64_t)) {
		memcpy(&id, h.fh.f_handle, sizeof(id));
		return id;
	}
	return st->st_ino;
}
