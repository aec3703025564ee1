// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Read the installed table back: the guard map's elements name the guards
 * (element comments) and their profile chains; per-element counters on the
 * guard map and the allow sets give per-guard connection and allow counts
 * without a rule per guard. The uid map decides before the guard map: a guard's
 * connections are its guard map hits plus its uid map hits.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "compile.h"
#include "installed.h"
#include "ruleset.h"
#include "table_read.h"

/* One element as read back, flattened. */
struct raw_elem {
	char *comment;
	char *chain;
	uint8_t proto;
	uint16_t first, last;
	uint64_t
		key_id; /* cgroup sets: key bytes 8..15 as stored (byte order of the set), else 0 */
	uint64_t packets;
	/* An element of a verdict map among the allow sets: the uid map, looked up before the
	 * guard map, so what it counts never reached the guard map's counters. */
	bool verdict;
};

struct raw_elems {
	struct raw_elem *v;
	size_t n, cap;
	bool counters; /* some element carried a counter (the policy did not say counters: false) */
};

static int counter_obj_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	uint64_t *packets = data;

	if (!o || nftnl_obj_nlmsg_parse(nlh, o) < 0) {
		nftnl_obj_free(o);
		return MNL_CB_ERROR;
	}
	*packets = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

int table_read_counter(struct nl *nl, const char *name, uint64_t *ret_packets)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;
	uint64_t packets = 0;
	int r;

	if (!o)
		return -ENOMEM;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, LOGUARD_TABLE);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	memset(buf, 0, sizeof(buf)); /* the request has gaps libnftnl leaves unset */
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_INET, NLM_F_ACK, 0);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	r = nl_request(nl, nlh, counter_obj_cb, &packets);
	if (r < 0)
		return r;
	*ret_packets = packets;
	return 0;
}

struct table_info {
	bool found;
	uint32_t flags, owner;
};

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct table_info *ti = data;

	if (!t || nftnl_table_nlmsg_parse(nlh, t) < 0) {
		nftnl_table_free(t);
		return MNL_CB_ERROR;
	}
	ti->found = true;
	if (nftnl_table_is_set(t, NFTNL_TABLE_FLAGS))
		ti->flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
	if (nftnl_table_is_set(t, NFTNL_TABLE_OWNER))
		ti->owner = nftnl_table_get_u32(t, NFTNL_TABLE_OWNER);
	nftnl_table_free(t);
	return MNL_CB_OK;
}

int table_read_info(struct nl *nl, bool *ret_exists, uint32_t *ret_flags, uint32_t *ret_owner)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_table *t = nftnl_table_alloc();
	struct table_info ti = { 0 };
	struct nlmsghdr *nlh;
	int r;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, LOGUARD_TABLE);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	r = nl_request(nl, nlh, table_cb, &ti);
	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		return r;
	*ret_exists = ti.found;
	if (ret_flags)
		*ret_flags = ti.flags;
	if (ret_owner)
		*ret_owner = ti.owner;
	return 0;
}

/* Names of the allow sets present (their number depends on cgroup levels used). */
struct set_names {
	char **v;
	size_t n;
	int err;
};

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct set_names *sn = data;
	struct nftnl_set *s = nftnl_set_alloc();
	const char *name;
	char **nv;

	if (!s || nftnl_set_nlmsg_parse(nlh, s) < 0)
		goto fail;
	name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	if (name && !strncmp(name, "allow_", 6)) {
		nv = reallocarray(sn->v, sn->n + 1, sizeof(*nv));
		if (!nv)
			goto fail;
		sn->v = nv;
		sn->v[sn->n] = strdup(name);
		if (!sn->v[sn->n])
			goto fail;
		sn->n++;
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
fail:
	nftnl_set_free(s);
	sn->err = -ENOMEM;
	return MNL_CB_ERROR;
}

static int counter_cb(struct nftnl_expr *e, void *data)
{
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	struct raw_elems *re = data;

	if (name && !strcmp(name, "counter")) {
		re->v[re->n].packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		re->counters = true;
	}
	return 0;
}

static int raw_add(struct raw_elems *re, struct nftnl_set_elem *e)
{
	const uint8_t *key, *end;
	const char *comment = NULL, *chain = NULL;
	struct raw_elem *x;
	uint32_t len = 0, elen = 0, ulen = 0;
	const void *ud;

	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	end = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &elen);
	if (!key || len < 8)
		return 0; /* not one of ours */
	if (!end || elen < 8)
		end = key;
	ud = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &ulen);
	if (ud)
		comment = inst_elem_comment(ud, ulen);
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN))
		chain = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
	if (re->n == re->cap) {
		size_t ncap = re->cap ? re->cap * 2 : 256;
		struct raw_elem *nv = reallocarray(re->v, ncap, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		re->v = nv;
		re->cap = ncap;
	}
	x = &re->v[re->n];
	*x = (struct raw_elem){
		.proto = key[0],
		.first = (uint16_t)(key[4] << 8 | key[5]),
		.last = (uint16_t)(end[4] << 8 | end[5]),
		.comment = strdup(comment ? comment : "?"),
		.chain = chain ? strdup(chain) : NULL,
		.verdict = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT),
	};
	if (len >= 16)
		memcpy(&x->key_id, key + 8, sizeof(x->key_id));
	nftnl_set_elem_expr_foreach(e, counter_cb, re);
	if (!x->comment || (chain && !x->chain)) {
		free(x->comment);
		free(x->chain);
		return -ENOMEM;
	}
	re->n++;
	return 0;
}

struct elem_dump {
	struct raw_elems *re;
	int err;
};

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elem_dump *ed = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (!s || nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		ed->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	it = nftnl_set_elems_iter_create(s);
	for (e = it ? nftnl_set_elems_iter_next(it) : NULL; e; e = nftnl_set_elems_iter_next(it)) {
		ed->err = raw_add(ed->re, e);
		if (ed->err < 0)
			break;
	}
	if (!it)
		ed->err = -ENOMEM;
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return ed->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static int dump_elems(struct nl *nl, const char *set, struct raw_elems *re)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s = nftnl_set_alloc();
	struct elem_dump ed = { .re = re };
	struct nlmsghdr *nlh;
	int r;

	if (!s)
		return -ENOMEM;
	memset(buf, 0, sizeof(buf)); /* the request has gaps libnftnl leaves unset */
	nftnl_set_set_str(s, NFTNL_SET_TABLE, LOGUARD_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, 0);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	r = nl_request(nl, nlh, elem_cb, &ed);
	return ed.err < 0 ? ed.err : r;
}

static int dump_allow_sets(struct nl *nl, struct set_names *sn)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	int r;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, LOGUARD_TABLE);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, 0);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	r = nl_request(nl, nlh, set_cb, sn);
	return sn->err < 0 ? sn->err : r;
}

static int cmp_raw(const void *a, const void *b)
{
	const struct raw_elem *x = a, *y = b;
	int c = strcmp(x->comment, y->comment);

	if (c)
		return c;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static int cmp_guard_name(const void *key, const void *g)
{
	return strcmp(key, ((const struct table_guard *)g)->name);
}

static void raw_free(struct raw_elems *re)
{
	for (size_t i = 0; i < re->n; i++) {
		free(re->v[i].comment);
		free(re->v[i].chain);
	}
	free(re->v);
}

int table_cgroup_allowed(struct nl *nl, unsigned level, uint64_t id, bool *ret_allowed)
{
	bool found = false;
	int r = 0;

	for (int ranges = 0; ranges < 2 && !found; ranges++) {
		/* Hash sets key the id in host order, interval sets big endian (nft_emit.c). */
		uint64_t key = ranges ? htobe64(id) : id;
		struct raw_elems re = { 0 };
		char set[64];

		snprintf(set, sizeof(set), LOGUARD_ALLOW_CGROUP_SET_FMT "%s", level,
			 ranges ? LOGUARD_RANGES_SUFFIX : "");
		r = dump_elems(nl, set, &re);
		for (size_t i = 0; r >= 0 && i < re.n; i++)
			found |= re.v[i].key_id == key;
		raw_free(&re);
		if (r == -ENOENT) /* no such table or set: nothing allowed there */
			r = 0;
		if (r < 0)
			return r;
	}
	*ret_allowed = found;
	return 0;
}

/* Group the guard map's elements (sorted by guard name) into guards. */
static int build_guards(struct table_state *t, struct raw_elems *map)
{
	qsort(map->v, map->n, sizeof(*map->v), cmp_raw);
	t->guards = calloc(map->n ? map->n : 1, sizeof(*t->guards));
	if (!t->guards)
		return -ENOMEM;
	for (size_t i = 0; i < map->n; i++) {
		struct raw_elem *e = &map->v[i];
		struct table_guard *g;
		struct table_ports *np;

		if (!t->n_guards || strcmp(t->guards[t->n_guards - 1].name, e->comment)) {
			g = &t->guards[t->n_guards++];
			g->name = strdup(e->comment);
			if (!g->name)
				return -ENOMEM;
			if (!e->chain ||
			    compile_profile_from_chain(e->chain, &g->mode, &g->action, &g->log) < 0)
				g->mode = __POLICY_MODE_MAX; /* not a chain we made */
		}
		g = &t->guards[t->n_guards - 1];
		np = reallocarray(g->ports, g->n_ports + 1, sizeof(*np));
		if (!np)
			return -ENOMEM;
		g->ports = np;
		g->ports[g->n_ports++] = (struct table_ports){ e->proto, e->first, e->last };
		g->connections += e->packets;
	}
	return 0;
}

/* The counting sets of the guards the daemon judges (no such sets: none of those). */
static int read_judged(struct nl *nl, struct table_state *t)
{
	static const char *const sets[] = { LOGUARD_ASKED_SET, LOGUARD_ASKED_SET LOGUARD_RANGES_SUFFIX,
					    LOGUARD_DENIED_SET,
					    LOGUARD_DENIED_SET LOGUARD_RANGES_SUFFIX };
	int r = 0;

	for (size_t k = 0; r >= 0 && k < sizeof(sets) / sizeof(sets[0]); k++) {
		struct raw_elems re = { 0 };

		r = dump_elems(nl, sets[k], &re);
		for (size_t i = 0; r >= 0 && i < re.n; i++) {
			struct table_guard *g = bsearch(re.v[i].comment, t->guards, t->n_guards,
							sizeof(*t->guards), cmp_guard_name);

			if (!g)
				continue;
			g->judged = true;
			*(k < 2 ? &g->asked : &g->denied) += re.v[i].packets;
		}
		raw_free(&re);
		if (r == -ENOENT)
			r = 0;
	}
	return r;
}

int table_read(struct nl *nl, struct table_state **ret_table)
{
	struct table_state *t = calloc(1, sizeof(*t));
	struct raw_elems map = { 0 }, allow = { 0 };
	struct set_names sn = { 0 };
	int r;

	if (!t)
		return -ENOMEM;
	r = table_read_info(nl, &t->installed, &t->flags, &t->owner);
	if (r < 0 || !t->installed)
		goto out;
	r = nl_get_genid(nl, &t->genid);
	if (r >= 0)
		r = dump_elems(nl, LOGUARD_GUARD_MAP, &map);
	/* Port ranges live in the interval twin, which only policies with ranges have. */
	if (r >= 0) {
		r = dump_elems(nl, LOGUARD_GUARD_MAP LOGUARD_RANGES_SUFFIX, &map);
		if (r == -ENOENT)
			r = 0;
	}
	if (r >= 0)
		r = dump_allow_sets(nl, &sn);
	for (size_t i = 0; r >= 0 && i < sn.n; i++)
		r = dump_elems(nl, sn.v[i], &allow);
	if (r >= 0)
		r = build_guards(t, &map);
	t->counters = map.counters;
	daemon_stats_read(&t->daemon); /* no daemon: nothing to add */
	if (r >= 0) {
		r = table_read_counter(nl, LOGUARD_RATE_COUNTER, &t->rate_limited);
		t->has_rate_limit = r >= 0;
		if (r == -ENOENT) /* the policy has no log rate limit */
			r = 0;
	}
	for (size_t i = 0; r >= 0 && i < allow.n; i++) {
		struct table_guard *g = bsearch(allow.v[i].comment, t->guards, t->n_guards,
						sizeof(*t->guards), cmp_guard_name);

		if (g) {
			if (allow.v[i].verdict)
				g->connections += allow.v[i].packets;
			g->allowed += allow.v[i].packets;
			g->n_allow++;
		}
	}
	if (r >= 0)
		r = read_judged(nl, t);
out:
	raw_free(&map);
	raw_free(&allow);
	for (size_t i = 0; i < sn.n; i++)
		free(sn.v[i]);
	free(sn.v);
	if (r < 0) {
		table_state_free(t);
		return r;
	}
	*ret_table = t;
	return 0;
}

int table_label_files(struct table_state *t, const struct policy *p)
{
	for (size_t i = 0; p && i < p->n_guards; i++) {
		const struct policy_guard *pg = &p->guards[i];
		struct table_guard *g = bsearch(pg->name, t->guards, t->n_guards,
						sizeof(*t->guards), cmp_guard_name);

		if (!g || g->file)
			continue;
		g->file = strdup(pg->loc.file);
		if (!g->file)
			return -ENOMEM;
	}
	return 0;
}

void table_state_free(struct table_state *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_guards; i++) {
		free(t->guards[i].name);
		free(t->guards[i].ports);
		free(t->guards[i].file);
	}
	free(t->guards);
	free(t);
}
