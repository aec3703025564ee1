// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * loguard command line: a table of subcommands over the pipeline
 * parse → check → compile → emit → netlink. The pipeline stages never print (they return
 * located diagnostics); the commands print: here, and the daemon's parts and the exec
 * supervisor they start (docs/architecture.md, "Who prints").
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "apply.h"
#include "compile.h"
#include "daemon.h"
#include "exit_status.h"
#include "launch.h"
#include "nft_emit.h"
#include "nl.h"
#include "policy.h"
#include "policy_dir.h"
#include "ruleset.h"
#include "share.h"
#include "show.h"
#include "suggest_cmd.h"
#include "table_read.h"
#include "why.h"

#ifndef LOGUARD_VERSION
#define LOGUARD_VERSION "0.1.0"
#endif

/* Everything a command needs from the command line. */
struct cmdline {
	const char *policy_file;  /* NULL: the default pair, POLICY_DEFAULT_PATH and _DIR */
	const char *policy_dir;	  /* -d: drop-ins; NULL: none (or the default with the default file) */
	const char *prog;
	bool dry_run;	      /* apply --dry-run */
	bool live;	      /* print --live */
	bool json;	      /* show --json */
	bool keep_rules;      /* run --keep-rules */
	const char *log_file; /* run --log-file */
	const char *format;   /* run --format */
	const char *as;	      /* exec --as */
	const char *user;     /* exec --user, why --user */
	const char *exe;      /* why --exe */
	bool udp;	      /* why, share, unshare --udp */
	const char *wait;     /* exec --wait */
	char **argv;	      /* exec: the command and its arguments */
	bool diff;	      /* suggest --diff */
	bool include_denied;  /* suggest --include-denied */
	const char *by;	      /* suggest --by */
	const char *grp_min;  /* suggest --group-threshold */
	const char *with;     /* share, unshare --with */
	const char *for_;     /* share --for */
};

/* The files the command line names: without -f the default pair (a missing policy.d is no
 * drop-ins); -f FILE alone is that file; -d DIR adds DIR's drop-ins, which must exist. */
static struct policy_source source(const struct cmdline *cl)
{
	if (!cl->policy_file)
		return (struct policy_source){ .file = POLICY_DEFAULT_PATH,
					       .dir = cl->policy_dir ? cl->policy_dir
								     : POLICY_DEFAULT_DIR,
					       .dir_optional = !cl->policy_dir };
	return (struct policy_source){ .file = cl->policy_file, .dir = cl->policy_dir };
}

/* Load the policy with APPLY_* flags (whether to judge who can change the file, and how). */
static int load(const struct cmdline *cl, unsigned flags, struct loaded *ret)
{
	const struct policy_source src = source(cl);
	struct diags d = { 0 };
	int r;

	apply_keep_heap();
	r = apply_load_source(&src, flags, &d, ret);

	diags_print(&d, stderr);
	if (r < 0 && d.n_errors == 0)
		fprintf(stderr, "%s: %s: %s\n", cl->prog, src.file, strerror(-r));
	if (r < 0 && d.n_errors)
		fprintf(stderr, "%s%s%s: %u error%s; nothing was changed\n", src.file,
			src.dir ? " + " : "", src.dir ? src.dir : "", d.n_errors,
			d.n_errors == 1 ? "" : "s");
	diags_free(&d);
	if (r < 0)
		return r == -ENOMEM ? EXIT_SYSTEM : EXIT_POLICY;
	return EXIT_OK;
}

static int open_nl(const struct cmdline *cl, struct nl **ret)
{
	int r = nl_open(ret);

	if (r < 0)
		fprintf(stderr, "%s: cannot open nf_tables netlink socket: %s\n", cl->prog,
			strerror(-r));
	return r;
}

static int kernel_error(const struct cmdline *cl, const char *what, int r)
{
	fprintf(stderr, "%s: %s: %s%s\n", cl->prog, what, strerror(-r),
		r == -EPERM ? " (CAP_NET_ADMIN needed: run as root)" : "");
	return EXIT_SYSTEM;
}

static size_t count_elems(const struct ruleset *rs, enum rs_set_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->n_sets; i++)
		if (rs->sets[i].kind == kind)
			n += rs->sets[i].n_elems;
	return n;
}

static size_t count_rules(const struct ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->n_chains; i++)
		n += rs->chains[i].n_rules;
	return n;
}

/* Whether `check` must judge the file as `apply` and `run` do: when whoever runs it could
 * install it (root, or the service's user with CAP_NET_ADMIN, as ExecReload= runs it), or when
 * it is the system policy. Then a file the daemon would refuse fails the check, so `systemctl
 * reload` fails instead of reporting success while the daemon keeps the old rules. A user
 * linting a draft of their own gets the same findings as a warning. */
static bool is_system_path(const char *path, const char *sys_path)
{
	char *real = NULL, *sys = NULL;
	bool same;

	if (!strcmp(path, sys_path))
		return true;
	real = realpath(path, NULL);
	sys = realpath(sys_path, NULL);
	same = real && sys && !strcmp(real, sys);
	free(real);
	free(sys);
	return same;
}

static bool check_must_trust(const struct policy_source *src)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (geteuid() == 0)
		return true;
	if (syscall(SYS_capget, &h, caps) == 0 &&
	    (caps[CAP_TO_INDEX(CAP_NET_ADMIN)].effective & CAP_TO_MASK(CAP_NET_ADMIN)))
		return true;
	return is_system_path(src->file, POLICY_DEFAULT_PATH) ||
	       (src->dir && is_system_path(src->dir, POLICY_DEFAULT_DIR));
}

/* With drop-ins, which file each guard came from (policy order: the main file first), one line
 * per file, each line after prefix. */
static void print_files(const struct policy *p, const char *prefix)
{
	const char *file = NULL;

	if (!p->n_dropins)
		return;
	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];

		if (g->loc.file != file) {
			file = g->loc.file;
			printf("%s%s%s:", i ? "\n" : "", prefix, file);
		}
		printf(" %s", g->name);
	}
	putchar('\n');
}

static int cmd_check(struct cmdline *cl)
{
	struct loaded l;
	size_t audit = 0;
	int r;

	const struct policy_source src = source(cl);

	r = load(cl, check_must_trust(&src) ? APPLY_TRUSTED : APPLY_TRUST_WARN, &l);
	if (r)
		return r;
	for (size_t i = 0; i < l.policy->n_guards; i++)
		audit += l.policy->guards[i].mode == POLICY_MODE_AUDIT;
	printf("%s%s: ok: %zu guard%s (%zu enforce, %zu audit); %zu port entries, "
	       "%zu user and %zu cgroup allow entries, %zu rules\n",
	       src.file, l.policy->n_dropins ? " and its drop-ins" : "", l.policy->n_guards, l.policy->n_guards == 1 ? "" : "s",
	       l.policy->n_guards - audit, audit, count_elems(l.rs, RS_SET_GUARDS),
	       count_elems(l.rs, RS_SET_ALLOW_UID), count_elems(l.rs, RS_SET_ALLOW_CGROUP),
	       count_rules(l.rs));
	print_files(l.policy, "");
	apply_loaded_free(&l);
	return EXIT_OK;
}

static int cmd_print(struct cmdline *cl)
{
	struct loaded l;
	int r;

	r = load(cl, cl->live ? APPLY_LIVE : 0, &l);
	if (r)
		return r;
	/* nft syntax: '#' comments, so the output still loads with nft -f. */
	print_files(l.policy, "# guards from ");
	r = ruleset_print(l.rs, stdout);
	apply_loaded_free(&l);
	if (fflush(stdout) || r < 0)
		return EXIT_SYSTEM;
	return EXIT_OK;
}

/* Install rs (NULL: remove the table) and report what the kernel said. */
static int send_table(const struct cmdline *cl, struct nl *nl, const struct ruleset *rs,
		      bool commit, struct emit_stats *ret_stats)
{
	struct diags d = { 0 };
	/* Owned and persistent as the daemon's: `loguard run` later adopts it in place. */
	int r = rs ? apply_ruleset_owned(nl, rs, commit, &d, ret_stats, NULL)
		   : apply_ruleset(nl, rs, commit, 0, &d, ret_stats);
	bool explained = d.n_errors > 0;

	diags_print(&d, stderr);
	diags_free(&d);
	if ((r == -EPERM || r == -EACCES) && !explained)
		return kernel_error(cl, rs ? "applying" : "removing table inet " LOGUARD_TABLE, r);
	if (r < 0) {
		fprintf(stderr,
			"%s: the kernel refused the change (%s); the previous ruleset "
			"is still in force\n",
			cl->prog, strerror(-r));
		return EXIT_SYSTEM;
	}
	return EXIT_OK;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cmd_apply(struct cmdline *cl)
{
	struct emit_stats st = { 0 };
	struct timespec t0;
	struct nl *nl = NULL;
	struct loaded l;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = load(cl, APPLY_TRUSTED | APPLY_ONESHOT, &l);
	if (r)
		return r;
	if (open_nl(cl, &nl) < 0) {
		apply_loaded_free(&l);
		return EXIT_SYSTEM;
	}
	r = send_table(cl, nl, l.rs, !cl->dry_run, &st);
	if (r == EXIT_OK)
		printf("%s %s: %zu guards, %zu rules, %zu elements added and %zu removed in %zu "
		       "messages (%zu bytes), %.1f ms\n",
		       cl->dry_run ? "validated (nothing changed)" : "applied", source(cl).file,
		       l.policy->n_guards, st.n_rules, st.n_elems, st.n_elems_deleted, st.n_msgs,
		       st.bytes, ms_since(&t0));
	/* Nobody owns the table once apply exits: any `nft flush ruleset` removes it. */
	if (r == EXIT_OK && !cl->dry_run)
		fprintf(stderr, "%s: note: nothing keeps this table: `nft flush ruleset` (as "
				"`nft -f /etc/nftables.conf` runs it) removes it; loguard.service "
				"keeps its rules against other tools\n",
			cl->prog);
	nl_close(nl);
	apply_loaded_free(&l);
	return r;
}

static int cmd_flush(struct cmdline *cl)
{
	struct nl *nl = NULL;
	bool exists = false;
	int r;

	if (open_nl(cl, &nl) < 0)
		return EXIT_SYSTEM;
	/* Say what happened: "removed" only when there was something to remove. */
	r = table_read_info(nl, &exists, NULL, NULL);
	if (r < 0) {
		nl_close(nl);
		return kernel_error(cl, "reading table inet " LOGUARD_TABLE, r);
	}
	r = send_table(cl, nl, NULL, true, NULL);
	if (r == EXIT_OK)
		printf(exists ? "removed table inet " LOGUARD_TABLE "\n"
			      : "no table inet " LOGUARD_TABLE ": nothing to remove\n");
	nl_close(nl);
	return r;
}

/* The kernel keeps guard names, not files: name each guard's file from the policy files as
 * they are now. Best effort and quiet: a policy that does not parse names no files. */
static void label_files(const struct cmdline *cl, struct table_state *t)
{
	const struct policy_source src = source(cl);
	struct policy *p = NULL;
	struct diags d = { 0 };

	if (t->installed && policy_source_load(&src, POLICY_OPEN_PLAIN, &d, &p) == 0)
		table_label_files(t, p);
	policy_free(p);
	diags_free(&d);
}

static int cmd_show(struct cmdline *cl)
{
	struct table_state *t = NULL;
	struct nl *nl = NULL;
	int r;

	if (open_nl(cl, &nl) < 0)
		return EXIT_SYSTEM;
	r = table_read(nl, &t);
	nl_close(nl);
	if (r < 0)
		return kernel_error(cl, "reading table inet " LOGUARD_TABLE, r);
	label_files(cl, t);
	r = cl->json ? show_print_json(t, stdout) : show_print_text(t, stdout);
	r = r < 0 || fflush(stdout) ? EXIT_SYSTEM : t->installed ? EXIT_OK : EXIT_NOT_INSTALLED;
	table_state_free(t);
	return r;
}

static int cmd_run(struct cmdline *cl)
{
	struct daemon_opts o = {
		.policy_file = source(cl).file,
		.policy_dir = source(cl).dir,
		.policy_dir_optional = source(cl).dir_optional,
		.keep_rules = cl->keep_rules,
		.log_file = cl->log_file,
		.stats_interval = 60,
	};

	if (cl->format && strcmp(cl->format, "json") && strcmp(cl->format, "text")) {
		fprintf(stderr, "%s: run: --format must be json or text, not '%s'\n", cl->prog,
			cl->format);
		return EXIT_USAGE;
	}
	o.text = cl->format && !strcmp(cl->format, "text");
	return daemon_run(&o);
}

static int cmd_exec(struct cmdline *cl)
{
	struct launch_opts o = { .name = cl->as, .user = cl->user, .argv = cl->argv };
	unsigned long ms = 1000;
	char *end;

	if (!cl->as) {
		fprintf(stderr, "%s: exec: --as NAME is required\n", cl->prog);
		return EXIT_USAGE;
	}
	if (!cl->argv || !cl->argv[0]) {
		fprintf(stderr, "%s: exec: no command given (exec --as NAME -- CMD [ARG...])\n",
			cl->prog);
		return EXIT_USAGE;
	}
	if (cl->wait) {
		errno = 0;
		ms = strtoul(cl->wait, &end, 10);
		/* strtoul takes "-1" as ULONG_MAX: only plain digits are milliseconds. */
		if (!isdigit((unsigned char)cl->wait[0]) || *end || errno || ms > 600000) {
			fprintf(stderr,
				"%s: exec: --wait takes milliseconds from 0 to 600000, not '%s'\n",
				cl->prog, cl->wait);
			return EXIT_USAGE;
		}
	}
	o.wait_ms = (unsigned)ms;
	return launch_exec(&o);
}

static int cmd_suggest(struct cmdline *cl)
{
	struct suggest_cmd_opts o = { .policy_file = source(cl).file,
				      .input = cl->log_file,
				      .diff = cl->diff,
				      .o.include_denied = cl->include_denied };
	unsigned long n = 0;
	char *end;

	if (cl->policy_dir) {
		fprintf(stderr, "%s: suggest: --dir: suggest compares with one file (-f POLICY)\n",
			cl->prog);
		return EXIT_USAGE;
	}
	for (o.o.by = 0; cl->by && o.o.by < __SUGGEST_BY_MAX; o.o.by++)
		if (!strcmp(cl->by, suggest_by_name(o.o.by)))
			break;
	if (o.o.by == __SUGGEST_BY_MAX) {
		fprintf(stderr, "%s: suggest: --by takes users, units or executables, not '%s'\n",
			cl->prog, cl->by);
		return EXIT_USAGE;
	}
	if (cl->grp_min) {
		errno = 0;
		n = strtoul(cl->grp_min, &end, 10);
		if (!isdigit((unsigned char)cl->grp_min[0]) || *end || errno || n < 1 ||
		    n > 65535) {
			fprintf(stderr,
				"%s: suggest: --group-threshold takes 1 to 65535 members, not "
				"'%s'\n",
				cl->prog, cl->grp_min);
			return EXIT_USAGE;
		}
	}
	o.o.group_threshold = (unsigned)n;
	return suggest_cmd_run(&o);
}

static int cmd_why(struct cmdline *cl)
{
	struct why_opts o = { .user = cl->user, .exe = cl->exe, .udp = cl->udp };
	struct loaded l;
	int r;

	if (!cl->argv || !cl->argv[0] || cl->argv[1]) {
		fprintf(stderr, "%s: why: expected one PORT (why PORT [--user USER] [--exe PATH] "
				"[--udp])\n",
			cl->prog);
		return EXIT_USAGE;
	}
	o.port = cl->argv[0];
	/* No trust check: why reads, it installs nothing, and anyone may ask. */
	r = load(cl, 0, &l);
	if (r)
		return r;
	r = why_explain(&l, &o, stdout, stderr);
	apply_loaded_free(&l);
	if (fflush(stdout))
		return EXIT_SYSTEM;
	return r == -EINVAL ? EXIT_USAGE : r < 0 ? EXIT_SYSTEM : EXIT_OK;
}

/* share and unshare: PORT (getopt took the options, before or after it) and the request. */
static int share_args(struct cmdline *cl, const char *cmd, struct share_request *q)
{
	const char *port = cl->argv ? cl->argv[0] : NULL;
	unsigned long v;
	char *end;

	if (port && cl->argv[1]) {
		fprintf(stderr, "%s: %s: unexpected argument '%s'\n", cl->prog, cmd, cl->argv[1]);
		return EXIT_USAGE;
	}
	errno = 0;
	v = port ? strtoul(port, &end, 10) : 0;
	if (!port || !isdigit((unsigned char)*port) || *end || errno || !v || v > 65535) {
		fprintf(stderr, "%s: %s: a PORT from 1 to 65535 is required\n", cl->prog, cmd);
		return EXIT_USAGE;
	}
	q->port = (uint16_t)v;
	q->proto = cl->udp ? IPPROTO_UDP : IPPROTO_TCP;
	if (cl->with) {
		const char *name = cl->with[0] == '@' ? cl->with + 1 : cl->with;

		if (strlen(name) > SHARE_NAME_MAX) {
			fprintf(stderr, "%s: %s: name too long: '%s'\n", cl->prog, cmd, cl->with);
			return EXIT_USAGE;
		}
		snprintf(q->name, sizeof(q->name), "%s", name);
		q->flags = cl->with[0] == '@' ? SHARE_F_GROUP : 0;
	} else if (q->op == SHARE_OP_SHARE) {
		fprintf(stderr, "%s: share: --with USER or --with @GROUP is required\n", cl->prog);
		return EXIT_USAGE;
	}
	if (cl->for_ && share_duration_parse(cl->for_, &q->seconds) < 0) {
		fprintf(stderr,
			"%s: share: --for takes a duration like 90s, 30m, 2h or 1d (at most 366d), "
			"not '%s'\n",
			cl->prog, cl->for_);
		return EXIT_USAGE;
	}
	return -1;
}

/* Ask the daemon; 0 done, 1 refused (it said why), 3 no daemon to ask. */
static int share_ask(struct cmdline *cl, const struct share_request *q)
{
	uint8_t buf[SHARE_REQ_MAX];
	char path[108];
	int r;

	if (share_request_encode(q, buf) < 0) {
		fprintf(stderr, "%s: invalid name '%s'\n", cl->prog, cl->with ? cl->with : "");
		return EXIT_USAGE;
	}
	r = share_client(q, stdout, stderr);
	if (r == -EPERM)
		return EXIT_POLICY;
	if (r < 0) {
		share_socket_path(path, sizeof(path));
		fprintf(stderr, "%s: cannot reach loguard run at %s: %s\n", cl->prog, path,
			strerror(-r));
		return EXIT_SYSTEM;
	}
	return EXIT_OK;
}

static int cmd_share(struct cmdline *cl)
{
	struct share_request q = { .op = SHARE_OP_SHARE };
	int r = share_args(cl, "share", &q);

	return r >= 0 ? r : share_ask(cl, &q);
}

static int cmd_unshare(struct cmdline *cl)
{
	struct share_request q = { .op = SHARE_OP_UNSHARE };
	int r = share_args(cl, "unshare", &q);

	return r >= 0 ? r : share_ask(cl, &q);
}

static int cmd_shares(struct cmdline *cl)
{
	return share_ask(cl, &(struct share_request){ .op = SHARE_OP_LIST });
}

static int cmd_version(struct cmdline *cl)
{
	(void)cl;
	printf("loguard %s\n", LOGUARD_VERSION);
	return EXIT_OK;
}

/* A command-specific option: a flag (sets a bool in struct cmdline) or, with
 * arg, an option whose value is stored as a string there. */
struct command_opt {
	const char *name;
	char short_name;
	size_t offset; /* of the bool or const char * in struct cmdline */
	const char *help;
	const char *arg; /* NULL for a flag, else the value's name for --help */
};

/* The subcommand table. */
struct command {
	const char *name;
	int (*run)(struct cmdline *cl);
	const char *help;
	const char *args; /* what follows the options, for --help; NULL: nothing may */
	struct command_opt opts[5];
};

static const struct command commands[] = {
	{ .name = "check",
	  .run = cmd_check,
	  .help = "parse, resolve and compile the policy; print a summary" },
	{ .name = "print",
	  .run = cmd_print,
	  .help = "print the nftables table the policy compiles to",
	  .opts = { { "live", 'l', offsetof(struct cmdline, live),
		      "the table as loguard run installs it (daemon-judged and held rules)" } } },
	{ .name = "apply",
	  .run = cmd_apply,
	  .help = "install the policy atomically",
	  .opts = { { "dry-run", 'n', offsetof(struct cmdline, dry_run),
		      "send the transaction without its commit: the kernel validates, nothing "
		      "changes" } } },
	{ .name = "show",
	  .run = cmd_show,
	  .help = "show the installed table with per-guard counters",
	  .opts = { { "json", 'j', offsetof(struct cmdline, json), "print one JSON object" } } },
	{ .name = "run",
	  .run = cmd_run,
	  .help = "apply the policy and log every connection to a guarded port until stopped",
	  .opts = { { "keep-rules", 'k', offsetof(struct cmdline, keep_rules),
		      "leave the table installed when stopped" },
		    { "log-file", 'l', offsetof(struct cmdline, log_file),
		      "append records to PATH instead of stdout", "PATH" },
		    { "format", 'F', offsetof(struct cmdline, format),
		      "json (default: one object per line) or text", "json|text" } } },
	{ .name = "exec",
	  .run = cmd_exec,
	  .help = "run a command in the cgroup that a policy's `launched: [NAME]` allows",
	  .args = "-- CMD [ARG...]",
	  .opts = { { "as", 'a', offsetof(struct cmdline, as),
		      "the launched NAME: cgroup " LAUNCH_CGROUP_PARENT "/NAME (required)",
		      "NAME" },
		    { "user", 'u', offsetof(struct cmdline, user),
		      "run the command as USER, with USER's environment only", "USER" },
		    { "wait", 'w', offsetof(struct cmdline, wait),
		      "wait up to MS for the running policy to allow NAME (default 1000)",
		      "MS" } } },
	{ .name = "suggest",
	  .run = cmd_suggest,
	  .help = "print a policy that allows what the records show was seen (audit to enforce)",
	  .opts = { { "log-file", 'l', offsetof(struct cmdline, log_file),
		      "records: run's JSON lines or `journalctl -o json` (default stdin)", "PATH" },
		    { "diff", 'd', offsetof(struct cmdline, diff),
		      "print a unified diff from the policy file to the suggestion" },
		    { "by", 'b', offsetof(struct cmdline, by),
		      "name what was seen by users (default), units or executables",
		      "users|units|executables" },
		    { "group-threshold", 'g', offsetof(struct cmdline, grp_min),
		      "a group once N members were seen (default: all)", "N" },
		    { "include-denied", 'i', offsetof(struct cmdline, include_denied),
		      "also allow what enforce mode denied" } } },
	{ .name = "why",
	  .run = cmd_why,
	  .help = "say which guard covers PORT, who it allows, whether USER would pass, who listens",
	  .args = "PORT",
	  .opts = { { "user", 'u', offsetof(struct cmdline, user),
		      "the user asking (default: you)", "USER" },
		    { "exe", 'e', offsetof(struct cmdline, exe),
		      "the connecting program, for guards with executables", "PATH" },
		    { "udp", 'U', offsetof(struct cmdline, udp), "UDP instead of TCP" } } },
	{ .name = "share",
	  .run = cmd_share,
	  .help = "let USER or @GROUP connect to your server on PORT (a `share: true` guard)",
	  .args = "PORT",
	  .opts = { { "with", 'w', offsetof(struct cmdline, with), "who: a user or @group",
		      "USER|@GROUP" },
		    { "for", 't', offsetof(struct cmdline, for_),
		      "for this long (90s, 30m, 2h, 1d); default: until your server stops",
		      "DURATION" },
		    { "udp", 'U', offsetof(struct cmdline, udp), "a UDP port (default TCP)" } } },
	{ .name = "unshare",
	  .run = cmd_unshare,
	  .help = "revoke your grants on PORT (root: anyone's)",
	  .args = "PORT",
	  .opts = { { "with", 'w', offsetof(struct cmdline, with),
		      "only the grants to this user or @group", "USER|@GROUP" },
		    { "udp", 'U', offsetof(struct cmdline, udp), "a UDP port (default TCP)" } } },
	{ .name = "shares",
	  .run = cmd_shares,
	  .help = "list the grants you made or got (root: all)" },
	{ .name = "flush",
	  .run = cmd_flush,
	  .help = "remove table inet loguard (and nothing else)" },
	{ .name = "version", .run = cmd_version, .help = "print the version" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))
#define N_CMD_OPTS (sizeof(commands[0].opts) / sizeof(commands[0].opts[0]))

/* Long-only options' values, above any short option character. */
#define OPT_DIR 0x100

static bool command_has_short(const struct command *cmd, char c)
{
	for (size_t i = 0; i < N_CMD_OPTS && cmd->opts[i].name; i++)
		if (cmd->opts[i].short_name == c)
			return true;
	return false;
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [-f POLICY] [-d DIR] COMMAND [OPTIONS]\n"
		"Guard loopback TCP/UDP ports: only the users, groups and units a policy names\n"
		"may connect to them.\n\n"
		"Commands:\n",
		prog);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s  %s\n", commands[i].name, commands[i].help);
	fprintf(f,
		"\nOptions:\n"
		"  -f, --file POLICY   policy file (default " POLICY_DEFAULT_PATH ")\n"
		"  -d, --dir DIR       drop-ins DIR/*.yaml, guards only, read after POLICY in\n"
		"                      lexical order (default without -f: " POLICY_DEFAULT_DIR ")\n"
		"  -h, --help          this help; COMMAND --help for a command's options\n"
		"\nExit status: 0 ok, 1 invalid policy, 2 usage error, 3 system or kernel error,\n"
		"4 show: table not installed; exec: the command's own, 126/127 if it could not\n"
		"run; share, unshare: 1 refused (the daemon says why), 3 no daemon to ask.\n"
		"See loguard(8) and loguard.yaml(5).\n");
}

static void command_usage(const struct command *cmd, const char *prog)
{
	printf("Usage: %s [-f POLICY] [-d DIR] %s", prog, cmd->name);
	for (size_t i = 0; i < N_CMD_OPTS && cmd->opts[i].name; i++)
		printf(cmd->opts[i].arg ? " [--%s %s]" : " [--%s]", cmd->opts[i].name,
		       cmd->opts[i].arg);
	if (cmd->args)
		printf(" %s", cmd->args);
	printf("\n%c%s.\n", toupper((unsigned char)cmd->help[0]), cmd->help + 1);
	printf("  -f, --file POLICY   policy file (default " POLICY_DEFAULT_PATH ")\n");
	printf("  %s--dir DIR       drop-ins DIR/*.yaml (default without -f: " POLICY_DEFAULT_DIR
	       ")\n",
	       command_has_short(cmd, 'd') ? "    " : "-d, ");
	for (size_t i = 0; i < N_CMD_OPTS && cmd->opts[i].name; i++) {
		char name[32];

		snprintf(name, sizeof(name), "%s%s%s", cmd->opts[i].name,
			 cmd->opts[i].arg ? " " : "", cmd->opts[i].arg ? cmd->opts[i].arg : "");
		printf("  -%c, --%-13s %s\n", cmd->opts[i].short_name, name, cmd->opts[i].help);
	}
}

/* Parse what follows the command name: -f anywhere, --help, and the command's flags.
 * Returns -1 to go on, else the exit code. */
static int parse_command_args(struct cmdline *cl, const struct command *cmd, int argc, char **argv)
{
	struct option opts[N_CMD_OPTS + 4] = {
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "dir", required_argument, NULL, OPT_DIR },
	};
	/* '+' stops at the first argument only where it starts a command line of its own
	 * (exec's "-- CMD"): `why PORT --user bob` takes options after PORT too. */
	char shorts[12 + 2 * N_CMD_OPTS] = "+f:h";
	size_t n = 3;
	int c;

	/* -d is --dir where the command has no -d of its own (suggest's is --diff). */
	if (!command_has_short(cmd, 'd'))
		strcat(shorts, "d:");
	if (cmd->args && strncmp(cmd->args, "--", 2))
		memmove(shorts, shorts + 1, strlen(shorts));
	for (size_t i = 0; i < N_CMD_OPTS && cmd->opts[i].name; i++, n++) {
		bool arg = cmd->opts[i].arg;

		opts[n] = (struct option){ cmd->opts[i].name, arg ? required_argument : no_argument,
					   NULL, cmd->opts[i].short_name };
		shorts[strlen(shorts)] = cmd->opts[i].short_name;
		if (arg)
			shorts[strlen(shorts)] = ':';
	}
	optind = 0; /* reset getopt for the command's own options */
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (c == 'f') {
			cl->policy_file = optarg;
			continue;
		}
		if (c == OPT_DIR || (c == 'd' && !command_has_short(cmd, 'd'))) {
			cl->policy_dir = optarg;
			continue;
		}
		if (c == 'h') {
			command_usage(cmd, cl->prog);
			return EXIT_OK;
		}
		for (size_t i = 0; i < N_CMD_OPTS && cmd->opts[i].name; i++) {
			char *field = (char *)cl + cmd->opts[i].offset;

			if (c != cmd->opts[i].short_name)
				continue;
			if (cmd->opts[i].arg)
				memcpy(field, &optarg, sizeof(optarg));
			else
				*(bool *)field = true;
			c = 0;
		}
		if (c)
			return EXIT_USAGE; /* getopt said why */
	}
	if (cmd->args) {
		cl->argv = argv + optind; /* '+' above: the command's own options stay its own */
		return -1;
	}
	if (optind != argc) {
		fprintf(stderr, "%s: %s: unexpected argument '%s'\n", cl->prog, cmd->name,
			argv[optind]);
		return EXIT_USAGE;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct cmdline cl = { .prog = "loguard" };
	const struct command *cmd = NULL;
	int c, r;

	/* '+': stop at the command name; the command parses the rest. */
	while ((c = getopt_long(argc, argv, "+f:d:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			cl.policy_file = optarg;
			break;
		case 'd':
			cl.policy_dir = optarg;
			break;
		case 'h':
			usage(stdout, cl.prog);
			return EXIT_OK;
		case 'V':
			return cmd_version(&cl);
		default:
			usage(stderr, cl.prog);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr, cl.prog);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(argv[optind], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "%s: unknown command '%s' (try --help)\n", cl.prog, argv[optind]);
		return EXIT_USAGE;
	}
	r = parse_command_args(&cl, cmd, argc - optind, argv + optind);
	if (r >= 0)
		return r;
	return cmd->run(&cl);
}
