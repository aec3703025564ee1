// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The ruleset IR and its printer. The printer writes the nft syntax that
 * `nft list table inet loguard` shows for the installed table, so one text is
 * the `print` command, the compiler's golden files and the integration check.
 */
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset.h"
#include "sort.h"

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : "udp";
}

static void print_ports(FILE *f, const struct rs_elem *e)
{
	if (e->port_first == e->port_last)
		fprintf(f, "%u", e->port_first);
	else
		fprintf(f, "%u-%u", e->port_first, e->port_last);
}

/* Comments come from policy names, which the parser restricts; escape anyway. */
static void print_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* A duration as nft writes one: 1d2h3m4s, zero parts left out. */
static void print_seconds(FILE *f, uint64_t secs)
{
	static const struct {
		uint64_t secs;
		char unit;
	} parts[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (secs >= parts[i].secs) {
			fprintf(f, "%llu%c", (unsigned long long)(secs / parts[i].secs),
				parts[i].unit);
			secs %= parts[i].secs;
		}
	}
}

uint64_t rs_rate_unit_seconds(const char *unit)
{
	switch (unit[0]) {
	case 'm':
		return 60;
	case 'h':
		return 3600;
	case 'd':
		return 86400;
	default:
		return 1;
	}
}

uint64_t rs_log_rate_timeout_s(const struct ruleset *rs)
{
	uint64_t refill;

	if (!rs->log_rate)
		return LOGUARD_LOG_RATE_TIMEOUT_S;
	/* burst <= 100000 and unit <= 86400 (policy_parse): no overflow. */
	refill = ((uint64_t)rs->log_burst * rs_rate_unit_seconds(rs->log_rate_unit) + rs->log_rate -
		  1) /
		 rs->log_rate;
	return refill > LOGUARD_LOG_RATE_TIMEOUT_S ? refill : LOGUARD_LOG_RATE_TIMEOUT_S;
}

static void print_log(FILE *f, const struct ruleset *rs, const char *prefix)
{
	fputs("counter name ", f);
	print_quoted(f, rs->sent_counter);
	fputs(" log prefix ", f);
	print_quoted(f, prefix);
	fprintf(f, " group %u", rs->log_group);
}

/* nft leaves out the kernel's default burst of 5. */
static void print_limit(FILE *f, const struct ruleset *rs)
{
	fprintf(f, "limit rate %u/%s", rs->log_rate, rs->log_rate_unit);
	if (rs->log_burst != 5)
		fprintf(f, " burst %u packets", rs->log_burst);
}

static void print_set_head(FILE *f, const struct ruleset *rs, const struct rs_set *s)
{
	switch (s->kind) {
	case RS_SET_GUARDS:
		fprintf(f, "\tmap %s {\n\t\ttype inet_proto . inet_service : verdict\n", s->name);
		break;
	case RS_SET_ALLOW_UID:
		fprintf(f, "\tmap %s {\n\t\ttype inet_proto . inet_service . uid : verdict\n",
			s->name);
		break;
	case RS_SET_ASKED:
	case RS_SET_DENIED:
		fprintf(f, "\tset %s {\n\t\ttype inet_proto . inet_service\n", s->name);
		break;
	case RS_SET_ALLOW_CGROUP:
		fprintf(f, "\tset %s {\n\t\ttype inet_proto . inet_service . cgroupsv2\n", s->name);
		break;
	case RS_SET_OWNER:
	case RS_SET_OWNER_KNOWN:
	case RS_SET_GRANT:
		fprintf(f, "\tset %s {\n\t\ttype ipv%u_addr . inet_proto . inet_service%s\n",
			s->name, s->family, s->kind != RS_SET_OWNER_KNOWN ? " . uid" : "");
		fprintf(f, "\t\tsize %u\n", rs_set_size(s));
		if (s->kind == RS_SET_GRANT)
			fputs("\t\tflags timeout\n", f);
		return;
	case RS_SET_LOG_RATE:
		fprintf(f,
			"\tset %s {\n\t\ttype inet_proto . inet_service . uid\n\t\tsize %u\n"
			"\t\tflags dynamic,timeout\n\t\ttimeout ",
			s->name, LOGUARD_LOG_RATE_SIZE);
		print_seconds(f, rs_log_rate_timeout_s(rs));
		fputc('\n', f);
		return;
	default:
		abort();
	}
	if (s->interval)
		fputs("\t\tflags interval\n", f);
	else
		fprintf(f, "\t\tsize %u\n", rs_set_size(s));
	if (rs->counters)
		fputs("\t\tcounter\n", f);
}

static void print_set(FILE *f, const struct ruleset *rs, const struct rs_set *s)
{
	print_set_head(f, rs, s);
	if (s->n_elems) {
		fputs("\t\telements = { ", f);
		for (size_t i = 0; i < s->n_elems; i++) {
			const struct rs_elem *e = &s->elems[i];

			if (i)
				fputs(",\n\t\t\t     ", f);
			fprintf(f, "%s . ", proto_name(e->proto));
			print_ports(f, e);
			if (s->kind != RS_SET_GUARDS && s->kind != RS_SET_ASKED &&
			    s->kind != RS_SET_DENIED)
				fprintf(f, " . %llu", (unsigned long long)e->id);
			if (e->comment) {
				fputs(" comment ", f);
				print_quoted(f, e->comment);
			}
			if (s->kind == RS_SET_GUARDS || (s->kind == RS_SET_ALLOW_UID && e->chain))
				fprintf(f, " : goto %s", e->chain);
			else if (s->kind == RS_SET_ALLOW_UID)
				fputs(" : accept", f);
		}
		fputs(" }\n", f);
	}
	fputs("\t}\n", f);
}

/* The xtables NFQUEUE target (see nft_emit.c), as nft's own queue statement, which means the
 * same. */
static void print_queue(FILE *f, bool bypass, unsigned num)
{
	fprintf(f, "queue %sto %u", bypass ? "flags bypass " : "", num);
}

/* " counter name C queue ...": a held record is counted as sent, as a logged one. */
static void print_hold(FILE *f, const struct ruleset *rs, const struct rs_rule *r)
{
	fputs(" counter name ", f);
	print_quoted(f, rs->sent_counter);
	fputc(' ', f);
	print_queue(f, r->bypass, r->queue);
}

static void print_rule(FILE *f, const struct ruleset *rs, const struct rs_rule *r)
{
	fputs("\t\t", f);
	if (r->match_mark)
		fprintf(f, "meta mark & 0x%08x == 0x%08x ", r->mark_mask, r->mark_value);
	switch (r->kind) {
	case RS_RULE_ACCEPT_NOT_LO:
		fputs("oif != \"lo\" accept", f);
		break;
	case RS_RULE_ACCEPT_NOT_LO_NOT_UDP:
		fputs("oif != \"lo\" meta l4proto != udp accept", f);
		break;
	case RS_RULE_NOT_LO_JUMP:
		fprintf(f, "oif != \"lo\" jump %s", r->target);
		break;
	case RS_RULE_ACCEPT_IP6_NOT_MCAST:
		fputs("ip6 daddr != ff00::/8 accept", f);
		break;
	case RS_RULE_ACCEPT_IP_UNICAST:
		fputs("meta nfproto ipv4 fib daddr type unicast accept", f);
		break;
	case RS_RULE_ACCEPT_TCP_NOT_SYN:
		fputs("tcp flags != syn / syn,ack accept", f);
		break;
	case RS_RULE_DISPATCH:
		fprintf(f, "meta l4proto . th dport vmap @%s", r->set);
		break;
	case RS_RULE_ALLOW_UID_MAP:
		fprintf(f, "meta l4proto . th dport . meta skuid vmap @%s", r->set);
		break;
	case RS_RULE_ALLOW_CGROUP:
		fprintf(f, "meta l4proto . th dport . socket cgroupv2 level %u @%s", r->level,
			r->set);
		if (r->goto_chain)
			fprintf(f, " goto %s", r->goto_chain);
		else
			fputs(" accept", f);
		break;
	case RS_RULE_ALLOW_OWNER:
		fprintf(f, "%s daddr . meta l4proto . th dport . meta skuid @%s",
			r->family == 4 ? "ip" : "ip6", r->set);
		if (r->goto_chain)
			fprintf(f, " goto %s", r->goto_chain);
		else
			fputs(" accept", f);
		break;
	case RS_RULE_QUEUE_OWNER_UNKNOWN:
	case RS_RULE_QUEUE:
		/* nft's own queue statement, as nft lists it. Kernels without nft_queue get the
		 * xtables NFQUEUE target instead (nft_emit.c), which nft lists as an xt target. */
		fprintf(f, "meta mark & 0x%08x == 0x00000000 ", LOGUARD_MARK_ASKED);
		if (r->kind == RS_RULE_QUEUE_OWNER_UNKNOWN)
			fprintf(f, "%s daddr . meta l4proto . th dport != @%s ",
				r->family == 4 ? "ip" : "ip6", r->set);
		print_queue(f, r->bypass, rs->queue_num);
		break;
	case RS_RULE_SET_MARK:
		/* As nft lists it: the bits set are also kept by the mask. */
		fprintf(f, "meta mark set meta mark & 0x%08x | 0x%08x", ~r->mark_mask | r->mark_value,
			r->mark_value);
		break;
	case RS_RULE_HOLD_METERED:
		fprintf(f, "update @%s { meta l4proto . th dport . meta skuid ", r->set);
		print_limit(f, rs);
		fputs(" }", f);
		print_hold(f, rs, r);
		break;
	case RS_RULE_HOLD_METER_FULL:
		fprintf(f, "meta l4proto . th dport . meta skuid != @%s ", r->set);
		print_limit(f, rs);
		print_hold(f, rs, r);
		break;
	case RS_RULE_CLEAR_MARK:
		fprintf(f, "meta mark set meta mark & 0x%08x", ~LOGUARD_MARK_ASKED);
		break;
	case RS_RULE_COUNT_ASKED:
		fprintf(f, "meta mark & 0x%08x == 0x%08x ", LOGUARD_MARK_ASKED, LOGUARD_MARK_ASKED);
		/* fall through */
	case RS_RULE_COUNT:
		fprintf(f, "meta l4proto . th dport @%s", r->set);
		break;
	case RS_RULE_LOG:
		print_log(f, rs, r->prefix);
		break;
	case RS_RULE_LOG_METERED:
		fprintf(f, "update @%s { meta l4proto . th dport . meta skuid ", r->set);
		print_limit(f, rs);
		fputs(" } ", f);
		print_log(f, rs, r->prefix);
		fputs(" return", f);
		break;
	case RS_RULE_LOG_METER_FULL:
		fprintf(f, "meta l4proto . th dport . meta skuid != @%s ", r->set);
		print_limit(f, rs);
		fputc(' ', f);
		print_log(f, rs, r->prefix);
		fputs(" return", f);
		break;
	case RS_RULE_LOG_NO_SOCKET:
		print_limit(f, rs);
		fputc(' ', f);
		print_log(f, rs, r->prefix);
		fputs(" return", f);
		break;
	case RS_RULE_LOG_OVER_SOCKET:
	case RS_RULE_LOG_OVER:
		if (r->kind == RS_RULE_LOG_OVER_SOCKET)
			fprintf(f, "meta skuid != %u ", UINT32_MAX);
		fputs("counter name ", f);
		print_quoted(f, rs->rate_counter);
		if (r->kind == RS_RULE_LOG_OVER_SOCKET)
			fputs(" return", f);
		break;
	case RS_RULE_JUMP:
		fprintf(f, "jump %s", r->target);
		break;
	case RS_RULE_REJECT_TCP:
		fputs("meta l4proto tcp reject with tcp reset", f);
		break;
	case RS_RULE_REJECT:
		fputs("reject", f);
		break;
	case RS_RULE_DROP:
		fputs("drop", f);
		break;
	case RS_RULE_ACCEPT:
		fputs("accept", f);
		break;
	default:
		abort();
	}
	if (r->comment) {
		fputs(" comment ", f);
		print_quoted(f, r->comment);
	}
	fputc('\n', f);
}

int ruleset_print(const struct ruleset *rs, FILE *f)
{
	fputs("table inet " LOGUARD_TABLE " {\n", f);
	/* nft lists named objects before sets. */
	if (rs->rate_counter)
		fprintf(f, "\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n\n", rs->rate_counter);
	fprintf(f, "\tcounter %s {\n\t\tpackets 0 bytes 0\n\t}\n%s", rs->sent_counter,
		rs->n_sets || rs->n_chains ? "\n" : "");
	for (size_t i = 0; i < rs->n_sets; i++) {
		if (i)
			fputc('\n', f);
		print_set(f, rs, &rs->sets[i]);
	}
	for (size_t i = 0; i < rs->n_chains; i++) {
		const struct rs_chain *c = &rs->chains[i];

		if (i || rs->n_sets)
			fputc('\n', f);
		fprintf(f, "\tchain %s {\n", c->name);
		if (c->base && c->priority)
			fprintf(f, "\t\ttype filter hook output priority %d; policy accept;\n",
				c->priority);
		else if (c->base) /* nft names priority 0 */
			fputs("\t\ttype filter hook output priority filter; policy accept;\n", f);
		for (size_t j = 0; j < c->n_rules; j++)
			print_rule(f, rs, &c->rules[j]);
		fputs("\t}\n", f);
	}
	fputs("}\n", f);
	return ferror(f) ? -EIO : 0;
}

struct rs_set *ruleset_find_set(const struct ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->n_sets; i++)
		if (!strcmp(rs->sets[i].name, name))
			return &rs->sets[i];
	return NULL;
}

/*
 * By protocol, then first port. The intervals of one protocol never overlap, so the order is
 * total; a stable radix sort of (protocol, first, element) keys costs a reload of 10,000
 * guards a tenth of what qsort() with a comparator did.
 */
int ruleset_index_guards(struct ruleset *rs)
{
	struct rs_guard_port *v = NULL;
	uint64_t *keys = NULL;
	size_t n = 0;
	int r = -ENOMEM;

	for (size_t i = 0; i < rs->n_sets; i++)
		if (rs->sets[i].kind == RS_SET_GUARDS)
			n += rs->sets[i].n_elems;
	free(rs->guard_index);
	rs->n_guard_index = 0;
	rs->guard_index = malloc((n ? n : 1) * sizeof(*rs->guard_index));
	if (!rs->guard_index || n > UINT32_MAX)
		goto out;
	v = malloc((n ? n : 1) * sizeof(*v));
	keys = malloc((n ? n : 1) * sizeof(*keys));
	if (!v || !keys)
		goto out;
	n = 0;
	for (size_t i = 0; i < rs->n_sets; i++) {
		if (rs->sets[i].kind != RS_SET_GUARDS)
			continue;
		for (size_t k = 0; k < rs->sets[i].n_elems; k++) {
			const struct rs_elem *e = &rs->sets[i].elems[k];

			v[n] = (struct rs_guard_port){ e->proto, e->port_first, e->port_last,
						       e->comment };
			keys[n] = ((uint64_t)e->proto << 16 | e->port_first) << 32 | n;
			n++;
		}
	}
	r = sort_u64_stable(keys, n, 32);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		rs->guard_index[i] = v[(uint32_t)keys[i]];
	rs->n_guard_index = n;
out:
	free(keys);
	free(v);
	return r;
}

const char *ruleset_guard_of(const struct ruleset *rs, uint8_t proto, uint16_t port)
{
	size_t lo = 0, hi = rs->n_guard_index;

	/* Intervals never overlap (the compiler split wider guards around narrower ones, as the
	 * kernel's guard map has them): find the last first <= port. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct rs_guard_port *g = &rs->guard_index[mid];

		if (g->proto < proto || (g->proto == proto && g->first <= port))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct rs_guard_port *g = &rs->guard_index[lo - 1];

	return g->proto == proto && port <= g->last ? g->guard : NULL;
}

void ruleset_free(struct ruleset *rs)
{
	if (!rs)
		return;
	free(rs->guard_index);
	for (size_t i = 0; i < rs->n_sets; i++) {
		free(rs->sets[i].name);
		free(rs->sets[i].elems);
	}
	for (size_t i = 0; i < rs->n_chains; i++) {
		free(rs->chains[i].name);
		free(rs->chains[i].rules);
	}
	free(rs->sets);
	free(rs->chains);
	free(rs);
}
