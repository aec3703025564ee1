/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_APPLY_H
#define LOGUARD_APPLY_H

#include <stdbool.h>

#include "diag.h"
#include "nft_emit.h"
#include "nl.h"
#include "policy.h"
#include "ruleset.h"

/* A loaded policy and its compiled ruleset; the ruleset borrows from the policy. */
struct loaded {
	struct policy *policy;
	struct ruleset *rs;
};

/* Parse, check and compile a policy file, as flags say (APPLY_*). Diagnostics go to d.
 * Returns 0, -EINVAL (the policy is invalid: d says why), -EPERM (untrusted file)
 * or another -errno. */
#define APPLY_TRUSTED	 0x1 /* refuse a file others than root could change (trust.h) */
#define APPLY_ONESHOT	 0x2 /* for `apply`: refuse what only the daemon can judge */
#define APPLY_LIVE	 0x4 /* for `loguard run`: compile with room for live updates */
#define APPLY_TRUST_WARN 0x8 /* without APPLY_TRUSTED: what it would refuse is a warning */
int apply_load(const char *file, unsigned flags, struct diags *d, struct loaded *ret);

struct policy_source;
/* apply_load() of a main file and its drop-ins (policy_dir.h), one policy from all of them. */
int apply_load_source(const struct policy_source *src, unsigned flags, struct diags *d,
		      struct loaded *ret);

/* Free both; accepts a zeroed struct. */
void apply_loaded_free(struct loaded *l);

/*
 * For a process that loads big policies (apply, the daemon): glibc gives big arrays their own
 * mmap() and trims the heap's top on free, so memory freed by one stage (the file's text,
 * libyaml's buffers; a reload's previous policy) is not reused by the next but faulted in
 * fresh, at ~20 us a page on these VMs. Keep the heap instead: a cold apply of 10,000 guards
 * faulted 2,435 pages and took 121 ms of CPU, 2,091 and 107 ms with it (same run).
 */
void apply_keep_heap(void);

/* Install rs as table inet loguard in one transaction (rs NULL: remove the table;
 * commit false: the kernel validates and discards), with table_flags (0, or
 * NFT_TABLE_F_OWNER | EMIT_TABLE_F_PERSIST). An installed table is updated in place
 * (emit_update_build), so what the old and the new ruleset share stays live throughout;
 * only a change of flags the kernel refuses replaces it. Retried when a concurrent change
 * invalidates the generation. Kernel errors go to d, located at the policy node. Returns 0
 * or -errno (-EPERM: a live daemon owns the table); on error the previous table is in
 * force. */
int apply_ruleset(struct nl *nl, const struct ruleset *rs, bool commit, uint32_t table_flags,
		  struct diags *d, struct emit_stats *ret_stats);

/* apply_ruleset() by the owner of the table who installed prev with its last update (the
 * daemon reloading): the elements prev put in the sets only our updates change are not read
 * back while our socket owns the table (installed_read_since). */
int apply_ruleset_since(struct nl *nl, const struct ruleset *rs, const struct ruleset *prev,
			bool commit, uint32_t table_flags, struct diags *d,
			struct emit_stats *ret_stats);

/* apply_ruleset() with the table owned and persistent (NFT_TABLE_F_OWNER |
 * EMIT_TABLE_F_PERSIST: no other process changes it while we run, it stays when we exit, the
 * next loguard adopts it in place), or unowned where the kernel has no PERSIST (< 6.9).
 * *ret_flags: the flags it got. */
int apply_ruleset_owned(struct nl *nl, const struct ruleset *rs, bool commit, struct diags *d,
			struct emit_stats *ret_stats, uint32_t *ret_flags);

#endif
