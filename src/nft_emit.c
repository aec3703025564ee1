// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Ruleset IR → libnftnl objects in one nfnetlink batch. No sockets here: the
 * batch is plain memory so it can be unit-tested and parsed back.
 *
 * Batch shapes (one transaction each; the kernel applies all or nothing):
 *   whole table:  BEGIN(genid) [DELTABLE] NEWTABLE [NEWOBJ] NEWCHAIN* NEWSET* NEWSETELEM*
 *                 NEWRULE* END
 *   update:       BEGIN(genid) [NEWTABLE flags] [NEWOBJ] DELRULE(chain)* DELSET* DELSETELEM*
 *                 DELCHAIN* NEWCHAIN* NEWSET* NEWSETELEM* NEWRULE* DELOBJ* END
 * A whole table is for a first install (DELTABLE only where the kernel refused an update of
 * the flags). An update deletes what refers to a chain or set before the chain or set, and
 * creates chains before the map elements that jump to them.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/rtnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "installed.h"
#include "nft_emit.h"

/* Big enough that the pager rarely splits; the overrun must hold the largest message. */
#define BATCH_PAGE_SIZE (256 * 1024)
#define BATCH_OVERRUN	(128 * 1024)
/* One NEWSETELEM message must stay under 64 KiB (u16 netlink attribute length). */
#define ELEM_MSG_BUDGET (56 * 1024)
/* Room past a small page for the largest element message (the budget plus one element). */
#define ELEM_BATCH_OVERRUN (64 * 1024)

/* nft's datatype ids, so `nft list` prints our keys with the right types. */
enum nft_type_id {
	NFT_TYPE_IPADDR = 7,
	NFT_TYPE_IP6ADDR = 8,
	NFT_TYPE_INET_PROTOCOL = 12,
	NFT_TYPE_INET_SERVICE = 13,
	NFT_TYPE_UID = 24,
	NFT_TYPE_CGROUPV2 = 46,
};
#define NFT_TYPE_BITS 6

/* What one batch message carries, for mapping kernel errors back to the policy. */
enum emit_obj {
	EMIT_OBJ_CONTROL, /* begin, end, table */
	EMIT_OBJ_CHAIN,
	EMIT_OBJ_SET,
	EMIT_OBJ_ELEMS,
	EMIT_OBJ_RULE,
	__EMIT_OBJ_MAX
};

struct emit_msg {
	enum emit_obj obj;
	const char *what; /* control message name, or the text below */
	char *text;	  /* owned: a deletion of an installed object, named */
	const struct rs_chain *chain;
	const struct rs_rule *rule;
	const struct rs_set *set;
	const struct rs_elem *elems; /* EMIT_OBJ_ELEMS: the array first_elem indexes */
	size_t first_elem, n_elems;
	uint32_t *elem_offsets; /* EMIT_OBJ_ELEMS: offset of each element's nest */
};

struct emit_batch {
	struct nftnl_batch *nb;
	struct rs_elem **elem_copies; /* owned: element subsets an update adds */
	size_t n_elem_copies;
	size_t page_bytes; /* page plus overrun, as allocated */
	int n_pages;	   /* pages zeroed so far */
	uint32_t seq_first, seq_next;
	struct emit_msg *msgs;
	size_t n_msgs, cap_msgs;
	struct emit_stats stats;
	int err;       /* first allocation failure while building */
	bool queue_xt; /* from emit_opts */
};

static struct emit_msg *batch_msg(struct emit_batch *b, enum emit_obj obj)
{
	if (b->n_msgs == b->cap_msgs) {
		size_t ncap = b->cap_msgs ? b->cap_msgs * 2 : 64;
		struct emit_msg *nv = reallocarray(b->msgs, ncap, sizeof(*nv));

		if (!nv) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->msgs = nv;
		b->cap_msgs = ncap;
	}
	b->msgs[b->n_msgs] = (struct emit_msg){ .obj = obj };
	return &b->msgs[b->n_msgs++];
}

/* Start a message with the next seq; the caller fills the payload then calls batch_next(). */
static struct nlmsghdr *batch_put(struct emit_batch *b, uint16_t type, uint16_t flags,
				  enum emit_obj obj, struct emit_msg **ret_msg)
{
	struct emit_msg *m = batch_msg(b, obj);

	if (!m)
		return NULL;
	if (ret_msg)
		*ret_msg = m;
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->nb), type, NFPROTO_INET, flags,
				     b->seq_next++);
}

/* libnftnl's pages come from malloc() and its builders leave gaps between attributes
 * unwritten: zero each page once, from where writing continues (a new page starts with the
 * message that overflowed the last one), so no uninitialised byte reaches the kernel. */
static void page_zero(struct emit_batch *b)
{
	memset(nftnl_batch_buffer(b->nb), 0, b->page_bytes - nftnl_batch_buffer_len(b->nb));
	b->n_pages = nftnl_batch_iovec_len(b->nb);
}

static void batch_next(struct emit_batch *b)
{
	b->stats.n_msgs++;
	if (nftnl_batch_update(b->nb) < 0 && !b->err)
		b->err = -ENOMEM;
	else if (nftnl_batch_iovec_len(b->nb) != b->n_pages)
		page_zero(b);
}

static struct emit_batch *batch_new(size_t page, size_t overrun)
{
	struct emit_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->nb = nftnl_batch_alloc(page, overrun);
	if (!b->nb) {
		free(b);
		return NULL;
	}
	b->page_bytes = page + overrun;
	page_zero(b);
	return b;
}

static void put_control(struct emit_batch *b, uint16_t type, const struct emit_opts *opts)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct emit_msg *m = batch_msg(b, EMIT_OBJ_CONTROL);

	if (!m)
		return;
	m->what = type == NFNL_MSG_BATCH_BEGIN ? "batch begin" : "batch end";
	nlh = mnl_nlmsg_put_header(nftnl_batch_buffer(b->nb));
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = b->seq_next++;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	if (type == NFNL_MSG_BATCH_BEGIN && opts->has_genid)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(opts->genid));
	batch_next(b);
}

static void put_table(struct emit_batch *b, uint16_t type, uint16_t flags, uint32_t table_flags,
		      const char *what)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct emit_msg *m;
	struct nlmsghdr *nlh;

	if (!t) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, LOGUARD_TABLE);
	if (table_flags)
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, table_flags);
	nlh = batch_put(b, type, flags, EMIT_OBJ_CONTROL, &m);
	if (nlh) {
		m->what = what;
		nftnl_table_nlmsg_build_payload(nlh, t);
		batch_next(b);
	}
	nftnl_table_free(t);
}

static void put_counter_obj(struct emit_batch *b, const char *name)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct emit_msg *m;
	struct nlmsghdr *nlh;

	if (!o) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, LOGUARD_TABLE);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nlh = batch_put(b, NFT_MSG_NEWOBJ, NLM_F_CREATE | NLM_F_EXCL, EMIT_OBJ_CONTROL, &m);
	if (nlh && asprintf(&m->text, "counter %s", name) < 0) {
		m->text = NULL;
		b->err = -ENOMEM;
	} else if (nlh) {
		m->what = m->text;
		nftnl_obj_nlmsg_build_payload(nlh, o);
		batch_next(b);
	}
	nftnl_obj_free(o);
}

/* The hook and priority of a base chain. */
static void chain_hook(const struct rs_chain *c, uint32_t *ret_hooknum, int32_t *ret_prio)
{
	*ret_hooknum = NF_INET_LOCAL_OUT;
	*ret_prio = c->priority;
}

static void put_chain(struct emit_batch *b, const struct rs_chain *c)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct emit_msg *m;
	struct nlmsghdr *nlh;

	if (!ch) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, LOGUARD_TABLE);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c->name);
	if (c->base) {
		uint32_t hooknum;
		int32_t prio;

		chain_hook(c, &hooknum, &prio);
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, hooknum);
		nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = batch_put(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, EMIT_OBJ_CHAIN, &m);
	if (nlh) {
		m->chain = c;
		nftnl_chain_nlmsg_build_payload(nlh, ch);
		b->stats.n_chains++;
		batch_next(b);
	}
	nftnl_chain_free(ch);
}

/* Key layout per set kind: [address,] proto (1 byte in a 4-byte word), port (2 of 4), [id]. */
static unsigned set_fields(const struct rs_set *s, uint8_t field_len[4], uint32_t *ret_type)
{
	uint32_t type = (NFT_TYPE_INET_PROTOCOL << NFT_TYPE_BITS) | NFT_TYPE_INET_SERVICE;

	field_len[0] = 1;
	field_len[1] = 2;
	switch (s->kind) {
	case RS_SET_OWNER:
	case RS_SET_OWNER_KNOWN:
	case RS_SET_GRANT: {
		bool v4 = s->family == 4;

		field_len[0] = v4 ? 4 : 16;
		field_len[1] = 1;
		field_len[2] = 2;
		type = (((v4 ? NFT_TYPE_IPADDR : NFT_TYPE_IP6ADDR) << NFT_TYPE_BITS |
			 NFT_TYPE_INET_PROTOCOL)
			<< NFT_TYPE_BITS) |
		       NFT_TYPE_INET_SERVICE;
		if (s->kind == RS_SET_OWNER_KNOWN) {
			*ret_type = type;
			return 3;
		}
		field_len[3] = 4;
		*ret_type = (type << NFT_TYPE_BITS) | NFT_TYPE_UID;
		return 4;
	}
	case RS_SET_ALLOW_UID:
	case RS_SET_LOG_RATE:
		field_len[2] = 4;
		*ret_type = (type << NFT_TYPE_BITS) | NFT_TYPE_UID;
		return 3;
	case RS_SET_ALLOW_CGROUP:
		field_len[2] = 8;
		*ret_type = (type << NFT_TYPE_BITS) | NFT_TYPE_CGROUPV2;
		return 3;
	default:
		*ret_type = type;
		return 2;
	}
}

size_t emit_elem_key(const struct rs_set *s, const struct rs_elem *e, bool end,
		     uint8_t key[EMIT_KEY_MAX])
{
	uint16_t port = end ? e->port_last : e->port_first;

	/* Hash sets hold register contents (ids in host order); interval
	 * concatenations are compared bytewise, so there every field is big endian. */
	memset(key, 0, EMIT_KEY_MAX);
	if (s->kind == RS_SET_OWNER || s->kind == RS_SET_OWNER_KNOWN || s->kind == RS_SET_GRANT) {
		size_t a = s->family == 4 ? 4 : 16;
		uint32_t uid = (uint32_t)e->id;

		memcpy(key, &e->addr, a);
		key[a] = e->proto;
		key[a + 4] = port >> 8;
		key[a + 5] = port & 0xff;
		if (s->kind == RS_SET_OWNER_KNOWN)
			return a + 8;
		memcpy(key + a + 8, &uid, 4);
		return a + 12;
	}
	key[0] = e->proto;
	key[4] = port >> 8;
	key[5] = port & 0xff;
	switch (s->kind) {
	case RS_SET_ALLOW_UID: {
		uint32_t v = s->interval ? htobe32((uint32_t)e->id) : (uint32_t)e->id;

		memcpy(key + 8, &v, 4);
		return 12;
	}
	case RS_SET_ALLOW_CGROUP: {
		uint64_t v = s->interval ? htobe64(e->id) : e->id;

		memcpy(key + 8, &v, 8);
		return 16;
	}
	default:
		return 8;
	}
}

static struct nftnl_set *set_new(const struct ruleset *rs, const struct rs_set *s, uint32_t id)
{
	struct nftnl_set *ns = nftnl_set_alloc();
	uint8_t field_len[NFT_REG32_COUNT] = { 0 };
	uint32_t type, key_len = 0, flags = s->interval ? NFT_SET_INTERVAL | NFT_SET_CONCAT : 0;
	unsigned n;

	if (!ns)
		return NULL;
	n = set_fields(s, field_len, &type);
	for (unsigned i = 0; i < n; i++)
		key_len += (field_len[i] + 3) & ~3U; /* each field takes whole registers */
	nftnl_set_set_str(ns, NFTNL_SET_TABLE, LOGUARD_TABLE);
	nftnl_set_set_str(ns, NFTNL_SET_NAME, s->name);
	nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_TYPE, type);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_LEN, key_len);
	nftnl_set_set_u32(ns, NFTNL_SET_ID, id);
	if (s->interval) /* pipapo needs the field layout */
		nftnl_set_set_data(ns, NFTNL_SET_DESC_CONCAT, field_len, n);
	else if (s->kind != RS_SET_LOG_RATE) /* a size: a fixed hash, not a resizing one */
		nftnl_set_set_u32(ns, NFTNL_SET_DESC_SIZE, rs_set_size(s));
	if (s->kind == RS_SET_GUARDS || s->kind == RS_SET_ALLOW_UID) {
		flags |= NFT_SET_MAP;
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
	}
	if (s->kind == RS_SET_LOG_RATE) {
		/* Filled by the packet path (one limit per port and user), emptied by timeouts. */
		flags |= NFT_SET_EVAL | NFT_SET_TIMEOUT;
		nftnl_set_set_u64(ns, NFTNL_SET_TIMEOUT, rs_log_rate_timeout_s(rs) * 1000ULL);
		nftnl_set_set_u32(ns, NFTNL_SET_DESC_SIZE, LOGUARD_LOG_RATE_SIZE);
	}
	if (s->kind == RS_SET_GRANT)
		flags |= NFT_SET_TIMEOUT; /* per element: a grant's --for, expired by the kernel */
	nftnl_set_set_u32(ns, NFTNL_SET_FLAGS, flags);
	return ns;
}

/* Per-element counters: `show` reads per-guard hits without a rule per guard. Each is a
 * per-cpu allocation in the kernel: they triple the install time of a 20,000-element table,
 * hence the policy can opt out. */
static bool set_has_counter(const struct ruleset *rs, const struct rs_set *s)
{
	return rs->counters && s->kind != RS_SET_LOG_RATE && s->kind != RS_SET_OWNER &&
	       s->kind != RS_SET_OWNER_KNOWN && s->kind != RS_SET_GRANT;
}

/* nlm_flags: NLM_F_CREATE | NLM_F_EXCL for a new set; NLM_F_CREATE alone updates the size of
 * an installed set of the same definition. */
static void put_set(struct emit_batch *b, const struct ruleset *rs, const struct rs_set *s,
		    uint32_t id, uint16_t nlm_flags)
{
	struct nftnl_set *ns = set_new(rs, s, id);
	struct emit_msg *m;
	struct nlmsghdr *nlh;

	if (!ns) {
		b->err = -ENOMEM;
		return;
	}
	if (set_has_counter(rs, s)) {
		struct nftnl_expr *counter = nftnl_expr_alloc("counter");

		if (!counter) {
			nftnl_set_free(ns);
			b->err = -ENOMEM;
			return;
		}
		nftnl_set_add_expr(ns, counter);
	}
	nlh = batch_put(b, NFT_MSG_NEWSET, nlm_flags, EMIT_OBJ_SET, &m);
	if (nlh) {
		m->set = s;
		nftnl_set_nlmsg_build_payload(nlh, ns);
		b->stats.n_sets++;
		batch_next(b);
	}
	nftnl_set_free(ns);
}

static size_t elem_size_bound(const struct rs_elem *e)
{
	size_t n = 4 + 2 * (4 + 4 + EMIT_KEY_MAX) + 12; /* nest, key, key end, timeout */

	n += 4 + 4 + 8; /* a verdict, in maps */
	if (e->chain)
		n += 4 + strlen(e->chain) + 1 + 3;
	if (e->comment)
		n += 4 + 2 + strlen(e->comment) + 1 + 3;
	return n;
}

/*
 * Elements are written straight into the message, with the attributes
 * nftnl_set_elems_nlmsg_build_payload() would write: a libnftnl element object costs an
 * allocation and a 256-byte comment buffer each, and a 10,000-guard policy has 20,000
 * elements (the whole element emit took 6.5 ms of a cold apply; measured with perf).
 */
static void put_elem_key(struct nlmsghdr *nlh, uint16_t type, const void *key, size_t len)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	mnl_attr_put(nlh, NFTA_DATA_VALUE, len, key);
	mnl_attr_nest_end(nlh, nest);
}

/* The comment as libnftnl's user data TLV (type, length, NUL-terminated value). */
static int put_elem_comment(struct nlmsghdr *nlh, const char *comment)
{
	size_t n = strlen(comment) + 1;
	uint8_t ud[NFT_USERDATA_MAXLEN];

	if (n + 2 > sizeof(ud) || n > UINT8_MAX)
		return -ENAMETOOLONG;
	ud[0] = NFTNL_UDATA_SET_ELEM_COMMENT;
	ud[1] = n;
	memcpy(ud + 2, comment, n);
	mnl_attr_put(nlh, NFTA_SET_ELEM_USERDATA, n + 2, ud);
	return 0;
}

/* Element number i (from 1) of a NFTA_SET_ELEM_LIST_ELEMENTS nest; returns its nest. */
static struct nlattr *put_elem(struct nlmsghdr *nlh, const struct rs_set *s,
			       const struct rs_elem *e, uint16_t i, int *err)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, i), *data, *verdict;
	uint8_t key[EMIT_KEY_MAX];
	size_t len = emit_elem_key(s, e, false, key);

	put_elem_key(nlh, NFTA_SET_ELEM_KEY, key, len);
	if (s->interval) {
		emit_elem_key(s, e, true, key);
		put_elem_key(nlh, NFTA_SET_ELEM_KEY_END, key, len);
	}
	if (e->timeout_ms) /* a grant's --for: the kernel expires the element */
		mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64(e->timeout_ms));
	if (e->chain || s->kind == RS_SET_ALLOW_UID) {
		data = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
		verdict = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
		mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE,
				 htonl((uint32_t)(e->chain ? NFT_GOTO : NF_ACCEPT)));
		if (e->chain)
			mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, e->chain);
		mnl_attr_nest_end(nlh, verdict);
		mnl_attr_nest_end(nlh, data);
	}
	if (e->comment && !*err)
		*err = put_elem_comment(nlh, e->comment);
	mnl_attr_nest_end(nlh, nest);
	return nest;
}

static void put_elems_chunk(struct emit_batch *b, const struct rs_set *s,
			    const struct rs_elem *elems, size_t first, size_t n, bool del,
			    bool excl)
{
	struct emit_msg *m;
	struct nlmsghdr *nlh;
	struct nlattr *list;
	int err = 0;

	/* Live updates are idempotent: adding what is there or deleting what is not is no error
	 * (a delete of a missing element still is, so deletes go in their own batch). */
	if (del)
		nlh = batch_put(b, NFT_MSG_DELSETELEM, 0, EMIT_OBJ_ELEMS, &m);
	else
		nlh = batch_put(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | (excl ? NLM_F_EXCL : 0),
				EMIT_OBJ_ELEMS, &m);
	if (!nlh)
		return;
	m->set = s;
	m->elems = elems;
	m->first_elem = first;
	m->n_elems = n;
	/* Where each element's nest starts, so an extended ACK offset names it. */
	m->elem_offsets = calloc(n, sizeof(*m->elem_offsets));
	if (!m->elem_offsets) {
		b->err = -ENOMEM;
		return;
	}
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, s->name);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, LOGUARD_TABLE);
	list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (size_t i = 0; i < n; i++) {
		const struct nlattr *a = put_elem(nlh, s, &elems[first + i], i + 1, &err);

		m->elem_offsets[i] = (const char *)a - (const char *)nlh;
	}
	mnl_attr_nest_end(nlh, list);
	if (err && !b->err)
		b->err = err;
	b->stats.n_elem_msgs++;
	b->stats.n_elems += n;
	batch_next(b);
}

/* excl: the elements are new (an installed twin is an error), as in a whole table. */
static void put_elems(struct emit_batch *b, const struct rs_set *s, const struct rs_elem *elems,
		      size_t n_elems, bool del, bool excl)
{
	size_t first = 0, bytes = 0;

	for (size_t i = 0; i < n_elems && !b->err; i++) {
		size_t sz = elem_size_bound(&elems[i]);

		if (i > first && bytes + sz > ELEM_MSG_BUDGET) {
			put_elems_chunk(b, s, elems, first, i - first, del, excl);
			first = i;
			bytes = 0;
		}
		bytes += sz;
	}
	if (n_elems > first && !b->err)
		put_elems_chunk(b, s, elems, first, n_elems - first, del, excl);
}

/* Rule building: each helper appends one expression; failures latch b->err. */
struct rule_ctx {
	struct emit_batch *b;
	struct nftnl_rule *r;
};

static struct nftnl_expr *expr(struct rule_ctx *rc, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (!e) {
		rc->b->err = -ENOMEM;
		return NULL;
	}
	nftnl_rule_add_expr(rc->r, e);
	return e;
}

static void x_meta(struct rule_ctx *rc, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr(rc, "meta");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
}

static void x_cmp(struct rule_ctx *rc, uint32_t sreg, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(rc, "cmp");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void x_payload(struct rule_ctx *rc, uint32_t base, uint32_t offset, uint32_t len,
		      uint32_t dreg)
{
	struct nftnl_expr *e = expr(rc, "payload");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
}

/* reg = (reg & mask) ^ xor: nft's form of both `& mask` and `| bits` (mask ~bits, xor bits). */
static void x_bitwise_xor(struct rule_ctx *rc, uint32_t reg, uint32_t mask, uint32_t xor,
			  uint32_t len)
{
	struct nftnl_expr *e = expr(rc, "bitwise");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, len);
}

static void x_bitwise(struct rule_ctx *rc, uint32_t reg, uint32_t mask, uint32_t len)
{
	x_bitwise_xor(rc, reg, mask, 0, len);
}

static void x_hton(struct rule_ctx *rc, uint32_t reg, uint32_t len, uint32_t size)
{
	struct nftnl_expr *e = expr(rc, "byteorder");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, size);
}

static void x_lookup(struct rule_ctx *rc, const char *set, bool vmap)
{
	struct nftnl_expr *e = expr(rc, "lookup");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	if (vmap)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
}

static void x_verdict(struct rule_ctx *rc, int verdict, const char *chain)
{
	struct nftnl_expr *e = expr(rc, "immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
}

static void x_reject(struct rule_ctx *rc, uint32_t type, uint8_t code)
{
	struct nftnl_expr *e = expr(rc, "reject");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
	nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
}

/* meta l4proto . th dport into NFT_REG_1 (words 0 and 1), as nft lays out
 * concatenations; for interval sets nft adds a (one-byte, no-op) hton on the
 * protocol, which we mirror so `nft list` reads our rules back identically. */
static void x_proto_dport(struct rule_ctx *rc, bool interval)
{
	x_meta(rc, NFT_META_L4PROTO, NFT_REG_1);
	if (interval)
		x_hton(rc, NFT_REG_1, 1, 2);
	x_payload(rc, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01);
}

/* ip[6] daddr . meta l4proto . th dport [. meta skuid] into consecutive registers from
 * NFT_REG_1, behind the `meta nfproto` check that `ip daddr` implies in an inet table. */
static void x_daddr_proto_dport(struct rule_ctx *rc, unsigned family, bool uid)
{
	uint8_t nfproto = family == 4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
	uint32_t words = family == 4 ? 1 : 4;

	x_meta(rc, NFT_META_NFPROTO, NFT_REG_1);
	x_cmp(rc, NFT_REG_1, NFT_CMP_EQ, &nfproto, 1);
	x_payload(rc, NFT_PAYLOAD_NETWORK_HEADER, family == 4 ? 16 : 24, words * 4, NFT_REG32_00);
	x_meta(rc, NFT_META_L4PROTO, NFT_REG32_00 + words);
	x_payload(rc, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_00 + words + 1);
	if (uid)
		x_meta(rc, NFT_META_SKUID, NFT_REG32_00 + words + 2);
}

/* meta l4proto . th dport . meta skuid into NFT_REG_1: a log meter's key. */
static void x_proto_dport_uid(struct rule_ctx *rc)
{
	x_proto_dport(rc, false);
	x_meta(rc, NFT_META_SKUID, NFT_REG32_02);
}

/* limit rate R/unit burst B packets: over the rate, the rule does not match. */
static struct nftnl_expr *limit_new(const struct ruleset *rs)
{
	struct nftnl_expr *lim = nftnl_expr_alloc("limit");

	if (!lim)
		return NULL;
	nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_RATE, rs->log_rate);
	nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_UNIT, rs_rate_unit_seconds(rs->log_rate_unit));
	nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_BURST, rs->log_burst);
	nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
	return lim;
}

/* counter name C: a named counter object of the table. */
static void x_counter_ref(struct rule_ctx *rc, const char *name)
{
	struct nftnl_expr *e = expr(rc, "objref");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
}

/* What the log rate limit suppressed, for the daemon's stats. */
static void x_rate_counter(struct rule_ctx *rc, const struct ruleset *rs)
{
	x_counter_ref(rc, rs->rate_counter);
}

/* counter name "log_sent" log ...: the count of records handed to NFLOG, which the daemon
 * compares with what it received. */
static void x_log(struct rule_ctx *rc, const struct ruleset *rs, const char *prefix)
{
	struct nftnl_expr *e;

	x_counter_ref(rc, rs->sent_counter);
	e = expr(rc, "log");
	if (!e)
		return;
	nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, prefix);
	nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, rs->log_group);
}

/* meta mark & mask == value */
static void x_mark_is(struct rule_ctx *rc, uint32_t mask, uint32_t value)
{
	x_meta(rc, NFT_META_MARK, NFT_REG_1);
	x_bitwise(rc, NFT_REG_1, mask, 4);
	x_cmp(rc, NFT_REG_1, NFT_CMP_EQ, &value, 4);
}

/* meta mark & LOGUARD_MARK_ASKED == 0: the daemon has not answered for this packet yet. */
static void x_not_asked(struct rule_ctx *rc)
{
	x_mark_is(rc, LOGUARD_MARK_ASKED, 0);
}

/* meta mark set (meta mark & mask) ^ xor */
static void x_mark_set(struct rule_ctx *rc, uint32_t mask, uint32_t xor)
{
	struct nftnl_expr *e;

	x_meta(rc, NFT_META_MARK, NFT_REG_1);
	x_bitwise_xor(rc, NFT_REG_1, mask, xor, 4);
	e = expr(rc, "meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	}
}

/* nft's own `queue` expression (nft_queue, CONFIG_NFT_QUEUE: Debian's, Fedora's, Ubuntu's
 * kernels), which `nft list` prints as `queue flags bypass to N`, like the printer. Where the
 * kernel lacks it (apply.c finds out from the kernel's refusal), the xtables NFQUEUE target
 * through nft_compat, revision 3 (queue number, count, flags), which iptables-nft kernels
 * have; nft prints that one only as an xt target. */
static void x_queue(struct rule_ctx *rc, uint16_t num, bool bypass)
{
	struct xt_NFQ_info_v3 *info;
	struct nftnl_expr *e;

	if (!rc->b->queue_xt) {
		e = expr(rc, "queue");
		if (!e)
			return;
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, num);
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, 1);
		if (bypass)
			nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, NFT_QUEUE_FLAG_BYPASS);
		return;
	}
	info = calloc(1, sizeof(*info));
	e = info ? expr(rc, "target") : NULL;
	if (!e) {
		free(info);
		rc->b->err = -ENOMEM;
		return;
	}
	info->queuenum = num;
	info->queues_total = 1;
	info->flags = bypass ? NFQ_FLAG_BYPASS : 0;
	nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, sizeof(*info)); /* takes ownership */
}

/* The end of a log rate rule: log and return, or (HOLD_*) count it as sent and queue it for the
 * daemon, which writes the record (see LOGUARD_HELD_CHAIN). */
static void x_log_or_hold(struct rule_ctx *rc, const struct ruleset *rs, const struct rs_rule *r)
{
	if (r->kind == RS_RULE_HOLD_METERED || r->kind == RS_RULE_HOLD_METER_FULL) {
		x_counter_ref(rc, rs->sent_counter);
		x_queue(rc, r->queue, r->bypass);
		return;
	}
	x_log(rc, rs, r->prefix);
	x_verdict(rc, NFT_RETURN, NULL);
}

/* fib daddr type, into reg 1: the destination's address type (RTN_*). */
static void x_fib_daddr_type(struct rule_ctx *rc)
{
	struct nftnl_expr *e = expr(rc, "fib");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
}

/* socket cgroupv2 level N, into reg 2 (after l4proto . dport): the socket's cgroup id there. */
static void x_socket_cgroup(struct rule_ctx *rc, uint32_t level)
{
	struct nftnl_expr *e = expr(rc, "socket");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_CGROUPV2);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG32_02);
	nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_LEVEL, level);
}

/* update @meter { l4proto . dport . skuid limit rate R }: the element of this port and user
 * carries its own token bucket; under the rate, log (or hold). */
static void x_log_metered(struct rule_ctx *rc, const struct ruleset *rs, const struct rs_rule *r)
{
	struct nftnl_expr *dyn, *lim;

	x_proto_dport_uid(rc);
	dyn = expr(rc, "dynset");
	lim = limit_new(rs);
	if (!dyn || !lim) {
		nftnl_expr_free(lim);
		rc->b->err = -ENOMEM;
		return;
	}
	nftnl_expr_set_u32(dyn, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
	nftnl_expr_set_u32(dyn, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	nftnl_expr_set_str(dyn, NFTNL_EXPR_DYNSET_SET_NAME, r->set);
	nftnl_expr_add_expr(dyn, NFTNL_EXPR_DYNSET_EXPR, lim);
	x_log_or_hold(rc, rs, r);
}

/* key != @meter (the meter had no room for this port and user), or no socket to key on at
 * all: one limit shared by all of them, then log (or hold). */
static void x_log_unmetered(struct rule_ctx *rc, const struct ruleset *rs, const struct rs_rule *r)
{
	struct nftnl_expr *e, *lim;

	if (r->kind != RS_RULE_LOG_NO_SOCKET) {
		x_proto_dport_uid(rc);
		e = expr(rc, "lookup");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
			nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, r->set);
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
		}
	}
	lim = limit_new(rs);
	if (!lim) {
		rc->b->err = -ENOMEM;
		return;
	}
	nftnl_rule_add_expr(rc->r, lim);
	x_log_or_hold(rc, rs, r);
}

static void build_rule_exprs(struct rule_ctx *rc, const struct ruleset *rs, const struct rs_rule *r)
{
	static const uint8_t tcp = IPPROTO_TCP;

	if (r->match_mark)
		x_mark_is(rc, r->mark_mask, r->mark_value);

	switch (r->kind) {
	case RS_RULE_ACCEPT_NOT_LO:
	case RS_RULE_ACCEPT_NOT_LO_NOT_UDP:
	case RS_RULE_NOT_LO_JUMP: {
		uint32_t lo = 1; /* LOOPBACK_IFINDEX: lo is ifindex 1 in every netns */
		uint8_t udp = IPPROTO_UDP;

		x_meta(rc, NFT_META_OIF, NFT_REG_1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_NEQ, &lo, sizeof(lo));
		if (r->kind == RS_RULE_ACCEPT_NOT_LO_NOT_UDP) {
			x_meta(rc, NFT_META_L4PROTO, NFT_REG_1);
			x_cmp(rc, NFT_REG_1, NFT_CMP_NEQ, &udp, 1);
		}
		if (r->kind == RS_RULE_NOT_LO_JUMP)
			x_verdict(rc, NFT_JUMP, r->target);
		else
			x_verdict(rc, NF_ACCEPT, NULL);
		break;
	}
	case RS_RULE_ACCEPT_IP6_NOT_MCAST: {
		uint8_t v6 = NFPROTO_IPV6, mcast = 0xff;

		/* First byte of the destination: ff00::/8 is all of IPv6 multicast. */
		x_meta(rc, NFT_META_NFPROTO, NFT_REG_1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_EQ, &v6, 1);
		x_payload(rc, NFT_PAYLOAD_NETWORK_HEADER, 24, 1, NFT_REG_1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_NEQ, &mcast, 1);
		x_verdict(rc, NF_ACCEPT, NULL);
		break;
	}
	case RS_RULE_ACCEPT_IP_UNICAST: {
		uint8_t v4 = NFPROTO_IPV4;
		uint32_t unicast = RTN_UNICAST;

		/* IPv4 fib type is a lookup in the local table only: local, broadcast (the
		 * subnets' and 255.255.255.255), multicast, or unicast for the rest. */
		x_meta(rc, NFT_META_NFPROTO, NFT_REG_1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_EQ, &v4, 1);
		x_fib_daddr_type(rc);
		x_cmp(rc, NFT_REG_1, NFT_CMP_EQ, &unicast, sizeof(unicast));
		x_verdict(rc, NF_ACCEPT, NULL);
		break;
	}
	case RS_RULE_ACCEPT_TCP_NOT_SYN: {
		uint8_t syn = 0x02;

		/* SYN without ACK: a new connection. The handshake's SYN-ACK and every
		 * later segment (including a closed socket's last ACK/RST, which has no
		 * owner) pass unjudged. */
		x_meta(rc, NFT_META_L4PROTO, NFT_REG_1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_EQ, &tcp, 1);
		x_payload(rc, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
		x_bitwise(rc, NFT_REG_1, 0x12, 1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_NEQ, &syn, 1);
		x_verdict(rc, NF_ACCEPT, NULL);
		break;
	}
	case RS_RULE_DISPATCH:
		x_proto_dport(rc, r->interval);
		x_lookup(rc, r->set, true);
		break;
	case RS_RULE_ALLOW_UID_MAP:
		x_proto_dport(rc, r->interval);
		x_meta(rc, NFT_META_SKUID, NFT_REG32_02);
		if (r->interval)
			x_hton(rc, NFT_REG32_02, 4, 4);
		x_lookup(rc, r->set, true);
		break;
	case RS_RULE_ALLOW_CGROUP:
		x_proto_dport(rc, r->interval);
		x_socket_cgroup(rc, r->level);
		if (r->interval)
			x_hton(rc, NFT_REG32_02, 8, 8);
		x_lookup(rc, r->set, false);
		if (r->goto_chain)
			x_verdict(rc, NFT_GOTO, r->goto_chain);
		else
			x_verdict(rc, NF_ACCEPT, NULL);
		break;
	case RS_RULE_LOG:
		x_log(rc, rs, r->prefix);
		break;
	case RS_RULE_LOG_METERED:
	case RS_RULE_HOLD_METERED:
		x_log_metered(rc, rs, r);
		break;
	case RS_RULE_LOG_METER_FULL:
	case RS_RULE_HOLD_METER_FULL:
	case RS_RULE_LOG_NO_SOCKET:
		x_log_unmetered(rc, rs, r);
		break;
	case RS_RULE_LOG_OVER_SOCKET: {
		/* Never a socket's uid (unmapped ids read as the overflow uid): the rule matches
		 * whenever the packet has a socket. */
		uint32_t nobody = UINT32_MAX;

		x_meta(rc, NFT_META_SKUID, NFT_REG_1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_NEQ, &nobody, sizeof(nobody));
		x_rate_counter(rc, rs);
		x_verdict(rc, NFT_RETURN, NULL);
		break;
	}
	case RS_RULE_LOG_OVER:
		x_rate_counter(rc, rs);
		break;
	case RS_RULE_JUMP:
		x_verdict(rc, NFT_JUMP, r->target);
		break;
	case RS_RULE_REJECT_TCP:
		x_meta(rc, NFT_META_L4PROTO, NFT_REG_1);
		x_cmp(rc, NFT_REG_1, NFT_CMP_EQ, &tcp, 1);
		x_reject(rc, NFT_REJECT_TCP_RST, 0);
		break;
	case RS_RULE_REJECT:
		x_reject(rc, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH);
		break;
	case RS_RULE_DROP:
		x_verdict(rc, NF_DROP, NULL);
		break;
	case RS_RULE_ACCEPT:
		x_verdict(rc, NF_ACCEPT, NULL);
		break;
	case RS_RULE_ALLOW_OWNER:
		x_daddr_proto_dport(rc, r->family, true);
		x_lookup(rc, r->set, false);
		if (r->goto_chain)
			x_verdict(rc, NFT_GOTO, r->goto_chain);
		else
			x_verdict(rc, NF_ACCEPT, NULL);
		break;
	case RS_RULE_QUEUE_OWNER_UNKNOWN: {
		struct nftnl_expr *e;

		x_not_asked(rc);
		x_daddr_proto_dport(rc, r->family, false);
		e = expr(rc, "lookup");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
			nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, r->set);
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
		}
		x_queue(rc, rs->queue_num, r->bypass);
		break;
	}
	case RS_RULE_QUEUE:
		x_not_asked(rc);
		x_queue(rc, rs->queue_num, r->bypass);
		break;
	case RS_RULE_COUNT_ASKED:
		x_mark_is(rc, LOGUARD_MARK_ASKED, LOGUARD_MARK_ASKED);
		/* fall through */
	case RS_RULE_COUNT: /* a lookup that only counts: the element's counter */
		x_proto_dport(rc, r->interval);
		x_lookup(rc, r->set, false);
		break;
	case RS_RULE_CLEAR_MARK:
		x_mark_set(rc, ~LOGUARD_MARK_ASKED, 0);
		break;
	case RS_RULE_SET_MARK:
		x_mark_set(rc, ~r->mark_mask, r->mark_value);
		break;
	default:
		rc->b->err = -EINVAL;
	}
}

/* Rule r of chain c as libnftnl builds it; NULL when out of memory (b->err says so). */
static struct nftnl_rule *rule_new(struct emit_batch *b, const struct ruleset *rs,
				   const struct rs_chain *c, const struct rs_rule *r)
{
	struct rule_ctx rc = { .b = b, .r = nftnl_rule_alloc() };

	if (!rc.r) {
		b->err = -ENOMEM;
		return NULL;
	}
	nftnl_rule_set_u32(rc.r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(rc.r, NFTNL_RULE_TABLE, LOGUARD_TABLE);
	nftnl_rule_set_str(rc.r, NFTNL_RULE_CHAIN, c->name);
	build_rule_exprs(&rc, rs, r);
	if (r->comment) {
		struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);

		if (!ud || !nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, r->comment)) {
			b->err = -ENOMEM;
		} else {
			nftnl_rule_set_data(rc.r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
					    nftnl_udata_buf_len(ud));
		}
		nftnl_udata_buf_free(ud);
	}
	return rc.r;
}

static void put_rule(struct emit_batch *b, const struct ruleset *rs, const struct rs_chain *c,
		     const struct rs_rule *r)
{
	struct nftnl_rule *nr = rule_new(b, rs, c, r);
	struct emit_msg *m;
	struct nlmsghdr *nlh;

	if (!nr)
		return;
	nlh = batch_put(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, EMIT_OBJ_RULE, &m);
	if (nlh) {
		m->chain = c;
		m->rule = r;
		nftnl_rule_nlmsg_build_payload(nlh, nr);
		b->stats.n_rules++;
		batch_next(b);
	}
	nftnl_rule_free(nr);
}

/* BATCH_BEGIN with opts' first sequence number (and genid). */
static void batch_begin(struct emit_batch *b, const struct emit_opts *opts)
{
	b->seq_first = b->seq_next = opts->seq;
	put_control(b, NFNL_MSG_BATCH_BEGIN, opts);
}

/* BATCH_END unless a dry run; hand the batch over, or free it on the first error. */
static int batch_finish(struct emit_batch *b, const struct emit_opts *opts,
			struct emit_batch **ret_batch)
{
	int r;

	if (opts->commit)
		put_control(b, NFNL_MSG_BATCH_END, opts);
	r = b->err;
	if (r < 0) {
		emit_batch_free(b);
		return r;
	}
	*ret_batch = b;
	return 0;
}

int emit_batch_build(const struct ruleset *rs, const struct emit_opts *opts,
		     struct emit_batch **ret_batch)
{
	struct emit_batch *b = batch_new(BATCH_PAGE_SIZE, BATCH_OVERRUN);

	if (!b)
		return -ENOMEM;
	b->queue_xt = opts->queue_xt;
	batch_begin(b, opts);
	/* Whether the table exists was read together with the genid: if that changed, the
	 * kernel refuses the batch. (An update cannot change an owner flag, so no "ensure it
	 * exists" NEWTABLE before the delete.) */
	if (opts->table_exists)
		put_table(b, NFT_MSG_DELTABLE, 0, 0, "table (delete old)");
	if (rs) {
		put_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, opts->table_flags,
			  "table");
		if (rs->rate_counter)
			put_counter_obj(b, rs->rate_counter);
		put_counter_obj(b, rs->sent_counter);
		for (size_t i = 0; i < rs->n_chains && !b->err; i++)
			put_chain(b, &rs->chains[i]);
		for (size_t i = 0; i < rs->n_sets && !b->err; i++)
			put_set(b, rs, &rs->sets[i], (uint32_t)i + 1, NLM_F_CREATE | NLM_F_EXCL);
		for (size_t i = 0; i < rs->n_sets && !b->err; i++)
			put_elems(b, &rs->sets[i], rs->sets[i].elems, rs->sets[i].n_elems, false,
				  true);
		for (size_t i = 0; i < rs->n_chains && !b->err; i++)
			for (size_t j = 0; j < rs->chains[i].n_rules && !b->err; j++)
				put_rule(b, rs, &rs->chains[i], &rs->chains[i].rules[j]);
	}
	return batch_finish(b, opts, ret_batch);
}

/* ---- In-place update: what the new ruleset shares with the installed table stays live ---- */

/* A deletion of an installed object by name (DELRULE with a chain only: all its rules). */
static void put_del(struct emit_batch *b, uint16_t type, const char *name)
{
	struct emit_msg *m;
	struct nlmsghdr *nlh = batch_put(b, type, 0, EMIT_OBJ_CONTROL, &m);
	const char *kind = "";

	if (!nlh)
		return;
	switch (type) {
	case NFT_MSG_DELRULE: {
		struct nftnl_rule *r = nftnl_rule_alloc();

		if (!r)
			break;
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, LOGUARD_TABLE);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, name);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
		kind = "the rules of chain";
		break;
	}
	case NFT_MSG_DELCHAIN: {
		struct nftnl_chain *c = nftnl_chain_alloc();

		if (!c)
			break;
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, LOGUARD_TABLE);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nftnl_chain_free(c);
		kind = "chain";
		break;
	}
	case NFT_MSG_DELSET: {
		struct nftnl_set *ns = nftnl_set_alloc();

		if (!ns)
			break;
		nftnl_set_set_str(ns, NFTNL_SET_TABLE, LOGUARD_TABLE);
		nftnl_set_set_str(ns, NFTNL_SET_NAME, name);
		nftnl_set_nlmsg_build_payload(nlh, ns);
		nftnl_set_free(ns);
		kind = "set";
		break;
	}
	case NFT_MSG_DELOBJ: {
		struct nftnl_obj *o = nftnl_obj_alloc();

		if (!o)
			break;
		nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, LOGUARD_TABLE);
		nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
		nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
		nftnl_obj_nlmsg_build_payload(nlh, o);
		nftnl_obj_free(o);
		kind = "counter";
		break;
	}
	}
	if (!*kind || asprintf(&m->text, "delete %s %s", kind, name) < 0) {
		m->text = NULL;
		b->err = -ENOMEM;
		return;
	}
	m->what = m->text;
	batch_next(b);
}

/* Delete installed elements by key (and interval end), in messages under the size budget. */
static void put_del_elems(struct emit_batch *b, const char *set, const struct inst_elem **v,
			  size_t n)
{
	for (size_t first = 0; first < n && !b->err;) {
		struct nftnl_set *ns = nftnl_set_alloc();
		size_t i = first, bytes = 0;
		struct emit_msg *m;
		struct nlmsghdr *nlh;

		if (!ns) {
			b->err = -ENOMEM;
			return;
		}
		nftnl_set_set_str(ns, NFTNL_SET_TABLE, LOGUARD_TABLE);
		nftnl_set_set_str(ns, NFTNL_SET_NAME, set);
		nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, NFPROTO_INET);
		for (; i < n && (i == first || bytes < ELEM_MSG_BUDGET - 128); i++) {
			struct nftnl_set_elem *ne = nftnl_set_elem_alloc();

			if (!ne) {
				b->err = -ENOMEM;
				break;
			}
			nftnl_set_elem_set(ne, NFTNL_SET_ELEM_KEY, v[i]->key, v[i]->key_len);
			if (v[i]->end_len)
				nftnl_set_elem_set(ne, NFTNL_SET_ELEM_KEY_END, v[i]->key_end,
						   v[i]->end_len);
			nftnl_set_elem_add(ns, ne);
			bytes += 4 + 2 * (4 + 4 + EMIT_KEY_MAX);
		}
		nlh = b->err ? NULL : batch_put(b, NFT_MSG_DELSETELEM, 0, EMIT_OBJ_CONTROL, &m);
		if (nlh && asprintf(&m->text, "delete %zu elements of set %s", i - first, set) < 0)
			m->text = NULL;
		if (nlh && !m->text)
			b->err = -ENOMEM;
		if (nlh && m->text) {
			m->what = m->text;
			nftnl_set_elems_nlmsg_build_payload(nlh, ns);
			b->stats.n_elem_msgs++;
			b->stats.n_elems_deleted += i - first;
			batch_next(b);
		}
		nftnl_set_free(ns);
		first = i;
	}
}

static const struct inst_set *inst_find_set(const struct installed *inst, const char *name)
{
	for (size_t i = 0; i < inst->n_sets; i++)
		if (!strcmp(inst->sets[i].name, name))
			return &inst->sets[i];
	return NULL;
}

static const struct inst_chain *inst_find_chain(const struct installed *inst, const char *name)
{
	for (size_t i = 0; i < inst->n_chains; i++)
		if (!strcmp(inst->chains[i].name, name))
			return &inst->chains[i];
	return NULL;
}

static bool inst_has_obj(const struct installed *inst, const char *name)
{
	for (size_t i = 0; i < inst->n_objs; i++)
		if (!strcmp(inst->objs[i], name))
			return true;
	return false;
}

/* Whether the installed set can stay as s: everything but its size matches (a size is
 * updated in place). Anything else, the kernel refuses to change. */
static int set_compatible(const struct ruleset *rs, const struct rs_set *s,
			  const struct inst_set *x, bool *ret_compatible)
{
	struct nftnl_set *ns = set_new(rs, s, 0);
	uint32_t flags;

	if (!ns)
		return -ENOMEM;
	flags = nftnl_set_get_u32(ns, NFTNL_SET_FLAGS);
	*ret_compatible = x->key_type == nftnl_set_get_u32(ns, NFTNL_SET_KEY_TYPE) &&
			  x->key_len == nftnl_set_get_u32(ns, NFTNL_SET_KEY_LEN) &&
			  x->flags == flags &&
			  (!(flags & NFT_SET_MAP) ||
			   x->data_type == nftnl_set_get_u32(ns, NFTNL_SET_DATA_TYPE)) &&
			  (!(flags & NFT_SET_TIMEOUT) ||
			   x->timeout == nftnl_set_get_u64(ns, NFTNL_SET_TIMEOUT)) &&
			  x->n_exprs == (set_has_counter(rs, s) ? 1U : 0U);
	nftnl_set_free(ns);
	return 0;
}

/* Whether the declared size of s differs from the installed one (interval and dynamic sets
 * are declared without one, or with a fixed one). */
static bool set_resized(const struct rs_set *s, const struct inst_set *x)
{
	return !s->interval && s->kind != RS_SET_LOG_RATE && x->size != rs_set_size(s);
}

/* Every element of the installed set `name` out (DELSETELEM without a list: nft's `flush
 * set`). */
static void put_flush(struct emit_batch *b, const char *name)
{
	struct nftnl_set *ns = nftnl_set_alloc();
	struct emit_msg *m;
	struct nlmsghdr *nlh;

	if (!ns) {
		b->err = -ENOMEM;
		return;
	}
	nftnl_set_set_str(ns, NFTNL_SET_TABLE, LOGUARD_TABLE);
	nftnl_set_set_str(ns, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, NFPROTO_INET);
	nlh = batch_put(b, NFT_MSG_DELSETELEM, 0, EMIT_OBJ_CONTROL, &m);
	if (nlh) {
		m->what = "flush set";
		nftnl_set_elems_nlmsg_build_payload(nlh, ns);
		batch_next(b);
	}
	nftnl_set_free(ns);
}

/* What a daemon learned while it ran: receivers of owner-only ports and the grants on them. */
static bool set_elems_learned(const struct rs_set *s)
{
	return s->kind == RS_SET_OWNER || s->kind == RS_SET_OWNER_KNOWN || s->kind == RS_SET_GRANT;
}

/* Elements the daemon or the packet path manage: an update leaves them as they are. */
static bool set_elems_managed(const struct rs_set *s)
{
	return set_elems_learned(s) || s->kind == RS_SET_LOG_RATE;
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Per set of the new ruleset: the installed set it keeps (NULL: created anew) and the
 * elements it lacks. */
struct set_plan {
	const struct inst_set *inst;
	struct rs_elem *add; /* handed to the batch (elem_copies) once put */
	size_t n_add;
};

/* Whether a (of s) and b (of k, a set of the same definition) are the same element. */
static bool elem_same(const struct rs_set *s, const struct rs_elem *a, const struct rs_set *k,
		      const struct rs_elem *b)
{
	uint8_t ka[EMIT_KEY_MAX], kb[EMIT_KEY_MAX];
	size_t n;

	/* The key is made of these fields alone (s and k have one definition): when they are
	 * equal, so are the keys, and a reload's 40,000 comparisons skip the encoding. */
	if (a->proto == b->proto && a->port_first == b->port_first &&
	    a->port_last == b->port_last && a->id == b->id &&
	    !memcmp(&a->addr, &b->addr, sizeof(a->addr)))
		return str_same(a->chain, b->chain) && str_same(a->comment, b->comment);
	n = emit_elem_key(s, a, false, ka);
	if (n != emit_elem_key(k, b, false, kb) || memcmp(ka, kb, n))
		return false;
	if (s->interval &&
	    (emit_elem_key(s, a, true, ka) != emit_elem_key(k, b, true, kb) || memcmp(ka, kb, n)))
		return false;
	return str_same(a->chain, b->chain) && str_same(a->comment, b->comment);
}

/*
 * Of a set installed as k holds it, the part that may differ from s: s and k come from the
 * same compiler and mostly the same policy, so their elements are in the same order but for
 * what changed. The equal head and tail are kept as they are; *ret_first and *ret_n say
 * which of s's elements are left, and mid holds k's, sorted (the whole sets when nothing
 * matches). Comparing in place costs a 10,000-guard reload 40,000 key encodings instead of
 * copying, sorting and searching 20,000 elements.
 */
static int trim_known(const struct rs_set *s, const struct rs_set *k, struct inst_set *mid,
		      size_t *ret_first, size_t *ret_n)
{
	size_t head = 0, tail = 0;

	while (head < s->n_elems && head < k->n_elems &&
	       elem_same(s, &s->elems[head], k, &k->elems[head]))
		head++;
	while (tail < s->n_elems - head && tail < k->n_elems - head &&
	       elem_same(s, &s->elems[s->n_elems - 1 - tail], k, &k->elems[k->n_elems - 1 - tail]))
		tail++;
	*ret_first = head;
	*ret_n = s->n_elems - head - tail;
	return inst_set_elems_from(mid, k, head, k->n_elems - head - tail);
}

/* Match s's elements against the installed ones: missing ones go to plan->add, installed
 * ones s does not have (or has with another verdict or comment) to *del, which may point
 * into mid (freed by the caller after it). */
static int plan_elems(const struct rs_set *s, struct set_plan *plan, struct inst_set *mid,
		      const struct inst_elem ***del, size_t *n_del)
{
	const struct inst_set *x = plan->inst;
	size_t first = 0, n = s->n_elems;
	const struct inst_elem **nd;
	bool *kept;
	int r;

	if (x->known) {
		r = trim_known(s, x->known, mid, &first, &n);
		if (r < 0)
			return r;
		x = mid;
	}
	kept = calloc(x->n_elems + 1, sizeof(*kept));
	plan->add = calloc(n + 1, sizeof(*plan->add)); /* at most what trim_known() left */
	nd = reallocarray(*del, *n_del + x->n_elems + 1, sizeof(**del));
	if (nd)
		*del = nd;
	if (!kept || !plan->add || !nd) {
		free(kept);
		return -ENOMEM;
	}
	for (size_t i = first; i < first + n; i++) {
		const struct rs_elem *e = &s->elems[i];
		struct inst_elem k = { 0 };
		const struct inst_elem *hit;

		k.key_len = (uint8_t)emit_elem_key(s, e, false, k.key);
		if (s->interval)
			k.end_len = (uint8_t)emit_elem_key(s, e, true, k.key_end);
		hit = x->n_elems
			      ? bsearch(&k, x->elems, x->n_elems, sizeof(*x->elems), inst_elem_cmp)
			      : NULL;
		if (hit && !kept[hit - x->elems] && str_same(hit->chain, e->chain) &&
		    str_same(hit->comment, e->comment))
			kept[hit - x->elems] = true;
		else
			plan->add[plan->n_add++] = *e;
	}
	for (size_t i = 0; i < x->n_elems; i++)
		if (!kept[i])
			(*del)[(*n_del)++] = &x->elems[i];
	free(kept);
	return 0;
}

/* Which installed set each set of rs keeps (plans[i].inst; NULL: a new set). */
static int plan_compat(const struct ruleset *rs, const struct installed *inst,
		       struct set_plan *plans)
{
	for (size_t i = 0; i < rs->n_sets; i++) {
		const struct rs_set *s = &rs->sets[i];
		const struct inst_set *x = inst_find_set(inst, s->name);
		bool compatible = false;
		int r;

		if (x && (r = set_compatible(rs, s, x, &compatible)) < 0)
			return r;
		plans[i].inst = compatible ? x : NULL;
	}
	return 0;
}

/* Plan every set; deletions of whole sets and of elements are put right away, in the order
 * the kernel needs them (after the rules that referred to them are gone). plan_compat()
 * first. */
static int plan_sets(struct emit_batch *b, const struct ruleset *rs, const struct installed *inst,
		     struct set_plan *plans)
{
	/* Sets the new ruleset does not have, or defines differently. */
	for (size_t i = 0; i < inst->n_sets && !b->err; i++) {
		const struct inst_set *x = &inst->sets[i];
		bool kept = false;

		for (size_t j = 0; j < rs->n_sets; j++)
			kept |= plans[j].inst == x;
		if (!kept)
			put_del(b, NFT_MSG_DELSET, x->name);
	}
	for (size_t i = 0; i < rs->n_sets && !b->err; i++) {
		const struct inst_elem **del = NULL;
		struct inst_set mid = { 0 };
		size_t n_del = 0;
		int r;

		if (!plans[i].inst || set_elems_managed(&rs->sets[i]))
			continue;
		r = plan_elems(&rs->sets[i], &plans[i], &mid, &del, &n_del);
		if (r >= 0)
			put_del_elems(b, rs->sets[i].name, del, n_del);
		free(del);
		inst_set_elems_free(&mid);
		if (r < 0)
			return r;
	}
	return b->err;
}

static bool chain_kept(const struct rs_chain *c, const struct inst_chain *x)
{
	uint32_t hooknum;
	int32_t prio;

	if (!x || x->base != c->base)
		return false;
	if (!c->base)
		return true;
	chain_hook(c, &hooknum, &prio);
	return x->hooknum == hooknum && x->prio == prio;
}

/* Chains the new ruleset does not have, or hooks differently: deleted once nothing refers to
 * them (rules flushed, map elements and sets deleted before). */
static void del_chains(struct emit_batch *b, const struct ruleset *rs, const struct installed *inst)
{
	for (size_t i = 0; i < inst->n_chains && !b->err; i++) {
		bool kept = false;

		for (size_t j = 0; j < rs->n_chains; j++)
			kept |= !strcmp(rs->chains[j].name, inst->chains[i].name) &&
				chain_kept(&rs->chains[j], &inst->chains[i]);
		if (!kept)
			put_del(b, NFT_MSG_DELCHAIN, inst->chains[i].name);
	}
}

/* Two scratch messages for rule_same(); what the last encoding wrote is zeroed before the
 * next one, because libnftnl leaves the padding between attributes unwritten. */
struct rule_cmp {
	char *buf[2];
	size_t used[2];
};

static size_t rule_encode(struct emit_batch *b, struct rule_cmp *rc, int i,
			  const struct ruleset *rs, const struct rs_chain *c, const struct rs_rule *r)
{
	struct nftnl_rule *nr = rule_new(b, rs, c, r);
	struct nlmsghdr *nlh;

	if (!nr)
		return 0;
	memset(rc->buf[i], 0, rc->used[i]);
	nlh = nftnl_nlmsg_build_hdr(rc->buf[i], NFT_MSG_NEWRULE, NFPROTO_INET,
				    NLM_F_CREATE | NLM_F_APPEND, 0);
	nftnl_rule_nlmsg_build_payload(nlh, nr);
	nftnl_rule_free(nr);
	rc->used[i] = nlh->nlmsg_len;
	return b->err ? 0 : nlh->nlmsg_len;
}

/* Whether chain c holds the same rules in rs as in prev: the same NEWRULE messages, byte for
 * byte (table, chain, expressions with the names of the sets, chains and counters they
 * refer to, comment). */
static bool chain_rules_same(struct emit_batch *b, struct rule_cmp *rc, const struct ruleset *rs,
			     const struct rs_chain *c, const struct ruleset *prev)
{
	const struct rs_chain *p = NULL;

	for (size_t i = 0; i < prev->n_chains && !p; i++)
		if (!strcmp(prev->chains[i].name, c->name))
			p = &prev->chains[i];
	if (!p || p->n_rules != c->n_rules)
		return false;
	for (size_t j = 0; j < c->n_rules; j++) {
		size_t n = rule_encode(b, rc, 0, rs, c, &c->rules[j]);

		if (!n || rule_encode(b, rc, 1, prev, p, &p->rules[j]) != n ||
		    memcmp(rc->buf[0], rc->buf[1], n))
			return false;
	}
	return true;
}

/*
 * Chains whose rules stay installed as they are (keep[i] for rs->chains[i]). The kernel keeps
 * one rule blob per chain and generation: a chain no message of the batch touches serves
 * the same blob in both, and a packet picks its generation once, at the base chain, for
 * every chain it goes through. So a packet still sees exactly the old rules or exactly the
 * new ones. Needs what the installed chains hold (opts->rules_since: the ruleset our own
 * socket installed last, in a table it owns) and that every set and chain the rules name
 * stays the same object: with any set or chain deleted (replaced, or dropped), every rule
 * is sent again as before. Re-sending a rule that looks up a verdict map makes the kernel
 * walk all of the map's elements twice (binding, then loop validation at commit): 40,000
 * elements for 10,000 guards, for a reload that changes two.
 */
static int rules_kept(struct emit_batch *b, const struct ruleset *rs, const struct installed *inst,
		      const struct set_plan *plans, const struct ruleset *prev, bool *keep)
{
	struct rule_cmp rc = { { NULL, NULL }, { 0, 0 } };

	if (!prev)
		return 0;
	for (size_t i = 0; i < inst->n_sets; i++) {
		bool kept = false;

		for (size_t j = 0; j < rs->n_sets && !kept; j++)
			kept = plans[j].inst == &inst->sets[i];
		if (!kept)
			return 0;
	}
	for (size_t i = 0; i < inst->n_chains; i++) {
		bool kept = false;

		for (size_t j = 0; j < rs->n_chains && !kept; j++)
			kept = !strcmp(rs->chains[j].name, inst->chains[i].name) &&
			       chain_kept(&rs->chains[j], &inst->chains[i]);
		if (!kept)
			return 0;
	}
	/* As big as one message of a batch may be: a rule put there fits here too. */
	rc.buf[0] = calloc(1, BATCH_OVERRUN);
	rc.buf[1] = calloc(1, BATCH_OVERRUN);
	for (size_t i = 0; i < rs->n_chains && rc.buf[0] && rc.buf[1] && !b->err; i++)
		keep[i] = inst_find_chain(inst, rs->chains[i].name) &&
			  chain_rules_same(b, &rc, rs, &rs->chains[i], prev);
	if (!rc.buf[0] || !rc.buf[1])
		b->err = -ENOMEM;
	free(rc.buf[0]);
	free(rc.buf[1]);
	return b->err;
}

/* New sets whole, kept sets resized where needed and given the elements they lack. */
static void add_sets(struct emit_batch *b, const struct ruleset *rs, struct set_plan *plans)
{
	for (size_t i = 0; i < rs->n_sets && !b->err; i++) {
		const struct rs_set *s = &rs->sets[i];

		if (!plans[i].inst)
			put_set(b, rs, s, (uint32_t)i + 1, NLM_F_CREATE | NLM_F_EXCL);
		else if (set_resized(s, plans[i].inst))
			put_set(b, rs, s, (uint32_t)i + 1, NLM_F_CREATE);
	}
	for (size_t i = 0; i < rs->n_sets && !b->err; i++) {
		struct set_plan *p = &plans[i];
		struct rs_elem **nv;

		if (!p->inst) {
			put_elems(b, &rs->sets[i], rs->sets[i].elems, rs->sets[i].n_elems, false,
				  true);
			continue;
		}
		if (!p->n_add)
			continue;
		/* The messages point into the copy: the batch keeps it (error descriptions). */
		nv = reallocarray(b->elem_copies, b->n_elem_copies + 1, sizeof(*nv));
		if (!nv) {
			b->err = -ENOMEM;
			return;
		}
		b->elem_copies = nv;
		b->elem_copies[b->n_elem_copies++] = p->add;
		put_elems(b, &rs->sets[i], p->add, p->n_add, false, true);
		p->add = NULL;
	}
}

/* Whether the installed chain name keeps its rules (keep from rules_kept()). */
static bool chain_rules_kept(const struct ruleset *rs, const bool *keep, const char *name)
{
	for (size_t i = 0; i < rs->n_chains; i++)
		if (!strcmp(rs->chains[i].name, name))
			return keep[i];
	return false;
}

int emit_update_build(const struct ruleset *rs, const struct installed *inst,
		      const struct emit_opts *opts, struct emit_batch **ret_batch)
{
	const uint32_t owner_flags = NFT_TABLE_F_OWNER | EMIT_TABLE_F_PERSIST;
	struct emit_batch *b = batch_new(BATCH_PAGE_SIZE, BATCH_OVERRUN);
	struct set_plan *plans = calloc(rs->n_sets + 1, sizeof(*plans));
	bool *keep = calloc(rs->n_chains + 1, sizeof(*keep));
	int r;

	if (!b || !plans || !keep) {
		emit_batch_free(b);
		free(plans);
		free(keep);
		return -ENOMEM;
	}
	b->queue_xt = opts->queue_xt;
	batch_begin(b, opts);
	/* An orphaned persistent table is adopted by asking for the owner flag again. */
	if ((inst->flags & owner_flags) != (opts->table_flags & owner_flags) ||
	    ((inst->flags & NFT_TABLE_F_OWNER) && !inst->owner))
		put_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, opts->table_flags, "table (flags)");
	if (rs->rate_counter && !inst_has_obj(inst, rs->rate_counter))
		put_counter_obj(b, rs->rate_counter);
	if (!inst_has_obj(inst, rs->sent_counter))
		put_counter_obj(b, rs->sent_counter);
	/* The rules of a chain go and come again unless the chain stays exactly as it is
	 * (rules_kept): a packet runs one generation's rules from its base chain on, so old and
	 * new rules never mix; what both generations look up (elements of kept sets) is live in
	 * both. */
	r = plan_compat(rs, inst, plans);
	if (r >= 0)
		r = rules_kept(b, rs, inst, plans, opts->rules_since, keep);
	for (size_t i = 0; r >= 0 && i < inst->n_chains && !b->err; i++)
		if (!chain_rules_kept(rs, keep, inst->chains[i].name))
			put_del(b, NFT_MSG_DELRULE, inst->chains[i].name);
	if (r >= 0)
		r = plan_sets(b, rs, inst, plans);
	if (r >= 0) {
		del_chains(b, rs, inst);
		for (size_t i = 0; i < rs->n_chains && !b->err; i++)
			if (!chain_kept(&rs->chains[i], inst_find_chain(inst, rs->chains[i].name)))
				put_chain(b, &rs->chains[i]);
		add_sets(b, rs, plans);
		for (size_t i = 0; i < rs->n_sets && !b->err; i++)
			if (opts->forget_learned && plans[i].inst && set_elems_learned(&rs->sets[i]))
				put_flush(b, rs->sets[i].name);
		for (size_t i = 0; i < rs->n_chains && !b->err; i++)
			for (size_t j = 0; j < rs->chains[i].n_rules && !keep[i] && !b->err; j++)
				put_rule(b, rs, &rs->chains[i], &rs->chains[i].rules[j]);
		for (size_t i = 0; i < inst->n_objs && !b->err; i++)
			if ((!rs->rate_counter || strcmp(inst->objs[i], rs->rate_counter)) &&
			    strcmp(inst->objs[i], rs->sent_counter))
				put_del(b, NFT_MSG_DELOBJ, inst->objs[i]);
	}
	for (size_t i = 0; i < rs->n_sets; i++)
		free(plans[i].add);
	free(plans);
	free(keep);
	if (r < 0 && !b->err)
		b->err = r;
	return batch_finish(b, opts, ret_batch);
}

int emit_elems_build(const struct rs_set *s, const struct rs_elem *elems, size_t n, bool del,
		     const struct emit_opts *opts, struct emit_batch **ret_batch)
{
	/* Live updates are a few elements: small pages (one message still fits the overrun). */
	struct emit_batch *b = batch_new(ELEM_MSG_BUDGET, ELEM_BATCH_OVERRUN);

	if (!b)
		return -ENOMEM;
	batch_begin(b, opts);
	put_elems(b, s, elems, n, del, false);
	return batch_finish(b, opts, ret_batch);
}

int emit_batch_iovec(const struct emit_batch *b, struct iovec **ret_iov, size_t *ret_n,
		     size_t *ret_len)
{
	int n = nftnl_batch_iovec_len(b->nb);
	struct iovec *iov;
	size_t len = 0;

	iov = calloc(n, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	nftnl_batch_iovec(b->nb, iov, n);
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	*ret_iov = iov;
	*ret_n = n;
	*ret_len = len;
	return 0;
}

uint32_t emit_batch_seq_first(const struct emit_batch *b)
{
	return b->seq_first;
}

uint32_t emit_batch_seq_last(const struct emit_batch *b)
{
	return b->seq_next - 1;
}

static int describe_elem(const struct rs_set *s, const struct rs_elem *e, char **ret)
{
	char id[32] = "";
	int r;

	if (s->kind != RS_SET_GUARDS)
		snprintf(id, sizeof(id), " . %llu", (unsigned long long)e->id);
	if (e->port_first == e->port_last)
		r = asprintf(ret, "element %s . %u%s of set %s (guard '%s')",
			     e->proto == IPPROTO_TCP ? "tcp" : "udp", e->port_first, id, s->name,
			     e->comment ? e->comment : "?");
	else
		r = asprintf(ret, "element %s . %u-%u%s of set %s (guard '%s')",
			     e->proto == IPPROTO_TCP ? "tcp" : "udp", e->port_first, e->port_last,
			     id, s->name, e->comment ? e->comment : "?");
	return r < 0 ? -ENOMEM : 0;
}

int emit_batch_describe(const struct emit_batch *b, uint32_t seq, uint32_t offset, char **ret_text,
			const struct loc **ret_loc)
{
	const struct emit_msg *m;
	const struct loc *loc = NULL;
	char *text = NULL;
	int r = 0;

	if (seq < b->seq_first || seq >= b->seq_next)
		return -ENOENT;
	m = &b->msgs[seq - b->seq_first];
	switch (m->obj) {
	case EMIT_OBJ_CONTROL:
		text = strdup(m->what);
		break;
	case EMIT_OBJ_CHAIN:
		r = asprintf(&text, "chain %s", m->chain->name);
		break;
	case EMIT_OBJ_SET:
		r = asprintf(&text, "set %s", m->set->name);
		break;
	case EMIT_OBJ_RULE:
		r = asprintf(&text, "rule '%s' in chain %s",
			     m->rule->comment ? m->rule->comment : "", m->chain->name);
		break;
	case EMIT_OBJ_ELEMS: {
		size_t i = 0;

		/* The extended ACK points at the failing element's nest, or inside it. */
		while (offset && i + 1 < m->n_elems && m->elem_offsets[i + 1] <= offset)
			i++;
		if (!offset && m->n_elems > 1) {
			r = asprintf(&text, "elements %zu-%zu of set %s", m->first_elem + 1,
				     m->first_elem + m->n_elems, m->set->name);
			loc = m->elems[m->first_elem].loc;
			break;
		}
		r = describe_elem(m->set, &m->elems[m->first_elem + i], &text);
		loc = m->elems[m->first_elem + i].loc;
		break;
	}
	default:
		return -EINVAL;
	}
	if (r < 0 || !text)
		return -ENOMEM;
	*ret_text = text;
	*ret_loc = loc;
	return 0;
}

void emit_batch_stats(const struct emit_batch *b, struct emit_stats *ret)
{
	struct iovec *iov;
	size_t n, len;

	*ret = b->stats;
	if (emit_batch_iovec(b, &iov, &n, &len) == 0) {
		ret->bytes = len;
		free(iov);
	}
}

void emit_batch_free(struct emit_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_msgs; i++) {
		free(b->msgs[i].elem_offsets);
		free(b->msgs[i].text);
	}
	for (size_t i = 0; i < b->n_elem_copies; i++)
		free(b->elem_copies[i]);
	free(b->elem_copies);
	free(b->msgs);
	if (b->nb)
		nftnl_batch_free(b->nb);
	free(b);
}
