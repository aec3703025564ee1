/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_CGWATCH_H
#define LOGUARD_CGWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Which cgroups match the policy's unit and cgroup patterns, now (a one-shot scan for `check`
 * and `apply`) and from now on (inotify on the cgroup2 tree for `loguard run`).
 *
 * Trust: a user's systemd manager (user@UID.service) is delegated to that user, who can create
 * cgroups of any name below it. So a plain unit pattern ("postgresql.service", "app-*.scope")
 * matches only cgroups outside delegated subtrees (every directory from the mount down owned by
 * root): units of the system manager, session scopes, user@UID.service itself. Units of user
 * managers must say so: "user@1000.service/app-firefox-*.scope" or
 * "user@*.service/app-firefox-*.scope" matches that unit name anywhere below a matching
 * user@ directory. Cgroup path patterns are globs over the whole path below the mount
 * (fnmatch with FNM_PATHNAME): the policy author wrote the path, so no ownership rule applies.
 *
 * Exactly: a name is trusted when every directory above it, below the mount, is owned by root
 * or by the mount's owner (root on a host; whoever made a test's stand-in tree), since they
 * chose it; user@1000.service, chowned to 1000, is trusted, what 1000 makes below is not. The
 * user@ directory of a "user@X.service/NAME" match must have a trusted name too, so a user
 * cannot fake "user@0.service" inside their own subtree. Globs are fnmatch() with
 * FNM_NOESCAPE: '\' is literal, as in systemd's escaped names ("system-serial\x2dgetty.slice").
 */

enum cgmatch_kind {
	CGMATCH_UNIT,	   /* glob on the directory name; outside delegated subtrees only */
	CGMATCH_USER_UNIT, /* "user@GLOB.service/NAMEGLOB": NAMEGLOB below a user@ directory */
	CGMATCH_PATH,	   /* glob on the path below the mount, no leading '/' */
};

struct cgmatch_pattern {
	enum cgmatch_kind kind;
	const char *glob; /* as written, e.g. "app-*.scope", "user@*.service/app-*.scope" */
};

/* The kind of a unit pattern as written: CGMATCH_USER_UNIT when it starts with "user@" and
 * has a '/', else CGMATCH_UNIT. Slices need no special case: "a-b.slice" is matched by name. */
enum cgmatch_kind cgmatch_unit_kind(const char *unit_pattern);

/* Called for every cgroup that matches pattern index `pattern` (a cgroup matching several
 * patterns is reported once per pattern). path is below the mount, no leading '/'. */
typedef void (*cgmatch_cb)(void *data, size_t pattern, const char *path, unsigned level,
			   uint64_t id, bool added);

/* One scan of the tree under cgroup_root (at most CGMATCH_MAX_DEPTH levels and
 * CGMATCH_MAX_DIRS directories), cb(added = true) for every match, in sorted path order.
 * 0 or -errno (-ENOENT: no such root). */
#define CGMATCH_MAX_DEPTH 16
#define CGMATCH_MAX_DIRS  65536
int cgmatch_scan(const char *cgroup_root, const struct cgmatch_pattern *patterns, size_t n,
		 cgmatch_cb cb, void *data);

/* The live watcher. */
struct cgwatch;

/* Watch every directory of the tree (inotify IN_CREATE, IN_DELETE, IN_MOVED_* and IN_ATTRIB
 * on each), then scan it, cb(added = true) for every current match. patterns must outlive the
 * watcher. */
int cgwatch_new(const char *cgroup_root, const struct cgmatch_pattern *patterns, size_t n,
		cgmatch_cb cb, void *data, struct cgwatch **ret);

/* The inotify descriptor to poll for POLLIN. */
int cgwatch_fd(const struct cgwatch *w);

/* Handle pending events without blocking: a new directory is watched and scanned (its children
 * may predate the watch), matches reported with added = true; a removed cgroup that matched is
 * reported with added = false (same path and id as when added). On queue overflow the whole
 * tree is rescanned and only differences are reported; so is it on the call after an error
 * (events were lost). An owner change re-evaluates the subtree. 0 or -errno (-ENOSPC: out of
 * inotify watches, fs.inotify.max_user_watches). */
int cgwatch_read(struct cgwatch *w);

/* Directories watched now (for tests and the stats record). */
size_t cgwatch_n_watched(const struct cgwatch *w);

void cgwatch_free(struct cgwatch *w);

#endif
