// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Read table inet loguard back as plain data for an in-place update: chains (with their hook),
 * sets (with what makes a definition compatible) and every element, named objects. Dumps are
 * filtered by table in the kernel; the callbacks check table and family again anyway.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "array.h"
#include "installed.h"
#include "ruleset.h"
#include "table_read.h"

int inst_elem_cmp(const void *a, const void *b)
{
	const struct inst_elem *x = a, *y = b;
	int c;

	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	c = memcmp(x->key, y->key, x->key_len);
	if (c)
		return c;
	if (x->end_len != y->end_len)
		return x->end_len < y->end_len ? -1 : 1;
	return memcmp(x->key_end, y->key_end, x->end_len);
}

static int comment_cb(const struct nftnl_udata *attr, void *data)
{
	if (nftnl_udata_type(attr) == NFTNL_UDATA_SET_ELEM_COMMENT && nftnl_udata_len(attr) > 0) {
		const char *s = nftnl_udata_get(attr);

		if (s[nftnl_udata_len(attr) - 1] == '\0')
			*(const char **)data = s;
	}
	return 0;
}

const char *inst_elem_comment(const void *ud, uint32_t len)
{
	const char *comment = NULL;

	nftnl_udata_parse(ud, len, comment_cb, &comment);
	return comment;
}

static bool ours(const char *table, uint32_t family)
{
	return table && !strcmp(table, LOGUARD_TABLE) && family == NFPROTO_INET;
}

/* A dump request for table inet loguard; fill builds the payload from the object. */
static struct nlmsghdr *dump_request(char *buf, uint16_t type)
{
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE); /* libnftnl leaves gaps unset */
	return nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, NLM_F_DUMP, 0);
}

static int feed_chain(struct installed *inst, const struct nlmsghdr *nlh)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct inst_chain *x;

	if (!c || nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto nomem;
	if (!ours(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE),
		  nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY))) {
		nftnl_chain_free(c);
		return 0;
	}
	if (array_grow(&inst->chains, &inst->cap_chains, inst->n_chains, sizeof(*x)) < 0)
		goto nomem;
	x = &inst->chains[inst->n_chains];
	*x = (struct inst_chain){
		.name = strdup(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME)),
		.base = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM),
	};
	if (!x->name)
		goto nomem;
	if (x->base) {
		x->hooknum = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
		x->prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
	}
	inst->n_chains++;
	nftnl_chain_free(c);
	return 0;
nomem:
	nftnl_chain_free(c);
	return -ENOMEM;
}

static int count_expr(struct nftnl_expr *e, void *data)
{
	(void)e;
	(*(unsigned *)data)++;
	return 0;
}

static int feed_set(struct installed *inst, const struct nlmsghdr *nlh)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct inst_set *x;

	if (!s || nftnl_set_nlmsg_parse(nlh, s) < 0)
		goto nomem;
	if (!ours(nftnl_set_get_str(s, NFTNL_SET_TABLE), nftnl_set_get_u32(s, NFTNL_SET_FAMILY)) ||
	    !nftnl_set_is_set(s, NFTNL_SET_NAME)) {
		nftnl_set_free(s);
		return 0;
	}
	if (array_grow(&inst->sets, &inst->cap_sets, inst->n_sets, sizeof(*x)) < 0)
		goto nomem;
	x = &inst->sets[inst->n_sets];
	*x = (struct inst_set){
		.name = strdup(nftnl_set_get_str(s, NFTNL_SET_NAME)),
		.key_type = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE),
		.key_len = nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN),
		.flags = nftnl_set_get_u32(s, NFTNL_SET_FLAGS),
		.data_type = nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE),
		.size = nftnl_set_get_u32(s, NFTNL_SET_DESC_SIZE),
		.timeout = nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT),
	};
	if (!x->name)
		goto nomem;
	nftnl_set_expr_foreach(s, count_expr, &x->n_exprs);
	inst->n_sets++;
	nftnl_set_free(s);
	return 0;
nomem:
	nftnl_set_free(s);
	return -ENOMEM;
}

/* The payload of a NFTA_SET_ELEM_KEY / KEY_END nest, or NULL. */
static const struct nlattr *elem_key(const struct nlattr *nest)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest)
	{
		if (mnl_attr_get_type(a) == NFTA_DATA_VALUE)
			return a;
	}
	return NULL;
}

/* The chain of a NFTA_SET_ELEM_DATA nest's verdict (goto/jump), or NULL. */
static const char *elem_chain(const struct nlattr *data)
{
	const struct nlattr *v, *a;

	mnl_attr_for_each_nested(v, data)
	{
		if (mnl_attr_get_type(v) != NFTA_DATA_VERDICT)
			continue;
		mnl_attr_for_each_nested(a, v)
		{
			if (mnl_attr_get_type(a) == NFTA_VERDICT_CHAIN &&
			    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
				return mnl_attr_get_str(a);
		}
	}
	return NULL;
}

/*
 * One element, read with libmnl: libnftnl's parser allocates an element object and parses
 * every per-element expression (the counter) for each of them, and a reload reads all 20,000
 * elements of a 10,000-guard table (that parse was a tenth of the reload; measured with perf).
 */
static int elem_add(struct inst_set *set, const struct nlattr *elem)
{
	const struct nlattr *a, *key = NULL, *end = NULL, *data = NULL, *ud = NULL;
	const char *comment = NULL, *chain = NULL;
	struct inst_elem *x;

	mnl_attr_for_each_nested(a, elem)
	{
		switch (mnl_attr_get_type(a)) {
		case NFTA_SET_ELEM_KEY:
			key = elem_key(a);
			break;
		case NFTA_SET_ELEM_KEY_END:
			end = elem_key(a);
			break;
		case NFTA_SET_ELEM_DATA:
			data = a;
			break;
		case NFTA_SET_ELEM_USERDATA:
			ud = a;
			break;
		}
	}
	if (!key || mnl_attr_get_payload_len(key) > EMIT_KEY_MAX ||
	    (end && mnl_attr_get_payload_len(end) > EMIT_KEY_MAX))
		return 0; /* not an element we could have written (catch-all, foreign) */
	if (array_grow(&set->elems, &set->cap_elems, set->n_elems, sizeof(*x)) < 0)
		return -ENOMEM;
	x = &set->elems[set->n_elems];
	*x = (struct inst_elem){ .key_len = (uint8_t)mnl_attr_get_payload_len(key),
				 .end_len = end ? (uint8_t)mnl_attr_get_payload_len(end) : 0 };
	memcpy(x->key, mnl_attr_get_payload(key), x->key_len);
	if (end)
		memcpy(x->key_end, mnl_attr_get_payload(end), x->end_len);
	if (ud)
		comment = inst_elem_comment(mnl_attr_get_payload(ud), mnl_attr_get_payload_len(ud));
	if (data)
		chain = elem_chain(data);
	if (comment && !(x->comment = strdup(comment)))
		return -ENOMEM;
	if (chain && !(x->chain = strdup(chain))) {
		free(x->comment);
		return -ENOMEM;
	}
	set->n_elems++;
	return 0;
}

static int feed_elems(struct installed *inst, const struct nlmsghdr *nlh)
{
	const struct nlattr *a, *list = NULL, *name = NULL, *elem;
	struct inst_set *set = NULL;
	int r = 0;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
			name = a;
		else if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
			list = a;
	}
	for (size_t i = 0; name && i < inst->n_sets; i++)
		if (!strcmp(inst->sets[i].name, mnl_attr_get_str(name)))
			set = &inst->sets[i];
	if (!set || !list)
		return 0;
	/* Entries are NFTA_LIST_ELEM in a dump, numbered 1..n in a batch (put_elem, libnftnl). */
	mnl_attr_for_each_nested(elem, list)
	{
		r = elem_add(set, elem);
		if (r < 0)
			break;
	}
	return r;
}

static int feed_obj(struct installed *inst, const struct nlmsghdr *nlh)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	char *name;

	if (!o || nftnl_obj_nlmsg_parse(nlh, o) < 0)
		goto nomem;
	if (ours(nftnl_obj_get_str(o, NFTNL_OBJ_TABLE), nftnl_obj_get_u32(o, NFTNL_OBJ_FAMILY))) {
		if (array_grow(&inst->objs, &inst->cap_objs, inst->n_objs, sizeof(*inst->objs)) <
			    0 ||
		    !(name = strdup(nftnl_obj_get_str(o, NFTNL_OBJ_NAME))))
			goto nomem;
		inst->objs[inst->n_objs++] = name;
	}
	nftnl_obj_free(o);
	return 0;
nomem:
	nftnl_obj_free(o);
	return -ENOMEM;
}

int installed_feed(struct installed *inst, const struct nlmsghdr *nlh)
{
	if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES)
		return 0;
	switch (nlh->nlmsg_type & 0xff) {
	case NFT_MSG_NEWTABLE: {
		struct nftnl_table *t = nftnl_table_alloc();

		if (!t || nftnl_table_nlmsg_parse(nlh, t) < 0) {
			nftnl_table_free(t);
			return -ENOMEM;
		}
		if (ours(nftnl_table_get_str(t, NFTNL_TABLE_NAME),
			 nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY))) {
			inst->exists = true;
			inst->flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
		}
		nftnl_table_free(t);
		return 0;
	}
	case NFT_MSG_NEWCHAIN:
		return feed_chain(inst, nlh);
	case NFT_MSG_NEWSET:
		return feed_set(inst, nlh);
	case NFT_MSG_NEWSETELEM:
		return feed_elems(inst, nlh);
	case NFT_MSG_NEWOBJ:
		return feed_obj(inst, nlh);
	}
	return 0;
}

void installed_sort(struct installed *inst)
{
	for (size_t i = 0; i < inst->n_sets; i++)
		if (inst->sets[i].n_elems) /* an empty set has no array: qsort(NULL) is undefined */
			qsort(inst->sets[i].elems, inst->sets[i].n_elems,
			      sizeof(*inst->sets[i].elems), inst_elem_cmp);
}

/* Dump callbacks keep the first failure: libmnl's error path only carries errno. */
struct read_ctx {
	struct installed *inst;
	int err;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct read_ctx *rc = data;

	rc->err = installed_feed(rc->inst, nlh);
	return rc->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static int read_chains(struct nl *nl, struct read_ctx *rc)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh = dump_request(buf, NFT_MSG_GETCHAIN);
	int r;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, LOGUARD_TABLE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	r = nl_request(nl, nlh, dump_cb, rc);
	return rc->err < 0 ? rc->err : r;
}

static int read_sets(struct nl *nl, struct read_ctx *rc)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh = dump_request(buf, NFT_MSG_GETSET);
	int r;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, LOGUARD_TABLE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	r = nl_request(nl, nlh, dump_cb, rc);
	return rc->err < 0 ? rc->err : r;
}

static int read_elems(struct nl *nl, struct read_ctx *rc, const struct inst_set *set)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh = dump_request(buf, NFT_MSG_GETSETELEM);
	int r;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, LOGUARD_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set->name);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	r = nl_request(nl, nlh, dump_cb, rc);
	return rc->err < 0 ? rc->err : r;
}

static int read_objs(struct nl *nl, struct read_ctx *rc)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh = dump_request(buf, NFT_MSG_GETOBJ);
	int r;

	if (!o)
		return -ENOMEM;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, LOGUARD_TABLE);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	r = nl_request(nl, nlh, dump_cb, rc);
	return rc->err < 0 ? rc->err : r;
}

/* The set of known that only our updates change, if inst's set x is one: its elements are
 * known's (an update of ours leaves the kernel's set exactly so). */
static const struct rs_set *known_set(const struct ruleset *known, const struct inst_set *x)
{
	const struct rs_set *s = known ? ruleset_find_set(known, x->name) : NULL;

	if (!s || s->live || (s->kind != RS_SET_GUARDS && s->kind != RS_SET_ALLOW_UID))
		return NULL;
	return s;
}

int inst_set_elems_from(struct inst_set *x, const struct rs_set *s, size_t first, size_t n)
{
	x->elems = calloc(n + 1, sizeof(*x->elems));
	if (!x->elems)
		return -ENOMEM;
	x->cap_elems = n + 1;
	for (size_t i = first; i < first + n; i++) {
		const struct rs_elem *e = &s->elems[i];
		struct inst_elem *y = &x->elems[x->n_elems];

		y->key_len = (uint8_t)emit_elem_key(s, e, false, y->key);
		if (s->interval)
			y->end_len = (uint8_t)emit_elem_key(s, e, true, y->key_end);
		if ((e->comment && !(y->comment = strdup(e->comment))) ||
		    (e->chain && !(y->chain = strdup(e->chain)))) {
			free(y->comment);
			return -ENOMEM;
		}
		x->n_elems++;
	}
	if (x->n_elems)
		qsort(x->elems, x->n_elems, sizeof(*x->elems), inst_elem_cmp);
	return 0;
}

void inst_set_elems_free(struct inst_set *x)
{
	for (size_t j = 0; j < x->n_elems; j++) {
		free(x->elems[j].chain);
		free(x->elems[j].comment);
	}
	free(x->elems);
	x->elems = NULL;
	x->n_elems = x->cap_elems = 0;
}

int installed_read_since(struct nl *nl, const struct ruleset *known, struct installed **ret_inst)
{
	struct installed *inst = calloc(1, sizeof(*inst));
	struct read_ctx rc = { .inst = inst };
	bool mine;
	int r;

	if (!inst)
		return -ENOMEM;
	r = table_read_info(nl, &inst->exists, &inst->flags, &inst->owner);
	if (r >= 0 && inst->exists)
		r = read_chains(nl, &rc);
	if (r >= 0 && inst->exists)
		r = read_sets(nl, &rc);
	/* While our socket owns the table, no other process can change it: what we installed
	 * last (known) is what the sets only our updates change hold, and reading them back
	 * (20,000 elements for 10,000 guards, over half of a reload) would only say so again.
	 * Nor are they copied: the diff compares the two rulesets (emit_update_build). */
	mine = known && (inst->flags & NFT_TABLE_F_OWNER) && inst->owner == nl_portid(nl);
	for (size_t i = 0; r >= 0 && i < inst->n_sets; i++) {
		const struct rs_set *s = mine ? known_set(known, &inst->sets[i]) : NULL;

		/* A dynamic set (a log meter) is filled by packets, up to 131,072 elements, and
		 * an update never touches its elements: only its definition is needed. */
		if (s)
			inst->sets[i].known = s;
		else if (!(inst->sets[i].flags & NFT_SET_EVAL))
			r = read_elems(nl, &rc, &inst->sets[i]);
	}
	if (r >= 0 && inst->exists)
		r = read_objs(nl, &rc);
	if (r >= 0)
		installed_sort(inst);
	if (r < 0) {
		installed_free(inst);
		return r;
	}
	*ret_inst = inst;
	return 0;
}

int installed_read(struct nl *nl, struct installed **ret_inst)
{
	return installed_read_since(nl, NULL, ret_inst);
}

void installed_free(struct installed *inst)
{
	if (!inst)
		return;
	for (size_t i = 0; i < inst->n_chains; i++)
		free(inst->chains[i].name);
	for (size_t i = 0; i < inst->n_sets; i++) {
		inst_set_elems_free(&inst->sets[i]);
		free(inst->sets[i].name);
	}
	for (size_t i = 0; i < inst->n_objs; i++)
		free(inst->objs[i]);
	free(inst->chains);
	free(inst->sets);
	free(inst->objs);
	free(inst);
}
