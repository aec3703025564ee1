// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Emitter round trip: build the batch for a compiled policy, parse every
 * message back with libnftnl and compare it with the IR it came from.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "compile.h"
#include "installed.h"
#include "nft_emit.h"
#include "policy.h"
#include "ruleset.h"

struct fixture {
	struct policy *p;
	struct ruleset *rs;
	struct emit_batch *b;
};

static int load(struct fixture *fx, const char *path, bool commit)
{
	struct diags d = { 0 };
	struct emit_opts opts = { .seq = 1000, .has_genid = true, .genid = 7, .commit = commit };

	assert_int_equal(policy_parse_file(path, &d, &fx->p), 0);
	assert_int_equal(policy_check(fx->p, &(struct policy_check_opts){ 0 }, &d), 0);
	assert_int_equal(compile_policy(fx->p, &d, &fx->rs), 0);
	assert_int_equal(emit_batch_build(fx->rs, &opts, &fx->b), 0);
	diags_free(&d);
	return 0;
}

static void unload(struct fixture *fx)
{
	emit_batch_free(fx->b);
	ruleset_free(fx->rs);
	policy_free(fx->p);
}

/* Calls fn for every netlink message of the batch, in order. */
static void for_each_msg(const struct emit_batch *b,
			 void (*fn)(const struct nlmsghdr *nlh, void *data), void *data)
{
	struct iovec *iov;
	size_t n, len;

	assert_int_equal(emit_batch_iovec(b, &iov, &n, &len), 0);
	for (size_t i = 0; i < n; i++) {
		int left = (int)iov[i].iov_len;
		const struct nlmsghdr *nlh = iov[i].iov_base;

		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
			fn(nlh, data);
		assert_int_equal(left, 0);
	}
	free(iov);
}

/* What the walk saw, compared with the IR afterwards. */
struct seen {
	const struct ruleset *rs;
	int n_begin, n_end, n_tables, n_objs;
	uint32_t genid;
	size_t chain_idx, set_idx, rule_chain, rule_idx;
	size_t elems_seen[16];
	size_t max_msg;
	uint32_t last_seq;
};

static const char *rule_comment(struct nftnl_rule *r, char *buf, size_t size)
{
	uint32_t len = 0;
	const uint8_t *ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);

	buf[0] = '\0';
	/* TLV: type, length, NUL-terminated comment. */
	if (ud && len > 2 && ud[0] == NFTNL_UDATA_RULE_COMMENT && ud[1] + 2 <= (int)len)
		snprintf(buf, size, "%s", (const char *)ud + 2);
	return buf;
}

static int expr_name_cb(struct nftnl_expr *e, void *data)
{
	char *names = data;

	strcat(names, nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
	strcat(names, " ");
	return 0;
}

static const char *expected_exprs(const struct rs_rule *r, bool counters_unused)
{
	(void)counters_unused;
	switch (r->kind) {
	case RS_RULE_ACCEPT_NOT_LO:
	case RS_RULE_NOT_LO_JUMP:
		return "meta cmp immediate ";
	case RS_RULE_ACCEPT_NOT_LO_NOT_UDP:
		return "meta cmp meta cmp immediate ";
	case RS_RULE_ACCEPT_IP6_NOT_MCAST:
		return "meta cmp payload cmp immediate ";
	case RS_RULE_ACCEPT_IP_UNICAST:
		return "meta cmp fib cmp immediate ";
	case RS_RULE_ACCEPT_TCP_NOT_SYN:
		return "meta cmp payload bitwise cmp immediate ";
	case RS_RULE_DISPATCH:
		return r->interval ? "meta byteorder payload lookup " : "meta payload lookup ";
	case RS_RULE_ALLOW_UID_MAP:
		return r->interval ? "meta byteorder payload meta byteorder lookup "
				   : "meta payload meta lookup ";
	case RS_RULE_ALLOW_CGROUP:
		return r->interval ? "meta byteorder payload socket byteorder lookup immediate "
				   : "meta payload socket lookup immediate ";
	case RS_RULE_REJECT_TCP:
		return "meta cmp reject ";
	case RS_RULE_REJECT:
		return "reject ";
	case RS_RULE_DROP:
	case RS_RULE_ACCEPT:
	case RS_RULE_JUMP:
		return "immediate ";
	case RS_RULE_LOG:
		return "objref log ";
	case RS_RULE_LOG_METERED:
		return "meta payload meta dynset objref log immediate ";
	case RS_RULE_LOG_METER_FULL:
		return "meta payload meta lookup limit objref log immediate ";
	case RS_RULE_LOG_OVER_SOCKET:
		return "meta cmp objref immediate ";
	case RS_RULE_LOG_NO_SOCKET:
		return "limit objref log immediate ";
	case RS_RULE_LOG_OVER:
		return "objref ";
	default:
		return NULL;
	}
}

static void check_rule(struct seen *s, const struct nlmsghdr *nlh)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	const struct rs_chain *c;
	const struct rs_rule *want;
	char names[256] = "", comment[128];
	const char *exp;

	while (s->rule_idx >= s->rs->chains[s->rule_chain].n_rules) {
		s->rule_chain++;
		s->rule_idx = 0;
	}
	c = &s->rs->chains[s->rule_chain];
	want = &c->rules[s->rule_idx++];
	assert_int_equal(nftnl_rule_nlmsg_parse(nlh, r), 0);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), c->name);
	assert_string_equal(rule_comment(r, comment, sizeof(comment)), want->comment);
	nftnl_expr_foreach(r, expr_name_cb, names);
	exp = expected_exprs(want, false);
	assert_non_null(exp);
	assert_string_equal(names, exp);
	nftnl_rule_free(r);
}

/* libnftnl numbers list entries 1..n when it builds them but its parser insists on
 * NFTA_LIST_ELEM (the kernel ignores the type): a normalized copy of an element message. */
static struct nlmsghdr *elems_copy(const struct nlmsghdr *nlh)
{
	struct nlmsghdr *copy = malloc(nlh->nlmsg_len);
	struct nlattr *list, *a;

	assert_non_null(copy);
	memcpy(copy, nlh, nlh->nlmsg_len);
	mnl_attr_for_each(list, copy, sizeof(struct nfgenmsg)) if (mnl_attr_get_type(list) ==
								   NFTA_SET_ELEM_LIST_ELEMENTS)
		mnl_attr_for_each_nested(a, list) a->nla_type = NFTA_LIST_ELEM | NLA_F_NESTED;
	return copy;
}

static void check_elems(struct seen *s, const struct nlmsghdr *nlh)
{
	struct nftnl_set *ns = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	const struct rs_set *set;
	size_t idx;

	struct nlmsghdr *copy = elems_copy(nlh);

	assert_int_equal(nftnl_set_elems_nlmsg_parse(copy, ns), 0);
	free(copy);
	set = ruleset_find_set(s->rs, nftnl_set_get_str(ns, NFTNL_SET_NAME));
	assert_non_null(set);
	idx = (size_t)(set - s->rs->sets);
	it = nftnl_set_elems_iter_create(ns);
	while ((e = nftnl_set_elems_iter_next(it))) {
		const struct rs_elem *want = &set->elems[s->elems_seen[idx]++];
		uint8_t key[EMIT_KEY_MAX];
		uint32_t len = 0;
		size_t klen = emit_elem_key(set, want, false, key);
		const uint8_t *got = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);

		assert_int_equal(len, klen);
		assert_memory_equal(got, key, klen);
		/* Independent decode of the fields the kernel matches on. */
		assert_int_equal(got[0], want->proto);
		assert_int_equal(got[4] << 8 | got[5], want->port_first);
		if (set->kind == RS_SET_ALLOW_UID && !set->interval)
			assert_int_equal(*(const uint32_t *)(got + 8), want->id);
		assert_int_equal(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY_END), set->interval);
		if (set->interval) {
			got = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &len);
			assert_int_equal(got[4] << 8 | got[5], want->port_last);
		}
		if (set->kind == RS_SET_GUARDS || (set->kind == RS_SET_ALLOW_UID && want->chain)) {
			assert_int_equal(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT),
					 (uint32_t)NFT_GOTO);
			assert_string_equal(nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN),
					    want->chain);
		} else if (set->kind == RS_SET_ALLOW_UID) {
			assert_int_equal(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT),
					 (uint32_t)NF_ACCEPT);
			assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN));
		}
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(ns);
}

static void check_set(struct seen *s, const struct nlmsghdr *nlh)
{
	struct nftnl_set *ns = nftnl_set_alloc();
	const struct rs_set *want = &s->rs->sets[s->set_idx++];
	uint32_t flags;

	assert_int_equal(nftnl_set_nlmsg_parse(nlh, ns), 0);
	assert_string_equal(nftnl_set_get_str(ns, NFTNL_SET_NAME), want->name);
	flags = nftnl_set_get_u32(ns, NFTNL_SET_FLAGS);
	assert_int_equal(!!(flags & NFT_SET_INTERVAL), want->interval);
	assert_int_equal(!!(flags & NFT_SET_MAP),
			 want->kind == RS_SET_GUARDS || want->kind == RS_SET_ALLOW_UID);
	assert_int_equal(!!(flags & NFT_SET_EVAL), want->kind == RS_SET_LOG_RATE);
	assert_int_equal(nftnl_set_get_u32(ns, NFTNL_SET_KEY_LEN),
			 want->kind == RS_SET_ALLOW_UID || want->kind == RS_SET_LOG_RATE ? 12
			 : want->kind == RS_SET_ALLOW_CGROUP				 ? 16
											 : 8);
	nftnl_set_free(ns);
}

static void walk_cb(const struct nlmsghdr *nlh, void *data)
{
	struct seen *s = data;
	uint16_t type = nlh->nlmsg_type;

	if (s->last_seq)
		assert_int_equal(nlh->nlmsg_seq, s->last_seq + 1);
	s->last_seq = nlh->nlmsg_seq;
	if (nlh->nlmsg_len > s->max_msg)
		s->max_msg = nlh->nlmsg_len;
	if (type == NFNL_MSG_BATCH_BEGIN) {
		const struct nlattr *a;

		s->n_begin++;
		mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) if (mnl_attr_get_type(a) ==
								       NFNL_BATCH_GENID) s->genid =
			ntohl(mnl_attr_get_u32(a));
		return;
	}
	if (type == NFNL_MSG_BATCH_END) {
		s->n_end++;
		return;
	}
	switch (type & 0xff) {
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_DELTABLE: {
		struct nftnl_table *t = nftnl_table_alloc();

		assert_int_equal(nftnl_table_nlmsg_parse(nlh, t), 0);
		assert_string_equal(nftnl_table_get_str(t, NFTNL_TABLE_NAME), LOGUARD_TABLE);
		nftnl_table_free(t);
		s->n_tables++;
		break;
	}
	case NFT_MSG_NEWCHAIN: {
		struct nftnl_chain *c = nftnl_chain_alloc();
		const struct rs_chain *want = &s->rs->chains[s->chain_idx++];

		assert_int_equal(nftnl_chain_nlmsg_parse(nlh, c), 0);
		assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), want->name);
		assert_int_equal(nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM), want->base);
		if (want->base) {
			assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM),
					 NF_INET_LOCAL_OUT);
			assert_int_equal((int32_t)nftnl_chain_get_u32(c, NFTNL_CHAIN_PRIO),
					 want->priority);
		}
		nftnl_chain_free(c);
		break;
	}
	case NFT_MSG_NEWOBJ: {
		struct nftnl_obj *o = nftnl_obj_alloc();

		/* The rate limit's counter (if the policy limits), then the sent records'. */
		assert_int_equal(nftnl_obj_nlmsg_parse(nlh, o), 0);
		assert_string_equal(nftnl_obj_get_str(o, NFTNL_OBJ_NAME),
				    s->n_objs == 0 && s->rs->rate_counter ? s->rs->rate_counter
									  : s->rs->sent_counter);
		assert_int_equal(nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE), NFT_OBJECT_COUNTER);
		nftnl_obj_free(o);
		s->n_objs++;
		break;
	}
	case NFT_MSG_NEWSET:
		check_set(s, nlh);
		break;
	case NFT_MSG_NEWSETELEM:
		check_elems(s, nlh);
		break;
	case NFT_MSG_NEWRULE:
		check_rule(s, nlh);
		break;
	default:
		fail_msg("unexpected message type %u", type);
	}
}

static void round_trip(const char *path)
{
	struct fixture fx = { 0 };
	struct seen s = { 0 };
	size_t n_rules = 0;

	load(&fx, path, true);
	s.rs = fx.rs;
	for_each_msg(fx.b, walk_cb, &s);
	assert_int_equal(s.n_begin, 1);
	assert_int_equal(s.n_end, 1);
	assert_int_equal(s.genid, 7);
	assert_int_equal(s.n_tables, 1); /* nothing installed: create only */
	assert_int_equal(s.n_objs, fx.rs->rate_counter ? 2 : 1);
	assert_int_equal(s.chain_idx, fx.rs->n_chains);
	assert_int_equal(s.set_idx, fx.rs->n_sets);
	for (size_t i = 0; i < fx.rs->n_sets; i++)
		assert_int_equal(s.elems_seen[i], fx.rs->sets[i].n_elems);
	for (size_t i = 0; i < fx.rs->n_chains; i++)
		n_rules += fx.rs->chains[i].n_rules;
	assert_int_equal(s.rule_chain, fx.rs->n_chains - 1);
	assert_int_equal(s.rule_idx, fx.rs->chains[fx.rs->n_chains - 1].n_rules);
	assert_true(n_rules > 0);
	unload(&fx);
}

static void test_round_trip_basic(void **state)
{
	(void)state;
	round_trip("golden/basic.yaml");
}

static void test_round_trip_ranges(void **state)
{
	(void)state;
	round_trip("golden/ranges.yaml");
	round_trip("golden/audit.yaml");
	round_trip("golden/no_counters.yaml");
}

/* Replacing an installed table: delete then create in the same batch, with the owner flags. */
/* Queue statements as built: nft's own expression (number, one queue, bypass as the rule
 * says), or with queue_xt the xtables NFQUEUE target and no queue expression. */
struct queue_seen {
	bool xt;
	uint16_t num;
	size_t n_queue, n_target, n_bypass;
};

static int queue_expr_cb(struct nftnl_expr *e, void *data)
{
	struct queue_seen *q = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (!strcmp(name, "queue")) {
		q->n_queue++;
		assert_int_equal(nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_NUM), q->num);
		assert_int_equal(nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_TOTAL), 1);
		if (nftnl_expr_is_set(e, NFTNL_EXPR_QUEUE_FLAGS) &&
		    (nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_FLAGS) & NFT_QUEUE_FLAG_BYPASS))
			q->n_bypass++;
	} else if (!strcmp(name, "target")) {
		q->n_target++;
		assert_string_equal(nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME), "NFQUEUE");
	}
	return 0;
}

static void queue_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r;

	if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWRULE)
		return;
	r = nftnl_rule_alloc();
	assert_int_equal(nftnl_rule_nlmsg_parse(nlh, r), 0);
	nftnl_expr_foreach(r, queue_expr_cb, data);
	nftnl_rule_free(r);
}

static void test_queue_expression(void **state)
{
	struct fixture fx = { 0 };
	size_t n_rules = 0, n_bypass = 0;

	(void)state;
	load(&fx, "golden/process.yaml", true);
	for (size_t i = 0; i < fx.rs->n_chains; i++)
		for (size_t j = 0; j < fx.rs->chains[i].n_rules; j++) {
			const struct rs_rule *r = &fx.rs->chains[i].rules[j];

			if (r->kind == RS_RULE_QUEUE || r->kind == RS_RULE_QUEUE_OWNER_UNKNOWN) {
				n_rules++;
				n_bypass += r->bypass;
			}
		}
	assert_true(n_rules > 0);
	for (int xt = 0; xt < 2; xt++) {
		struct emit_opts opts = { .seq = 1000, .commit = true, .queue_xt = xt };
		struct queue_seen q = { .xt = xt, .num = fx.rs->queue_num };
		struct emit_batch *b;

		assert_int_equal(emit_batch_build(fx.rs, &opts, &b), 0);
		for_each_msg(b, queue_rule_cb, &q);
		assert_int_equal(q.n_queue, xt ? 0 : n_rules);
		assert_int_equal(q.n_target, xt ? n_rules : 0);
		if (!xt)
			assert_int_equal(q.n_bypass, n_bypass);
		emit_batch_free(b);
	}
	unload(&fx);
}

static void test_replace_owned(void **state)
{
	struct emit_opts opts = { .seq = 1,
				  .commit = true,
				  .table_exists = true,
				  .table_flags = NFT_TABLE_F_OWNER | EMIT_TABLE_F_PERSIST };
	struct fixture fx = { 0 };
	struct iovec *iov;
	const struct nlmsghdr *nlh;
	size_t n, len;
	int left, i = 0;

	(void)state;
	load(&fx, "golden/basic.yaml", true);
	emit_batch_free(fx.b);
	assert_int_equal(emit_batch_build(fx.rs, &opts, &fx.b), 0);
	assert_int_equal(emit_batch_iovec(fx.b, &iov, &n, &len), 0);
	left = (int)iov[0].iov_len;
	for (nlh = iov[0].iov_base; mnl_nlmsg_ok(nlh, left) && i < 3;
	     nlh = mnl_nlmsg_next(nlh, &left), i++) {
		struct nftnl_table *t = nftnl_table_alloc();

		if (i == 0) { /* BATCH_BEGIN */
			nftnl_table_free(t);
			continue;
		}
		assert_int_equal(nlh->nlmsg_type & 0xff,
				 i == 1 ? NFT_MSG_DELTABLE : NFT_MSG_NEWTABLE);
		assert_int_equal(nftnl_table_nlmsg_parse(nlh, t), 0);
		if (i == 2)
			assert_int_equal(nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS),
					 NFT_TABLE_F_OWNER | EMIT_TABLE_F_PERSIST);
		nftnl_table_free(t);
	}
	assert_int_equal(i, 3);
	free(iov);
	unload(&fx);
}

static void test_dry_run_has_no_end(void **state)
{
	struct fixture fx = { 0 };
	struct seen s = { 0 };

	(void)state;
	load(&fx, "golden/basic.yaml", false);
	s.rs = fx.rs;
	for_each_msg(fx.b, walk_cb, &s);
	assert_int_equal(s.n_begin, 1);
	assert_int_equal(s.n_end, 0);
	unload(&fx);
}

/* A big policy: element messages are split under 64 KiB and all arrive. */
static void test_big_policy_split(void **state)
{
	const size_t n = 20000;
	struct policy_guard *g = calloc(n, sizeof(*g));
	struct policy_ports *ports = calloc(n, sizeof(*ports));
	uid_t *uids = calloc(n, sizeof(*uids));
	struct policy p = { .version = 1, .guards = g, .n_guards = n, .counters = true };
	struct emit_opts opts = { .seq = 1, .commit = true };
	struct diags d = { 0 };
	struct ruleset *rs = NULL;
	struct emit_batch *b = NULL;
	struct emit_stats st;
	struct seen s = { 0 };

	(void)state;
	for (size_t i = 0; i < n; i++) {
		ports[i].first = ports[i].last = (uint16_t)(20000 + i);
		uids[i] = (uid_t)(100000 + i);
		g[i] = (struct policy_guard){ .name = "a-guard-with-a-long-name-0123456789",
					      .protocols = POLICY_PROTO_TCP | POLICY_PROTO_UDP,
					      .ports = &ports[i],
					      .n_ports = 1,
					      .uids = &uids[i],
					      .n_uids = 1 };
	}
	assert_int_equal(compile_policy(&p, &d, &rs), 0);
	assert_int_equal(emit_batch_build(rs, &opts, &b), 0);
	emit_batch_stats(b, &st);
	assert_int_equal(st.n_elems, 4 * n);
	s.rs = rs;
	for_each_msg(b, walk_cb, &s);
	assert_true(s.max_msg < 65536);
	assert_int_equal(s.elems_seen[0], 2 * n);
	emit_batch_free(b);
	ruleset_free(rs);
	diags_free(&d);
	free(g);
	free(ports);
	free(uids);
}

/* Kernel errors name the policy node: find the third element's nest in a
 * NEWSETELEM message and ask what an extended ACK pointing there means. */
struct find_elem {
	uint32_t seq, offset;
};

static void find_elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct find_elem *fe = data;
	const struct nlattr *list, *a;
	int i = 0;

	if (fe->seq || (nlh->nlmsg_type & 0xff) != NFT_MSG_NEWSETELEM ||
	    nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES)
		return;
	mnl_attr_for_each(list, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(list) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(a, list)
		{
			if (++i == 3) {
				fe->seq = nlh->nlmsg_seq;
				/* Point inside the element (its key), as the kernel may. */
				fe->offset = (uint32_t)((const char *)a - (const char *)nlh) + 8;
			}
		}
	}
}

static void test_describe_error(void **state)
{
	struct fixture fx = { 0 };
	struct find_elem fe = { 0 };
	const struct loc *loc = NULL;
	char *text = NULL;

	(void)state;
	load(&fx, "golden/basic.yaml", true);
	for_each_msg(fx.b, find_elem_cb, &fe);
	assert_true(fe.seq > 0);
	assert_int_equal(emit_batch_describe(fx.b, fe.seq, fe.offset, &text, &loc), 0);
	/* basic.yaml's guards map: jupyter 8888, devtools 9222, devtools 9229. */
	assert_string_equal(text, "element tcp . 9229 of set guards (guard 'devtools')");
	assert_non_null(loc);
	assert_int_equal(loc->line, 10);
	free(text);
	assert_int_equal(emit_batch_describe(fx.b, emit_batch_seq_first(fx.b), 0, &text, &loc), 0);
	assert_string_equal(text, "batch begin");
	free(text);
	assert_int_equal(emit_batch_describe(fx.b, 1, 0, &text, &loc), -ENOENT);
	unload(&fx);
}

/* ---- in-place update ---- */

static void feed_cb(const struct nlmsghdr *nlh, void *data)
{
	bool elems = nlh->nlmsg_type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM);
	struct nlmsghdr *copy = elems ? elems_copy(nlh) : NULL;

	assert_int_equal(installed_feed(data, elems ? copy : nlh), 0);
	free(copy);
}

/* What the kernel holds after installing fx's whole batch, as installed_read() finds it. */
static struct installed *installed_of(const struct fixture *fx)
{
	struct installed *inst = calloc(1, sizeof(*inst));

	assert_non_null(inst);
	for_each_msg(fx->b, feed_cb, inst);
	installed_sort(inst);
	assert_true(inst->exists);
	return inst;
}

/* Messages of an update by type, and the set names of element and set changes. */
struct update_seen {
	unsigned n[NFT_MSG_MAX];
	char sets[8][64];
	unsigned n_sets;
};

static void update_cb(const struct nlmsghdr *nlh, void *data)
{
	struct update_seen *u = data;
	unsigned type = nlh->nlmsg_type & 0xff;

	if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES)
		return;
	u->n[type]++;
	if (type == NFT_MSG_NEWSETELEM || type == NFT_MSG_DELSETELEM || type == NFT_MSG_NEWSET ||
	    type == NFT_MSG_DELSET) {
		struct nftnl_set *ns = nftnl_set_alloc();

		if (type == NFT_MSG_NEWSET || type == NFT_MSG_DELSET)
			assert_int_equal(nftnl_set_nlmsg_parse(nlh, ns), 0);
		else {
			struct nlmsghdr *copy = elems_copy(nlh);

			assert_int_equal(nftnl_set_elems_nlmsg_parse(copy, ns), 0);
			free(copy);
		}
		if (u->n_sets < 8)
			snprintf(u->sets[u->n_sets++], sizeof(u->sets[0]), "%s",
				 nftnl_set_get_str(ns, NFTNL_SET_NAME));
		nftnl_set_free(ns);
	}
}

/* The update from inst to fx's ruleset; since: what inst's chains hold, if known. */
static void update_since(const struct fixture *fx, const struct installed *inst,
			 const struct ruleset *since, struct update_seen *ret)
{
	struct emit_opts opts = { .seq = 1, .commit = true, .rules_since = since };
	struct emit_batch *b = NULL;

	*ret = (struct update_seen){ 0 };
	assert_int_equal(emit_update_build(fx->rs, inst, &opts, &b), 0);
	for_each_msg(b, update_cb, ret);
	emit_batch_free(b);
}

static void update_of(const struct fixture *fx, const struct installed *inst, bool forget,
		      struct update_seen *ret)
{
	struct emit_opts opts = { .seq = 1, .commit = true, .forget_learned = forget };
	struct emit_batch *b = NULL;

	*ret = (struct update_seen){ 0 };
	assert_int_equal(emit_update_build(fx->rs, inst, &opts, &b), 0);
	for_each_msg(b, update_cb, ret);
	emit_batch_free(b);
}

static size_t total_rules(const struct ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->n_chains; i++)
		n += rs->chains[i].n_rules;
	return n;
}

/* The same policy again: no set, chain or element is touched; the rules are replaced. */
static void test_update_unchanged(void **state)
{
	struct fixture fx = { 0 };
	struct installed *inst;
	struct update_seen u;

	(void)state;
	load(&fx, "golden/process.yaml", true);
	inst = installed_of(&fx);
	update_of(&fx, inst, false, &u);
	assert_int_equal(u.n[NFT_MSG_NEWTABLE], 0);
	assert_int_equal(u.n[NFT_MSG_NEWSET] + u.n[NFT_MSG_DELSET], 0);
	assert_int_equal(u.n[NFT_MSG_NEWSETELEM] + u.n[NFT_MSG_DELSETELEM], 0);
	assert_int_equal(u.n[NFT_MSG_NEWCHAIN] + u.n[NFT_MSG_DELCHAIN], 0);
	assert_int_equal(u.n[NFT_MSG_NEWOBJ] + u.n[NFT_MSG_DELOBJ], 0);
	assert_int_equal(u.n[NFT_MSG_DELRULE], fx.rs->n_chains);
	assert_int_equal(u.n[NFT_MSG_NEWRULE], total_rules(fx.rs));
	installed_free(inst);
	unload(&fx);
}

/* A policy with two guards and a log rate of rate/second to a temporary file. */
static void write_rate_policy(char *path, unsigned rate)
{
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "version: 1\nlog: { rate: %u/second }\nguards:\n"
		   "  - name: a\n    ports: [2000]\n    allow: { users: [1000] }\n"
		   "  - name: b\n    ports: [2001]\n    allow: { users: [1001] }\n"
		   "    action: drop\n", rate);
	assert_int_equal(fclose(f), 0);
}

static const struct rs_chain *chain_named(const struct ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->n_chains; i++)
		if (!strcmp(rs->chains[i].name, name))
			return &rs->chains[i];
	fail_msg("no chain %s", name);
	return NULL;
}

/* Known installed rules (the daemon's own table): chains whose rules stay the same are not
 * touched, so the kernel does not walk the verdict maps their rules look up; only the
 * chain whose rules changed (log_deny, by the log rate) is flushed and filled again. */
static void test_update_keeps_same_rules(void **state)
{
	char a_path[] = "/tmp/lg-rules-a.XXXXXX", b_path[] = "/tmp/lg-rules-b.XXXXXX";
	struct fixture a = { 0 }, b = { 0 };
	struct installed *inst;
	struct update_seen u;

	(void)state;
	write_rate_policy(a_path, 10);
	write_rate_policy(b_path, 20);
	load(&a, a_path, true);
	load(&b, b_path, true);
	inst = installed_of(&a);
	/* The same policy: nothing at all. */
	update_since(&a, inst, a.rs, &u);
	assert_int_equal(u.n[NFT_MSG_DELRULE] + u.n[NFT_MSG_NEWRULE], 0);
	assert_int_equal(u.n[NFT_MSG_NEWSETELEM] + u.n[NFT_MSG_DELSETELEM], 0);
	/* Another log rate: log_deny's rules, and only those. */
	update_since(&b, inst, a.rs, &u);
	assert_int_equal(u.n[NFT_MSG_DELRULE], 1);
	assert_int_equal(u.n[NFT_MSG_NEWRULE], chain_named(b.rs, "log_deny")->n_rules);
	assert_true(u.n[NFT_MSG_NEWRULE] < total_rules(b.rs));
	/* Unknown rules (not our table): every chain again. */
	update_since(&b, inst, NULL, &u);
	assert_int_equal(u.n[NFT_MSG_DELRULE], a.rs->n_chains);
	assert_int_equal(u.n[NFT_MSG_NEWRULE], total_rules(b.rs));
	installed_free(inst);
	unload(&a);
	unload(&b);
	unlink(a_path);
	unlink(b_path);
}

/* A set that must be replaced is still referred to by the old rules of unchanged chains:
 * every rule goes and comes again, as without known rules. */
static void test_update_replaced_set_resends_rules(void **state)
{
	struct fixture fx = { 0 };
	struct installed *inst;
	struct update_seen u;

	(void)state;
	load(&fx, "golden/basic.yaml", true);
	inst = installed_of(&fx);
	for (size_t i = 0; i < inst->n_sets; i++)
		if (!strcmp(inst->sets[i].name, LOGUARD_GUARD_MAP))
			inst->sets[i].key_type ^= 1;
	update_since(&fx, inst, fx.rs, &u);
	assert_int_equal(u.n[NFT_MSG_DELSET], 1);
	assert_int_equal(u.n[NFT_MSG_DELRULE], fx.rs->n_chains);
	assert_int_equal(u.n[NFT_MSG_NEWRULE], total_rules(fx.rs));
	installed_free(inst);
	unload(&fx);
}

/* A table adopted from a dead daemon: the sets of what it learned (receivers, grants) are
 * emptied in the update's transaction; the daemon's own reload leaves them. */
static void test_update_forgets_learned(void **state)
{
	static const char *const learned[] = { "owner4", "owner6", "owner_known4",
					       "owner_known6", "grant4", "grant6" };
	struct fixture fx = { 0 };
	struct installed *inst;
	struct update_seen u;

	(void)state;
	load(&fx, "golden/share.yaml", true);
	inst = installed_of(&fx);
	update_of(&fx, inst, false, &u);
	assert_int_equal(u.n[NFT_MSG_DELSETELEM], 0);
	update_of(&fx, inst, true, &u);
	assert_int_equal(u.n[NFT_MSG_DELSETELEM], 6);
	assert_int_equal(u.n[NFT_MSG_NEWSETELEM] + u.n[NFT_MSG_DELSET], 0);
	assert_int_equal(u.n_sets, 6);
	for (size_t i = 0; i < 6; i++) {
		bool seen = false;

		for (unsigned j = 0; j < u.n_sets; j++)
			seen |= !strcmp(u.sets[j], learned[i]);
		assert_true(seen);
	}
	installed_free(inst);
	unload(&fx);
}

/* One element gone from the kernel, one foreign one added, one set of another definition, a
 * stray chain: exactly those are repaired. */
static void test_update_differences(void **state)
{
	struct fixture fx = { 0 };
	struct installed *inst;
	struct inst_set *uid = NULL, *guards = NULL;
	struct inst_chain *c;
	struct update_seen u;

	(void)state;
	load(&fx, "golden/basic.yaml", true);
	inst = installed_of(&fx);
	for (size_t i = 0; i < inst->n_sets; i++) {
		if (!strcmp(inst->sets[i].name, LOGUARD_ALLOW_UID_SET))
			uid = &inst->sets[i];
		if (!strcmp(inst->sets[i].name, LOGUARD_GUARD_MAP))
			guards = &inst->sets[i];
	}
	assert_non_null(uid);
	assert_non_null(guards);
	assert_true(uid->n_elems >= 2);
	/* allow_uid: the first element is missing, the second becomes a stranger's. */
	free(uid->elems[0].comment);
	memmove(&uid->elems[0], &uid->elems[1], (uid->n_elems - 1) * sizeof(*uid->elems));
	uid->n_elems--;
	uid->elems[0].key[8] ^= 0x55;
	installed_sort(inst);
	/* guards: another key type, so it cannot stay. */
	guards->key_type ^= 1;
	/* A chain the policy does not have. */
	c = realloc(inst->chains, (inst->n_chains + 1) * sizeof(*c));
	assert_non_null(c);
	inst->chains = c;
	inst->chains[inst->n_chains++] = (struct inst_chain){ .name = strdup("stray") };

	update_of(&fx, inst, false, &u);
	assert_int_equal(u.n[NFT_MSG_DELSET], 1);
	assert_int_equal(u.n[NFT_MSG_NEWSET], 1);
	assert_int_equal(u.n[NFT_MSG_DELSETELEM], 1);
	assert_int_equal(u.n[NFT_MSG_DELCHAIN], 1);
	assert_int_equal(u.n[NFT_MSG_NEWCHAIN], 0);
	/* Order: the stranger goes, guards goes and comes whole, allow_uid gets its two. */
	assert_int_equal(u.n_sets, 5);
	assert_string_equal(u.sets[0], LOGUARD_GUARD_MAP);     /* DELSET */
	assert_string_equal(u.sets[1], LOGUARD_ALLOW_UID_SET); /* DELSETELEM */
	assert_string_equal(u.sets[2], LOGUARD_GUARD_MAP);     /* NEWSET */
	assert_string_equal(u.sets[3], LOGUARD_GUARD_MAP);     /* its elements */
	assert_string_equal(u.sets[4], LOGUARD_ALLOW_UID_SET); /* the two missing */
	installed_free(inst);
	unload(&fx);
}

/* A policy of n guards to a temporary file; guard i guards port 20000+i (guard 2 a range),
 * allows uid 3000+i; skip leaves guard skip out, bump gives guard bump another uid and action
 * (another verdict for the same key in the guard map). */
static void write_policy(char *path, size_t n, size_t skip, size_t bump)
{
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "version: 1\nguards:\n");
	for (size_t i = 0; i < n; i++) {
		if (i == skip)
			continue;
		if (i == 2)
			fprintf(f, "  - name: g%zu\n    ports: [%zu-%zu]\n", i, 20000 + i, 20010 + i);
		else
			fprintf(f, "  - name: g%zu\n    ports: [%zu]\n", i, 20000 + i);
		fprintf(f, "    allow: { users: [%zu] }\n", 3000 + i + (i == bump ? 500 : 0));
		if (i == bump)
			fprintf(f, "    action: drop\n");
	}
	assert_int_equal(fclose(f), 0);
}

/* The bytes of a batch, for comparing two. */
static size_t batch_bytes(const struct emit_batch *b, char **ret)
{
	struct iovec *iov;
	size_t n, len, off = 0;

	assert_int_equal(emit_batch_iovec(b, &iov, &n, &len), 0);
	*ret = malloc(len + 1);
	assert_non_null(*ret);
	for (size_t i = 0; i < n; i++) {
		memcpy(*ret + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	free(iov);
	return off;
}

/* The daemon's reload does not read back the sets it alone changes (installed_read_since):
 * the update it builds from what it installed last must be the very batch a read-back gives,
 * whether elements change at the start, in the middle, at the end or move. */
static void test_update_from_known(void **state)
{
	/* Guards of the old policy, the one it leaves out; of the new, the one it leaves out,
	 * the one whose uid it changes (99: none). */
	static const size_t cases[][5] = {
		{ 12, 99, 12, 99, 5 }, { 12, 99, 13, 0, 99 },  { 12, 4, 12, 11, 99 },
		{ 12, 99, 11, 99, 0 }, { 12, 0, 12, 99, 11 }, { 12, 99, 12, 99, 99 },
		{ 12, 99, 12, 2, 99 }, { 1, 99, 1, 99, 0 },
	};
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char old_path[] = "/tmp/lg-known-old.XXXXXX", new_path[] = "/tmp/lg-known-new.XXXXXX";
		struct emit_opts opts = { .seq = 1, .commit = true };
		struct fixture old = { 0 }, new = { 0 };
		struct emit_batch *b_read = NULL, *b_known = NULL;
		struct installed *read, *known;
		char *x, *y;
		size_t nx, ny;

		write_policy(old_path, cases[c][0], cases[c][1], 99);
		write_policy(new_path, cases[c][2], cases[c][3], cases[c][4]);
		load(&old, old_path, true);
		load(&new, new_path, true);
		read = installed_of(&old);
		known = installed_of(&old);
		for (size_t i = 0; i < known->n_sets; i++) {
			const struct rs_set *s = ruleset_find_set(old.rs, known->sets[i].name);

			if (s && (s->kind == RS_SET_GUARDS || s->kind == RS_SET_ALLOW_UID)) {
				inst_set_elems_free(&known->sets[i]);
				known->sets[i].known = s;
			}
		}
		assert_int_equal(emit_update_build(new.rs, read, &opts, &b_read), 0);
		assert_int_equal(emit_update_build(new.rs, known, &opts, &b_known), 0);
		nx = batch_bytes(b_read, &x);
		ny = batch_bytes(b_known, &y);
		assert_int_equal(nx, ny);
		assert_memory_equal(x, y, nx);
		free(x);
		free(y);
		emit_batch_free(b_read);
		emit_batch_free(b_known);
		installed_free(read);
		installed_free(known);
		unload(&old);
		unload(&new);
		unlink(old_path);
		unlink(new_path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_basic),
		cmocka_unit_test(test_round_trip_ranges),
		cmocka_unit_test(test_queue_expression),
		cmocka_unit_test(test_dry_run_has_no_end),
		cmocka_unit_test(test_replace_owned),
		cmocka_unit_test(test_big_policy_split),
		cmocka_unit_test(test_describe_error),
		cmocka_unit_test(test_update_unchanged),
		cmocka_unit_test(test_update_differences),
		cmocka_unit_test(test_update_forgets_learned),
		cmocka_unit_test(test_update_keeps_same_rules),
		cmocka_unit_test(test_update_replaced_set_resends_rules),
		cmocka_unit_test(test_update_from_known),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
