/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_RECORDS_READ_H
#define LOGUARD_RECORDS_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "record.h"

/* RFC 3339 as loguard writes it: "2026-11-26T05:07:31.123456Z". */
#define SEEN_TIME_LEN 28

/* What `loguard suggest` needs of one connection record, read back from a log. Strings are
 * malloc()ed, valid UTF-8 without NULs; NULL when the record said null or lacked the field. */
struct seen_record {
	char *guard;
	enum record_verdict verdict;
	bool has_uid;
	uint32_t uid;
	char *user, *exe, *cgroup, *unit;
	char time[SEEN_TIME_LEN]; /* "" when the record had no time */
};

/* Why a well-formed line gave no connection record. */
enum records_skip {
	RECORDS_SKIP_NONE,
	RECORDS_SKIP_OTHER_TYPE, /* a stats record, or a journal entry of another LOGUARD_TYPE */
	RECORDS_SKIP_FOREIGN,	 /* a journal entry not written by loguard.service: maybe forged */
	RECORDS_SKIP_BLANK,	 /* an empty line */
	__RECORDS_SKIP_MAX
};

/* The journal unit whose entries are trusted: journald sets _SYSTEMD_UNIT itself, while any
 * user can log entries with LOGUARD_* fields of their own. */
#define RECORDS_JOURNAL_UNIT "loguard.service"

/* Parse one line (without its newline) named file:lineno: a JSON record of `loguard run`, or
 * an entry of `journalctl -o json`. Returns 1 with *ret filled, 0 with *ret_skip set, or
 * -EINVAL with a located warning (file:line:col) in d, or -ENOMEM. */
int records_parse_line(const char *file, unsigned lineno, const char *line, size_t len,
		       struct diags *d, struct seen_record *ret, enum records_skip *ret_skip);

/* Free the strings of r and zero it; accepts NULL. */
void seen_record_clear(struct seen_record *r);

#endif
