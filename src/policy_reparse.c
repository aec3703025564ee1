// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Reloading one big policy file in which one guard changed: parse only the text of the guards
 * that changed and take the others from the previous parse, instead of letting libyaml scan
 * the whole file again (~270 instructions a byte: 36 ms for 10,000 guards).
 *
 * Why a splice gives exactly what a full parse gives. The previous parse was clean (no error,
 * no warning) and recorded where each item of the top-level block sequence `guards:` starts: the
 * line of its '-', at the column k of every item. The new bytes are the old ones except in one
 * window (common prefix and suffix). We take the items A before the window and B after it
 * whole, and re-parse the text W between them, from the line of the first changed item's '-'
 * (which the window leaves as it was, column 0 to k included) to the line start of the first
 * item after the window (the '\n' before it unchanged too) or the end of the sequence.
 *  - A's tokens end where they ended before: a character at column k on a new line closes every
 *    block scalar, plain scalar and simple key of an item (whose content is deeper than k), and
 *    no quote or flow collection was open there (the old parse had an item start there).
 *    Anchors, aliases and tags are refused, so nothing in a guard refers to other text.
 *  - W is parsed as "<m spaces>guards:\n" W: after its first '-' (column k) libyaml's scanner
 *    and parser are in the state the full parse is in at that '-' (top mapping at column m, the
 *    block sequence at k, line start, no flow level, no pending simple key), so both read the
 *    same events from W. The fragment must end the sequence, the mapping and the document at
 *    its very end (so W holds no top-level key, no document marker and nothing left open: an
 *    open quote or bracket is an error at the end of the fragment), parse with no message
 *    and no /etc/services name, and start an item on each '-' line at column k like the rest.
 *  - Then B's first '-' at column k (or the unchanged text after the sequence, which ended it
 *    before: a key at the top mapping's column or the end of the file) ends W's last item as
 *    the end of the fragment did, and B and what follows parse as before: same bytes in the
 *    same state.
 * What depends on the whole file is redone or checked: guard names must stay unique (a clash
 * falls back: the full parse reports it), guards without 'mode' take the file's mode (the
 * fragment is parsed with it as its default), lines after W shift by W's change in line count
 * (columns do not change: W ends at a line start). Line numbers are libyaml's: only '\n' may
 * break lines ('\r', NEL, LS and PS fall back), in UTF-8 (a UTF-16 file falls back).
 * Anything else returns -EAGAIN and the caller parses the whole file.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_reparse.h"

/* policy_parse.c's limit: a larger file is an error the full parse reports. */
#define REPARSE_MAX_BYTES (16U << 20)
/* More changed guards than this: comparing their names with all others costs more than
 * it saves; parse the file. */
#define REPARSE_MAX_CHANGED 64

static const char frag_key[] = "guards:\n";

void policy_layout_free(struct policy_layout *l)
{
	if (!l)
		return;
	free(l->line);
	free(l->start);
	free(l);
}

/* Whether libyaml breaks lines in text only at '\n' (our byte offsets of lines are then
 * libyaml's), reading it as UTF-8. */
static bool lines_plain(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	if (memchr(s, '\r', len))
		return false;
	for (const unsigned char *q = u; (q = memchr(q, 0xc2, len - (q - u))); q++)
		if ((size_t)(q - u) + 1 < len && q[1] == 0x85) /* NEL */
			return false;
	for (const unsigned char *q = u; (q = memchr(q, 0xe2, len - (q - u))); q++)
		if ((size_t)(q - u) + 2 < len && q[1] == 0x80 && (q[2] == 0xa8 || q[2] == 0xa9))
			return false; /* LS, PS */
	return true;
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 0;

	for (const char *q = s, *end = s + len; (q = memchr(q, '\n', end - q)); q++)
		n++;
	return n;
}

/* From the recorded lines, the byte offset of each; checks that every item's line is
 * k spaces and '-'. 0 or -EAGAIN (this file cannot be spliced) or -ENOMEM. */
static int layout_finish(struct policy_layout *l, const char *buf, size_t len)
{
	const unsigned char *u = (const unsigned char *)buf;
	size_t off = 0, line = 0;

	if (l->bad || !l->n || l->seq_col < l->top_col || !lines_plain(buf, len) ||
	    (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff))))
		return -EAGAIN;
	l->start = calloc(l->n + 1, sizeof(*l->start));
	if (!l->start)
		return -ENOMEM;
	for (size_t i = 0; i <= l->n; i++) {
		if (i && l->line[i] <= l->line[i - 1])
			return -EAGAIN;
		while (line < l->line[i]) {
			const char *q = memchr(buf + off, '\n', len - off);

			if (!q)
				break;
			off = (size_t)(q - buf) + 1;
			line++;
		}
		/* Only the end may lie past the last line break: at the end of a file without a
		 * final one, libyaml counts one line more; we count line breaks (splices shift
		 * by their count). */
		if (line < l->line[i]) {
			if (i < l->n)
				return -EAGAIN;
			off = len;
			l->line[i] = line;
		}
		l->start[i] = off;
		if (i == l->n)
			break;
		if (off + l->seq_col >= len || buf[off + l->seq_col] != '-')
			return -EAGAIN;
		for (size_t j = 0; j < l->seq_col; j++)
			if (buf[off + j] != ' ')
				return -EAGAIN;
	}
	return 0;
}

int policy_parse_layout(const char *file, const char *buf, size_t len,
			const struct policy_parse_opts *opts, struct diags *diags,
			struct policy **ret_policy, struct policy_layout **ret_layout)
{
	size_t said = diags ? diags->n : 0;
	struct policy_layout *l;
	int r;

	*ret_layout = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	r = policy_parse_buffer_record(file, buf, len, opts, diags, ret_policy, l);
	if (r == 0 && diags->n == said && !(*ret_policy)->services &&
	    (*ret_policy)->n_guards == l->n && layout_finish(l, buf, len) == 0) {
		*ret_layout = l;
		return 0;
	}
	policy_layout_free(l);
	return r;
}

/* Length of the common prefix of a and b (n bytes each): memcmp() by blocks, then bytes. */
static size_t common_prefix(const char *a, const char *b, size_t n)
{
	size_t i = 0;

	while (i + 4096 <= n && !memcmp(a + i, b + i, 4096))
		i += 4096;
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

/* Length of the common suffix of a and b (their last n bytes). */
static size_t common_suffix(const char *a, const char *b, size_t n)
{
	size_t i = 0;

	while (i + 4096 <= n && !memcmp(a - i - 4096, b - i - 4096, 4096))
		i += 4096;
	while (i < n && a[-1 - (ptrdiff_t)i] == b[-1 - (ptrdiff_t)i])
		i++;
	return i;
}

/* The reference lists of a guard, by index. */
static const size_t ref_off[] = {
	offsetof(struct policy_guard, users),	    offsetof(struct policy_guard, groups),
	offsetof(struct policy_guard, units),	    offsetof(struct policy_guard, cgroups),
	offsetof(struct policy_guard, executables), offsetof(struct policy_guard, launched),
};
static const size_t nref_off[] = {
	offsetof(struct policy_guard, n_users),	      offsetof(struct policy_guard, n_groups),
	offsetof(struct policy_guard, n_units),	      offsetof(struct policy_guard, n_cgroups),
	offsetof(struct policy_guard, n_executables), offsetof(struct policy_guard, n_launched),
};
#define N_REF_LISTS (sizeof(ref_off) / sizeof(ref_off[0]))

static struct policy_ref **refs_at(const struct policy_guard *g, unsigned k)
{
	return (struct policy_ref **)((char *)g + ref_off[k]);
}

static size_t *nrefs_at(const struct policy_guard *g, unsigned k)
{
	return (size_t *)((char *)g + nref_off[k]);
}

static void loc_fix(struct loc *l, const char *from, const char *file, int delta)
{
	if (l->file == from)
		l->file = file;
	if (l->line)
		l->line += delta;
}

/* Forget the parts that lived in a block. */
static void forget_parts(struct policy_guard *g)
{
	g->pack = NULL;
	g->name = NULL;
	g->ports = NULL;
	g->n_ports = 0;
	for (unsigned k = 0; k < N_REF_LISTS; k++) {
		*refs_at(g, k) = NULL;
		*nrefs_at(g, k) = 0;
	}
}

/* A packed block: its size (for the next copy: one memcpy()), then the arrays (their sizes
 * multiples of their alignment), then the strings. */
struct pack_head {
	size_t size;
};

/* ptr (inside the block from) at the same offset in the block to. */
static void *rebase(const void *ptr, const void *from, void *to)
{
	return ptr ? (char *)to + ((const char *)ptr - (const char *)from) : NULL;
}

/* Every loc of g: file for from, lines moved by delta. */
static void guard_fix_locs(struct policy_guard *g, const char *from, const char *file, int delta)
{
	loc_fix(&g->loc, from, file, delta);
	loc_fix(&g->name_loc, from, file, delta);
	loc_fix(&g->owner_loc, from, file, delta);
	for (size_t j = 0; j < g->n_ports; j++)
		loc_fix(&g->ports[j].loc, from, file, delta);
	for (unsigned k = 0; k < N_REF_LISTS; k++) {
		struct policy_ref *v = *refs_at(g, k);

		for (size_t j = 0; j < *nrefs_at(g, k); j++)
			loc_fix(&v[j].loc, from, file, delta);
	}
}

/* A packed o: its block copied whole, the pointers into it moved to the copy. */
static int copy_block(const struct policy_guard *o, struct policy_guard *g)
{
	size_t size = ((const struct pack_head *)o->pack)->size;
	void *block = malloc(size);

	if (!block)
		return -ENOMEM;
	memcpy(block, o->pack, size);
	g->pack = block;
	g->name = rebase(o->name, o->pack, block);
	g->ports = rebase(o->ports, o->pack, block);
	for (unsigned k = 0; k < N_REF_LISTS; k++) {
		struct policy_ref *v = rebase(*refs_at(o, k), o->pack, block);

		*refs_at(g, k) = v;
		for (size_t j = 0; j < *nrefs_at(g, k); j++)
			v[j].name = rebase(v[j].name, o->pack, block);
	}
	return 0;
}

/* An unpacked o: its parts gathered into one new block. */
static int pack(const struct policy_guard *o, struct policy_guard *g)
{
	size_t bytes = sizeof(struct pack_head) + o->n_ports * sizeof(*o->ports);
	size_t strs = o->name ? strlen(o->name) + 1 : 0;
	char *block, *at, *str;

	for (unsigned k = 0; k < N_REF_LISTS; k++) {
		const struct policy_ref *v = *refs_at(o, k);

		bytes += *nrefs_at(o, k) * sizeof(*v);
		for (size_t j = 0; j < *nrefs_at(o, k); j++)
			strs += strlen(v[j].name) + 1;
	}
	block = malloc(bytes + strs);
	if (!block)
		return -ENOMEM;
	((struct pack_head *)block)->size = bytes + strs;
	g->pack = block;
	at = block + sizeof(struct pack_head);
	str = block + bytes;
	if (o->n_ports) {
		g->ports = memcpy(at, o->ports, o->n_ports * sizeof(*o->ports));
		at += o->n_ports * sizeof(*o->ports);
	}
	for (unsigned k = 0; k < N_REF_LISTS; k++) {
		const struct policy_ref *v = *refs_at(o, k);
		size_t n = *nrefs_at(o, k);
		struct policy_ref *c;

		if (!n)
			continue;
		c = memcpy(at, v, n * sizeof(*c));
		*refs_at(g, k) = c;
		at += n * sizeof(*c);
		for (size_t j = 0; j < n; j++) {
			size_t sl = strlen(v[j].name) + 1;

			c[j].name = memcpy(str, v[j].name, sl);
			str += sl;
		}
	}
	if (o->name)
		g->name = memcpy(str, o->name, strlen(o->name) + 1);
	return 0;
}

int guard_copy_packed(const struct policy_guard *o, const char *from, const char *file,
		      int line_delta, struct policy_guard *g)
{
	int r;

	*g = *o;
	g->pack = NULL;
	g->uids = NULL;
	g->cgroup_ids = NULL;
	g->exe_ids = NULL;
	g->n_uids = g->n_cgroup_ids = g->n_exe_ids = 0;
	r = o->pack ? copy_block(o, g) : pack(o, g);
	if (r < 0) {
		forget_parts(g); /* nothing of o's for policy_free() to free */
		return r;
	}
	guard_fix_locs(g, from, file, line_delta);
	return 0;
}

/* A policy with p's global settings, the file name file and room for n guards (none yet). */
static struct policy *policy_shell(const struct policy *p, const char *file, size_t n)
{
	struct policy *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	policy_copy_settings(c, p);
	c->file = strdup(file);
	/* Not calloc(): every guard is written before it is counted (2.6 MB zeroed for
	 * nothing on 10,000 guards). */
	c->guards = reallocarray(NULL, n + 1, sizeof(*c->guards));
	if (!c->file || !c->guards) {
		policy_free(c);
		return NULL;
	}
	return c;
}

/* Append packed copies of guards [from, to) of p, lines moved by delta. */
static int copy_guards(struct policy *c, const struct policy *p, size_t from, size_t to, int delta)
{
	for (size_t i = from; i < to; i++) {
		/* Counted first: policy_free() frees what a failed copy got. */
		if (guard_copy_packed(&p->guards[i], p->file, c->file, delta,
				      &c->guards[c->n_guards++]) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Whether a guard of frag (the changed ones) has the name of an unchanged one of old. */
static bool names_clash(const struct policy *old, size_t i0, size_t i1, const struct policy *frag)
{
	for (size_t j = 0; j < frag->n_guards; j++) {
		const char *name = frag->guards[j].name;

		for (size_t i = 0; i < old->n_guards; i++) {
			if (i == i0) {
				i = i1 - 1;
				continue;
			}
			if (!strcmp(old->guards[i].name, name))
				return true;
		}
	}
	return false;
}

/* The largest i < n with start[i] <= x, or n when none. */
static size_t item_at(const struct policy_layout *l, size_t x)
{
	size_t lo = 0, hi = l->n; /* the answer is in [lo - 1, hi) */

	if (!l->n || l->start[0] > x)
		return l->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->start[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The layout of the new file: A's items, the fragment's moved to start at W's offset and
 * line, then B's and the end moved by the change in bytes and lines. */
static struct policy_layout *layout_splice(const struct policy_layout *ol,
					   const struct policy_layout *fl, size_t i0, size_t i1,
					   size_t hdr, long dbytes, long dlines)
{
	struct policy_layout *l = calloc(1, sizeof(*l));
	size_t n = i0 + fl->n + (ol->n - i1), k = 0;

	if (!l)
		return NULL;
	l->top_col = ol->top_col;
	l->seq_col = ol->seq_col;
	l->n = l->cap = n;
	l->line = calloc(n + 1, sizeof(*l->line));
	l->start = calloc(n + 1, sizeof(*l->start));
	if (!l->line || !l->start) {
		policy_layout_free(l);
		return NULL;
	}
	for (size_t i = 0; i < i0; i++, k++) {
		l->line[k] = ol->line[i];
		l->start[k] = ol->start[i];
	}
	for (size_t j = 0; j < fl->n; j++, k++) {
		l->line[k] = fl->line[j] - 1 + ol->line[i0];
		l->start[k] = fl->start[j] - hdr + ol->start[i0];
	}
	for (size_t i = i1; i <= ol->n; i++, k++) {
		l->line[k] = ol->line[i] + dlines;
		l->start[k] = ol->start[i] + dbytes;
	}
	return l;
}

/* Parse the fragment m spaces + "guards:\n" + w as the changed items; 0 when it holds only
 * complete items as described at the top, else -EAGAIN or -ENOMEM. */
static int parse_fragment(const char *file, const struct policy *old,
			  const struct policy_layout *ol, const struct policy_parse_opts *opts,
			  const char *w, size_t wlen, struct policy **ret_frag,
			  struct policy_layout **ret_fl)
{
	size_t hdr = ol->top_col + strlen(frag_key), flen = hdr + wlen;
	/* A drop-in's parse: guards only, without 'mode' taking the file's. */
	struct policy_parse_opts fo = { .main_file =
						opts && opts->main_file ? opts->main_file : file,
					.mode = old->mode };
	struct diags said = { 0 };
	struct policy_layout *fl = NULL;
	struct policy *frag = NULL;
	char *fbuf;
	int r;

	fbuf = malloc(flen + 1);
	if (!fbuf)
		return -ENOMEM;
	memset(fbuf, ' ', ol->top_col);
	memcpy(fbuf + ol->top_col, frag_key, strlen(frag_key));
	memcpy(fbuf + hdr, w, wlen);
	r = policy_parse_layout(file, fbuf, flen, &fo, &said, &frag, &fl);
	free(fbuf);
	if (r < 0)
		r = r == -ENOMEM ? r : -EAGAIN;
	else if (said.n || !fl || fl->seq_col != ol->seq_col || fl->top_col != ol->top_col ||
		 fl->line[0] != 1 || fl->start[fl->n] != flen ||
		 frag->n_guards > REPARSE_MAX_CHANGED)
		r = -EAGAIN;
	diags_free(&said);
	if (r < 0) {
		policy_free(frag);
		policy_layout_free(fl);
		return r;
	}
	*ret_frag = frag;
	*ret_fl = fl;
	return 0;
}

int policy_reparse(const char *file, const char *old_buf, size_t old_len, const struct policy *old,
		   const struct policy_layout *ol, const char *buf, size_t len,
		   const struct policy_parse_opts *opts, struct policy **ret_policy,
		   struct policy_layout **ret_layout)
{
	size_t min = old_len < len ? old_len : len, pre, suf, oe, i0, i1, w0, w1, hdr;
	long dbytes = (long)len - (long)old_len, dlines;
	struct policy_layout *fl = NULL, *nl = NULL;
	struct policy *frag = NULL, *np = NULL;
	unsigned k;
	int r;

	if (!old || !ol || ol->bad || !ol->start || old->n_dropins || old->parts || old->services ||
	    old->n_guards != ol->n || len > REPARSE_MAX_BYTES || !file || strcmp(file, old->file))
		return -EAGAIN;
	k = ol->seq_col;
	pre = common_prefix(old_buf, buf, min);
	if (pre == old_len && pre == len)
		return -EAGAIN; /* the same bytes: the caller shares the old parse */
	suf = common_suffix(old_buf + old_len, buf + len, min - pre);
	oe = old_len - suf; /* the old window [pre, oe), the new one [pre, len - suf) */

	/* The first item whose '-' line is unchanged up to its '-' included: A ends before it. */
	if (pre < k + 1)
		return -EAGAIN;
	i0 = item_at(ol, pre - k - 1);
	if (i0 == ol->n)
		return -EAGAIN; /* the change begins before the first item's '-' */
	/* The first item (or the end of the sequence) after the window and after the line
	 * break before it: B starts there. */
	for (i1 = i0 + 1; i1 <= ol->n; i1++)
		if (ol->start[i1] > oe)
			break;
	if (i1 > ol->n) {
		if (ol->start[ol->n] != old_len)
			return -EAGAIN; /* the change reaches past the sequence */
		i1 = ol->n;		/* the sequence ended the file: W runs to the new end */
	}
	w0 = ol->start[i0];
	w1 = ol->start[i1] + dbytes;
	if (w1 < w0 || w1 > len || !lines_plain(buf + w0, w1 - w0))
		return -EAGAIN;

	r = parse_fragment(file, old, ol, opts, buf + w0, w1 - w0, &frag, &fl);
	if (r < 0)
		return r;
	if (names_clash(old, i0, i1, frag)) {
		r = -EAGAIN;
		goto out;
	}
	dlines = (long)count_lines(buf + w0, w1 - w0) -
		 (long)count_lines(old_buf + w0, ol->start[i1] - w0);
	hdr = ol->top_col + strlen(frag_key);
	r = -ENOMEM;
	np = policy_shell(old, file, i0 + frag->n_guards + (old->n_guards - i1));
	if (!np)
		goto out;
	/* Fragment line L (1-based) is line L - 2 + (item i0's line, 1-based) of the file. */
	if (copy_guards(np, old, 0, i0, 0) < 0 ||
	    copy_guards(np, frag, 0, frag->n_guards, (int)ol->line[i0] - 1) < 0 ||
	    copy_guards(np, old, i1, old->n_guards, (int)dlines) < 0)
		goto out;
	nl = layout_splice(ol, fl, i0, i1, hdr, dbytes, dlines);
	if (!nl)
		goto out;
	*ret_policy = np;
	*ret_layout = nl;
	np = NULL;
	r = 0;
out:
	policy_free(np);
	policy_free(frag);
	policy_layout_free(fl);
	return r;
}
