/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_POLICY_REPARSE_H
#define LOGUARD_POLICY_REPARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "policy.h"

/*
 * Where a file's guards were written, so that a reload of the same file with one guard edited
 * parses only the text of the guards that changed (policy_reparse()). Recorded by a full
 * parse of a clean file (no message at all) whose top level is a block mapping and whose
 * `guards:` value is a block sequence, every item starting on the line of its '-'.
 */
struct policy_layout {
	bool bad;	  /* recording saw something the splice does not handle */
	unsigned top_col; /* column of the top-level keys (of 'guards') */
	unsigned seq_col; /* column of every item's '-' */
	size_t n;	  /* items, one guard each */
	size_t cap;	  /* of line (recording) */
	unsigned *line;	  /* n + 1 lines (0-based): each item's first line; [n]: the line
			     where the sequence ends */
	size_t *start;	  /* n + 1 byte offsets of those lines' starts ([n]: the length
			     when the sequence ends the file) */
};

void policy_layout_free(struct policy_layout *l);

/* policy_parse_buffer_opts() that also records the layout into l (zeroed by the caller);
 * policy_parse.c. */
int policy_parse_buffer_record(const char *file, const char *buf, size_t len,
			       const struct policy_parse_opts *opts, struct diags *diags,
			       struct policy **ret_policy, struct policy_layout *l);

/* policy_parse_buffer_opts() and, when the file parsed cleanly and its shape allows splicing,
 * its layout in *ret_layout (else NULL). */
int policy_parse_layout(const char *file, const char *buf, size_t len,
			const struct policy_parse_opts *opts, struct diags *diags,
			struct policy **ret_policy, struct policy_layout **ret_layout);

/*
 * The parse of buf (len bytes) built from the parse of old_buf (old, with old_layout; a clean
 * parse with the same file name and options) and a parse of only the guard items whose text
 * changed. Returns 0 with *ret_policy and *ret_layout (the caller's, sharing nothing with old:
 * loads may hold old and free it any time)
 * exactly as policy_parse_layout() of buf would give them with no message; -EAGAIN when that
 * cannot be proven (parse buf in full then); -ENOMEM.
 */
int policy_reparse(const char *file, const char *old_buf, size_t old_len, const struct policy *old,
		   const struct policy_layout *old_layout, const char *buf, size_t len,
		   const struct policy_parse_opts *opts, struct policy **ret_policy,
		   struct policy_layout **ret_layout);

/* A copy of g whose name, ports and references live in one allocation (g->pack), file
 * replacing from in its locs and line_delta added to its lines; what policy_check() fills is
 * left empty. 0 or -ENOMEM. */
int guard_copy_packed(const struct policy_guard *o, const char *from, const char *file,
		      int line_delta, struct policy_guard *g);

#endif
