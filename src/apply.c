// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The pipeline end to end, shared by the one-shot CLI and the daemon:
 * file → policy → checked policy → ruleset, and ruleset → kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "compile.h"
#include "show.h"
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

int apply_load(const char *file, unsigned flags, struct diags *d, struct loaded *ret)
{
	struct loc whole = { .file = file };
	struct loaded l = { 0 };
	int fd, r;

	/* Anyone who can write the policy, or replace it or a directory above it, controls the
	 * firewall: the file judged is the file read (trust.c). */
	if (flags & (APPLY_TRUSTED | APPLY_TRUST_WARN)) {
		r = trust_open(file, flags & APPLY_TRUSTED ? TRUST_REQUIRE : TRUST_WARN, d, &fd);
		if (r < 0)
			return r;
	} else {
		fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			r = -errno;
			diags_add(d, DIAG_ERROR, &whole, "cannot read: %s", strerror(errno));
			return r;
		}
	}
	r = policy_parse_fd(file, fd, d, &l.policy);
	close(fd);
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

int apply_ruleset(struct nl *nl, const struct ruleset *rs, bool commit, uint32_t table_flags,
		  struct diags *d, struct emit_stats *ret_stats)
{
	struct diags tries = { 0 };
	int r = 0;

	for (int attempt = 0; attempt < APPLY_RETRIES; attempt++) {
		struct emit_opts opts = { .has_genid = true,
					  .commit = commit,
					  .table_flags = table_flags };
		struct emit_batch *b = NULL;
		uint32_t flags, owner;

		diags_free(&tries);
		/* Generation first: if the table changes after this, the batch is refused. */
		r = nl_get_genid(nl, &opts.genid);
		if (r >= 0)
			r = show_table_info(nl, &opts.table_exists, &flags, &owner);
		if (r < 0)
			break;
		if (!rs && !opts.table_exists)
			break; /* nothing to remove */
		if (opts.table_exists && (flags & NFT_TABLE_F_OWNER) && owner &&
		    owner != nl_portid(nl)) {
			diags_add(&tries, DIAG_ERROR, NULL,
				  "table inet " LOGUARD_TABLE
				  " belongs to a running loguard daemon "
				  "(netlink port %u): stop it, or send it SIGHUP to reload",
				  owner);
			r = -EPERM;
			break;
		}
		opts.seq = nl_seq_reserve(nl, 0);
		r = emit_batch_build(rs, &opts, &b);
		if (r < 0)
			break;
		nl_seq_reserve(nl, emit_batch_seq_last(b) - emit_batch_seq_first(b) + 1);
		if (ret_stats)
			emit_batch_stats(b, ret_stats);
		r = nl_send_batch(nl, b, &tries);
		emit_batch_free(b);
		if (r != -ERESTART && r != -EINTR)
			break;
	}
	/* Only the last attempt's diagnostics matter. */
	for (size_t i = 0; i < tries.n; i++) {
		const struct diag *g = &tries.v[i];
		struct loc loc = { .file = g->file, .line = g->line, .col = g->col };

		diags_add(d, g->level, g->file ? &loc : NULL, "%s", g->msg);
	}
	diags_free(&tries);
	return r;
}
