// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cgroups that match the policy's unit and cgroup patterns: one scan, or a live view kept
 * by inotify.
 *
 * What cgroupfs emits (measured on Linux 6.18, cgroup2 at /sys/fs/cgroup/unified): mkdir gives
 * IN_CREATE|IN_ISDIR on the parent's watch; rmdir gives IN_DELETE|IN_ISDIR on the parent's
 * watch but nothing on the removed directory's own watch (no IN_DELETE_SELF, no IN_IGNORED: the
 * watch stays until inotify_rm_watch, so we remove it ourselves); chown and chmod give
 * IN_ATTRIB|IN_ISDIR on the parent's watch (named) and on the directory's own; rename fails
 * (EPERM on cgroup2). The test trees (ext4, tmpfs) also send IN_MOVED_* and IN_IGNORED.
 *
 * An event only says which name to look at: each is handled by looking at that entry as it is
 * now and comparing its id with ours ("reconcile"), so events that arrive late, several for
 * one name, or after the directory was made anew (a unit restart is rmdir + mkdir) all end in
 * the same, right state.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "array.h"
#include "cgroup.h"
#include "cgwatch.h"

/* No IN_DELETE_SELF: cgroupfs never sends it, and IN_IGNORED (always sent) covers the rest. */
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR)
#define FNM_UNIT   (FNM_NOESCAPE) /* unit names escape with '\' themselves ("a\x2db") */

struct cgnode {
	struct cgnode *parent, *child, *next; /* children unordered */
	char *path;			      /* below the mount, no leading '/'; "" is the root */
	const char *base;
	unsigned level;
	int wd; /* -1: not watched */
	uid_t uid;
	bool delegated; /* this directory or one above it (below the mount) is not trusted's */
	uint64_t id;
	size_t *matched; /* sorted pattern indexes, as reported */
	size_t n_matched;
	bool listed;	/* its children are known: some pattern may match below it */
	bool charged;	/* counted in charged_uid's directories */
	bool polled;	/* listed but the kernel refused a watch: in w->polled[poll_idx] */
	bool truncated; /* children left out by a limit: in w->trunc[trunc_idx] */
	uid_t charged_uid;
	size_t poll_idx, trunc_idx;
	unsigned trunc_gen; /* the retry pass that last listed it again */
};

/* Directories kept per untrusted owner. */
struct owner_count {
	uid_t uid;
	size_t n;
	bool limited; /* one of theirs was left out since their last retry */
};

struct wd_slot {
	int wd; /* 0: empty (inotify's descriptors start at 1) */
	struct cgnode *node;
};

struct cgwatch {
	char *root;
	int root_fd, ino_fd;
	uid_t root_uid;
	bool proc_fd; /* watches are added through /proc/self/fd: the inode we opened, no race */
	bool dirty;   /* an error lost events: rescan on the next read */
	int ep_fd, timer_fd; /* what cgwatch_fd() gives: inotify or a due rescan */
	bool timer_armed;
	struct cgnode *tree;
	size_t n_dirs, n_watched;
	struct wd_slot *wds;
	size_t wds_cap, wds_n;

	struct cgwatch_limits lim;
	cgwatch_report_cb report;
	struct owner_count *owners;
	size_t n_owners, cap_owners;
	size_t n_trusted, n_untrusted;		 /* charged directories */
	bool untrusted_limited, trusted_limited; /* a total was hit since the last retry */
	bool retry;				 /* a limited count went down: list again */
	struct cgnode **polled, **trunc;	 /* see struct cgnode */
	size_t n_polled, cap_polled, poll_cursor;
	size_t n_trunc, cap_trunc;
	unsigned trunc_gen;
	bool no_watches; /* reported CGWATCH_NO_WATCHES, not yet CGWATCH_WATCHES_OK */
	size_t skipped;

	const struct cgmatch_pattern *pat;
	size_t n_pat;
	size_t n_unit_pats, n_user_pats, n_path_pats; /* by kind: what needs which directories */
	const char **glob;    /* what is matched: the name, or the path without leading '/' */
	char **user_glob;     /* CGMATCH_USER_UNIT: the "user@X.service" part */
	size_t *by_glob_text; /* literal unit and user-unit patterns, sorted by glob[] */
	size_t *by_path;      /* literal path patterns, sorted by glob[] */
	size_t *globs;	      /* the rest: fnmatch for each directory */
	size_t n_by_glob_text, n_by_path, n_globs;
	cgmatch_cb cb;
	void *data;
};

/* --- the wd → directory map: open addressing, linear probing, backward-shift deletion --- */

static size_t wd_hash(const struct cgwatch *w, int wd)
{
	return ((unsigned)wd * 2654435761U) & (w->wds_cap - 1);
}

static struct cgnode *wd_get(const struct cgwatch *w, int wd)
{
	if (!w->wds_cap)
		return NULL;
	for (size_t i = wd_hash(w, wd);; i = (i + 1) & (w->wds_cap - 1)) {
		if (w->wds[i].wd == wd)
			return w->wds[i].node;
		if (!w->wds[i].wd)
			return NULL;
	}
}

static void wd_set(struct cgwatch *w, int wd, struct cgnode *node)
{
	size_t i = wd_hash(w, wd);

	while (w->wds[i].wd && w->wds[i].wd != wd)
		i = (i + 1) & (w->wds_cap - 1);
	w->wds_n += !w->wds[i].wd;
	w->wds[i].wd = wd;
	w->wds[i].node = node;
}

static int wd_put(struct cgwatch *w, int wd, struct cgnode *node)
{
	if ((w->wds_n + 1) * 2 > w->wds_cap) {
		struct wd_slot *old = w->wds;
		size_t old_cap = w->wds_cap, cap = old_cap ? old_cap * 2 : 64;

		w->wds = calloc(cap, sizeof(*w->wds));
		if (!w->wds) {
			w->wds = old;
			return -ENOMEM;
		}
		w->wds_cap = cap;
		w->wds_n = 0;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].wd)
				wd_set(w, old[i].wd, old[i].node);
		free(old);
	}
	wd_set(w, wd, node);
	return 0;
}

static void wd_del(struct cgwatch *w, int wd)
{
	size_t mask = w->wds_cap - 1, i = wd_hash(w, wd), j;

	while (w->wds[i].wd != wd) {
		if (!w->wds[i].wd)
			return;
		i = (i + 1) & mask;
	}
	/* Pull later entries of the probe run back, so lookups never stop at a hole. */
	for (j = (i + 1) & mask; w->wds[j].wd; j = (j + 1) & mask) {
		size_t k = wd_hash(w, w->wds[j].wd);

		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			w->wds[i] = w->wds[j];
			i = j;
		}
	}
	w->wds[i].wd = 0;
	w->wds_n--;
}

/* --- patterns --- */

static bool is_literal(const char *glob)
{
	return !strpbrk(glob, "*?[");
}

static int cmp_glob(const void *a, const void *b, void *arg)
{
	const struct cgwatch *w = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int r = strcmp(w->glob[i], w->glob[j]);

	return r ? r : (i > j) - (i < j);
}

static int patterns_prepare(struct cgwatch *w, const struct cgmatch_pattern *pat, size_t n)
{
	w->pat = pat;
	w->n_pat = n;
	w->glob = calloc(n + 1, sizeof(*w->glob));
	w->user_glob = calloc(n + 1, sizeof(*w->user_glob));
	w->by_glob_text = calloc(n + 1, sizeof(size_t));
	w->by_path = calloc(n + 1, sizeof(size_t));
	w->globs = calloc(n + 1, sizeof(size_t));
	if (!w->glob || !w->user_glob || !w->by_glob_text || !w->by_path || !w->globs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *g = pat[i].glob, *slash;

		switch (pat[i].kind) {
		case CGMATCH_UNIT:
			break;
		case CGMATCH_USER_UNIT:
			slash = strchr(g, '/');
			if (!slash)
				continue; /* not the user@ form: matches nothing */
			w->user_glob[i] = strndup(g, slash - g);
			if (!w->user_glob[i])
				return -ENOMEM;
			g = slash + 1;
			break;
		case CGMATCH_PATH:
			g += strspn(g, "/");
			break;
		default:
			continue;
		}
		w->glob[i] = g;
		w->n_unit_pats += pat[i].kind == CGMATCH_UNIT;
		w->n_user_pats += pat[i].kind == CGMATCH_USER_UNIT;
		w->n_path_pats += pat[i].kind == CGMATCH_PATH;
		if (!is_literal(g))
			w->globs[w->n_globs++] = i;
		else if (pat[i].kind == CGMATCH_PATH)
			w->by_path[w->n_by_path++] = i;
		else
			w->by_glob_text[w->n_by_glob_text++] = i;
	}
	qsort_r(w->by_glob_text, w->n_by_glob_text, sizeof(size_t), cmp_glob, w);
	qsort_r(w->by_path, w->n_by_path, sizeof(size_t), cmp_glob, w);
	return 0;
}

/* First index in v (sorted by glob[]) whose glob is key, or n. */
static size_t lower_bound(const struct cgwatch *w, const size_t *v, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(w->glob[v[mid]], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The owner of the mount is the administrator of the tree (root on a host; the tests' own uid
 * in their stand-in trees): what it or root made is not delegated. */
static bool trusted(const struct cgwatch *w, uid_t uid)
{
	return uid == 0 || uid == w->root_uid;
}

/* A name is trustworthy when whoever could choose it (the owner of every directory above) is
 * trusted: user@1000.service itself is, though its owner is 1000; what 1000 makes below is not. */
static bool name_trusted(const struct cgnode *n)
{
	return !n->parent->delegated;
}

/*
 * The owners we keep can be a few events behind: systemd chowns user@UID.service right after
 * making it, and that IN_ATTRIB may still be queued behind the event being handled (or, in a
 * one-shot scan, come after we stat()ed the parent). A plain unit match is reported only if
 * every directory above is trusted now, asked again; the IN_ATTRIB then re-evaluates the rest.
 */
static bool ancestors_trusted_now(const struct cgwatch *w, const struct cgnode *n)
{
	struct stat st;

	for (const struct cgnode *a = n->parent; a->parent; a = a->parent)
		if (fstatat(w->root_fd, a->path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !trusted(w, st.st_uid))
			return false;
	return true;
}

/* "user@*.service/NAME": some directory above is a user@ unit whose own name is trusted, so a
 * user cannot fake one ("user@0.service") inside their own subtree. */
static bool below_user_unit(const struct cgnode *n, const char *user_glob)
{
	for (const struct cgnode *a = n->parent; a->parent; a = a->parent)
		if (name_trusted(a) && !fnmatch(user_glob, a->base, FNM_UNIT))
			return true;
	return false;
}

static bool pattern_matches(const struct cgwatch *w, const struct cgnode *n, size_t i, bool literal)
{
	switch (w->pat[i].kind) {
	case CGMATCH_UNIT:
		return name_trusted(n) && (literal || !fnmatch(w->glob[i], n->base, FNM_UNIT));
	case CGMATCH_USER_UNIT:
		return (literal || !fnmatch(w->glob[i], n->base, FNM_UNIT)) &&
		       below_user_unit(n, w->user_glob[i]);
	case CGMATCH_PATH:
		return literal || !fnmatch(w->glob[i], n->path, FNM_PATHNAME | FNM_NOESCAPE);
	}
	return false;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

/* Add pattern i to the match set v if it matches n. */
static int consider(const struct cgwatch *w, const struct cgnode *n, size_t i, bool literal,
		    int *fresh, size_t **v, size_t *nv, size_t *cap)
{
	if (!pattern_matches(w, n, i, literal))
		return 0;
	if (w->pat[i].kind == CGMATCH_UNIT) {
		if (*fresh < 0)
			*fresh = ancestors_trusted_now(w, n);
		if (!*fresh)
			return 0;
	}
	if (array_grow(v, cap, *nv, sizeof(**v)) < 0)
		return -ENOMEM;
	(*v)[(*nv)++] = i;
	return 0;
}

/* Compute which patterns match n now and report the difference to what was reported. */
static int node_evaluate(struct cgwatch *w, struct cgnode *n)
{
	size_t *v = NULL, nv = 0, cap = 0, i, o = 0;
	int fresh = -1, r = 0;

	n->delegated = !trusted(w, n->uid) || n->parent->delegated;
	for (i = lower_bound(w, w->by_glob_text, w->n_by_glob_text, n->base);
	     r == 0 && i < w->n_by_glob_text && !strcmp(w->glob[w->by_glob_text[i]], n->base); i++)
		r = consider(w, n, w->by_glob_text[i], true, &fresh, &v, &nv, &cap);
	for (i = lower_bound(w, w->by_path, w->n_by_path, n->path);
	     r == 0 && i < w->n_by_path && !strcmp(w->glob[w->by_path[i]], n->path); i++)
		r = consider(w, n, w->by_path[i], true, &fresh, &v, &nv, &cap);
	for (i = 0; r == 0 && i < w->n_globs; i++)
		r = consider(w, n, w->globs[i], false, &fresh, &v, &nv, &cap);
	if (r < 0) {
		free(v);
		return r;
	}
	if (nv > 1)
		qsort(v, nv, sizeof(*v), cmp_size);

	/* Merge old and new: report what left, then what came. */
	for (i = 0; i < n->n_matched; i++) {
		while (o < nv && v[o] < n->matched[i])
			o++;
		if (o == nv || v[o] != n->matched[i])
			w->cb(w->data, n->matched[i], n->path, n->level, n->id, n->uid, false);
	}
	for (i = 0, o = 0; i < nv; i++) {
		while (o < n->n_matched && n->matched[o] < v[i])
			o++;
		if (o == n->n_matched || n->matched[o] != v[i])
			w->cb(w->data, v[i], n->path, n->level, n->id, n->uid, true);
	}
	free(n->matched);
	n->matched = v;
	n->n_matched = nv;
	return 0;
}

/* --- what is worth looking into --- */

/* Do the first `level` components of path glob g match path (level components)? Only then can
 * the glob match below it; and only if it has more components than that. */
static bool path_prefix_matches(const char *g, const char *path, unsigned level)
{
	const char *end = g;
	char *prefix;
	bool r;

	for (unsigned k = 0; k < level; k++) {
		end = strchr(end, '/');
		if (!end)
			return false; /* the glob ends at or above this level */
		end++;
	}
	if (!level)
		return true;
	prefix = strndup(g, end - g - 1);
	if (!prefix)
		return true; /* out of memory: look rather than miss */
	r = !fnmatch(prefix, path, FNM_PATHNAME | FNM_NOESCAPE);
	free(prefix);
	return r;
}

/* Can some pattern match a directory below n? Only those are listed and watched: a user's own
 * subtree matters only to "user@…" patterns naming that user's manager, a path pattern only
 * below its leading components. n's delegated flag must be current. */
static bool wants_children(const struct cgwatch *w, const struct cgnode *n)
{
	if (n->level >= CGMATCH_MAX_DEPTH)
		return false;
	/* Below a trusted directory, names are trusted: any unit may appear, so may a user@. */
	if ((w->n_unit_pats || w->n_user_pats) && !n->delegated)
		return true;
	for (size_t i = 0; w->n_user_pats && i < w->n_pat; i++) {
		if (w->pat[i].kind != CGMATCH_USER_UNIT || !w->user_glob[i])
			continue;
		for (const struct cgnode *a = n; a->parent; a = a->parent)
			if (name_trusted(a) && !fnmatch(w->user_glob[i], a->base, FNM_UNIT))
				return true;
	}
	for (size_t i = 0; w->n_path_pats && i < w->n_pat; i++)
		if (w->pat[i].kind == CGMATCH_PATH && w->glob[i] &&
		    path_prefix_matches(w->glob[i], n->path, n->level))
			return true;
	return false;
}

/* --- limits: directories per owner, watches the kernel refuses --- */

static void report(struct cgwatch *w, enum cgwatch_event ev, long uid, size_t count)
{
	if (w->report)
		w->report(w->data, ev, uid, count);
}

static struct owner_count *owner_get(struct cgwatch *w, uid_t uid, bool create)
{
	for (size_t i = 0; i < w->n_owners; i++)
		if (w->owners[i].uid == uid)
			return &w->owners[i];
	if (!create || array_grow(&w->owners, &w->cap_owners, w->n_owners, sizeof(*w->owners)) < 0)
		return NULL;
	w->owners[w->n_owners] = (struct owner_count){ .uid = uid };
	return &w->owners[w->n_owners++];
}

/* Count n for its owner; false (and the limit reported once) if the owner or its class has no
 * room left: then n is not kept. */
static bool owner_charge(struct cgwatch *w, struct cgnode *n)
{
	struct owner_count *o;

	if (!n->parent)
		return true;
	if (trusted(w, n->uid)) {
		if (w->n_trusted >= w->lim.max_trusted) {
			if (!w->trusted_limited)
				report(w, CGWATCH_TRUSTED_LIMIT, -1, w->n_trusted);
			w->trusted_limited = true;
			return false;
		}
		w->n_trusted++;
	} else {
		o = owner_get(w, n->uid, true);
		if (!o)
			return false;
		if (o->n >= w->lim.max_per_owner) {
			if (!o->limited)
				report(w, CGWATCH_OWNER_LIMIT, (long)n->uid, o->n);
			o->limited = true;
			return false;
		}
		if (w->n_untrusted >= w->lim.max_untrusted) {
			if (!w->untrusted_limited)
				report(w, CGWATCH_UNTRUSTED_LIMIT, -1, w->n_untrusted);
			w->untrusted_limited = true;
			return false;
		}
		o->n++;
		w->n_untrusted++;
	}
	n->charged = true;
	n->charged_uid = n->uid;
	return true;
}

static void owner_uncharge(struct cgwatch *w, struct cgnode *n)
{
	struct owner_count *o;

	if (!n->charged)
		return;
	n->charged = false;
	if (trusted(w, n->charged_uid)) {
		w->n_trusted--;
		w->retry |= w->trusted_limited;
		return;
	}
	w->n_untrusted--;
	w->retry |= w->untrusted_limited;
	o = owner_get(w, n->charged_uid, false);
	if (o) {
		o->n--;
		w->retry |= o->limited;
	}
}

/* The lists of polled and truncated directories: removal by index swaps the last one in. */
static int list_add(struct cgnode ***v, size_t *n, size_t *cap, struct cgnode *node, size_t *idx)
{
	if (array_grow(v, cap, *n, sizeof(**v)) < 0)
		return -ENOMEM;
	*idx = *n;
	(*v)[(*n)++] = node;
	return 0;
}

static void poll_del(struct cgwatch *w, struct cgnode *n)
{
	if (!n->polled)
		return;
	n->polled = false;
	w->polled[n->poll_idx] = w->polled[--w->n_polled];
	w->polled[n->poll_idx]->poll_idx = n->poll_idx;
}

static void trunc_del(struct cgwatch *w, struct cgnode *n)
{
	if (!n->truncated)
		return;
	n->truncated = false;
	w->trunc[n->trunc_idx] = w->trunc[--w->n_trunc];
	w->trunc[n->trunc_idx]->trunc_idx = n->trunc_idx;
}

/* How many more directories the owner of parent may have: what a user makes below their own
 * directory is theirs (only root could make it otherwise), so a listing stops there instead of
 * looking at each of tens of thousands of names first. */
static size_t owner_room(struct cgwatch *w, const struct cgnode *parent)
{
	struct owner_count *o;

	if (!parent->charged || trusted(w, parent->charged_uid))
		return SIZE_MAX;
	o = owner_get(w, parent->charged_uid, false);
	if (!o)
		return w->lim.max_per_owner;
	if (o->n < w->lim.max_per_owner)
		return w->lim.max_per_owner - o->n;
	if (!o->limited)
		report(w, CGWATCH_OWNER_LIMIT, (long)o->uid, o->n);
	o->limited = true;
	return 0;
}

/* A child of n was left out by a limit. */
static void trunc_add(struct cgwatch *w, struct cgnode *n)
{
	w->skipped++;
	if (!n->truncated && list_add(&w->trunc, &w->n_trunc, &w->cap_trunc, n, &n->trunc_idx) == 0)
		n->truncated = true;
	n->trunc_gen = w->trunc_gen;
}

/* --- the tree --- */

static struct cgnode *node_new(struct cgwatch *w, struct cgnode *parent, const char *name)
{
	struct cgnode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	if (asprintf(&n->path, "%s%s%s", parent->path, *parent->path ? "/" : "", name) < 0) {
		free(n);
		return NULL;
	}
	n->base = n->path + strlen(n->path) - strlen(name);
	n->level = parent->level + 1;
	n->wd = -1;
	n->parent = parent;
	n->next = parent->child;
	parent->child = n;
	w->n_dirs++;
	return n;
}

static void node_unwatch(struct cgwatch *w, struct cgnode *n)
{
	poll_del(w, n);
	if (n->wd < 0)
		return;
	/* EINVAL when the kernel dropped it already (its IN_IGNORED is queued): nothing to do. */
	inotify_rm_watch(w->ino_fd, n->wd);
	wd_del(w, n->wd);
	n->wd = -1;
	w->n_watched--;
}

static void node_unlink(struct cgnode *n)
{
	struct cgnode **pp = &n->parent->child;

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
}

static void node_free(struct cgwatch *w, struct cgnode *n)
{
	while (n->child) {
		struct cgnode *c = n->child;

		n->child = c->next;
		node_free(w, c);
	}
	if (n->parent)
		w->n_dirs--;
	poll_del(w, n);
	trunc_del(w, n);
	owner_uncharge(w, n);
	free(n->matched);
	free(n->path);
	free(n);
}

/* The directory is gone (or replaced): report its matches and its subtree's as removed. */
static void subtree_remove(struct cgwatch *w, struct cgnode *n)
{
	while (n->child)
		subtree_remove(w, n->child);
	for (size_t i = 0; i < n->n_matched; i++)
		w->cb(w->data, n->matched[i], n->path, n->level, n->id, n->uid, false);
	node_unwatch(w, n);
	node_unlink(n);
	node_free(w, n);
}

static struct cgnode *child_find(const struct cgnode *p, const char *name)
{
	struct cgnode *c;

	for (c = p->child; c && strcmp(c->base, name); c = c->next)
		;
	return c;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The subdirectories of the directory fd, sorted (the result must not depend on readdir order).
 * Takes fd. */
static int list_dirs(int fd, char ***ret, size_t *ret_n)
{
	size_t n = 0, cap = 0;
	char **v = NULL;
	struct dirent *de;
	DIR *d = fdopendir(fd);

	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		/* Files are never cgroups, whatever their name; cgroupfs fills in d_type. */
		if (de->d_type != DT_DIR &&
		    (de->d_type != DT_UNKNOWN ||
		     fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISDIR(st.st_mode)))
			continue;
		if (array_grow(&v, &cap, n, sizeof(*v)) < 0 || !(v[n] = strdup(de->d_name))) {
			closedir(d);
			names_free(v, n);
			return -ENOMEM;
		}
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_cstr);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Watch the directory open at fd: the same inode we list, even if the name is reused since.
 * When the kernel has no watch left for us (ENOSPC: fs.inotify.max_user_watches, counted per
 * user and user namespace), the directory is rescanned periodically instead. */
static int node_watch(struct cgwatch *w, struct cgnode *n, int fd)
{
	char proc[64], *path = NULL;
	struct cgnode *old;
	int wd, r;

	if (w->ino_fd < 0 || n->wd >= 0)
		return 0;
	if (w->proc_fd) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		wd = inotify_add_watch(w->ino_fd, proc, WATCH_MASK);
	} else {
		if (asprintf(&path, "%s/%s", w->root, n->path) < 0)
			return -ENOMEM;
		wd = inotify_add_watch(w->ino_fd, path, WATCH_MASK);
		free(path);
	}
	if (wd < 0 && (errno == ENOSPC || errno == ENOMEM)) {
		if (!n->polled &&
		    list_add(&w->polled, &w->n_polled, &w->cap_polled, n, &n->poll_idx) < 0)
			return -ENOMEM;
		n->polled = true;
		if (!w->no_watches)
			report(w, CGWATCH_NO_WATCHES, -1, w->n_watched);
		w->no_watches = true;
		return 0;
	}
	if (wd < 0)
		return -errno;
	old = wd_get(w, wd);
	if (old) {
		/* The inode moved here (a rename on a test tree) before its old place's event came:
		 * the watch is this node's now; the stale node goes with its own event. */
		old->wd = -1;
		w->n_watched--;
	}
	r = wd_put(w, wd, n);
	if (r < 0) {
		inotify_rm_watch(w->ino_fd, wd);
		return r;
	}
	poll_del(w, n);
	n->wd = wd;
	w->n_watched++;
	return 0;
}

/* A node just made (nothing reported, no children): forget it. */
static void node_drop(struct cgwatch *w, struct cgnode *n)
{
	node_unwatch(w, n);
	node_unlink(n);
	node_free(w, n);
}

/* Watch the directory open at fd and queue its children (not yet looked at). The watch comes
 * before the listing, so a child made meanwhile is listed, or announced by an event, or both
 * (reconcile then finds it known). Takes fd. */
static int node_expand(struct cgwatch *w, struct cgnode *n, int fd, struct cgnode ***q, size_t *nq,
		       size_t *cap)
{
	char **names = NULL;
	size_t n_names = 0, room;
	int r;

	r = node_watch(w, n, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	n->listed = true;
	r = list_dirs(fd, &names, &n_names);
	room = owner_room(w, n);
	for (size_t i = 0; r == 0 && i < n_names; i++) {
		struct cgnode *c;

		if (i >= room) {
			/* room is a guess (a child may be root's): the next retry, listing one by
			 * one, takes in what really fits. */
			w->skipped += n_names - i - 1;
			trunc_add(w, n);
			w->retry = true;
			break;
		}
		c = node_new(w, n, names[i]);
		if (!c || array_grow(q, cap, *nq, sizeof(**q)) < 0) {
			if (c)
				node_drop(w, c);
			r = -ENOMEM;
			break;
		}
		(*q)[(*nq)++] = c;
	}
	names_free(names, n_names);
	return r;
}

/* Look at one directory: owner, id, whether its owner has room, matches, then, if a pattern
 * may match below it, its watch and children (queued). */
static int node_load(struct cgwatch *w, struct cgnode *n, struct cgnode ***q, size_t *nq,
		     size_t *cap)
{
	struct stat st;
	int fd, r;

	fd = openat(w->root_fd, n->parent ? n->path : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		/* Gone already (its removal is queued), or not ours to list: then it is still a
		 * cgroup with a name and an id, only one we cannot look into. */
		if (!n->parent)
			return -errno;
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
		    fstatat(w->root_fd, n->path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode)) {
			node_drop(w, n);
			return 0;
		}
		n->uid = st.st_uid;
		if (!owner_charge(w, n)) {
			trunc_add(w, n->parent);
			node_drop(w, n);
			return 0;
		}
		n->id = cgroup_id_at(w->root_fd, n->path, &st);
		return node_evaluate(w, n);
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	n->uid = st.st_uid;
	if (!owner_charge(w, n)) {
		close(fd);
		trunc_add(w, n->parent);
		node_drop(w, n);
		return 0;
	}
	n->id = cgroup_id_at(fd, ".", &st);
	r = n->parent ? node_evaluate(w, n) : 0;
	if (r < 0 || !wants_children(w, n)) {
		close(fd);
		return r;
	}
	return node_expand(w, n, fd, q, nq, cap);
}

/* Load the queued nodes and everything below them, breadth first: the limits cut the deepest
 * levels. Frees q. */
static int queue_load(struct cgwatch *w, struct cgnode **q, size_t nq, size_t cap)
{
	int r = 0;

	for (size_t head = 0; head < nq && r == 0; head++)
		r = node_load(w, q[head], &q, &nq, &cap);
	free(q);
	return r;
}

static int subtree_load(struct cgwatch *w, struct cgnode *n)
{
	struct cgnode **q = NULL;
	size_t nq = 0, cap = 0;

	if (array_grow(&q, &cap, nq, sizeof(*q)) < 0)
		return -ENOMEM;
	q[nq++] = n;
	return queue_load(w, q, nq, cap);
}

static int subtree_add(struct cgwatch *w, struct cgnode *parent, const char *name)
{
	struct cgnode *n;

	if (!parent->listed)
		return 0;
	if (!owner_room(w, parent)) {
		trunc_add(w, parent);
		return 0;
	}
	n = node_new(w, parent, name);
	return n ? subtree_load(w, n) : -ENOMEM;
}

/* n's owner (or one above) changed: start or stop looking below it. */
static int node_follow(struct cgwatch *w, struct cgnode *n)
{
	struct cgnode **q = NULL;
	size_t nq = 0, cap = 0;
	int fd;

	if (wants_children(w, n) == n->listed)
		return 0;
	if (n->listed) {
		while (n->child)
			subtree_remove(w, n->child);
		node_unwatch(w, n);
		trunc_del(w, n);
		n->listed = false;
		return 0;
	}
	fd = openat(w->root_fd, n->parent ? n->path : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0; /* gone: its removal is queued */
	nq = 0;
	fd = node_expand(w, n, fd, &q, &nq, &cap);
	if (fd < 0) {
		for (size_t i = 0; i < nq; i++)
			node_drop(w, q[i]);
		free(q);
		return fd;
	}
	return queue_load(w, q, nq, cap);
}

/* Parents first: a directory's trust follows from the ones above; so does what is followed. */
static int subtree_evaluate(struct cgwatch *w, struct cgnode *n)
{
	int r = node_evaluate(w, n);

	if (r == 0)
		r = node_follow(w, n);
	for (struct cgnode *c = n->child; c && r == 0; c = c->next)
		r = subtree_evaluate(w, c);
	return r;
}

/* 1 if parent/name is a directory now (*st and *id filled), else 0. */
static int entry_stat(const struct cgwatch *w, const struct cgnode *parent, const char *name,
		      struct stat *st, uint64_t *id)
{
	char *path;
	int r;

	if (asprintf(&path, "%s%s%s", parent->path, *parent->path ? "/" : "", name) < 0)
		return -ENOMEM;
	r = fstatat(w->root_fd, path, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st->st_mode);
	if (r)
		*id = cgroup_id_at(w->root_fd, path, st);
	free(path);
	return r;
}

enum reconcile_how {
	RECONCILE_NAME,	   /* created, removed or moved: whatever it is now */
	RECONCILE_ATTRIB,  /* and its owner may have changed: re-evaluate the subtree */
	RECONCILE_REPLACE, /* our watch on it is gone: load it anew if it is still there */
};

/* Bring the node for parent/name in line with the filesystem, reporting the difference. */
static int reconcile(struct cgwatch *w, struct cgnode *parent, const char *name,
		     enum reconcile_how how)
{
	struct cgnode *n = child_find(parent, name);
	uint64_t id = 0;
	struct stat st;
	int r;

	if (!parent->listed)
		return 0;
	r = entry_stat(w, parent, name, &st, &id);
	if (r < 0)
		return r;
	if (n && (!r || n->id != id || how == RECONCILE_REPLACE)) {
		subtree_remove(w, n);
		n = NULL;
	}
	if (!r)
		return 0;
	if (!n)
		return subtree_add(w, parent, name);
	if (how == RECONCILE_ATTRIB) {
		n->uid = st.st_uid;
		return subtree_evaluate(w, n);
	}
	return 0;
}

static int cmp_node_base(const void *a, const void *b)
{
	return strcmp((*(struct cgnode *const *)a)->base, (*(struct cgnode *const *)b)->base);
}

/* Compare d's children with the filesystem (after a queue overflow, for a directory without a
 * watch, or to take in what a limit left out), recursively if asked. Matches of known children
 * are re-evaluated by the caller (after an overflow, once, when every owner is known) or here
 * for those whose owner changed (not recursive). */
static int resync_dir(struct cgwatch *w, struct cgnode *d, bool recursive)
{
	struct cgnode **kids = NULL;
	size_t n_names = 0, n_kids = 0, cap = 0, i = 0, j = 0;
	char **names = NULL;
	int fd, r;

	if (!d->listed)
		return 0;
	fd = openat(w->root_fd, d->parent ? d->path : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return d->parent ? 0 : -errno; /* its parent's listing catches up with it */
	r = list_dirs(fd, &names, &n_names);
	if (r < 0)
		return r;
	for (struct cgnode *c = d->child; c; c = c->next) {
		if (array_grow(&kids, &cap, n_kids, sizeof(*kids)) < 0) {
			r = -ENOMEM;
			goto out;
		}
		kids[n_kids++] = c;
	}
	if (n_kids > 1)
		qsort(kids, n_kids, sizeof(*kids), cmp_node_base);
	while (r == 0 && (i < n_names || j < n_kids)) {
		int cmp = i == n_names ? 1 : j == n_kids ? -1 : strcmp(names[i], kids[j]->base);
		struct stat st;
		uint64_t id;

		if (cmp > 0) {
			subtree_remove(w, kids[j++]);
		} else if (cmp < 0) {
			r = subtree_add(w, d, names[i++]);
		} else {
			r = entry_stat(w, d, names[i], &st, &id);
			if (r > 0 && kids[j]->id == id) {
				bool owner_changed = kids[j]->uid != st.st_uid;

				kids[j]->uid = st.st_uid;
				if (recursive)
					r = resync_dir(w, kids[j], true);
				else if (owner_changed)
					r = subtree_evaluate(w, kids[j]);
				else
					r = 0;
			} else if (r >= 0) {
				subtree_remove(w, kids[j]);
				r = r ? subtree_add(w, d, names[i]) : 0;
			}
			i++;
			j++;
		}
	}
out:
	free(kids);
	names_free(names, n_names);
	return r;
}

static int resync(struct cgwatch *w)
{
	int r = resync_dir(w, w->tree, true);

	for (struct cgnode *c = w->tree->child; c && r == 0; c = c->next)
		r = subtree_evaluate(w, c);
	return r;
}

/*
 * Some count that hit its limit went down: list the directories that had children left out
 * again (each once per pass; a listing may leave it truncated again, or free others), then
 * say which owners are all followed again.
 */
static int retry_truncated(struct cgwatch *w)
{
	bool *was = calloc(w->n_owners + 1, sizeof(*was));
	bool was_untrusted = w->untrusted_limited, was_trusted = w->trusted_limited;
	size_t n_was = w->n_owners;
	int r = 0;

	if (!was)
		return -ENOMEM;
	w->retry = false;
	for (size_t i = 0; i < n_was; i++) {
		was[i] = w->owners[i].limited;
		w->owners[i].limited = false;
	}
	w->untrusted_limited = w->trusted_limited = false;
	w->trunc_gen++;
	for (;;) {
		struct cgnode *d = NULL;

		for (size_t i = 0; i < w->n_trunc && !d; i++)
			if (w->trunc[i]->trunc_gen != w->trunc_gen)
				d = w->trunc[i];
		if (!d || r < 0)
			break;
		trunc_del(w, d);
		d->trunc_gen = w->trunc_gen;
		r = resync_dir(w, d, false);
	}
	/* Owners only ever get appended, so indexes below n_was are the same owners. */
	for (size_t i = 0; i < n_was; i++)
		if (was[i] && !w->owners[i].limited)
			report(w, CGWATCH_OWNER_OK, (long)w->owners[i].uid, w->owners[i].n);
	if ((was_untrusted || was_trusted) && !w->untrusted_limited && !w->trusted_limited)
		report(w, CGWATCH_TOTALS_OK, -1, w->n_untrusted + w->n_trusted);
	free(was);
	return r;
}

/* Directories without a watch: try for one again, and compare their children with the
 * filesystem, at most poll_budget of them per period (round robin). */
static int poll_tick(struct cgwatch *w)
{
	int r = 0;

	for (size_t k = 0; k < w->lim.poll_budget && w->n_polled && r == 0; k++) {
		size_t i = w->poll_cursor % w->n_polled;
		struct cgnode *n = w->polled[i];
		int fd;

		w->poll_cursor = i + 1;
		fd = openat(w->root_fd, n->parent ? n->path : ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue; /* gone: the parent's watch or listing takes it away */
		r = node_watch(w, n, fd);
		close(fd);
		if (r == 0)
			r = resync_dir(w, n, false);
	}
	if (!w->n_polled && w->no_watches) {
		w->no_watches = false;
		report(w, CGWATCH_WATCHES_OK, -1, w->n_watched);
	}
	return r;
}

/* The timer runs while something waits for a rescan: directories without a watch, a failed
 * read (events were lost), or room for what a limit left out. An idle watcher never wakes up. */
static void timer_update(struct cgwatch *w)
{
	bool want = w->n_polled || w->dirty || w->retry;
	struct itimerspec its = { 0 };

	if (w->timer_fd < 0 || want == w->timer_armed)
		return;
	if (want) {
		its.it_value.tv_sec = w->lim.poll_ms / 1000;
		its.it_value.tv_nsec = (long)(w->lim.poll_ms % 1000) * 1000000L;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
		its.it_interval = its.it_value;
	}
	if (timerfd_settime(w->timer_fd, 0, &its, NULL) == 0)
		w->timer_armed = want;
}

static int handle_event(struct cgwatch *w, const struct inotify_event *e)
{
	struct cgnode *n = wd_get(w, e->wd);
	char *name;
	int r;

	if (!n)
		return 0; /* a watch we removed: its IN_IGNORED, or events queued before */
	if (e->mask & IN_IGNORED) {
		/* The kernel dropped the watch: the directory went away on a filesystem that says
		 * so (not cgroupfs), or was unmounted. Look at the name again. */
		wd_del(w, n->wd);
		n->wd = -1;
		w->n_watched--;
		if (!n->parent)
			return -ENOENT;
		name = strdup(n->base); /* n may be freed */
		if (!name)
			return -ENOMEM;
		r = reconcile(w, n->parent, name, RECONCILE_REPLACE);
		free(name);
		return r;
	}
	/* Files are never cgroups; a self event (no name) is also sent, named, to the parent. */
	if (!e->len || !(e->mask & IN_ISDIR))
		return 0;
	return reconcile(w, n, e->name, e->mask & IN_ATTRIB ? RECONCILE_ATTRIB : RECONCILE_NAME);
}

/* --- setup and the public functions --- */

static void watcher_clear(struct cgwatch *w)
{
	w->report = NULL; /* nothing to say while tearing down */
	if (w->tree)
		node_free(w, w->tree);
	if (w->root_fd >= 0)
		close(w->root_fd);
	if (w->ino_fd >= 0)
		close(w->ino_fd);
	if (w->timer_fd >= 0)
		close(w->timer_fd);
	if (w->ep_fd >= 0)
		close(w->ep_fd);
	for (size_t i = 0; w->user_glob && i < w->n_pat; i++)
		free(w->user_glob[i]);
	free(w->user_glob);
	free((void *)w->glob);
	free(w->by_glob_text);
	free(w->by_path);
	free(w->globs);
	free(w->wds);
	free(w->owners);
	free(w->polled);
	free(w->trunc);
	free(w->root);
}

/* One descriptor for the caller to poll: inotify and the rescan timer behind epoll. */
static int watcher_open_fds(struct cgwatch *w)
{
	struct epoll_event ev = { .events = EPOLLIN };

	w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ino_fd < 0)
		return -errno;
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->timer_fd < 0)
		return -errno;
	w->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep_fd < 0)
		return -errno;
	ev.data.fd = w->ino_fd;
	if (epoll_ctl(w->ep_fd, EPOLL_CTL_ADD, w->ino_fd, &ev) < 0)
		return -errno;
	ev.data.fd = w->timer_fd;
	if (epoll_ctl(w->ep_fd, EPOLL_CTL_ADD, w->timer_fd, &ev) < 0)
		return -errno;
	w->proc_fd = access("/proc/self/fd", X_OK) == 0;
	return 0;
}

static int watcher_init(struct cgwatch *w, const char *cgroup_root,
			const struct cgmatch_pattern *patterns, size_t n,
			const struct cgwatch_limits *limits, cgmatch_cb cb,
			cgwatch_report_cb report_cb, void *data, bool watch)
{
	struct stat st;
	int r;

	*w = (struct cgwatch){ .root_fd = -1,
			       .ino_fd = -1,
			       .timer_fd = -1,
			       .ep_fd = -1,
			       .cb = cb,
			       .report = report_cb,
			       .data = data,
			       .lim = limits ? *limits : CGWATCH_LIMITS_DEFAULT };
	r = patterns_prepare(w, patterns, n);
	if (r < 0)
		return r;
	w->root = strdup(cgroup_root);
	w->tree = calloc(1, sizeof(*w->tree));
	if (!w->root || !w->tree || !(w->tree->path = strdup("")))
		return -ENOMEM;
	w->tree->base = w->tree->path;
	w->tree->wd = -1;
	w->root_fd = open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->root_fd < 0 || fstat(w->root_fd, &st) < 0)
		return -errno;
	w->root_uid = st.st_uid;
	if (watch) {
		r = watcher_open_fds(w);
		if (r < 0)
			return r;
	}
	r = subtree_load(w, w->tree);
	timer_update(w);
	return r;
}

struct found {
	size_t pattern;
	char *path;
	unsigned level;
	uint64_t id;
	uid_t owner;
};

struct collect {
	struct found *v;
	size_t n, cap;
	int r;
};

static void collect_cb(void *data, size_t pattern, const char *path, unsigned level, uint64_t id,
		       uid_t owner, bool added)
{
	struct collect *c = data;
	char *p;

	/* A one-shot scan has no earlier report to take back. */
	if (!added || c->r < 0)
		return;
	p = strdup(path);
	if (!p || array_grow(&c->v, &c->cap, c->n, sizeof(*c->v)) < 0) {
		free(p);
		c->r = -ENOMEM;
		return;
	}
	c->v[c->n++] = (struct found){ pattern, p, level, id, owner };
}

static int cmp_found(const void *a, const void *b)
{
	const struct found *x = a, *y = b;
	int r = strcmp(x->path, y->path);

	return r ? r : (x->pattern > y->pattern) - (x->pattern < y->pattern);
}

enum cgmatch_kind cgmatch_unit_kind(const char *unit_pattern)
{
	return !strncmp(unit_pattern, "user@", strlen("user@")) && strchr(unit_pattern, '/')
		       ? CGMATCH_USER_UNIT
		       : CGMATCH_UNIT;
}

int cgmatch_scan(const char *cgroup_root, const struct cgmatch_pattern *patterns, size_t n,
		 cgmatch_cb cb, void *data)
{
	struct collect c = { 0 };
	struct cgwatch w;
	int r;

	r = watcher_init(&w, cgroup_root, patterns, n, NULL, collect_cb, NULL, &c, false);
	watcher_clear(&w);
	if (r == 0)
		r = c.r;
	if (r == 0 && c.n > 1)
		qsort(c.v, c.n, sizeof(*c.v), cmp_found);
	for (size_t i = 0; i < c.n; i++) {
		if (r == 0)
			cb(data, c.v[i].pattern, c.v[i].path, c.v[i].level, c.v[i].id, c.v[i].owner,
			   true);
		free(c.v[i].path);
	}
	free(c.v);
	return r;
}

int cgwatch_new(const char *cgroup_root, const struct cgmatch_pattern *patterns, size_t n,
		const struct cgwatch_limits *limits, cgmatch_cb cb, cgwatch_report_cb report_cb,
		void *data, struct cgwatch **ret)
{
	struct cgwatch *w = malloc(sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	r = watcher_init(w, cgroup_root, patterns, n, limits, cb, report_cb, data, true);
	if (r < 0) {
		watcher_clear(w);
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

int cgwatch_fd(const struct cgwatch *w)
{
	return w->ep_fd;
}

int cgwatch_read(struct cgwatch *w)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool rescan = w->dirty, tick = false;
	uint64_t expirations;
	int r = 0;

	for (;;) {
		ssize_t len = read(w->ino_fd, buf, sizeof(buf));
		const struct inotify_event *e;

		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && errno == EAGAIN)
			break;
		if (len < 0)
			return -errno;
		for (char *p = buf; p < buf + len; p += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)p;
			if (e->mask & IN_Q_OVERFLOW)
				rescan = true;
			/* After an overflow or an error only a full rescan is right. */
			if (rescan)
				continue;
			r = handle_event(w, e);
			if (r < 0)
				rescan = true;
		}
	}
	if (read(w->timer_fd, &expirations, sizeof(expirations)) == sizeof(expirations))
		tick = true;
	if (rescan) {
		r = resync(w);
		w->dirty = r < 0;
	}
	if (r == 0 && tick)
		r = poll_tick(w);
	/* At most once a period: a user deleting thousands of directories must not make us list
	 * the rest again for each event. */
	if (r == 0 && tick && w->retry)
		r = retry_truncated(w);
	timer_update(w);
	return r;
}

size_t cgwatch_n_watched(const struct cgwatch *w)
{
	return w->n_watched;
}

void cgwatch_get_stats(const struct cgwatch *w, struct cgwatch_stats *ret)
{
	*ret = (struct cgwatch_stats){ .watched = w->n_watched,
				       .polled = w->n_polled,
				       .truncated = w->n_trunc,
				       .skipped = w->skipped };
}

void cgwatch_free(struct cgwatch *w)
{
	if (!w)
		return;
	watcher_clear(w);
	free(w);
}
