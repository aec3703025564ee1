// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the policy parser: any input must parse or fail cleanly (no crash,
 * leak or sanitizer report), and the documented invariants must hold either way.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loc(const struct policy *p, const struct loc *l)
{
	if (l->file != p->file || l->line == 0 || l->col == 0)
		abort();
}

/* What a successful parse promises to the later stages. */
static void check_policy(const struct policy *p, bool dropin)
{
	/* A drop-in may leave out 'version'; its global keys stay the defaults. */
	if (p->version != 1 - (dropin && !p->version) || (unsigned)p->mode >= __POLICY_MODE_MAX || p->n_guards == 0 ||
	    (unsigned)p->log_rate_unit >= __POLICY_RATE_MAX)
		abort();
	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];
		const struct policy_ref *refs[] = { g->users, g->groups, g->units, g->cgroups };
		const size_t ns[] = { g->n_users, g->n_groups, g->n_units, g->n_cgroups };

		if (!g->name || !*g->name || strlen(g->name) > 32 || g->n_ports == 0 ||
		    !g->protocols || (g->protocols & ~(POLICY_PROTO_TCP | POLICY_PROTO_UDP)) ||
		    (unsigned)g->action >= __POLICY_ACTION_MAX ||
		    (unsigned)g->mode >= __POLICY_MODE_MAX ||
		    (unsigned)g->log >= __POLICY_LOG_MAX || g->uids || g->cgroup_ids)
			abort();
		check_loc(p, &g->loc);
		for (size_t j = 0; j < g->n_ports; j++) {
			if (g->ports[j].first == 0 || g->ports[j].first > g->ports[j].last)
				abort();
			check_loc(p, &g->ports[j].loc);
		}
		for (size_t k = 0; k < 4; k++) {
			for (size_t j = 0; j < ns[k]; j++) {
				if (!refs[k][j].name || !*refs[k][j].name)
					abort();
				check_loc(p, &refs[k][j].loc);
			}
		}
		for (size_t j = 0; j < g->n_units; j++)
			if (policy_unit_name_invalid(g->units[j].name))
				abort();
		for (size_t j = 0; j < g->n_cgroups; j++)
			if (policy_cgroup_path_invalid(g->cgroups[j].name))
				abort();
	}
	for (size_t i = 1; i < p->n_guards; i++)
		for (size_t j = 0; j < i && j < 64; j++)
			if (!strcmp(p->guards[i].name, p->guards[j].name))
				abort();
}

/* The same input as a main policy file and as a drop-in (policy.d): the same promises. */
static void parse_one(const uint8_t *data, size_t size, bool dropin)
{
	struct policy *p = NULL, *partial = NULL;
	const struct policy_parse_opts o = { .main_file = dropin ? "main.yaml" : NULL,
					     .mode = POLICY_MODE_AUDIT,
					     .ret_partial = &partial };
	struct diags d = { 0 };
	int r = policy_parse_buffer_opts("fuzz.yaml", (const char *)data, size, &o, &d, &p);

	/* What an invalid file hands on for checking: named guards, parsed ports only. */
	if (partial && (r != -22 || p))
		abort();
	for (size_t i = 0; partial && i < partial->n_guards; i++) {
		if (!partial->guards[i].name)
			abort();
		for (size_t j = 0; j < partial->guards[i].n_ports; j++)
			if (!partial->guards[i].ports[j].first ||
			    partial->guards[i].ports[j].first > partial->guards[i].ports[j].last)
				abort();
	}
	policy_free(partial);

	if (r == 0) {
		if (!p || d.n_errors)
			abort();
		check_policy(p, dropin);
	} else if (p || (r == -22 && d.n_errors == 0)) {
		abort();
	}
	for (size_t i = 0; i < d.n; i++) {
		char *s = diag_format(&d.v[i]);

		if (!s || !d.v[i].msg[0])
			abort();
		free(s);
	}
	policy_free(p);
	diags_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_one(data, size, false);
	parse_one(data, size, true);
	return 0;
}
