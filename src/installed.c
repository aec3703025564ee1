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
#include <libnftnl/chain.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

#include "array.h"
#include "installed.h"
#include "ruleset.h"
#include "show.h"

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

/* Dump callbacks set this on failure: libmnl's error path only carries errno. */
struct read_ctx {
	struct installed *inst;
	struct inst_set *set; /* element dumps */
	int err;
};

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct read_ctx *rc = data;
	struct installed *inst = rc->inst;
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct inst_chain *x;

	if (!c || nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto nomem;
	if (!ours(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE),
		  nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY))) {
		nftnl_chain_free(c);
		return MNL_CB_OK;
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
	return MNL_CB_OK;
nomem:
	nftnl_chain_free(c);
	rc->err = -ENOMEM;
	return MNL_CB_ERROR;
}

static int count_expr(struct nftnl_expr *e, void *data)
{
	(void)e;
	(*(unsigned *)data)++;
	return 0;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct read_ctx *rc = data;
	struct installed *inst = rc->inst;
	struct nftnl_set *s = nftnl_set_alloc();
	struct inst_set *x;

	if (!s || nftnl_set_nlmsg_parse(nlh, s) < 0)
		goto nomem;
	if (!ours(nftnl_set_get_str(s, NFTNL_SET_TABLE), nftnl_set_get_u32(s, NFTNL_SET_FAMILY)) ||
	    !nftnl_set_is_set(s, NFTNL_SET_NAME)) {
		nftnl_set_free(s);
		return MNL_CB_OK;
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
	return MNL_CB_OK;
nomem:
	nftnl_set_free(s);
	rc->err = -ENOMEM;
	return MNL_CB_ERROR;
}

static int elem_add(struct inst_set *set, struct nftnl_set_elem *e)
{
	const char *comment = NULL;
	const void *key, *end, *ud;
	uint32_t len = 0, elen = 0, ulen = 0;
	struct inst_elem *x;

	key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	end = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &elen);
	if (!key || len > EMIT_KEY_MAX || (end && elen > EMIT_KEY_MAX))
		return 0; /* not an element we could have written (catch-all, foreign) */
	if (array_grow(&set->elems, &set->cap_elems, set->n_elems, sizeof(*x)) < 0)
		return -ENOMEM;
	x = &set->elems[set->n_elems];
	*x = (struct inst_elem){ .key_len = (uint8_t)len, .end_len = end ? (uint8_t)elen : 0 };
	memcpy(x->key, key, len);
	if (end)
		memcpy(x->key_end, end, elen);
	ud = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &ulen);
	if (ud)
		comment = inst_elem_comment(ud, ulen);
	if (comment && !(x->comment = strdup(comment)))
		return -ENOMEM;
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN) &&
	    !(x->chain = strdup(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN)))) {
		free(x->comment);
		return -ENOMEM;
	}
	set->n_elems++;
	return 0;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct read_ctx *rc = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *e;

	if (!s || nftnl_set_elems_nlmsg_parse(nlh, s) < 0 ||
	    !(it = nftnl_set_elems_iter_create(s))) {
		rc->err = -ENOMEM;
		goto out;
	}
	for (e = nftnl_set_elems_iter_next(it); e && rc->err >= 0;
	     e = nftnl_set_elems_iter_next(it))
		rc->err = elem_add(rc->set, e);
out:
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return rc->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static int obj_cb(const struct nlmsghdr *nlh, void *data)
{
	struct read_ctx *rc = data;
	struct installed *inst = rc->inst;
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
	return MNL_CB_OK;
nomem:
	nftnl_obj_free(o);
	rc->err = -ENOMEM;
	return MNL_CB_ERROR;
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
	r = nl_request(nl, nlh, chain_cb, rc);
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
	r = nl_request(nl, nlh, set_cb, rc);
	return rc->err < 0 ? rc->err : r;
}

static int read_elems(struct nl *nl, struct read_ctx *rc, struct inst_set *set)
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
	rc->set = set;
	r = nl_request(nl, nlh, elem_cb, rc);
	if (rc->err < 0)
		return rc->err;
	if (r >= 0)
		qsort(set->elems, set->n_elems, sizeof(*set->elems), inst_elem_cmp);
	return r;
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
	r = nl_request(nl, nlh, obj_cb, rc);
	return rc->err < 0 ? rc->err : r;
}

int installed_read(struct nl *nl, struct installed **ret_inst)
{
	struct installed *inst = calloc(1, sizeof(*inst));
	struct read_ctx rc = { .inst = inst };
	int r;

	if (!inst)
		return -ENOMEM;
	r = show_table_info(nl, &inst->exists, &inst->flags, &inst->owner);
	if (r >= 0 && inst->exists)
		r = read_chains(nl, &rc);
	if (r >= 0 && inst->exists)
		r = read_sets(nl, &rc);
	for (size_t i = 0; r >= 0 && i < inst->n_sets; i++)
		r = read_elems(nl, &rc, &inst->sets[i]);
	if (r >= 0 && inst->exists)
		r = read_objs(nl, &rc);
	if (r < 0) {
		installed_free(inst);
		return r;
	}
	*ret_inst = inst;
	return 0;
}

void installed_free(struct installed *inst)
{
	if (!inst)
		return;
	for (size_t i = 0; i < inst->n_chains; i++)
		free(inst->chains[i].name);
	for (size_t i = 0; i < inst->n_sets; i++) {
		struct inst_set *s = &inst->sets[i];

		for (size_t j = 0; j < s->n_elems; j++) {
			free(s->elems[j].chain);
			free(s->elems[j].comment);
		}
		free(s->elems);
		free(s->name);
	}
	for (size_t i = 0; i < inst->n_objs; i++)
		free(inst->objs[i]);
	free(inst->chains);
	free(inst->sets);
	free(inst->objs);
	free(inst);
}
