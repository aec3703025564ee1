// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The pipeline end to end, shared by the one-shot CLI and the daemon:
 * file → policy → checked policy → ruleset, and ruleset → kernel.
 */
#include <errno.h>
#include <string.h>

#include "apply.h"
#include "compile.h"

/* Concurrent ruleset changes (ERESTART) tolerated before giving up. */
#define APPLY_RETRIES 3

int apply_load(const char *file, struct diags *d, struct loaded *ret)
{
	struct loaded l = { 0 };
	int r;

	r = policy_parse_file(file, d, &l.policy);
	if (r >= 0)
		r = policy_check(l.policy, &(struct policy_check_opts){ 0 }, d);
	if (r >= 0)
		r = compile_policy(l.policy, d, &l.rs);
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

int apply_ruleset(struct nl *nl, const struct ruleset *rs, bool commit, struct diags *d,
		  struct emit_stats *ret_stats)
{
	struct diags tries = { 0 };
	int r = 0;

	for (int attempt = 0; attempt < APPLY_RETRIES; attempt++) {
		struct emit_opts opts = { .has_genid = true, .commit = commit };
		struct emit_batch *b = NULL;

		diags_free(&tries);
		r = nl_get_genid(nl, &opts.genid);
		if (r < 0)
			break;
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
