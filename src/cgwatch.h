/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_CGWATCH_H
#define LOGUARD_CGWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
 * patterns is reported once per pattern). path is below the mount, no leading '/'; owner is
 * the directory's uid (as last seen, in a removal report). */
typedef void (*cgmatch_cb)(void *data, size_t pattern, const char *path, unsigned level,
			   uint64_t id, uid_t owner, bool added);

/*
 * What is looked at: only directories below which some pattern can still match. A plain unit
 * pattern needs every directory outside delegated subtrees; "user@X.service/NAME" adds the
 * subtrees of matching user@ directories; a path pattern adds the directories its leading
 * components match. A user's own subtree is looked into only for "user@…" patterns that name
 * that user's manager.
 *
 * Limits, so that no user can blind the watcher for others: directories are counted per owner
 * (the directory's uid). Each untrusted owner gets at most max_per_owner, all of them together
 * max_untrusted, and root's (or the mount owner's) have their own max_trusted. A directory past
 * a limit is not followed (nor anything below it) until its owner's count goes down again: then
 * its parent is listed again. Watches the kernel refuses (fs.inotify.max_user_watches,
 * ENOSPC) leave the directory followed by a periodic rescan instead, poll_budget directories
 * every poll_ms, until a watch can be had again.
 */
struct cgwatch_limits {
	size_t max_per_owner; /* directories of one untrusted owner */
	size_t max_untrusted; /* of all untrusted owners together */
	size_t max_trusted;   /* of root and the mount's owner */
	unsigned poll_ms;     /* rescan period of directories without a watch */
	size_t poll_budget;   /* directories rescanned per period */
};
#define CGMATCH_MAX_DEPTH     16
#define CGWATCH_MAX_PER_OWNER 4096
#define CGWATCH_MAX_UNTRUSTED 65536
#define CGWATCH_MAX_TRUSTED   65536
#define CGWATCH_POLL_MS	      500
#define CGWATCH_POLL_BUDGET   256
#define CGMATCH_MAX_DIRS      CGWATCH_MAX_TRUSTED /* what a one-shot scan of root's follows */
#define CGWATCH_LIMITS_DEFAULT                                                  \
	((struct cgwatch_limits){ CGWATCH_MAX_PER_OWNER, CGWATCH_MAX_UNTRUSTED, \
				  CGWATCH_MAX_TRUSTED, CGWATCH_POLL_MS, CGWATCH_POLL_BUDGET })

/* What the watcher tells about its limits (see cgwatch_report_cb). */
enum cgwatch_event {
	CGWATCH_OWNER_LIMIT,	 /* uid's directories reached max_per_owner (count) */
	CGWATCH_OWNER_OK,	 /* uid's directories are all followed again */
	CGWATCH_UNTRUSTED_LIMIT, /* all users' directories reached max_untrusted */
	CGWATCH_TRUSTED_LIMIT,	 /* root's directories reached max_trusted */
	CGWATCH_TOTALS_OK,	 /* below both totals again */
	CGWATCH_NO_WATCHES,	 /* the kernel refused a watch: rescanning periodically */
	CGWATCH_WATCHES_OK,	 /* every followed directory has a watch again */
	__CGWATCH_EVENT_MAX
};

/* Called on each change of a limit's state; uid is -1 where it does not apply, count is the
 * directories of that owner (or class) or, for the watch events, those without a watch. */
typedef void (*cgwatch_report_cb)(void *data, enum cgwatch_event ev, long uid, size_t count);

/* One scan of the tree under cgroup_root (at most CGMATCH_MAX_DEPTH levels, within the
 * default limits), cb(added = true) for every match, in sorted path order.
 * 0 or -errno (-ENOENT: no such root). */
int cgmatch_scan(const char *cgroup_root, const struct cgmatch_pattern *patterns, size_t n,
		 cgmatch_cb cb, void *data);

/* The live watcher. */
struct cgwatch;

/* Watch the directories the patterns need (inotify IN_CREATE, IN_DELETE, IN_MOVED_* and
 * IN_ATTRIB on each), then scan them, cb(added = true) for every current match. patterns must
 * outlive the watcher. limits: NULL for the defaults; report: NULL for none. */
int cgwatch_new(const char *cgroup_root, const struct cgmatch_pattern *patterns, size_t n,
		const struct cgwatch_limits *limits, cgmatch_cb cb, cgwatch_report_cb report,
		void *data, struct cgwatch **ret);

/* The descriptor to poll for POLLIN: inotify events, or a rescan that is due. */
int cgwatch_fd(const struct cgwatch *w);

/* Handle pending events without blocking: a new directory is watched and scanned (its children
 * may predate the watch), matches reported with added = true; a removed cgroup that matched is
 * reported with added = false (same path and id as when added). On queue overflow the whole
 * tree is rescanned and only differences are reported; so is it on a later call after an
 * error (events were lost; the descriptor becomes readable again to retry). An owner change
 * re-evaluates the subtree. Due rescans of unwatched directories run here. 0 or -errno (the
 * watcher stays usable: out of memory, or a directory we may not read). */
int cgwatch_read(struct cgwatch *w);

/* Directories watched now (for tests and the stats record). */
size_t cgwatch_n_watched(const struct cgwatch *w);

/* The watcher's state under its limits (gauges, except skipped). */
struct cgwatch_stats {
	size_t watched;	  /* directories with an inotify watch */
	size_t polled;	  /* followed without a watch: rescanned every poll_ms */
	size_t truncated; /* directories with children left out by a limit */
	size_t skipped;	  /* directories left out by a limit, counted each time (cumulative) */
};
void cgwatch_get_stats(const struct cgwatch *w, struct cgwatch_stats *ret);

void cgwatch_free(struct cgwatch *w);

#endif
