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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy_dir.h"

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
 * out of memory, the next load parses it again. Takes buf. */
static void cache_store(struct policy_cache *c, const char *file, char *buf, size_t len,
			const struct policy_parse_opts *o, const struct policy *p,
			const struct diags *said)
{
	struct cache_entry e = { .buf = buf, .len = len, .mode = o->mode, .gen = c->gen };
	struct cache_entry *old = cache_find(c, file), *nv;

	if (!(e.file = strdup(file)) || (o->main_file && !(e.main_file = strdup(o->main_file))) ||
	    policy_dup(p, &e.policy) < 0 || diags_append(&e.said, said) < 0)
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
 * policy_parse_fd_opts() through the cache: the file is read whole every time, and when its
 * bytes, name and parse options are what the cache holds, the cached parse is copied and what
 * it said said again (parsing 10,000 guards costs ~100 times the copy). A parse that used
 * /etc/services (a port given by name) depends on more than the bytes: never kept.
 */
static int parse_file(struct policy_cache *c, const char *file, int fd,
		      const struct policy_parse_opts *o, struct diags *d, struct policy **ret)
{
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
		r = policy_dup(e->policy, ret);
		if (r >= 0 && diags_append(d, &e->said) < 0) {
			policy_free(*ret);
			r = -ENOMEM;
		}
		if (r >= 0)
			e->gen = c->gen;
		return r;
	}
	r = policy_parse_buffer_opts(file, buf, len, o, &said, ret);
	if (diags_append(d, &said) < 0 && r >= 0) {
		policy_free(*ret);
		r = -ENOMEM;
	}
	if (r == 0 && !(*ret)->services)
		cache_store(c, file, buf, len, o, *ret, &said);
	else
		free(buf);
	diags_free(&said);
	return r;
}

int policy_merge(struct policy *p, struct policy *dropin, size_t *cap)
{
	size_t need = p->n_guards + dropin->n_guards + 1;
	char **files;

	/* Doubling: 100 drop-ins of 100 guards copied the growing array 100 times. */
	if (need > *cap) {
		size_t ncap = *cap * 2 > need ? *cap * 2 : need;
		struct policy_guard *g = reallocarray(p->guards, ncap, sizeof(*g));

		if (!g) {
			policy_free(dropin);
			return -ENOMEM;
		}
		p->guards = g;
		*cap = ncap;
	}
	files = reallocarray(p->dropins, p->n_dropins + 1, sizeof(*files));
	if (!files) {
		policy_free(dropin);
		return -ENOMEM;
	}
	p->dropins = files;
	memcpy(p->guards + p->n_guards, dropin->guards, dropin->n_guards * sizeof(*p->guards));
	p->n_guards += dropin->n_guards;
	p->dropins[p->n_dropins++] = dropin->file;
	free(dropin->guards);
	free(dropin);
	return 0;
}

static int cmp_guard_idx(const void *a, const void *b, void *arg)
{
	const struct policy_guard *gv = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int r = strcmp(gv[i].name, gv[j].name);

	return r ? r : (i < j ? -1 : i > j);
}

/* A name used in two files: the later one is the error. Duplicates within a file the parser
 * reported already. */
static int check_names_across(const struct policy *p, struct diags *d)
{
	size_t *idx = calloc(p->n_guards + 1, sizeof(*idx)), n = 0;
	int r = 0;

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_guards; i++)
		if (p->guards[i].name)
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_guard_idx, p->guards);
	for (size_t i = 1, first = 0; i < n; i++) {
		const struct policy_guard *f = &p->guards[idx[first]], *g = &p->guards[idx[i]];

		if (strcmp(f->name, g->name)) {
			first = i;
			continue;
		}
		if (f->loc.file == g->loc.file)
			continue;
		diags_add(d, DIAG_ERROR, &g->name_loc, "duplicate guard name '%s' (first at %s:%u:%u)",
			  g->name, f->name_loc.file, f->name_loc.line, f->name_loc.col);
		r = -EINVAL;
	}
	free(idx);
	return r;
}

int policy_source_load_partial(const struct policy_source *src, enum policy_open how,
			       struct diags *d, struct policy **ret_policy,
			       struct policy **ret_partial)
{
	struct policy *p = NULL, *partial = NULL;
	const struct policy_parse_opts mo = { .ret_partial = ret_partial ? &partial : NULL };
	struct trust_dir dir = { .fd = -1 };
	char **files = NULL;
	size_t n_files = 0, cap_guards = 0;
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
		if (!sub)
			continue;
		r = p ? policy_merge(p, sub, &cap_guards) : (policy_free(sub), 0);
		if (r < 0)
			goto out;
	}
	/* One file alone: the parser compared its names already. */
	r = p && p->n_dropins ? check_names_across(p, d) : 0;
	if (r < 0 && r != -EINVAL)
		goto out;
	if (r < 0 || bad < 0)
		r = bad < 0 ? bad : r;
out:
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
