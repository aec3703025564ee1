// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `loguard suggest`: from records to a policy that allows what was seen. Per guard of the
 * current policy it keeps every allow entry the policy has and adds one entry per identity
 * seen in a would-deny record (and in a deny record only when asked: enforce mode refused
 * those on purpose). Users may fold into a group when all of its members (or a threshold of
 * them) were seen. The YAML it writes is strict double-quoted text: names and paths come from
 * other users' processes and must not be able to add a key, a list entry or a comment line.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "suggest.h"

enum entry_kind { E_USER, E_UNIT, E_EXE, __E_MAX };

/* One identity seen on a guard, with what the comment says about it. */
struct entry {
	enum entry_kind kind;
	char *key; /* user name (or uid digits), unit name, executable path */
	bool has_uid;
	uint32_t uid;
	uint64_t count;
	char first[SEEN_TIME_LEN], last[SEEN_TIME_LEN];
	char *example; /* users and units: an executable; executables: a user */
	bool fallback; /* a user because the record had no usable unit or executable */
};

/* What was seen on one guard of the policy. */
struct sguard {
	const struct policy_guard *g;
	struct entry *e;
	size_t n, cap;
	uint64_t allowed, already, denied_skipped, no_uid;
};

/* A group of the system and its members (supplementary and primary), sorted uids. */
struct sgroup {
	char *name;
	uint32_t *uids;
	size_t n, cap;
};

struct suggest {
	const struct policy *p;
	struct suggest_opts o;
	struct sguard *g; /* one per p->guards[i] */
	struct sgroup *groups;
	size_t n_groups, cap_groups;
	uint64_t total, unknown_guard;
	char first[SEEN_TIME_LEN], last[SEEN_TIME_LEN];
};

static const char *const by_names[__SUGGEST_BY_MAX] = {
	[SUGGEST_BY_USERS] = "users",
	[SUGGEST_BY_UNITS] = "units",
	[SUGGEST_BY_EXECUTABLES] = "executables",
};

const char *suggest_by_name(enum suggest_by by)
{
	return (unsigned)by < __SUGGEST_BY_MAX ? by_names[by] : NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int group_add_uid(struct sgroup *gr, uint32_t uid)
{
	for (size_t i = 0; i < gr->n; i++)
		if (gr->uids[i] == uid)
			return 0;
	if (array_grow(&gr->uids, &gr->cap, gr->n, sizeof(*gr->uids)))
		return -ENOMEM;
	gr->uids[gr->n++] = uid;
	return 0;
}

/* A user of the passwd database, for primary group membership. */
struct pwent {
	uint32_t uid, gid;
};

/* Double the buffer of a *ent_r call that said ERANGE. */
static int buf_double(char **buf, size_t *size)
{
	char *nb = realloc(*buf, *size * 2);

	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*size *= 2;
	return 0;
}

/* getpwent_r/getgrent_r with a buffer that grows on ERANGE; 0 with *res NULL at the end. */
static int pw_next(char **buf, size_t *size, struct passwd *pwd, struct passwd **res)
{
	int r;

	while ((r = getpwent_r(pwd, *buf, *size, res)) == ERANGE)
		if (buf_double(buf, size))
			return -ENOMEM;
	return r == 0 || r == ENOENT ? 0 : -r;
}

static int gr_next(char **buf, size_t *size, struct group *grp, struct group **res)
{
	int r;

	while ((r = getgrent_r(grp, *buf, *size, res)) == ERANGE)
		if (buf_double(buf, size))
			return -ENOMEM;
	return r == 0 || r == ENOENT ? 0 : -r;
}

/* Every group with its members, as policy_check expands a group (supplementary members and
 * users whose primary group it is), so a suggested group means what the policy will mean. */
static int groups_load(struct suggest *s)
{
	struct pwent *pw = NULL;
	size_t n_pw = 0, cap_pw = 0, size = 16384;
	char *buf = malloc(size);
	struct passwd pwd, *pres;
	struct group grp, *gres;
	int r = -ENOMEM;

	if (!buf)
		return -ENOMEM;
	setpwent();
	while ((r = pw_next(&buf, &size, &pwd, &pres)) == 0 && pres) {
		r = array_grow(&pw, &cap_pw, n_pw, sizeof(*pw));
		if (r)
			break;
		pw[n_pw++] = (struct pwent){ pwd.pw_uid, pwd.pw_gid };
	}
	endpwent();
	if (r)
		goto out;
	setgrent();
	while ((r = gr_next(&buf, &size, &grp, &gres)) == 0 && gres) {
		struct sgroup gr = { .name = strdup(grp.gr_name) };

		r = gr.name ? 0 : -ENOMEM;
		for (size_t i = 0; i < n_pw && !r; i++)
			if (pw[i].gid == grp.gr_gid)
				r = group_add_uid(&gr, pw[i].uid);
		/* passwd and group enumerations keep separate positions: getpwnam is safe */
		for (char **m = grp.gr_mem; m && *m && !r; m++) {
			struct passwd *u = getpwnam(*m);

			if (u)
				r = group_add_uid(&gr, u->pw_uid);
		}
		if (!r)
			r = array_grow(&s->groups, &s->cap_groups, s->n_groups, sizeof(*s->groups));
		if (r) {
			free(gr.name);
			free(gr.uids);
			break;
		}
		qsort(gr.uids, gr.n, sizeof(*gr.uids), cmp_u32);
		s->groups[s->n_groups++] = gr;
	}
	endgrent();
out:
	free(pw);
	free(buf);
	return r;
}

int suggest_new(const struct policy *p, const struct suggest_opts *o, struct suggest **ret)
{
	struct suggest *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->p = p;
	s->o = *o;
	s->g = calloc(p->n_guards ? p->n_guards : 1, sizeof(*s->g));
	if (!s->g) {
		suggest_free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_guards; i++)
		s->g[i].g = &p->guards[i];
	if (o->by == SUGGEST_BY_USERS) {
		r = groups_load(s);
		if (r) {
			suggest_free(s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

void suggest_free(struct suggest *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->g && i < s->p->n_guards; i++) {
		for (size_t j = 0; j < s->g[i].n; j++) {
			free(s->g[i].e[j].key);
			free(s->g[i].e[j].example);
		}
		free(s->g[i].e);
	}
	free(s->g);
	for (size_t i = 0; i < s->n_groups; i++) {
		free(s->groups[i].name);
		free(s->groups[i].uids);
	}
	free(s->groups);
	free(s);
}

uint64_t suggest_unknown_guard(const struct suggest *s)
{
	return s->unknown_guard;
}

static void span_add(char first[SEEN_TIME_LEN], char last[SEEN_TIME_LEN], const char *t)
{
	if (!*t)
		return;
	if (!*first || strcmp(t, first) < 0)
		memcpy(first, t, SEEN_TIME_LEN);
	if (!*last || strcmp(t, last) > 0)
		memcpy(last, t, SEEN_TIME_LEN);
}

static bool ref_listed(const struct policy_ref *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return true;
	return false;
}

/* The unit a policy's `units:` can name for this record: a system unit (the cgroup is the
 * unit's own, below system.slice); user managers' units need their manager's name. */
static const char *record_system_unit(const struct seen_record *r)
{
	static const char prefix[] = "/system.slice/";
	size_t n;

	if (!r->unit || !r->cgroup || policy_unit_name_invalid(r->unit))
		return NULL;
	if (strncmp(r->cgroup, prefix, sizeof(prefix) - 1))
		return NULL;
	n = strlen(r->unit);
	if (strncmp(r->cgroup + sizeof(prefix) - 1, r->unit, n) ||
	    (r->cgroup[sizeof(prefix) - 1 + n] && r->cgroup[sizeof(prefix) - 1 + n] != '/'))
		return NULL;
	return r->unit;
}

/* An executable path a policy can name: absolute, shorter than PATH_MAX (as the parser
 * wants), and not a deleted file. */
static const char *record_exe(const struct seen_record *r)
{
	size_t n;

	if (!r->exe || r->exe[0] != '/')
		return NULL;
	n = strlen(r->exe);
	if (n >= PATH_MAX)
		return NULL;
	if (n > 10 && !strcmp(r->exe + n - 10, " (deleted)"))
		return NULL;
	return r->exe;
}

/* The user name as the system names the uid now (the policy resolves names the same way). */
static int user_key(uint32_t uid, char **ret)
{
	struct passwd pwd, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pwd, buf, sizeof(buf), &res) == 0 && res)
		*ret = strdup(pwd.pw_name);
	else if (asprintf(ret, "%" PRIu32, uid) < 0)
		*ret = NULL;
	return *ret ? 0 : -ENOMEM;
}

static int entry_get(struct sguard *sg, enum entry_kind kind, const char *key, char *owned_key,
		     struct entry **ret)
{
	struct entry *e;

	for (size_t i = 0; i < sg->n; i++)
		if (sg->e[i].kind == kind && !strcmp(sg->e[i].key, key)) {
			free(owned_key);
			*ret = &sg->e[i];
			return 0;
		}
	if (array_grow(&sg->e, &sg->cap, sg->n, sizeof(*sg->e)))
		goto nomem;
	e = &sg->e[sg->n];
	*e = (struct entry){ .kind = kind, .key = owned_key ? owned_key : strdup(key) };
	if (!e->key)
		goto nomem;
	sg->n++;
	*ret = e;
	return 0;
nomem:
	free(owned_key);
	return -ENOMEM;
}

/* The user entry of uid on this guard, if there is one yet. */
static struct entry *user_entry(struct sguard *sg, uint32_t uid)
{
	for (size_t i = 0; i < sg->n; i++)
		if (sg->e[i].kind == E_USER && sg->e[i].uid == uid)
			return &sg->e[i];
	return NULL;
}

static bool uid_allowed(const struct policy_guard *g, uint32_t uid)
{
	return g->n_uids && bsearch(&uid, g->uids, g->n_uids, sizeof(*g->uids), cmp_u32);
}

int suggest_add(struct suggest *s, const struct seen_record *r)
{
	const char *unit = record_system_unit(r), *exe = record_exe(r), *key = NULL;
	enum entry_kind kind = E_USER;
	struct sguard *sg = NULL;
	char *owned = NULL;
	struct entry *e;
	int err;

	s->total++;
	span_add(s->first, s->last, r->time);
	for (size_t i = 0; i < s->p->n_guards; i++)
		if (!strcmp(s->p->guards[i].name, r->guard))
			sg = &s->g[i];
	if (!sg) {
		s->unknown_guard++;
		return 0;
	}
	if (r->verdict == RECORD_ALLOW) {
		sg->allowed++;
		return 0;
	}
	if (r->verdict == RECORD_DENY && !s->o.include_denied) {
		sg->denied_skipped++;
		return 0;
	}
	if (s->o.by == SUGGEST_BY_UNITS && unit) {
		kind = E_UNIT;
		key = unit;
		if (ref_listed(sg->g->units, sg->g->n_units, unit))
			goto already;
	} else if (s->o.by == SUGGEST_BY_EXECUTABLES && exe) {
		kind = E_EXE;
		key = exe;
		if (ref_listed(sg->g->executables, sg->g->n_executables, exe))
			goto already;
	} else {
		if (!r->has_uid) {
			sg->no_uid++;
			return 0;
		}
		if (uid_allowed(sg->g, r->uid))
			goto already;
	}
	e = kind == E_USER ? user_entry(sg, r->uid) : NULL;
	if (!e && kind == E_USER) {
		/* a name lookup (NSS: files, LDAP, ...) once per new user, not per record */
		err = user_key(r->uid, &owned);
		if (err)
			return err;
		key = owned;
	}
	err = e ? 0 : entry_get(sg, kind, key, owned, &e);
	if (err)
		return err;
	if (kind == E_USER) {
		e->has_uid = true;
		e->uid = r->uid;
		e->fallback = s->o.by != SUGGEST_BY_USERS;
	}
	e->count++;
	span_add(e->first, e->last, r->time);
	if (!e->example) {
		const char *ex = kind == E_EXE ? r->user : exe;

		if (ex && !(e->example = strdup(ex)))
			return -ENOMEM;
	}
	return 1;
already:
	sg->already++;
	return 0;
}

/* ---- writing --------------------------------------------------------------------------- */

/* Decode the well-formed UTF-8 sequence at s (records_read and libyaml only hand us those). */
static unsigned utf8_decode(const unsigned char *s, size_t *ret_len)
{
	if (s[0] < 0x80) {
		*ret_len = 1;
		return s[0];
	}
	if (s[0] < 0xe0 && s[1]) {
		*ret_len = 2;
		return (s[0] & 0x1fU) << 6 | (s[1] & 0x3fU);
	}
	if (s[0] < 0xf0 && s[1] && s[2]) {
		*ret_len = 3;
		return (s[0] & 0x0fU) << 12 | (s[1] & 0x3fU) << 6 | (s[2] & 0x3fU);
	}
	if (s[1] && s[2] && s[3]) {
		*ret_len = 4;
		return (s[0] & 0x07U) << 18 | (s[1] & 0x3fU) << 12 | (s[2] & 0x3fU) << 6 |
		       (s[3] & 0x3fU);
	}
	*ret_len = 1;
	return 0xfffd;
}

/* What YAML cannot carry literally in a double-quoted scalar: controls, C1 controls (NEL is a
 * line break), the line and paragraph separators, a BOM, and the non-characters. */
static bool yaml_needs_escape(unsigned cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff;
}

/* A double-quoted YAML scalar that the parser reads back as exactly s. */
static void yaml_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n;
		unsigned cp = utf8_decode(s, &n);

		if (cp == '"' || cp == '\\')
			fprintf(f, "\\%c", (char)cp);
		else if (yaml_needs_escape(cp))
			fprintf(f, "\\u%04x", cp);
		else
			fwrite(s, 1, n, f);
		s += n;
	}
	fputc('"', f);
}

/* Text in a comment: everything a YAML reader could take for a line break becomes '?'. */
static void comment_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s) {
		size_t n;
		unsigned cp = utf8_decode(s, &n);

		if (yaml_needs_escape(cp))
			fputc('?', f);
		else
			fwrite(s, 1, n, f);
		s += n;
	}
}

static void comment_span(FILE *f, uint64_t count, const char *first, const char *last)
{
	fprintf(f, "%" PRIu64 " connection%s", count, count == 1 ? "" : "s");
	if (*first && strcmp(first, last))
		fprintf(f, ", %s to %s", first, last);
	else if (*first)
		fprintf(f, ", %s", first);
}

static void write_entry(FILE *f, const struct entry *e)
{
	fputs("        - ", f);
	yaml_str(f, e->key);
	fputs(" # seen: ", f);
	comment_span(f, e->count, e->first, e->last);
	if (e->example) {
		fputs(e->kind == E_EXE ? ", e.g. by " : ", e.g. ", f);
		comment_str(f, e->example);
	}
	if (e->fallback)
		fputs(" (no unit or executable to name)", f);
	fputc('\n', f);
}

static void write_refs(FILE *f, const struct policy_ref *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fputs("        - ", f);
		yaml_str(f, v[i].name);
		fputs(" # in the policy\n", f);
	}
}

/* Is the group qualified to stand for its seen members on this guard? */
static bool group_fits(const struct suggest *s, const struct sgroup *gr, const struct sguard *sg)
{
	size_t seen = 0;

	/* A group of one is that user's own: naming the user says more. */
	if (gr->n < 2)
		return false;
	for (size_t i = 0; i < gr->n; i++)
		for (size_t j = 0; j < sg->n; j++)
			if (sg->e[j].kind == E_USER && sg->e[j].uid == gr->uids[i]) {
				seen++;
				break;
			}
	if (s->o.group_threshold)
		return seen >= s->o.group_threshold;
	return seen == gr->n;
}

static bool in_group(const struct sgroup *gr, uint32_t uid)
{
	return bsearch(&uid, gr->uids, gr->n, sizeof(*gr->uids), cmp_u32);
}

static void write_groups(FILE *f, const struct suggest *s, const struct sguard *sg, bool *covered)
{
	for (size_t i = 0; i < s->n_groups; i++) {
		const struct sgroup *gr = &s->groups[i];
		char first[SEEN_TIME_LEN] = "", last[SEEN_TIME_LEN] = "";
		uint64_t count = 0;
		size_t seen = 0;

		if (!group_fits(s, gr, sg) || ref_listed(sg->g->groups, sg->g->n_groups, gr->name))
			continue;
		for (size_t j = 0; j < sg->n; j++) {
			const struct entry *e = &sg->e[j];

			if (e->kind != E_USER || !in_group(gr, e->uid))
				continue;
			covered[j] = true;
			seen++;
			count += e->count;
			span_add(first, last, e->first);
			span_add(first, last, e->last);
		}
		fputs("        - ", f);
		yaml_str(f, gr->name);
		fprintf(f, " # %zu of its %zu members seen: ", seen, gr->n);
		comment_span(f, count, first, last);
		fputc('\n', f);
		for (size_t j = 0; j < sg->n; j++) {
			if (sg->e[j].kind != E_USER || !in_group(gr, sg->e[j].uid))
				continue;
			fputs("        #   ", f);
			comment_str(f, sg->e[j].key);
			fputs(": ", f);
			comment_span(f, sg->e[j].count, sg->e[j].first, sg->e[j].last);
			fputc('\n', f);
		}
	}
}

static bool has_groups(const struct suggest *s, const struct sguard *sg)
{
	for (size_t i = 0; i < s->n_groups; i++)
		if (group_fits(s, &s->groups[i], sg) &&
		    !ref_listed(sg->g->groups, sg->g->n_groups, s->groups[i].name))
			return true;
	return false;
}

/* One allow list: the policy's entries, then the seen ones of kind (not covered by a group). */
static void write_list(FILE *f, const char *key, const struct policy_ref *v, size_t n,
		       const struct sguard *sg, enum entry_kind kind, const bool *covered)
{
	bool any = n > 0;

	for (size_t j = 0; j < sg->n && !any; j++)
		any = sg->e[j].kind == kind && !(covered && covered[j]);
	if (!any)
		return;
	fprintf(f, "      %s:\n", key);
	write_refs(f, v, n);
	for (size_t j = 0; j < sg->n; j++)
		if (sg->e[j].kind == kind && !(covered && covered[j]))
			write_entry(f, &sg->e[j]);
}

static void write_ports(FILE *f, const struct policy_guard *g)
{
	fputs("    ports: [", f);
	for (size_t i = 0; i < g->n_ports; i++) {
		if (g->ports[i].first == g->ports[i].last)
			fprintf(f, "%s%u", i ? ", " : "", g->ports[i].first);
		else
			fprintf(f, "%s\"%u-%u\"", i ? ", " : "", g->ports[i].first,
				g->ports[i].last);
	}
	fputs("]\n", f);
}

static const char *protocol_name(unsigned protocols)
{
	if (protocols == (POLICY_PROTO_TCP | POLICY_PROTO_UDP))
		return "both";
	return protocols == POLICY_PROTO_UDP ? "udp" : "tcp";
}

static int write_guard(FILE *f, const struct suggest *s, const struct sguard *sg)
{
	const struct policy_guard *g = sg->g;
	bool *covered = calloc(sg->n ? sg->n : 1, sizeof(*covered));
	bool exes = g->n_executables > 0, any;
	uint64_t added = 0;

	if (!covered)
		return -ENOMEM;
	fputs("\n  # ", f);
	comment_str(f, g->name);
	for (size_t j = 0; j < sg->n; j++)
		added += sg->e[j].count;
	fprintf(f, ": %" PRIu64 " allowed, %" PRIu64 " added below", sg->allowed, added);
	if (sg->already)
		fprintf(f, ", %" PRIu64 " already allowed by the policy now", sg->already);
	fputc('\n', f);
	if (sg->denied_skipped)
		fprintf(f,
			"  # %" PRIu64 " denied in enforce mode: not added (--include-denied adds "
			"them)\n",
			sg->denied_skipped);
	if (sg->no_uid)
		fprintf(f, "  # %" PRIu64 " without a uid: not added\n", sg->no_uid);
	fputs("  - name: ", f);
	yaml_str(f, g->name);
	fputc('\n', f);
	write_ports(f, g);
	fprintf(f, "    protocol: %s\n    action: %s\n    log: %s\n", protocol_name(g->protocols),
		policy_action_name(g->action), policy_log_name(g->log));
	for (size_t j = 0; j < sg->n; j++)
		exes |= sg->e[j].kind == E_EXE;
	if (g->owner || exes)
		fprintf(f, "    fail: %s\n", policy_fail_name(g->fail));
	any = g->owner || g->n_users || g->n_groups || g->n_units || g->n_cgroups ||
	      g->n_launched || exes || sg->n;
	if (!any) {
		fputs("    # no allow: nothing allowed was seen, nobody may connect\n", f);
		free(covered);
		return 0;
	}
	fputs("    allow:\n", f);
	if (g->owner)
		fputs("      owner: true\n", f);
	if (g->n_groups || has_groups(s, sg)) {
		fputs("      groups:\n", f);
		write_refs(f, g->groups, g->n_groups);
		write_groups(f, s, sg, covered);
	}
	write_list(f, "users", g->users, g->n_users, sg, E_USER, covered);
	write_list(f, "units", g->units, g->n_units, sg, E_UNIT, NULL);
	if (g->n_cgroups) {
		fputs("      cgroups:\n", f);
		write_refs(f, g->cgroups, g->n_cgroups);
	}
	if (g->n_launched) {
		fputs("      launched:\n", f);
		write_refs(f, g->launched, g->n_launched);
	}
	write_list(f, "executables", g->executables, g->n_executables, sg, E_EXE, NULL);
	free(covered);
	return 0;
}

int suggest_write(const struct suggest *s, const char *source, char **ret)
{
	const struct policy *p = s->p;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r = 0;

	if (!f)
		return -errno;
	fputs("# loguard policy suggested by `loguard suggest` from ", f);
	comment_str(f, source);
	fprintf(f, ":\n# %" PRIu64 " connection record%s", s->total, s->total == 1 ? "" : "s");
	if (*s->first)
		fprintf(f, ", %s to %s", s->first, s->last);
	fputs(",\n# based on ", f);
	comment_str(f, p->file);
	fputs(".\n"
	      "# Each guard keeps what the policy allows and adds who the records show connecting\n"
	      "# (counts: connections). Mode enforce: review, install as the policy, reload.\n",
	      f);
	if (s->o.include_denied)
		fputs("# --include-denied: what enforce mode denied is allowed too.\n", f);
	fprintf(f, "version: 1\nmode: enforce\nlog: { group: %u, rate: ", p->log_group);
	if (p->log_rate)
		fprintf(f, "%" PRIu32 "/%s }\n", p->log_rate,
			policy_rate_unit_name(p->log_rate_unit));
	else
		fputs("0 }\n", f);
	fprintf(f, "queue: %u\ncounters: %s\nguards:\n", p->queue_num,
		p->counters ? "true" : "false");
	for (size_t i = 0; i < p->n_guards && !r; i++)
		r = write_guard(f, s, &s->g[i]);
	if (fclose(f) && !r)
		r = -ENOMEM;
	if (r) {
		free(text);
		return r;
	}
	*ret = text;
	return 0;
}
