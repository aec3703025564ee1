// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `loguard suggest`: read the current policy and a stream of records, print the policy that
 * allows what was seen, or the diff from the current file to it. A line that is not a record
 * is a located warning and skipped: skipping can only make the suggestion narrower.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exit_status.h"
#include "records_read.h"
#include "suggest_cmd.h"
#include "udiff.h"

/* Warnings printed before the rest are summarised: a huge garbage file must not flood. */
#define MAX_WARNINGS 20
/* A line longer than this is not a record loguard wrote (nor a journal entry of one). */
#define MAX_LINE (1U << 20)

/* The whole file into memory (the diff needs the text the parser read). */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
	char *p = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&p, &len);
	char buf[8192];
	int fd, r = 0;
	ssize_t n;

	if (!m)
		return -errno;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		fwrite(buf, 1, (size_t)n, m);
	}
	close(fd);
out:
	if (fclose(m) && !r)
		r = -ENOMEM;
	if (r) {
		free(p);
		return r;
	}
	*ret = p;
	*ret_len = len;
	return 0;
}

/* Counts for the summary on stderr. */
struct counts {
	uint64_t lines, records, bad, skip[__RECORDS_SKIP_MAX];
};

static void warn(const struct diags *d, struct counts *c)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s;

		if (++c->bad > MAX_WARNINGS)
			continue;
		s = diag_format(&d->v[i]);
		fprintf(stderr, "%s\n", s ? s : d->v[i].msg);
		free(s);
	}
}

static int read_records(FILE *in, const char *name, struct suggest *s, struct counts *c)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	while ((n = getline(&line, &cap, in)) >= 0) {
		struct diags d = { 0 };
		struct seen_record rec = { 0 };
		enum records_skip why = RECORDS_SKIP_NONE;
		unsigned lineno = (unsigned)++c->lines;

		if (n && line[n - 1] == '\n')
			n--;
		if ((size_t)n > MAX_LINE) {
			struct loc loc = { name, lineno, 1 };

			r = diags_add(&d, DIAG_WARNING, &loc,
				      "not a record: line longer than %u bytes", MAX_LINE);
		} else {
			r = records_parse_line(name, lineno, line, (size_t)n, &d, &rec, &why);
		}
		if (r == 1) {
			c->records++;
			r = suggest_add(s, &rec);
		} else if (r == 0) {
			c->skip[why]++;
		}
		warn(&d, c);
		diags_free(&d);
		seen_record_clear(&rec);
		if (r == -ENOMEM)
			break;
		r = 0;
	}
	if (!r && ferror(in))
		r = -EIO;
	free(line);
	return r;
}

static int load_policy(const char *file, const char *text, size_t len, struct policy **ret)
{
	struct diags d = { 0 };
	int r = policy_parse_buffer(file, text, len, &d, ret);

	if (!r) {
		r = policy_check(*ret, NULL, &d);
		if (r) {
			policy_free(*ret);
			*ret = NULL;
		}
	}
	diags_print(&d, stderr);
	if (r && d.n_errors)
		fprintf(stderr, "%s: %u error%s\n", file, d.n_errors, d.n_errors == 1 ? "" : "s");
	else if (r)
		fprintf(stderr, "loguard: suggest: %s: %s\n", file, strerror(-r));
	diags_free(&d);
	return r;
}

int suggest_cmd_run(const struct suggest_cmd_opts *o)
{
	const char *name = o->input && strcmp(o->input, "-") ? o->input : "<stdin>";
	struct counts c = { 0 };
	struct policy *p = NULL;
	struct suggest *s = NULL;
	char *text = NULL, *out = NULL, *b_name = NULL;
	size_t len;
	FILE *in = stdin;
	bool differ;
	int r, rc = EXIT_SYSTEM;

	r = read_file(o->policy_file, &text, &len);
	if (r) {
		fprintf(stderr, "loguard: suggest: %s: %s\n", o->policy_file, strerror(-r));
		return EXIT_POLICY;
	}
	if (load_policy(o->policy_file, text, len, &p)) {
		rc = EXIT_POLICY;
		goto out;
	}
	if (o->input && strcmp(o->input, "-")) {
		in = fopen(o->input, "re");
		if (!in) {
			fprintf(stderr, "loguard: suggest: %s: %s\n", o->input, strerror(errno));
			goto out;
		}
	}
	if (in == stdin && isatty(STDIN_FILENO))
		fprintf(stderr,
			"loguard: suggest: reading records from the terminal (--log-file PATH "
			"reads a file; Ctrl-D ends)\n");
	r = suggest_new(p, &o->o, &s);
	if (!r)
		r = read_records(in, name, s, &c);
	if (!r)
		r = suggest_write(s, name, &out);
	if (r) {
		fprintf(stderr, "loguard: suggest: %s: %s\n", name, strerror(-r));
		goto out;
	}
	if (c.bad > MAX_WARNINGS)
		fprintf(stderr, "%s: %" PRIu64 " more lines that are not records\n", name,
			c.bad - MAX_WARNINGS);
	if (c.skip[RECORDS_SKIP_FOREIGN])
		fprintf(stderr,
			"%s: ignored %" PRIu64
			" journal entries not logged by " RECORDS_JOURNAL_UNIT
			" (anyone can log LOGUARD_* fields)\n",
			name, c.skip[RECORDS_SKIP_FOREIGN]);
	if (suggest_unknown_guard(s))
		fprintf(stderr, "%s: ignored %" PRIu64 " records of guards %s does not have\n",
			name, suggest_unknown_guard(s), o->policy_file);
	fprintf(stderr, "%s: %" PRIu64 " connection records read from %" PRIu64 " lines\n", name,
		c.records, c.lines);
	if (!o->diff) {
		fputs(out, stdout);
	} else {
		if (asprintf(&b_name, "%s (suggested)", o->policy_file) < 0) {
			b_name = NULL;
			r = -ENOMEM;
		} else {
			r = udiff_write(stdout, o->policy_file, text, len, b_name, out, strlen(out),
					&differ);
		}
		if (r) {
			fprintf(stderr, "loguard: suggest: diff: %s\n", strerror(-r));
			goto out;
		}
	}
	rc = fflush(stdout) ? EXIT_SYSTEM : 0;
out:
	if (in && in != stdin)
		fclose(in);
	suggest_free(s);
	policy_free(p);
	free(text);
	free(out);
	free(b_name);
	return rc;
}
