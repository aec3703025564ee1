// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The pipeline end to end, shared by the one-shot CLI and the daemon:
 * file → policy → checked policy → ruleset, and ruleset → kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "compile.h"
#include "installed.h"
#include "policy_dir.h"
#include "trust.h"

#include <linux/netfilter/nf_tables.h>

/* Concurrent ruleset changes (ERESTART) tolerated before giving up. */
#define APPLY_RETRIES 3

/* `apply` installs a snapshot: what only the daemon can judge is refused, what it would follow
 * over time is said once. */
static int check_oneshot(const struct policy *p, struct diags *d)
{
	bool noted = false;
	int r = 0;

	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];

		if (policy_guard_needs_daemon(g)) {
			diags_add(d, DIAG_ERROR, g->owner ? &g->owner_loc : &g->executables[0].loc,
				  "guard '%s': %s judged by `loguard run` (through NFQUEUE); "
				  "`apply` installs static rules only",
				  g->name, g->owner ? "owner-only ports are" : "executables are");
			r = -EINVAL;
		} else if (!noted && (g->n_units || g->n_cgroups || g->n_launched)) {
			const struct loc *loc = g->n_units     ? &g->units[0].loc
						: g->n_cgroups ? &g->cgroups[0].loc
							       : &g->launched[0].loc;

			diags_add(d, DIAG_WARNING, loc,
				  "units and cgroups are matched as they are now; only `loguard "
				  "run` follows ones that start, restart or stop later");
			noted = true;
		}
	}
	return r;
}

void apply_keep_heap(void)
{
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int apply_load(const char *file, unsigned flags, struct diags *d, struct loaded *ret)
{
	return apply_load_source(&(struct policy_source){ .file = file }, flags, d, ret);
}

int apply_load_source(const struct policy_source *src, unsigned flags, struct diags *d,
		      struct loaded *ret)
{
	struct policy *partial = NULL;
	struct loaded l = { 0 };
	int r;

	/* Anyone who can write a policy file, or replace it or a directory above it, controls
	 * the firewall: the file judged is the file read (trust.c), for each file. */
	r = policy_source_load_partial(src,
				       flags & APPLY_TRUSTED	  ? POLICY_OPEN_TRUSTED
				       : flags & APPLY_TRUST_WARN ? POLICY_OPEN_WARN
								  : POLICY_OPEN_PLAIN,
				       d, &l.policy, &partial);
	/* A drop-in that does not parse must not hide the overlaps and unknown names of the
	 * files that do: check those too, then fail. */
	if (partial) {
		policy_check(partial, &(struct policy_check_opts){ 0 }, d);
		policy_free(partial);
	}
	if (r >= 0)
		r = policy_check(l.policy, &(struct policy_check_opts){ 0 }, d);
	if (r >= 0 && (flags & APPLY_ONESHOT))
		r = check_oneshot(l.policy, d);
	if (r >= 0)
		r = compile_policy_opts(
			l.policy, &(struct compile_opts){ .live = flags & APPLY_LIVE }, d, &l.rs);
	if (r >= 0)
		r = ruleset_index_guards(l.rs);
	if (r < 0) {
		apply_loaded_free(&l);
		return r;
	}
	*ret = l;
	return 0;
}

void apply_loaded_free(struct loaded *l)
{
	ruleset_free(l->rs);
	policy_free(l->policy);
	l->rs = NULL;
	l->policy = NULL;
}

/* Append what src says to d and empty src. */
static void diags_move(struct diags *d, struct diags *src)
{
	diags_append(d, src);
	diags_free(src);
}

/* Whether an update must replace the table: the kernel refused to change its flags. */
static bool flags_refused(int r, const struct installed *inst, uint32_t table_flags)
{
	const uint32_t mask = NFT_TABLE_F_OWNER | EMIT_TABLE_F_PERSIST;

	return (r == -EOPNOTSUPP || r == -EINVAL) && (inst->flags & mask) != (table_flags & mask);
}

static bool has_queue_rules(const struct ruleset *rs)
{
	for (size_t i = 0; rs && i < rs->n_chains; i++)
		for (size_t j = 0; j < rs->chains[i].n_rules; j++)
			switch (rs->chains[i].rules[j].kind) {
			case RS_RULE_QUEUE:
			case RS_RULE_QUEUE_OWNER_UNKNOWN:
			case RS_RULE_HOLD_METERED:
			case RS_RULE_HOLD_METER_FULL:
				return true;
			default:
				break;
			}
	return false;
}

int apply_ruleset(struct nl *nl, const struct ruleset *rs, bool commit, uint32_t table_flags,
		  struct diags *d, struct emit_stats *ret_stats)
{
	return apply_ruleset_since(nl, rs, NULL, commit, table_flags, d, ret_stats);
}

int apply_ruleset_since(struct nl *nl, const struct ruleset *rs, const struct ruleset *prev,
			bool commit, uint32_t table_flags, struct diags *d,
			struct emit_stats *ret_stats)
{
	/* LOGUARD_QUEUE=nft or xt forces how connections are queued (tests of both); else nft's
	 * own expression until the kernel refuses it. */
	const char *force = getenv("LOGUARD_QUEUE");
	bool force_nft = force && !strcmp(force, "nft");
	bool queue = has_queue_rules(rs);

	if (force && !strcmp(force, "xt"))
		nl_set_queue_xt(nl);
	struct diags tries = { 0 };
	bool replace = false;
	int r = 0;

	for (int attempt = 0; attempt < APPLY_RETRIES; attempt++) {
		struct emit_opts opts = { .has_genid = true,
					  .commit = commit,
					  .table_flags = table_flags,
					  .queue_xt = !force_nft && nl_queue_xt(nl),
					  /* Not our own table's reload: whoever learned its
					   * receivers and grants is gone. */
					  .forget_learned = !prev };
		struct installed *inst = NULL;
		struct emit_batch *b = NULL;
		bool update, retry;

		diags_free(&tries);
		/* Generation first: if the table changes after this, the batch is refused. */
		r = nl_get_genid(nl, &opts.genid);
		/* After a refused batch, nothing is known: read everything. */
		if (r >= 0)
			r = installed_read_since(nl, attempt ? NULL : prev, &inst);
		if (r < 0)
			break;
		opts.table_exists = inst->exists;
		/* What we installed last is what the chains hold while our socket owns the
		 * table: nobody else can change it (and the genid catches what did). */
		if (!attempt && prev && inst->exists && (inst->flags & NFT_TABLE_F_OWNER) &&
		    inst->owner == nl_portid(nl))
			opts.rules_since = prev;
		if (!rs && !inst->exists) {
			installed_free(inst);
			break; /* nothing to remove */
		}
		if (inst->exists && (inst->flags & NFT_TABLE_F_OWNER) && inst->owner &&
		    inst->owner != nl_portid(nl)) {
			diags_add(&tries, DIAG_ERROR, NULL,
				  "table inet " LOGUARD_TABLE
				  " belongs to a running loguard daemon "
				  "(netlink port %u): stop it, or send it SIGHUP to reload",
				  inst->owner);
			installed_free(inst);
			r = -EPERM;
			break;
		}
		opts.seq = nl_seq_reserve(nl, 0);
		/* In place wherever the kernel allows: a replaced table lets packets through
		 * while the old and the new generation mix (see emit_update_build). */
		update = rs && inst->exists && !replace;
		r = update ? emit_update_build(rs, inst, &opts, &b)
			   : emit_batch_build(rs, &opts, &b);
		if (r >= 0) {
			nl_seq_reserve(nl, emit_batch_seq_last(b) - emit_batch_seq_first(b) + 1);
			if (ret_stats)
				emit_batch_stats(b, ret_stats);
			r = nl_send_batch(nl, b, &tries);
			emit_batch_free(b);
		}
		retry = r == -ERESTART || r == -EINTR;
		/* An expression type the kernel does not have is ENOENT: without nft_queue, the
		 * xtables target (once; remembered for this socket). */
		if (r == -ENOENT && queue && !opts.queue_xt && !force_nft) {
			nl_set_queue_xt(nl);
			retry = true;
			attempt--;
		}
		if (update && flags_refused(r, inst, table_flags)) {
			/* Only a new table can take these flags (once: update is false then). */
			replace = retry = true;
			attempt--;
		}
		installed_free(inst);
		if (!retry)
			break;
	}
	if (r == -ENOENT && queue && force_nft)
		diags_add(&tries, DIAG_ERROR, NULL,
			  "LOGUARD_QUEUE=nft: this kernel has no nft queue expression "
			  "(CONFIG_NFT_QUEUE); without LOGUARD_QUEUE the xtables NFQUEUE target is "
			  "used");
	/* Only the last attempt's diagnostics matter. */
	diags_move(d, &tries);
	return r;
}

int apply_ruleset_owned(struct nl *nl, const struct ruleset *rs, bool commit, struct diags *d,
			struct emit_stats *ret_stats, uint32_t *ret_flags)
{
	uint32_t flags = NFT_TABLE_F_OWNER | EMIT_TABLE_F_PERSIST;
	struct diags first = { 0 };
	int r;

	r = apply_ruleset(nl, rs, commit, flags, &first, ret_stats);
	if (r == -EOPNOTSUPP || r == -EINVAL) {
		/* Kernels before 6.9 have no PERSIST: an owned table would vanish with its
		 * owner, so do without OWNER. */
		flags = 0;
		r = apply_ruleset(nl, rs, commit, flags, d, ret_stats);
	} else {
		diags_move(d, &first);
	}
	diags_free(&first);
	if (r >= 0 && ret_flags)
		*ret_flags = flags;
	return r;
}
