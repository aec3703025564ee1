// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Policy format v1: YAML text → struct policy, every node located (file:line:col).
 *
 * The input is untrusted. We read libyaml's event stream with a recursive descent that follows
 * the schema (at most five levels deep) and skip unknown subtrees iteratively, so no input can
 * recurse us deeply, and we never build a generic document tree (whose size a hostile file
 * would control). Aliases are rejected instead of expanded: no "billion laughs".
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "array.h"
#include "launch.h"
#include "policy.h"
#include "policy_reparse.h"

#define POLICY_MAX_BYTES (16U << 20)
/* Deeper than any valid policy by far; bounds libyaml's stacks and our skipping. */
#define POLICY_MAX_DEPTH 64
/* Past this many errors the rest is noise (and a hostile file could make millions). */
#define POLICY_MAX_ERRORS 50
#define GUARD_NAME_MAX	  32
#define SERVICE_NAME_MAX  64
#define UNIT_NAME_MAX	  255
#define CGROUP_PATH_MAX	  4095
/* Distinct service names are bounded by the services database; this bounds the linear cache. */
#define SVC_CACHE_MAX 256

enum node_kind {
	NODE_SCALAR,
	NODE_NULL, /* a plain empty scalar, "~" or "null": a key written without a value */
	NODE_SEQUENCE,
	NODE_MAPPING,
	NODE_ALIAS,
	NODE_OTHER,
};

struct svc_cache_entry {
	char *name;
	unsigned proto; /* POLICY_PROTO_TCP or POLICY_PROTO_UDP */
	int port;	/* -1: unknown for that protocol */
};

/* A service name in 'ports', resolved once the guard's protocol is known. */
struct pending_port {
	size_t idx;
	char *name;
};

/* Parser state for one policy_parse_buffer() call. */
struct parse_ctx {
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
	struct policy *p;
	struct diags *diags;
	unsigned depth;
	unsigned n_errors;
	int fatal; /* < 0: stop parsing, this is the return value */
	size_t cap_guards;
	size_t len;	       /* of the text: sizes the guards array */
	struct loc *name_locs; /* parallel to p->guards: where each name was written */
	bool *mode_set;	       /* parallel to p->guards: mode given explicitly */
	struct svc_cache_entry svc[SVC_CACHE_MAX];
	size_t n_svc;
	const struct policy_parse_opts *opts; /* a drop-in: of which main file, its mode */
	struct policy_layout *layout;	      /* NULL, or where the guards were written */
};

/* Keys of one kind of mapping and how to name them in messages. */
struct map_spec {
	const char *in; /* " in guard", "" at top level */
	const char *const *keys;
	unsigned n_keys;
	const char *allowed; /* "a, b, c" */
};

enum { TOP_VERSION, TOP_MODE, TOP_LOG, TOP_COUNTERS, TOP_QUEUE, TOP_GUARDS, __TOP_MAX };
static const char *const top_keys[] = { "version", "mode", "log", "counters", "queue", "guards" };
static const struct map_spec top_spec = { "", top_keys, __TOP_MAX,
					  "version, mode, log, counters, queue, guards" };

/* Indexed by the bool value. YAML 1.1's yes/no/on/off are refused: say true or false. */
static const char *const bool_names[] = { "false", "true" };

enum { LOG_GROUP, LOG_RATE, LOG_BURST, __LOG_MAX };
static const char *const log_keys[] = { "group", "rate", "burst" };
static const struct map_spec log_spec = { " in 'log'", log_keys, __LOG_MAX, "group, rate, burst" };
/* The kernel refuses a burst whose token count overflows 64 bits (burst * unit / rate in ns):
 * 100000 at 1/day is 8.6e18. */
#define LOG_BURST_MAX 100000

enum { G_NAME, G_PORTS, G_PROTOCOL, G_ALLOW, G_ACTION, G_MODE, G_LOG, G_FAIL, G_SHARE, __G_MAX };
static const char *const guard_keys[] = { "name",   "ports", "protocol", "allow", "action",
					  "mode",   "log",   "fail",	 "share" };
static const struct map_spec guard_spec = { " in guard", guard_keys, __G_MAX,
					    "name, ports, protocol, allow, action, mode, log, "
					    "fail, share" };

/* The list keys first (parse_ref's tables are indexed by them), then owner. */
enum { A_USERS, A_GROUPS, A_UNITS, A_CGROUPS, A_EXECUTABLES, A_LAUNCHED, A_OWNER, __A_MAX };
#define A_LISTS A_OWNER
static const char *const allow_keys[] = { "users",	 "groups",   "units", "cgroups",
					  "executables", "launched", "owner" };
static const struct map_spec allow_spec = {
	" in 'allow'", allow_keys, __A_MAX,
	"users, groups, units, cgroups, executables, launched, owner"
};

static const char *const mode_names[__POLICY_MODE_MAX] = {
	[POLICY_MODE_ENFORCE] = "enforce",
	[POLICY_MODE_AUDIT] = "audit",
};

static const char *const action_names[__POLICY_ACTION_MAX] = {
	[POLICY_ACTION_REJECT] = "reject",
	[POLICY_ACTION_DROP] = "drop",
};

static const char *const log_names[__POLICY_LOG_MAX] = {
	[POLICY_LOG_NONE] = "none",
	[POLICY_LOG_DENIED] = "denied",
	[POLICY_LOG_ALL] = "all",
};

static const char *const fail_names[__POLICY_FAIL_MAX] = {
	[POLICY_FAIL_CLOSED] = "closed",
	[POLICY_FAIL_OPEN] = "open",
};

static const char *const rate_unit_names[__POLICY_RATE_MAX] = {
	[POLICY_RATE_SECOND] = "second",
	[POLICY_RATE_MINUTE] = "minute",
	[POLICY_RATE_HOUR] = "hour",
	[POLICY_RATE_DAY] = "day",
};

static const char *const proto_names[] = { "tcp", "udp", "both" };
static const unsigned proto_bits[] = { POLICY_PROTO_TCP, POLICY_PROTO_UDP,
				       POLICY_PROTO_TCP | POLICY_PROTO_UDP };

const char *policy_mode_name(enum policy_mode m)
{
	return (unsigned)m < __POLICY_MODE_MAX ? mode_names[m] : "?";
}

const char *policy_action_name(enum policy_action a)
{
	return (unsigned)a < __POLICY_ACTION_MAX ? action_names[a] : "?";
}

const char *policy_log_name(enum policy_log l)
{
	return (unsigned)l < __POLICY_LOG_MAX ? log_names[l] : "?";
}

const char *policy_fail_name(enum policy_fail f)
{
	return (unsigned)f < __POLICY_FAIL_MAX ? fail_names[f] : "?";
}

const char *policy_rate_unit_name(enum policy_rate_unit u)
{
	return (unsigned)u < __POLICY_RATE_MAX ? rate_unit_names[u] : "?";
}

static bool is_unit_char(char ch)
{
	return ch && isascii((unsigned char)ch) &&
	       (isalnum((unsigned char)ch) || strchr(":_.\\@-", ch));
}

/* Units are matched by fnmatch() globs: "app-*.scope", "[!x]*.service" ('\\' is literal). */
static bool is_unit_glob_char(const char *s, size_t i)
{
	return is_unit_char(s[i]) || s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == ']' ||
	       ((s[i] == '!' || s[i] == '^') && i > 0 && s[i - 1] == '[');
}

/* fnmatch() takes an unclosed '[' literally, which no unit or cgroup name contains: the entry
 * would silently match nothing. A ']' first in the set (after any '!' or '^') is a member. */
static bool brackets_closed(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t j = i + 1;

		if (s[i] != '[')
			continue;
		if (j < len && (s[j] == '!' || s[j] == '^'))
			j++;
		if (j < len && s[j] == ']')
			j++;
		while (j < len && s[j] != ']')
			j++;
		if (j == len)
			return false;
		i = j;
	}
	return true;
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len > n && !memcmp(s + len - n, suffix, n);
}

static const char *unit_glob_invalid(const char *name)
{
	static const char *const with_cgroup[] = { ".service", ".scope", ".slice",
						   ".socket",  ".mount", ".swap" };
	static const char *const without_cgroup[] = { ".target", ".timer", ".path", ".device",
						      ".automount" };
	size_t len = strlen(name);

	for (size_t i = 0; i < len; i++)
		if (!is_unit_glob_char(name, i))
			goto bad_name;
	if (len > UNIT_NAME_MAX)
		goto bad_name;
	if (!brackets_closed(name, len))
		return "has an unclosed '['";

	if (has_suffix(name, len, ".slice")) {
		size_t n = len - strlen(".slice");

		/* The root slice holds every process: allowing it would allow everyone. */
		if (n == 1 && name[0] == '-')
			return "is the root slice and would match every process";
		/* Dashes name the parent slices, so they cannot start, end or repeat. */
		if (name[0] == '-' || name[n - 1] == '-' || memmem(name, n, "--", 2))
			return "is not a valid slice name (no leading, trailing or doubled '-')";
		return NULL;
	}
	for (size_t i = 0; i < sizeof(with_cgroup) / sizeof(with_cgroup[0]); i++)
		if (has_suffix(name, len, with_cgroup[i]))
			return NULL;
	for (size_t i = 0; i < sizeof(without_cgroup) / sizeof(without_cgroup[0]); i++)
		if (has_suffix(name, len, without_cgroup[i]))
			return "has no cgroup (expected a .service, .scope, .slice, .socket, "
			       ".mount or .swap unit)";
bad_name:
	return "is not a unit name (expected NAME.service, .scope, .slice, .socket, .mount or "
	       ".swap)";
}

/* "NAME" or "user@UID.service/NAME" (a unit of that user's manager), each part a glob. */
const char *policy_unit_name_invalid(const char *name)
{
	const char *slash = strchr(name, '/');
	size_t n = slash ? (size_t)(slash - name) : 0;

	if (!slash || strncmp(name, "user@", strlen("user@")))
		return unit_glob_invalid(name);
	for (size_t i = 0; i < n; i++)
		if (!is_unit_glob_char(name, i))
			goto bad_user;
	if (n > UNIT_NAME_MAX || !has_suffix(name, n, ".service"))
		goto bad_user;
	if (!brackets_closed(name, n))
		return "has an unclosed '['";
	return unit_glob_invalid(slash + 1);
bad_user:
	return "is not a user manager's unit (expected user@UID.service/NAME; UID may be a glob)";
}

const char *policy_cgroup_path_invalid(const char *path)
{
	const char *s = path[0] == '/' ? path + 1 : path;

	if (!*s)
		return "is the root cgroup and would match every process";
	if (strlen(s) > CGROUP_PATH_MAX)
		return "is too long (at most 4095 bytes)";
	if (!brackets_closed(s, strlen(s)))
		return "has an unclosed '['";
	while (*s) {
		const char *end = strchrnul(s, '/');
		size_t n = end - s;

		if (n == 0)
			return "has an empty path component";
		/* We open the path under the cgroup2 mount: never let it climb out. */
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return "has a '.' or '..' component";
		if (!*end)
			break;
		s = end + 1;
		if (!*s)
			return "has an empty path component";
	}
	return NULL;
}

static struct loc mark_loc(const struct parse_ctx *c, yaml_mark_t m)
{
	return (struct loc){ .file = c->p->file, .line = m.line + 1, .col = m.column + 1 };
}

static struct loc ev_loc(const struct parse_ctx *c)
{
	return mark_loc(c, c->ev.start_mark);
}

static int fail(struct parse_ctx *c, int r)
{
	if (!c->fatal)
		c->fatal = r;
	return c->fatal;
}

/* Queue an error; returns < 0 once parsing must stop (out of memory or too many errors). */
__attribute__((format(printf, 3, 4))) static int error(struct parse_ctx *c, const struct loc *loc,
						       const char *fmt, ...)
{
	struct loc whole = { .file = c->p->file };
	char *msg;
	va_list ap;
	int r;

	if (c->fatal)
		return c->fatal;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return fail(c, -ENOMEM);
	r = diags_add(c->diags, DIAG_ERROR, loc, "%s", msg);
	free(msg);
	if (r < 0)
		return fail(c, r);
	if (++c->n_errors >= POLICY_MAX_ERRORS) {
		r = diags_add(c->diags, DIAG_ERROR, &whole, "too many errors, stopping");
		c->n_errors++;
		return fail(c, r < 0 ? r : -EINVAL);
	}
	return 0;
}

/* Whether the parser stopped at a tab of the input (a string: policy_parse_buffer). */
static bool at_tab(const yaml_parser_t *y)
{
	const unsigned char *start = y->input.string.start, *end = y->input.string.end;

	return start && y->problem_mark.index < (size_t)(end - start) &&
	       start[y->problem_mark.index] == '\t';
}

static void syntax_error(struct parse_ctx *c)
{
	const yaml_parser_t *y = &c->parser;
	const char *problem = y->problem ? y->problem : "unknown error";
	struct loc loc = mark_loc(c, y->problem_mark);

	if (y->error == YAML_MEMORY_ERROR) {
		fail(c, -ENOMEM);
		return;
	}
	/* The reader (encoding) stage only knows a byte offset, not a line. */
	if (y->error == YAML_READER_ERROR) {
		loc.line = loc.col = 0;
		error(c, &loc, "invalid YAML: %s at byte %zu", problem, y->problem_offset);
	} else if (at_tab(y)) {
		/* libyaml's words for a tab say nothing about tabs. */
		error(c, &loc, "invalid YAML: %s: a tab (YAML indents with spaces only)", problem);
	} else if (y->context) {
		error(c, &loc, "invalid YAML: %s (%s at %zu:%zu)", problem, y->context,
		      y->context_mark.line + 1, y->context_mark.column + 1);
	} else {
		error(c, &loc, "invalid YAML: %s", problem);
	}
	fail(c, -EINVAL);
}

/* Reject YAML features that make one text mean several things. */
static void check_node_props(struct parse_ctx *c, const yaml_char_t *anchor, const yaml_char_t *tag)
{
	struct loc loc = ev_loc(c);
	char b[DIAG_QUOTE_SIZE];

	if (anchor)
		error(c, &loc, "YAML anchor '&%s' is not supported (write the value out)",
		      diag_quote_str(b, (const char *)anchor));
	if (tag)
		error(c, &loc, "YAML tag '%s' is not supported",
		      diag_quote_str(b, (const char *)tag));
}

/* Make the next event current. Returns 0 or < 0 when parsing must stop. */
static int next(struct parse_ctx *c)
{
	char b[DIAG_QUOTE_SIZE];
	struct loc loc;

	if (c->fatal)
		return c->fatal;
	if (c->have_ev) {
		yaml_event_delete(&c->ev);
		c->have_ev = false;
	}
	if (!yaml_parser_parse(&c->parser, &c->ev)) {
		syntax_error(c);
		return c->fatal;
	}
	c->have_ev = true;

	switch (c->ev.type) {
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (++c->depth > POLICY_MAX_DEPTH) {
			loc = ev_loc(c);
			error(c, &loc, "nesting too deep (at most %d levels)", POLICY_MAX_DEPTH);
			return fail(c, -EINVAL);
		}
		if (c->ev.type == YAML_SEQUENCE_START_EVENT)
			check_node_props(c, c->ev.data.sequence_start.anchor,
					 c->ev.data.sequence_start.tag);
		else
			check_node_props(c, c->ev.data.mapping_start.anchor,
					 c->ev.data.mapping_start.tag);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		c->depth--;
		break;
	case YAML_SCALAR_EVENT:
		check_node_props(c, c->ev.data.scalar.anchor, c->ev.data.scalar.tag);
		break;
	case YAML_ALIAS_EVENT:
		loc = ev_loc(c);
		error(c, &loc, "YAML alias '*%s' is not supported (write the value out)",
		      diag_quote_str(b, (const char *)c->ev.data.alias.anchor));
		break;
	default:
		break;
	}
	return c->fatal;
}

static enum node_kind kind(const struct parse_ctx *c)
{
	const char *s;
	size_t len;

	switch (c->ev.type) {
	case YAML_SCALAR_EVENT:
		if (c->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return NODE_SCALAR;
		s = (const char *)c->ev.data.scalar.value;
		len = c->ev.data.scalar.length;
		if (len == 0 || (len == 1 && s[0] == '~') ||
		    (len == 4 &&
		     (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4))))
			return NODE_NULL;
		return NODE_SCALAR;
	case YAML_SEQUENCE_START_EVENT:
		return NODE_SEQUENCE;
	case YAML_MAPPING_START_EVENT:
		return NODE_MAPPING;
	case YAML_ALIAS_EVENT:
		return NODE_ALIAS;
	default:
		return NODE_OTHER;
	}
}

static const char *got_name(enum node_kind k)
{
	switch (k) {
	case NODE_SCALAR:
		return "a scalar";
	case NODE_NULL:
		return "an empty value";
	case NODE_SEQUENCE:
		return "a sequence";
	case NODE_MAPPING:
		return "a mapping";
	case NODE_ALIAS:
		return "an alias";
	default:
		return "something else";
	}
}

/* Consume the current node (scalar or whole collection); the node's last event stays current. */
static int skip_node(struct parse_ctx *c)
{
	unsigned target;

	if (c->ev.type != YAML_SEQUENCE_START_EVENT && c->ev.type != YAML_MAPPING_START_EVENT)
		return c->fatal;
	target = c->depth - 1;
	while (!next(c)) {
		if ((c->ev.type == YAML_SEQUENCE_END_EVENT ||
		     c->ev.type == YAML_MAPPING_END_EVENT) &&
		    c->depth == target)
			break;
	}
	return c->fatal;
}

/*
 * True when the current node is a `want`; otherwise report "expected a <want> for <what>",
 * skip the node and return false. An alias was reported when it was read.
 */
static bool expect(struct parse_ctx *c, enum node_kind want, const char *what)
{
	static const char *const want_names[] = {
		[NODE_SCALAR] = "scalar", [NODE_SEQUENCE] = "sequence", [NODE_MAPPING] = "mapping"
	};
	enum node_kind k = kind(c);
	struct loc loc = ev_loc(c);

	if (k == want || (want == NODE_SCALAR && k == NODE_NULL))
		return true;
	if (k != NODE_ALIAS)
		error(c, &loc, "expected a %s for %s (got %s)", want_names[want], what,
		      got_name(k));
	skip_node(c);
	return false;
}

/*
 * Advance to the next key of the mapping being read. Returns 1 with the key's index in
 * *ret_key, its location in *ret_loc and the value's first event current; 0 at the end of the
 * mapping; < 0 when parsing must stop. Unknown, duplicate and non-scalar keys are reported and
 * skipped with their values.
 */
static int map_next_key(struct parse_ctx *c, const struct map_spec *spec, struct loc *seen,
			unsigned *ret_key, struct loc *ret_loc)
{
	char b[DIAG_QUOTE_SIZE];

	for (;;) {
		enum node_kind k;
		const char *s;
		struct loc loc;
		size_t len;
		unsigned i;

		if (next(c))
			return c->fatal;
		if (c->ev.type == YAML_MAPPING_END_EVENT)
			return 0;

		k = kind(c);
		loc = ev_loc(c);
		if (k != NODE_SCALAR && k != NODE_NULL) {
			if (k != NODE_ALIAS)
				error(c, &loc, "expected a scalar key%s (got %s)", spec->in,
				      got_name(k));
			if (skip_node(c) || next(c) || skip_node(c))
				return c->fatal;
			continue;
		}

		s = (const char *)c->ev.data.scalar.value;
		len = c->ev.data.scalar.length;
		for (i = 0; i < spec->n_keys; i++)
			if (strlen(spec->keys[i]) == len && !memcmp(spec->keys[i], s, len))
				break;
		if (i == spec->n_keys) {
			error(c, &loc, "unknown key '%s'%s (expected one of: %s)",
			      diag_quote(b, s, len), spec->in, spec->allowed);
		} else if (seen[i].line) {
			error(c, &loc, "duplicate key '%s'%s (first at %u:%u)", spec->keys[i],
			      spec->in, seen[i].line, seen[i].col);
		} else {
			seen[i] = loc;
			*ret_key = i;
			*ret_loc = loc;
			return next(c) ? c->fatal : 1;
		}
		if (next(c) || skip_node(c))
			return c->fatal;
	}
}

/* Read the current node as a scalar: *ret_s is libyaml's buffer, valid until the next event. */
static bool get_scalar(struct parse_ctx *c, const char *what, const char **ret_s, size_t *ret_len)
{
	const char *s;
	size_t len;

	if (!expect(c, NODE_SCALAR, what))
		return false;
	s = (const char *)c->ev.data.scalar.value;
	len = c->ev.data.scalar.length;
	/* "\0" is a valid YAML escape; a name with a NUL would be silently cut by C strings. */
	if (memchr(s, '\0', len)) {
		struct loc loc = ev_loc(c);

		error(c, &loc, "%s contains a NUL character", what);
		return false;
	}
	*ret_s = s;
	*ret_len = len;
	return true;
}

static bool get_enum(struct parse_ctx *c, const char *what, const char *const *names, unsigned n,
		     const char *allowed, unsigned *ret)
{
	char b[DIAG_QUOTE_SIZE];
	const char *s;
	size_t len;
	struct loc loc = ev_loc(c);

	if (!get_scalar(c, what, &s, &len))
		return false;
	for (unsigned i = 0; i < n; i++) {
		if (strlen(names[i]) == len && !memcmp(names[i], s, len)) {
			*ret = i;
			return true;
		}
	}
	error(c, &loc, "invalid %s '%s' (expected one of: %s)", what, diag_quote(b, s, len),
	      allowed);
	return false;
}

/* Parse a decimal number; -EINVAL if not all digits, -ERANGE if above max. */
static int parse_uint(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (v > (max - (s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

static void parse_version(struct parse_ctx *c)
{
	char b[DIAG_QUOTE_SIZE];
	struct loc loc = ev_loc(c);
	const char *s;
	size_t len;
	uint64_t v;

	if (!get_scalar(c, "'version'", &s, &len))
		return;
	if (parse_uint(s, len, UINT32_MAX, &v) || v != 1) {
		error(c, &loc, "unsupported version '%s' (expected 1)", diag_quote(b, s, len));
		return;
	}
	c->p->version = v;
}

static void parse_queue(struct parse_ctx *c)
{
	struct loc loc = ev_loc(c);
	char b[DIAG_QUOTE_SIZE];
	const char *s;
	uint64_t v;
	size_t len;
	int r;

	if (!get_scalar(c, "'queue'", &s, &len))
		return;
	r = parse_uint(s, len, UINT16_MAX, &v);
	if (r == -ERANGE)
		error(c, &loc, "queue %s out of range (expected 0-65535)", diag_quote(b, s, len));
	else if (r)
		error(c, &loc, "invalid queue '%s' (expected a number 0-65535)",
		      diag_quote(b, s, len));
	else
		c->p->queue_num = v;
}

static void parse_log(struct parse_ctx *c)
{
	struct loc seen[__LOG_MAX] = { 0 }, key_loc, loc;
	const char *s, *slash;
	char b[DIAG_QUOTE_SIZE];
	unsigned key, u;
	uint64_t v;
	size_t len;
	int r;

	if (kind(c) == NODE_NULL)
		return;
	if (!expect(c, NODE_MAPPING, "'log'"))
		return;
	while ((r = map_next_key(c, &log_spec, seen, &key, &key_loc)) > 0) {
		loc = ev_loc(c);
		if (key == LOG_GROUP) {
			if (!get_scalar(c, "'group'", &s, &len))
				continue;
			r = parse_uint(s, len, UINT16_MAX, &v);
			if (r == -ERANGE)
				error(c, &loc, "log group %s out of range (expected 0-65535)",
				      diag_quote(b, s, len));
			else if (r)
				error(c, &loc, "invalid log group '%s' (expected a number 0-65535)",
				      diag_quote(b, s, len));
			else
				c->p->log_group = v;
			continue;
		}
		if (key == LOG_BURST) {
			if (!get_scalar(c, "'burst'", &s, &len))
				continue;
			r = parse_uint(s, len, LOG_BURST_MAX, &v);
			if (r || v == 0)
				error(c, &loc,
				      "invalid log burst '%s' (expected a number of records 1-%u)",
				      diag_quote(b, s, len), LOG_BURST_MAX);
			else
				c->p->log_burst = v;
			continue;
		}

		/* key == LOG_RATE: "N/unit", or 0 / none for no limit. */
		if (!get_scalar(c, "'rate'", &s, &len))
			continue;
		if ((len == 1 && s[0] == '0') || (len == 4 && !memcmp(s, "none", 4))) {
			c->p->log_rate = 0;
			continue;
		}
		slash = memchr(s, '/', len);
		if (slash && !parse_uint(s, slash - s, UINT32_MAX, &v) && v > 0) {
			size_t ulen = len - (slash - s) - 1;

			for (u = 0; u < __POLICY_RATE_MAX; u++)
				if (strlen(rate_unit_names[u]) == ulen &&
				    !memcmp(rate_unit_names[u], slash + 1, ulen))
					break;
			if (u < __POLICY_RATE_MAX) {
				c->p->log_rate = v;
				c->p->log_rate_unit = u;
				continue;
			}
		}
		error(c, &loc,
		      "invalid log rate '%s' (expected N/second, N/minute, N/hour or N/day with N "
		      "1-4294967295, or 0 or none for no limit)",
		      diag_quote(b, s, len));
	}
}

/* One guard while it is being read. */
struct guard_state {
	struct policy_guard *g;
	size_t idx;
	size_t cap_ports;
	size_t cap_refs[A_LISTS];
	struct pending_port *pend;
	size_t n_pend, cap_pend;
};

static bool is_service_char(char ch)
{
	return ch && isascii((unsigned char)ch) &&
	       (isalnum((unsigned char)ch) || strchr("._+-", ch));
}

static void parse_port(struct parse_ctx *c, struct guard_state *gs)
{
	struct policy_guard *g = gs->g;
	struct policy_ports *pp;
	char b[DIAG_QUOTE_SIZE];
	struct loc loc = ev_loc(c);
	bool name_chars = true, has_alpha = false;
	const char *s, *dash;
	uint64_t a, z;
	size_t len;
	int r;

	if (!get_scalar(c, "an entry of 'ports'", &s, &len))
		return;

	for (size_t i = 0; i < len; i++) {
		name_chars &= is_service_char(s[i]);
		has_alpha |= !!isalpha((unsigned char)s[i]);
	}

	r = parse_uint(s, len, 65535, &a);
	if (r == 0 || r == -ERANGE) {
		if (r || a == 0) {
			error(c, &loc, "port %s out of range (expected 1-65535)",
			      diag_quote(b, s, len));
			return;
		}
		z = a;
	} else if (!has_alpha && (dash = memchr(s, '-', len)) && dash > s) {
		size_t la = dash - s, lz = len - la - 1;

		int ra = parse_uint(s, la, 65535, &a), rz = parse_uint(dash + 1, lz, 65535, &z);

		if (ra == -EINVAL || rz == -EINVAL)
			goto invalid;
		if (ra || rz || a == 0 || z == 0) {
			error(c, &loc, "port range %s out of range (expected 1-65535)",
			      diag_quote(b, s, len));
			return;
		}
		if (a > z) {
			error(c, &loc, "port range %s is reversed (expected first <= last)",
			      diag_quote(b, s, len));
			return;
		}
	} else if (has_alpha && name_chars && len <= SERVICE_NAME_MAX) {
		/* A service name: its port depends on the protocol, which may come later. */
		if (array_grow(&gs->pend, &gs->cap_pend, gs->n_pend, sizeof(*gs->pend)) < 0) {
			fail(c, -ENOMEM);
			return;
		}
		gs->pend[gs->n_pend].idx = g->n_ports;
		gs->pend[gs->n_pend].name = strndup(s, len);
		if (!gs->pend[gs->n_pend].name) {
			fail(c, -ENOMEM);
			return;
		}
		gs->n_pend++;
		c->p->services = true;
		a = z = 0;
	} else {
		goto invalid;
	}

	if (array_grow_small(&g->ports, &gs->cap_ports, g->n_ports, sizeof(*g->ports)) < 0) {
		fail(c, -ENOMEM);
		return;
	}
	pp = &g->ports[g->n_ports++];
	pp->first = a;
	pp->last = z;
	pp->loc = loc;
	return;
invalid:
	/* "80/tcp", as services(5) and ufw write it: the protocol is the guard's own key. */
	if ((dash = memchr(s, '/', len)) && dash > s && len - (dash - s) == 4 &&
	    (!strncasecmp(dash, "/tcp", 4) || !strncasecmp(dash, "/udp", 4)))
		error(c, &loc,
		      "invalid port '%s' (expected a number 1-65535, a range A-B or a service "
		      "name; the protocol goes in the guard's 'protocol: %s')",
		      diag_quote(b, s, len), strncasecmp(dash, "/tcp", 4) ? "udp" : "tcp");
	else
		error(c, &loc,
		      "invalid port '%s' (expected a number 1-65535, a range A-B or a service "
		      "name)",
		      diag_quote(b, s, len));
}

static void parse_ports(struct parse_ctx *c, struct guard_state *gs)
{
	struct loc loc = ev_loc(c);
	size_t n_entries = 0;

	if (kind(c) == NODE_SCALAR) {
		parse_port(c, gs);
		return;
	}
	if (!expect(c, NODE_SEQUENCE, "'ports'"))
		return;
	while (!next(c) && c->ev.type != YAML_SEQUENCE_END_EVENT) {
		n_entries++;
		parse_port(c, gs);
	}
	if (!c->fatal && n_entries == 0)
		error(c, &loc, "expected at least one port in 'ports'");
}

static void parse_ref(struct parse_ctx *c, struct guard_state *gs, unsigned key)
{
	static const char *const what[A_LISTS] = {
		"an entry of 'users'",	 "an entry of 'groups'",      "an entry of 'units'",
		"an entry of 'cgroups'", "an entry of 'executables'", "an entry of 'launched'"
	};
	static const char *const noun[A_LISTS] = { "user",   "group",	   "unit",
						   "cgroup", "executable", "launched name" };
	struct policy_guard *g = gs->g;
	struct policy_ref **v, *ref;
	struct loc loc = ev_loc(c);
	const char *s, *why = NULL;
	char b[DIAG_QUOTE_SIZE];
	size_t *n, len;
	char *name;

	if (!get_scalar(c, what[key], &s, &len))
		return;
	switch (key) {
	case A_USERS:
		v = &g->users;
		n = &g->n_users;
		break;
	case A_GROUPS:
		v = &g->groups;
		n = &g->n_groups;
		break;
	case A_UNITS:
		v = &g->units;
		n = &g->n_units;
		break;
	case A_CGROUPS:
		v = &g->cgroups;
		n = &g->n_cgroups;
		break;
	case A_EXECUTABLES:
		v = &g->executables;
		n = &g->n_executables;
		break;
	default:
		v = &g->launched;
		n = &g->n_launched;
		break;
	}

	if (len == 0) {
		error(c, &loc, "empty %s name", noun[key]);
		return;
	}
	name = strndup(s, len);
	if (!name) {
		fail(c, -ENOMEM);
		return;
	}
	if (key == A_UNITS)
		why = policy_unit_name_invalid(name);
	else if (key == A_CGROUPS)
		why = policy_cgroup_path_invalid(name);
	else if (key == A_EXECUTABLES)
		why = name[0] != '/'		 ? "is not an absolute path"
		      : strlen(name) >= PATH_MAX ? "is too long"
						 : NULL;
	else if (key == A_LAUNCHED)
		why = launch_name_invalid(name);
	if (why) {
		/* launch_name_invalid() says why as `loguard exec` prints it, after a colon. */
		error(c, &loc, key == A_LAUNCHED ? "invalid %s '%s': %s" : "%s '%s' %s", noun[key],
		      diag_quote(b, s, len), why);
		free(name);
		return;
	}
	if (array_grow_small(v, &gs->cap_refs[key], *n, sizeof(**v)) < 0) {
		free(name);
		fail(c, -ENOMEM);
		return;
	}
	ref = &(*v)[(*n)++];
	ref->name = name;
	ref->loc = loc;
}

static void parse_allow(struct parse_ctx *c, struct guard_state *gs)
{
	static const char *const what[A_LISTS] = { "'users'",	"'groups'",	 "'units'",
						   "'cgroups'", "'executables'", "'launched'" };
	struct loc seen[__A_MAX] = { 0 }, key_loc;
	unsigned key, v;

	if (kind(c) == NODE_NULL)
		return;
	if (!expect(c, NODE_MAPPING, "'allow'"))
		return;
	while (map_next_key(c, &allow_spec, seen, &key, &key_loc) > 0) {
		enum node_kind k = kind(c);

		if (key == A_OWNER) {
			gs->g->owner_loc = ev_loc(c);
			if (get_enum(c, "owner", bool_names, 2, "true, false", &v))
				gs->g->owner = v;
			continue;
		}
		/* A single name without brackets is as clear as a list of one. */
		if (k == NODE_SCALAR) {
			parse_ref(c, gs, key);
			continue;
		}
		if (k == NODE_NULL)
			continue;
		if (!expect(c, NODE_SEQUENCE, what[key]))
			continue;
		while (!next(c) && c->ev.type != YAML_SEQUENCE_END_EVENT)
			parse_ref(c, gs, key);
	}
}

static int svc_lookup(struct parse_ctx *c, const char *name, unsigned proto, int *ret_port)
{
	struct servent se, *res = NULL;
	size_t size = 1024;
	char *buf = NULL;
	int port = -1, r;

	for (size_t i = 0; i < c->n_svc; i++) {
		if (c->svc[i].proto == proto && !strcmp(c->svc[i].name, name)) {
			*ret_port = c->svc[i].port;
			return 0;
		}
	}

	for (;;) {
		char *nb = realloc(buf, size);

		if (!nb) {
			r = -ENOMEM;
			goto out;
		}
		buf = nb;
		r = getservbyname_r(name, proto == POLICY_PROTO_TCP ? "tcp" : "udp", &se, buf, size,
				    &res);
		if (r != ERANGE || size >= 65536)
			break;
		size *= 2;
	}
	if (r == 0 && res)
		port = ntohs((uint16_t)res->s_port);
	if (port == 0)
		port = -1;

	if (c->n_svc < SVC_CACHE_MAX) {
		char *copy = strdup(name);

		if (copy) {
			c->svc[c->n_svc].name = copy;
			c->svc[c->n_svc].proto = proto;
			c->svc[c->n_svc].port = port;
			c->n_svc++;
		}
	}
	*ret_port = port;
	r = 0;
out:
	free(buf);
	return r;
}

/* Resolve service names now that the guard's protocol is known. */
static void resolve_services(struct parse_ctx *c, struct guard_state *gs)
{
	struct policy_guard *g = gs->g;
	char b[DIAG_QUOTE_SIZE];

	for (size_t i = 0; i < gs->n_pend && !c->fatal; i++) {
		const char *name = gs->pend[i].name;
		struct policy_ports *pp = &g->ports[gs->pend[i].idx];
		int tcp = -1, udp = -1;
		bool need_tcp = g->protocols & POLICY_PROTO_TCP;
		bool need_udp = g->protocols & POLICY_PROTO_UDP;

		if ((need_tcp && svc_lookup(c, name, POLICY_PROTO_TCP, &tcp) < 0) ||
		    (need_udp && svc_lookup(c, name, POLICY_PROTO_UDP, &udp) < 0)) {
			fail(c, -ENOMEM);
			return;
		}
		diag_quote_str(b, name);
		if (need_tcp && need_udp && tcp < 0 && udp < 0)
			error(c, &pp->loc, "unknown service '%s' for tcp and udp", b);
		else if (need_tcp && tcp < 0)
			error(c, &pp->loc, "unknown service '%s' for tcp", b);
		else if (need_udp && udp < 0)
			error(c, &pp->loc, "unknown service '%s' for udp", b);
		else if (need_tcp && need_udp && tcp != udp)
			error(c, &pp->loc,
			      "service '%s' is port %d for tcp but %d for udp (write the ports "
			      "as numbers)",
			      b, tcp, udp);
		else
			pp->first = pp->last = need_tcp ? tcp : udp;
	}
}

static bool valid_guard_name(const char *s, size_t len)
{
	if (len == 0 || len > GUARD_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !isascii((unsigned char)s[i]) ||
		    !(isalnum((unsigned char)s[i]) || strchr("_.-", s[i])))
			return false;
	return true;
}

static struct policy_guard *guard_new(struct parse_ctx *c)
{
	struct policy *p = c->p;
	struct policy_guard *g;

	if (p->n_guards == c->cap_guards) {
		/* Sized from the text at first: no guard is written in fewer than ~20 bytes, so
		 * len / 64 covers most policies without a realloc (each copied 10,000 guards'
		 * 2 MB to fresh pages again); pages past the end are never touched. */
		size_t cap = c->cap_guards ? c->cap_guards * 2 : c->len / 64 + 4;
		struct policy_guard *v = reallocarray(p->guards, cap, sizeof(*v));
		struct loc *nl;
		bool *ms;

		if (!v)
			return NULL;
		p->guards = v;
		nl = reallocarray(c->name_locs, cap, sizeof(*nl));
		if (!nl)
			return NULL;
		c->name_locs = nl;
		ms = reallocarray(c->mode_set, cap, sizeof(*ms));
		if (!ms)
			return NULL;
		c->mode_set = ms;
		c->cap_guards = cap;
	}
	g = &p->guards[p->n_guards];
	memset(g, 0, sizeof(*g));
	g->protocols = POLICY_PROTO_TCP;
	g->action = POLICY_ACTION_REJECT;
	g->log = POLICY_LOG_DENIED;
	c->name_locs[p->n_guards] = (struct loc){ 0 };
	c->mode_set[p->n_guards] = false;
	p->n_guards++;
	return g;
}

static void parse_guard(struct parse_ctx *c)
{
	struct guard_state gs = { 0 };
	struct loc seen[__G_MAX] = { 0 }, key_loc, loc = ev_loc(c);
	unsigned errors_before;
	char b[DIAG_QUOTE_SIZE];
	const char *s;
	unsigned key, v;
	size_t len;

	if (!expect(c, NODE_MAPPING, "a guard"))
		return;
	errors_before = c->n_errors;
	gs.g = guard_new(c);
	if (!gs.g) {
		fail(c, -ENOMEM);
		return;
	}
	gs.idx = c->p->n_guards - 1;
	gs.g->loc = loc;

	while (map_next_key(c, &guard_spec, seen, &key, &key_loc) > 0) {
		struct loc vloc = ev_loc(c);

		switch (key) {
		case G_NAME:
			if (!get_scalar(c, "'name'", &s, &len))
				break;
			if (!valid_guard_name(s, len)) {
				error(c, &vloc,
				      "invalid guard name '%s' (expected 1-32 characters from "
				      "A-Z a-z 0-9 _ . -)",
				      diag_quote(b, s, len));
				break;
			}
			gs.g->name = strndup(s, len);
			if (!gs.g->name)
				fail(c, -ENOMEM);
			c->name_locs[gs.idx] = vloc;
			gs.g->name_loc = vloc;
			break;
		case G_PORTS:
			parse_ports(c, &gs);
			break;
		case G_PROTOCOL:
			if (get_enum(c, "protocol", proto_names, 3, "tcp, udp, both", &v))
				gs.g->protocols = proto_bits[v];
			break;
		case G_ALLOW:
			parse_allow(c, &gs);
			break;
		case G_ACTION:
			if (get_enum(c, "action", action_names, __POLICY_ACTION_MAX, "reject, drop",
				     &v))
				gs.g->action = v;
			break;
		case G_MODE:
			if (get_enum(c, "mode", mode_names, __POLICY_MODE_MAX, "enforce, audit",
				     &v)) {
				gs.g->mode = v;
				c->mode_set[gs.idx] = true;
			}
			break;
		case G_LOG:
			if (get_enum(c, "log", log_names, __POLICY_LOG_MAX, "none, denied, all",
				     &v))
				gs.g->log = v;
			break;
		case G_FAIL:
			if (get_enum(c, "fail", fail_names, __POLICY_FAIL_MAX, "closed, open", &v))
				gs.g->fail = v;
			break;
		case G_SHARE:
			if (get_enum(c, "share", bool_names, 2, "true, false", &v))
				gs.g->share = v;
			break;
		}
	}

	if (!c->fatal) {
		if (!seen[G_NAME].line)
			error(c, &loc, "missing required key 'name' in guard");
		if (!seen[G_PORTS].line)
			error(c, &loc, "missing required key 'ports' in guard");
		resolve_services(c, &gs);
		/* Only the receiver's owner may share, so there must be one to ask. */
		if (gs.g->share && !gs.g->owner && c->n_errors == errors_before)
			error(c, &seen[G_SHARE],
			      "'share: true' needs 'allow: { owner: true }' (only a port's owner "
			      "may share it)");
		/* (After an error in 'allow' the guard may just have lost its owner key.) */
		if (seen[G_FAIL].line && !policy_guard_needs_daemon(gs.g) &&
		    c->n_errors == errors_before)
			if (diags_add(c->diags, DIAG_WARNING, &seen[G_FAIL],
				      "'fail' only matters for 'owner' and 'executables', which "
				      "this guard does not use") < 0)
				fail(c, -ENOMEM);
	}
	for (size_t i = 0; i < gs.n_pend; i++)
		free(gs.pend[i].name);
	free(gs.pend);
}

/* For policy_reparse.c: the line of the current event, one per item and one for the end. */
static void layout_add_line(struct parse_ctx *c)
{
	struct policy_layout *l = c->layout;

	if (!l || l->bad)
		return;
	if (array_grow(&l->line, &l->cap, l->n + 1, sizeof(*l->line)) < 0 ||
	    c->ev.start_mark.line > UINT_MAX) {
		l->bad = true;
		return;
	}
	l->line[l->n] = c->ev.start_mark.line;
}

static void parse_guards(struct parse_ctx *c, unsigned key_col)
{
	struct loc loc = ev_loc(c);
	size_t n = 0;

	if (c->layout) {
		c->layout->top_col = key_col;
		c->layout->seq_col = c->ev.start_mark.column;
		c->layout->bad |= c->ev.type != YAML_SEQUENCE_START_EVENT ||
				  c->ev.data.sequence_start.style != YAML_BLOCK_SEQUENCE_STYLE;
	}
	if (!expect(c, NODE_SEQUENCE, "'guards'"))
		return;
	while (!next(c) && c->ev.type != YAML_SEQUENCE_END_EVENT) {
		n++;
		layout_add_line(c);
		if (c->layout)
			c->layout->n++;
		parse_guard(c);
	}
	layout_add_line(c);
	if (!c->fatal && n == 0)
		error(c, &loc, "expected at least one guard in 'guards'");
}

static int cmp_guard_name(const void *a, const void *b, void *arg)
{
	const struct policy_guard *gv = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int r = strcmp(gv[i].name, gv[j].name);

	if (r)
		return r;
	return i < j ? -1 : i > j;
}

/* Sort instead of comparing all pairs: a policy may have many thousands of guards. */
static void check_duplicate_names(struct parse_ctx *c)
{
	struct policy *p = c->p;
	size_t *idx, *first, n = 0;
	char b[DIAG_QUOTE_SIZE];

	idx = calloc(p->n_guards + 1, sizeof(*idx));
	first = calloc(p->n_guards + 1, sizeof(*first));
	if (!idx || !first) {
		fail(c, -ENOMEM);
		goto out;
	}
	for (size_t i = 0; i < p->n_guards; i++) {
		first[i] = i;
		if (p->guards[i].name)
			idx[n++] = i;
	}
	qsort_r(idx, n, sizeof(*idx), cmp_guard_name, p->guards);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(p->guards[idx[i]].name, p->guards[idx[i - 1]].name))
			first[idx[i]] = first[idx[i - 1]];
	/* Report in document order, each at the later name. */
	for (size_t i = 0; i < p->n_guards && !c->fatal; i++) {
		const struct loc *f = &c->name_locs[first[i]];

		if (first[i] != i)
			error(c, &c->name_locs[i], "duplicate guard name '%s' (first at %u:%u)",
			      diag_quote_str(b, p->guards[i].name), f->line, f->col);
	}
out:
	free(idx);
	free(first);
}

static bool is_dropin(const struct parse_ctx *c)
{
	return c->opts && c->opts->main_file;
}

static void parse_top(struct parse_ctx *c)
{
	struct loc seen[__TOP_MAX] = { 0 }, key_loc, loc = ev_loc(c);
	struct loc whole = { .file = c->p->file };
	unsigned key, v;

	if (kind(c) == NODE_NULL) {
		error(c, &whole, "empty policy (expected a mapping with 'version' and 'guards')");
		return;
	}
	if (!expect(c, NODE_MAPPING, "the policy"))
		return;
	if (c->layout && c->ev.data.mapping_start.style != YAML_BLOCK_MAPPING_STYLE)
		c->layout->bad = true;
	while (map_next_key(c, &top_spec, seen, &key, &key_loc) > 0) {
		/* One table has one mode default, log group, rate and queue: a drop-in adds
		 * guards to it and says nothing about the rest. */
		if (is_dropin(c) && key != TOP_VERSION && key != TOP_GUARDS) {
			error(c, &key_loc,
			      "'%s' is a global key: set it in the main policy file %s, not in a "
			      "drop-in (expected version, guards)",
			      top_keys[key], c->opts->main_file);
			if (skip_node(c))
				return;
			continue;
		}
		switch (key) {
		case TOP_VERSION:
			parse_version(c);
			break;
		case TOP_MODE:
			if (get_enum(c, "mode", mode_names, __POLICY_MODE_MAX, "enforce, audit",
				     &v))
				c->p->mode = v;
			break;
		case TOP_LOG:
			parse_log(c);
			break;
		case TOP_COUNTERS:
			if (get_enum(c, "counters", bool_names, 2, "true, false", &v))
				c->p->counters = v;
			break;
		case TOP_QUEUE:
			parse_queue(c);
			break;
		case TOP_GUARDS:
			parse_guards(c, key_loc.col - 1);
			break;
		}
	}
	if (c->fatal)
		return;
	if (!seen[TOP_VERSION].line && !is_dropin(c))
		error(c, &loc, "missing required key 'version'");
	if (!seen[TOP_GUARDS].line)
		error(c, &loc, "missing required key 'guards'");
	check_duplicate_names(c);
}

static void parse_stream(struct parse_ctx *c)
{
	struct loc whole = { .file = c->p->file }, loc;

	if (next(c) || next(c))
		return;
	if (c->ev.type == YAML_STREAM_END_EVENT) {
		error(c, &whole, "empty policy (expected a mapping with 'version' and 'guards')");
		return;
	}
	/* DOCUMENT-START, then the root node. */
	if (next(c))
		return;
	parse_top(c);
	if (next(c) || next(c))
		return;
	if (c->ev.type == YAML_DOCUMENT_START_EVENT) {
		loc = ev_loc(c);
		error(c, &loc, "multiple YAML documents are not supported (expected one)");
	}
}

/* What policy_check() filled in. */
static void guard_free_checked(struct policy_guard *g)
{
	free(g->exe_ids); /* the uids are the policy's uid_pool */
	for (size_t j = 0; j < g->n_cgroup_ids; j++)
		free(g->cgroup_ids[j].path);
	free(g->cgroup_ids);
}

static void guard_free_contents(struct policy_guard *g)
{
	struct policy_ref *refs[] = { g->users,	  g->groups,	  g->units,
				      g->cgroups, g->executables, g->launched };
	size_t ns[] = { g->n_users,   g->n_groups,	g->n_units,
			g->n_cgroups, g->n_executables, g->n_launched };

	/* A packed copy (policy_reparse.h): name, ports and references are in one block. */
	if (g->pack) {
		free(g->pack);
		guard_free_checked(g);
		return;
	}
	free(g->name);
	free(g->ports);
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		for (size_t j = 0; j < ns[k]; j++)
			free(refs[k][j].name);
		free(refs[k]);
	}
	guard_free_checked(g);
}

/* What an invalid file still says for the later checks: guards with a name, ports that parsed
 * (a service name that did not resolve is port 0 here). */
static void keep_parsed(struct policy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_guards; i++) {
		struct policy_guard *g = &p->guards[i];
		size_t k = 0;

		if (!g->name) {
			guard_free_contents(g);
			continue;
		}
		for (size_t j = 0; j < g->n_ports; j++)
			if (g->ports[j].first)
				g->ports[k++] = g->ports[j];
		g->n_ports = k;
		p->guards[n++] = *g;
	}
	p->n_guards = n;
}

struct policy *policy_ref(struct policy *p)
{
	p->refs++;
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	if (p->refs) {
		p->refs--;
		return;
	}
	/* A merged policy has its main file's part at least. */
	for (size_t i = 0; i < p->n_guards; i++) {
		if (p->n_parts)
			guard_free_checked(&p->guards[i]);
		else
			guard_free_contents(&p->guards[i]);
	}
	free(p->guards);
	if (!p->n_parts)
		free(p->file);
	for (size_t i = 0; i < p->n_parts; i++)
		policy_free(p->parts[i]);
	free(p->parts);
	free(p->uid_pool);
	free(p->dropins); /* the parts' names */
	free(p);
}

void policy_copy_settings(struct policy *dst, const struct policy *src)
{
	*dst = *src;
	dst->file = NULL;
	dst->dropins = NULL;
	dst->n_dropins = 0;
	dst->guards = NULL;
	dst->n_guards = 0;
	dst->parts = NULL;
	dst->n_parts = 0;
	dst->refs = 0;
	dst->uid_pool = NULL;
}

int policy_merged_new(struct policy *main, struct policy **ret_policy)
{
	struct policy *m = malloc(sizeof(*m));
	struct policy **parts = malloc(sizeof(*parts));
	struct policy_guard *g = malloc((main->n_guards + 1) * sizeof(*g));

	if (!m || !parts || !g) {
		free(m);
		free(parts);
		free(g);
		policy_free(main);
		return -ENOMEM;
	}
	/* The global keys and file name are main's. Its guards as parsed have nothing
	 * policy_check() fills set yet, so the copies share nothing the merged policy frees. */
	policy_copy_settings(m, main);
	m->file = main->file;
	memcpy(g, main->guards, main->n_guards * sizeof(*g));
	m->guards = g;
	m->n_guards = main->n_guards;
	parts[0] = main;
	m->parts = parts;
	m->n_parts = 1;
	*ret_policy = m;
	return 0;
}

static int parse_buffer(const char *file, const char *buf, size_t len,
			const struct policy_parse_opts *opts, struct diags *diags,
			struct policy **ret_policy, struct policy_layout *layout)
{
	struct parse_ctx c = { .diags = diags, .opts = opts, .layout = layout };
	struct loc whole;
	int r;

	if (!file || (!buf && len) || !diags || !ret_policy)
		return -EINVAL;

	c.p = calloc(1, sizeof(*c.p));
	if (!c.p)
		return -ENOMEM;
	c.p->file = strdup(file);
	if (!c.p->file) {
		r = -ENOMEM;
		goto out;
	}
	c.p->mode = is_dropin(&c) ? opts->mode : POLICY_MODE_ENFORCE;
	c.p->log_group = POLICY_DEFAULT_LOG_GROUP;
	c.p->queue_num = POLICY_DEFAULT_QUEUE;
	c.p->log_rate = 20;
	c.p->log_rate_unit = POLICY_RATE_SECOND;
	c.p->log_burst = POLICY_LOG_BURST_DEFAULT;
	c.p->counters = true;
	whole = (struct loc){ .file = c.p->file };

	if (len > POLICY_MAX_BYTES) {
		r = diags_add(diags, DIAG_ERROR, &whole, "policy is too large (at most 16 MiB)");
		r = r < 0 ? r : -EINVAL;
		goto out;
	}

	if (!yaml_parser_initialize(&c.parser)) {
		r = -ENOMEM;
		goto out;
	}
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)(buf ? buf : ""), len);
	c.len = len;
	parse_stream(&c);
	if (c.have_ev)
		yaml_event_delete(&c.ev);
	yaml_parser_delete(&c.parser);

	/* Defaults that depend on keys written anywhere in the document. */
	for (size_t i = 0; i < c.p->n_guards; i++)
		if (!c.mode_set[i])
			c.p->guards[i].mode = c.p->mode;

	r = c.fatal;
	if (!r && c.n_errors)
		r = -EINVAL;
	if (!r) {
		*ret_policy = c.p;
		c.p = NULL;
	} else if (r == -EINVAL && opts && opts->ret_partial) {
		keep_parsed(c.p);
		*opts->ret_partial = c.p;
		c.p = NULL;
	}
out:
	for (size_t i = 0; i < c.n_svc; i++)
		free(c.svc[i].name);
	free(c.name_locs);
	free(c.mode_set);
	policy_free(c.p);
	return r;
}

int policy_parse_buffer(const char *file, const char *buf, size_t len, struct diags *diags,
			struct policy **ret_policy)
{
	return parse_buffer(file, buf, len, NULL, diags, ret_policy, NULL);
}

int policy_parse_buffer_opts(const char *file, const char *buf, size_t len,
			     const struct policy_parse_opts *opts, struct diags *diags,
			     struct policy **ret_policy)
{
	return parse_buffer(file, buf, len, opts, diags, ret_policy, NULL);
}

int policy_parse_buffer_record(const char *file, const char *buf, size_t len,
			       const struct policy_parse_opts *opts, struct diags *diags,
			       struct policy **ret_policy, struct policy_layout *l)
{
	return parse_buffer(file, buf, len, opts, diags, ret_policy, l);
}

int policy_read_fd(const char *file, int fd, struct diags *diags, char **ret_buf, size_t *ret_len)
{
	struct loc whole = { .file = file };
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int r;

	if (!file || fd < 0 || !diags || !ret_buf || !ret_len)
		return -EINVAL;
	/* Read up to one byte past the limit so a too-large file is noticed without stat()
	 * (which says nothing useful for pipes and /proc files). */
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb;

			if (ncap > POLICY_MAX_BYTES + 1)
				ncap = POLICY_MAX_BYTES + 1;
			if (ncap == cap)
				break;
			nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			free(buf);
			if (diags_add(diags, DIAG_ERROR, &whole, "cannot read: %s", strerror(-r)) < 0)
				return -ENOMEM;
			return r;
		}
		if (n == 0)
			break;
		len += n;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int policy_parse_fd_opts(const char *file, int fd, const struct policy_parse_opts *opts,
			 struct diags *diags, struct policy **ret_policy)
{
	size_t len;
	char *buf;
	int r;

	if (!ret_policy)
		return -EINVAL;
	r = policy_read_fd(file, fd, diags, &buf, &len);
	if (r < 0)
		return r;
	r = parse_buffer(file, buf, len, opts, diags, ret_policy, NULL);
	free(buf);
	return r;
}

int policy_parse_fd(const char *file, int fd, struct diags *diags, struct policy **ret_policy)
{
	return policy_parse_fd_opts(file, fd, NULL, diags, ret_policy);
}

int policy_parse_file(const char *file, struct diags *diags, struct policy **ret_policy)
{
	struct loc whole = { .file = file };
	int fd, r;

	if (!file || !diags || !ret_policy)
		return -EINVAL;
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		diags_add(diags, DIAG_ERROR, &whole, "cannot read: %s", strerror(-r));
		return r;
	}
	r = policy_parse_fd(file, fd, diags, ret_policy);
	close(fd);
	return r;
}
