// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The policy as files: /etc/loguard/policy.yaml, then /etc/loguard/policy.d/ *.yaml in lexical
 * order, as sudoers.d and nftables includes let packages and configuration management ship one
 * guard per file. The main file alone sets the global keys; a drop-in only adds guards. Each
 * file is judged (trust.c) and parsed on its own, so every message names the file it is about,
 * and the result is one policy: checked, compiled and installed in one transaction like a
 * single file, so a reload takes all of the files or none.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy_dir.h"
#include "policy_reparse.h"

/* Drop-ins are NAME.yaml; hidden files, editor and package manager leftovers (foo.yaml~,
 * foo.yaml.dpkg-old, .foo.yaml.swp) are not. */
static bool is_dropin_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && !strcmp(name + n - 5, ".yaml");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The drop-ins of the directory open at fd (left open), as DIR/NAME paths, sorted. */
static int list_dropins(int fd, const char *dir, struct diags *d, char ***ret_v, size_t *ret_n)
{
	struct loc whole = { .file = dir };
	char **v = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *dp;
	int r = 0;

	/* A copy for the listing: the files are opened relative to fd afterwards. */
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	dp = fdopendir(fd);
	if (!dp) {
		r = -errno;
		close(fd);
		return r;
	}
	v = calloc(POLICY_DIR_MAX_FILES, sizeof(*v));
	if (!v) {
		closedir(dp);
		return -ENOMEM;
	}
	while (r == 0 && (errno = 0, de = readdir(dp))) {
		if (!is_dropin_name(de->d_name))
			continue;
		if (n == POLICY_DIR_MAX_FILES) {
			diags_add(d, DIAG_ERROR, &whole, "more than %u drop-ins (*.yaml)",
				  POLICY_DIR_MAX_FILES);
			r = -EINVAL;
			break;
		}
		if (asprintf(&v[n], "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
			     de->d_name) < 0) {
			v[n] = NULL;
			r = -ENOMEM;
			break;
		}
		n++;
	}
	if (r == 0 && errno) {
		r = -errno;
		diags_add(d, DIAG_ERROR, &whole, "cannot read directory: %s", strerror(-r));
	}
	closedir(dp);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	/* Lexical order is byte order (strcmp), whatever the locale: 10-a.yaml before 9-b.yaml,
	 * as run-parts and systemd's drop-ins sort. */
	qsort(v, n, sizeof(*v), cmp_str);
	*ret_v = v;
	*ret_n = n;
	return 0;
}

static enum trust_mode trust_mode_of(enum policy_open how)
{
	return how == POLICY_OPEN_TRUSTED ? TRUST_REQUIRE : TRUST_WARN;
}

/* Open one file as how says, a drop-in (dir not NULL: the name after the directory's path in
 * file) through its directory; the error, located at the file, is in d. */
static int open_policy_file(const char *file, const struct trust_dir *dir, enum policy_open how,
			    struct diags *d, int *ret_fd)
{
	struct loc whole = { .file = file };
	int fd, r;

	if (how != POLICY_OPEN_PLAIN && dir)
		return trust_open_entry(dir, strrchr(file, '/') + 1, file, trust_mode_of(how), d,
					ret_fd);
	if (how != POLICY_OPEN_PLAIN)
		return trust_open(file, trust_mode_of(how), d, ret_fd);
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		diags_add(d, DIAG_ERROR, &whole, "cannot read: %s", strerror(-r));
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* One file as a load read and parsed it without errors: its bytes, the options that shape the
 * parse, the result as parsed and what the parse said (warnings). */
struct cache_entry {
	char *file;
	char *buf;
	size_t len;
	char *main_file; /* the parse options: a drop-in of main_file (NULL: a main file) ... */
	enum policy_mode mode; /* ... with this default mode */
	struct policy *policy;
	struct policy_layout *layout; /* where its guards are written (policy_reparse.h) */
	struct diags said;
	unsigned gen; /* the load that last used it */
};

struct policy_cache {
	struct cache_entry *v;
	size_t n;
	unsigned gen;
};

struct policy_cache *policy_cache_new(void)
{
	return calloc(1, sizeof(struct policy_cache));
}

static void entry_clear(struct cache_entry *e)
{
	free(e->file);
	free(e->buf);
	free(e->main_file);
	policy_free(e->policy);
	policy_layout_free(e->layout);
	diags_free(&e->said);
}

void policy_cache_free(struct policy_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		entry_clear(&c->v[i]);
	free(c->v);
	free(c);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static struct cache_entry *cache_find(struct policy_cache *c, const char *file)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].file, file))
			return &c->v[i];
	return NULL;
}

/* Keep what file parsed into (p, with what the parse said) for the next load; best effort:
 * out of memory, the next load parses it again. Takes buf, layout and a reference to p. */
static void cache_store(struct policy_cache *c, const char *file, char *buf, size_t len,
			const struct policy_parse_opts *o, struct policy *p,
			struct policy_layout *layout, const struct diags *said)
{
	struct cache_entry e = {
		.buf = buf, .len = len, .mode = o->mode, .layout = layout, .gen = c->gen
	};
	struct cache_entry *old = cache_find(c, file), *nv;

	e.policy = policy_ref(p);
	if (!(e.file = strdup(file)) || (o->main_file && !(e.main_file = strdup(o->main_file))) ||
	    diags_append(&e.said, said) < 0)
		goto drop;
	if (old) {
		entry_clear(old);
		*old = e;
		return;
	}
	nv = reallocarray(c->v, c->n + 1, sizeof(*nv));
	if (!nv)
		goto drop;
	c->v = nv;
	c->v[c->n++] = e;
	return;
drop:
	entry_clear(&e);
}

/* Forget the files the load that just ended did not parse cleanly or no longer has. */
static void cache_prune(struct policy_cache *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].gen == c->gen)
			c->v[k++] = c->v[i];
		else
			entry_clear(&c->v[i]);
	}
	c->n = k;
}

/*
 * The same file (name and parse options) with other bytes: parse only the guards whose text
 * changed (policy_reparse.c), e then holding the new bytes (taken) and parse, shared with the
 * caller like a cached one. The previous parse is only read: loads may still share it.
 * -EAGAIN: that cannot be shown to equal a full parse, which the caller then does (buf kept).
 */
static int reparse(struct policy_cache *c, struct cache_entry *e, const char *file, char *buf,
		   size_t len, const struct policy_parse_opts *o, struct policy **ret)
{
	struct policy_layout *nl;
	struct policy *np;

	/* Out of memory too: the full parse says so. */
	if (policy_reparse(file, e->buf, e->len, e->policy, e->layout, buf, len, o, &np, &nl) < 0)
		return -EAGAIN;
	*ret = policy_ref(np);
	free(e->buf);
	policy_free(e->policy);
	policy_layout_free(e->layout);
	e->buf = buf;
	e->len = len;
	e->policy = np;
	e->layout = nl;
	e->gen = c->gen;
	return 0;
}

/*
 * policy_parse_fd_opts() through the cache: the file is read whole every time, and when its
 * bytes, name and parse options are what the cache holds, the cached parse is shared (a
 * reference: nothing later changes a parse) and what it said said again. A parse that used
 * /etc/services (a port given by name) depends on more than the bytes: never kept.
 */
static int parse_file(struct policy_cache *c, const char *file, int fd,
		      const struct policy_parse_opts *o, struct diags *d, struct policy **ret)
{
	struct policy_layout *layout = NULL;
	struct diags said = { 0 };
	struct cache_entry *e;
	size_t len;
	char *buf;
	int r;

	if (!c)
		return policy_parse_fd_opts(file, fd, o, d, ret);
	r = policy_read_fd(file, fd, d, &buf, &len);
	if (r < 0)
		return r;
	e = cache_find(c, file);
	if (e && e->len == len && !memcmp(e->buf, buf, len) && str_eq(e->main_file, o->main_file) &&
	    e->mode == o->mode) {
		free(buf);
		if (diags_append(d, &e->said) < 0)
			return -ENOMEM;
		e->gen = c->gen;
		*ret = policy_ref(e->policy);
		return 0;
	}
	if (e && str_eq(e->main_file, o->main_file) && e->mode == o->mode && !e->said.n) {
		r = reparse(c, e, file, buf, len, o, ret);
		if (r != -EAGAIN)
			return r;
	}
	r = policy_parse_layout(file, buf, len, o, &said, ret, &layout);
	if (diags_append(d, &said) < 0 && r >= 0) {
		policy_free(*ret);
		r = -ENOMEM;
	}
	if (r == 0 && !(*ret)->services) {
		cache_store(c, file, buf, len, o, *ret, layout, &said);
	} else {
		free(buf);
		policy_layout_free(layout);
	}
	diags_free(&said);
	return r;
}

int policy_merge(struct policy *p, struct policy **dropins, size_t n)
{
	size_t n_guards = p->n_guards;
	struct policy_guard *g;
	struct policy **parts;
	char **files;
	int r = 0;

	for (size_t i = 0; i < n; i++)
		n_guards += dropins[i]->n_guards;
	/* Sized once: 100 drop-ins of 100 guards grew and copied the array 100 times. */
	g = reallocarray(p->guards, n_guards + 1, sizeof(*g));
	if (g)
		p->guards = g;
	files = reallocarray(p->dropins, p->n_dropins + n + 1, sizeof(*files));
	if (files)
		p->dropins = files;
	parts = reallocarray(p->parts, p->n_parts + n + 1, sizeof(*parts));
	if (parts)
		p->parts = parts;
	for (size_t i = 0; i < n; i++) {
		if (!g || !files || !parts) {
			policy_free(dropins[i]);
			r = -ENOMEM;
			continue;
		}
		memcpy(p->guards + p->n_guards, dropins[i]->guards,
		       dropins[i]->n_guards * sizeof(*p->guards));
		p->n_guards += dropins[i]->n_guards;
		p->dropins[p->n_dropins++] = dropins[i]->file;
		p->parts[p->n_parts++] = dropins[i];
	}
	return r;
}

static int cmp_guard_idx(const void *a, const void *b, void *arg)
{
	const struct policy_guard *gv = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int r = strcmp(gv[i].name, gv[j].name);

	return r ? r : (i < j ? -1 : i > j);
}

/* FNV-1a: guard names are short and chosen by root. */
static size_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* A name used in two files: the later one is the error, reported in name order. Duplicates
 * within a file the parser reported already. A hash of the names, not a sort: a reload of
 * 10,000 guards in 100 files compares each name about once. */
static int check_names_across(const struct policy *p, struct diags *d)
{
	size_t mask = 1, *slot, *dup = NULL, n_dup = 0;
	int r = 0;

	while (mask < 2 * p->n_guards)
		mask <<= 1;
	slot = calloc(mask--, sizeof(*slot)); /* index + 1 of a name's first guard, or 0 */
	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_guards && r == 0; i++) {
		const struct policy_guard *g = &p->guards[i];
		size_t h;

		if (!g->name)
			continue;
		for (h = name_hash(g->name) & mask; slot[h]; h = (h + 1) & mask)
			if (!strcmp(p->guards[slot[h] - 1].name, g->name))
				break;
		if (!slot[h]) {
			slot[h] = i + 1;
			continue;
		}
		if (p->guards[slot[h] - 1].loc.file == g->loc.file)
			continue;
		if (!dup && !(dup = calloc(p->n_guards, sizeof(*dup))))
			r = -ENOMEM;
		else
			dup[n_dup++] = i;
	}
	if (r == 0 && n_dup) {
		qsort_r(dup, n_dup, sizeof(*dup), cmp_guard_idx, p->guards);
		r = -EINVAL;
	}
	for (size_t k = 0; k < n_dup && r == -EINVAL; k++) {
		const struct policy_guard *g = &p->guards[dup[k]], *f;
		size_t h = name_hash(g->name) & mask;

		while (strcmp(p->guards[slot[h] - 1].name, g->name))
			h = (h + 1) & mask;
		f = &p->guards[slot[h] - 1];
		diags_add(d, DIAG_ERROR, &g->name_loc, "duplicate guard name '%s' (first at %s:%u:%u)",
			  g->name, f->name_loc.file, f->name_loc.line, f->name_loc.col);
	}
	free(dup);
	free(slot);
	return r;
}

int policy_source_load_partial(const struct policy_source *src, enum policy_open how,
			       struct diags *d, struct policy **ret_policy,
			       struct policy **ret_partial)
{
	struct policy *p = NULL, *partial = NULL;
	const struct policy_parse_opts mo = { .ret_partial = ret_partial ? &partial : NULL };
	struct trust_dir dir = { .fd = -1 };
	struct policy **subs = NULL; /* the drop-ins that parsed */
	char **files = NULL;
	size_t n_files = 0, n_subs = 0;
	int fd, r, bad = 0;

	if (src->cache)
		src->cache->gen++;
	r = open_policy_file(src->file, NULL, how, d, &fd);
	if (r >= 0) {
		r = parse_file(src->cache, src->file, fd, &mo, d, &p);
		close(fd);
	}
	if (r < 0 && r != -EINVAL && r != -EPERM)
		return r;
	bad = r;
	if (partial) { /* what parsed of an invalid main file: checked, never installed */
		p = partial;
		partial = NULL;
	}
	/* Drop-ins are merged in sharing what each file parsed into; so is the main file when
	 * its parse is cached. */
	if (p && (src->dir || src->cache)) {
		r = policy_merged_new(p, &p);
		if (r < 0) {
			p = NULL;
			goto out;
		}
	}

	if (src->dir) {
		r = 0;
		if (how != POLICY_OPEN_PLAIN) {
			r = trust_dir_open(src->dir, trust_mode_of(how), d, &dir);
		} else if ((dir.fd = open(src->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			r = -errno;
			if (r != -ENOENT)
				diags_add(d, DIAG_ERROR, &(struct loc){ .file = src->dir },
					  "cannot read directory: %s", strerror(-r));
		}
		if (r == -ENOENT && !src->dir_optional)
			diags_add(d, DIAG_ERROR, &(struct loc){ .file = src->dir },
				  "cannot read directory: %s", strerror(ENOENT));
		if (r >= 0)
			r = list_dropins(dir.fd, src->dir, d, &files, &n_files);
		if (r == -ENOENT && src->dir_optional)
			r = 0;
		if (r < 0 && r != -EINVAL && r != -EPERM && r != -ENOENT)
			goto out;
		if (r < 0)
			bad = bad ? bad : r;
	}

	if (n_files && !(subs = calloc(n_files, sizeof(*subs)))) {
		r = -ENOMEM;
		goto out;
	}
	/* Every drop-in is parsed even when the main file or another drop-in failed: each
	 * reports its own errors. Its guards default to the main file's mode. */
	for (size_t i = 0; i < n_files; i++) {
		struct policy_parse_opts o = { .main_file = src->file,
					       .mode = p ? p->mode : POLICY_MODE_ENFORCE,
					       .ret_partial = mo.ret_partial };
		struct policy *sub = NULL;

		r = open_policy_file(files[i], &dir, how, d, &fd);
		if (r >= 0) {
			r = parse_file(src->cache, files[i], fd, &o, d, &sub);
			close(fd);
		}
		if (r < 0 && r != -EINVAL && r != -EPERM && r != -ENOENT)
			goto out;
		if (partial) {
			sub = partial;
			partial = NULL;
		}
		if (r < 0)
			bad = bad ? bad : r;
		if (sub)
			subs[n_subs++] = sub;
	}
	r = 0;
	if (p && n_subs) { /* p is merged (policy_merged_new()) whenever there is a dir */
		r = policy_merge(p, subs, n_subs);
		n_subs = 0;
	}
	if (r < 0)
		goto out;
	/* One file alone: the parser compared its names already. */
	r = p && p->n_dropins ? check_names_across(p, d) : 0;
	if (r < 0 && r != -EINVAL)
		goto out;
	if (r < 0 || bad < 0)
		r = bad < 0 ? bad : r;
out:
	for (size_t i = 0; i < n_subs; i++)
		policy_free(subs[i]);
	free(subs);
	trust_dir_close(&dir);
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
	if (src->cache)
		cache_prune(src->cache);
	if (r < 0 && !(r == -EINVAL && p && ret_partial)) {
		policy_free(p);
		return r;
	}
	/* With ret_partial, an invalid set still yields the files that parsed, for the
	 * checks that come after parsing to report their errors in the same run. */
	if (r < 0)
		*ret_partial = p;
	else
		*ret_policy = p;
	return r;
}

int policy_source_load(const struct policy_source *src, enum policy_open how, struct diags *d,
		       struct policy **ret_policy)
{
	return policy_source_load_partial(src, how, d, ret_policy, NULL);
}
