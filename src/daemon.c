// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `loguard run`: apply the policy, then one poll loop over the event sources: NFLOG, the
 * hold queues, live.c's (cgroup watch, sock_diag destroy notifications, the NFQUEUE of
 * connections to judge, the proc connector) and the share control socket.
 * Signal handlers only set flags; ppoll() unblocks the signals atomically, so a
 * signal can never slip in between checking the flags and going to sleep.
 * Nothing wakes the loop while there is no traffic: the periodic stats record
 * is only scheduled after something happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "daemon.h"
#include "daemon_stats.h"
#include "enrich.h"
#include "exit_status.h"
#include "hold.h"
#include "journal.h"
#include "listener_id.h"
#include "live.h"
#include "nflog.h"
#include "notify.h"
#include "policy_dir.h"
#include "record.h"
#include "share.h"
#include "table_read.h"

#include <linux/netfilter/nf_tables.h>

/* Events in one read of the NFLOG socket after which we are behind the kernel: until the
 * socket is drained, records get the kernel's identity (uid, gid, names) only, no
 * sock_diag and no process search, so a flood cannot make us lose records. */
#define BURST_EVENTS 32
/* Wall time per second the full identity lookup (sock_diag, cgroup, process search: 30 us
 * to ms each) may take: 5% of a CPU. Past it, the rest of that second's records get the
 * kernel's identity only (uid, gid, names), counted as identity_skipped. On a 2-core
 * machine a daemon at 25% of a CPU cost a connection flood a third of its rate; at 5%,
 * about a sixth, all of it NFLOG delivery and the records themselves. */
#define ENRICH_NS_PER_SECOND (50 * 1000 * 1000LL)

/* Records per second above which the kernel batches them, and below which it stops. */
#define BATCH_ABOVE_PER_SECOND	 2000
#define UNBATCH_BELOW_PER_SECOND 500

/* The live counters file (for `loguard show`) is rewritten at most this often, in ms. */
#define LIVE_STATS_INTERVAL_MS 1000

/* Set by the signal handlers, read by the loop: the only mutable globals. */
static volatile sig_atomic_t got_reload, got_stop;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_reload = 1;
	else
		got_stop = 1;
}

struct daemon {
	const struct daemon_opts *opts;
	struct loaded cur;
	struct policy_cache *cache; /* the files as the last load parsed them (reloads) */
	struct nl *nl;
	struct nflog *nflog;
	struct enrich *enrich;
	struct live *live;    /* cgroups, owner-only ports, queued connections */
	struct share *share;  /* `loguard share` requests and the grants they made */
	struct hold *hold;    /* denials held until their record is written */
	struct listener_id *lid; /* the receiving side of records */
	FILE *out;	      /* JSON lines or text; NULL when only the journal gets records */
	int journal_fd;	      /* -1 unless stdout/stderr is connected to journald */
	bool journal_stuck;   /* a send to it timed out, none went through since */
	uint32_t table_flags; /* OWNER|PERSIST where the kernel has it */
	struct record_stats stats;
	uint64_t rate_limited_seen; /* the kernel counter's value when last read */
	uint64_t sent_seen, sent;   /* log_sent when last read; what it grew by since start */
	bool stats_pending;	    /* something happened since the last stats record */
	unsigned batch_events;	    /* events handled in the current read of the NFLOG socket */
	time_t rate_second;	    /* CLOCK_MONOTONIC second the count below is for */
	unsigned rate_events, last_second_events;
	time_t enrich_second; /* CLOCK_MONOTONIC second the time below is for */
	long long enrich_ns;  /* spent on full lookups in that second */
	struct timespec stats_due;
	char *live_path;	   /* RUNTIME_DIRECTORY/stats: what `loguard show` reads */
	bool live_pending;	   /* counters changed since the file was written */
	long long live_written_ms; /* CLOCK_MONOTONIC of the last write */
};

/* JOURNAL_STREAM=dev:ino names the journal stream our stdout or stderr is connected to. */
static bool stream_is_journal(int fd)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

static int open_sinks(struct daemon *d)
{
	bool journal_out = stream_is_journal(STDOUT_FILENO);

	d->journal_fd = -1;
	if (journal_out || stream_is_journal(STDERR_FILENO)) {
		int r = journal_open(&d->journal_fd);

		if (r < 0) {
			fprintf(stderr, "loguard: cannot open the journal socket: %s\n",
				strerror(-r));
			d->journal_fd = -1;
		}
	}
	if (d->opts->log_file) {
		d->out = fopen(d->opts->log_file, "ae");
		if (!d->out) {
			fprintf(stderr, "loguard: %s: %s\n", d->opts->log_file, strerror(errno));
			return -errno;
		}
	} else if (journal_out && d->journal_fd >= 0) {
		d->out = NULL; /* the structured entry is the record: no duplicate line */
	} else {
		d->out = stdout;
	}
	/* Records are flushed after each batch read from the kernel, not per line. */
	if (d->out)
		setvbuf(d->out, NULL, _IOFBF, 64 * 1024);
	return 0;
}

static void write_line(struct daemon *d, char *line)
{
	if (line && d->out) {
		fputs(line, d->out);
		fputc('\n', d->out);
	}
	free(line);
}

/* How much the named counter `name` grew since *seen (a counter made anew, as when the rate
 * was 0 before, starts at zero), and remember its value. 0 if it cannot be read. */
static uint64_t counter_growth(struct daemon *d, const char *name, uint64_t *seen)
{
	uint64_t v, grown;

	if (!name || table_read_counter(d->nl, name, &v) < 0)
		return 0;
	grown = v >= *seen ? v - *seen : v;
	*seen = v;
	return grown;
}

static void read_rate_limited(struct daemon *d)
{
	d->stats.rate_limited += counter_growth(d, d->cur.rs->rate_counter, &d->rate_limited_seen);
}

/* At start: an adopted table's counters hold what earlier daemons saw; count from here. */
static void counters_baseline(struct daemon *d)
{
	counter_growth(d, d->cur.rs->rate_counter, &d->rate_limited_seen);
	counter_growth(d, LOGUARD_SENT_COUNTER, &d->sent_seen);
}

/* After a socket overflow, what the kernel handed to NFLOG and we never received is lost,
 * also when no later record shows the sequence gap (the overflow came at a burst's end and
 * nothing followed). The kernel counts what it handed over (counter log_sent). Called with
 * the socket drained, so nothing is in flight but what arrived in the last microseconds. */
static void read_sent(struct daemon *d)
{
	d->sent += counter_growth(d, LOGUARD_SENT_COUNTER, &d->sent_seen);
	if (d->stats.enobufs && d->sent > d->stats.received + d->stats.lost)
		d->stats.lost = d->sent - d->stats.received;
}

static long long mono_ns(void);

/* Publish the counters for `loguard show`: written to a temporary file and renamed, so a
 * reader never sees half a file; one line, "key=value" pairs. */
/* The live part's counters into the stats record's fields. */
static void take_live_stats(struct daemon *d)
{
	struct live_stats ls;

	if (!d->live)
		return;
	live_get_stats(d->live, &ls);
	d->stats.queued = ls.queued;
	d->stats.queue_allowed = ls.accepted;
	d->stats.receivers = ls.owners_known;
	d->stats.cgroups = ls.cgroups_followed;
}

static void write_live_stats(struct daemon *d)
{
	struct live_stats ls = { 0 };
	char tmp[PATH_MAX];
	FILE *f;

	if (!d->live_path)
		return;
	take_live_stats(d);
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->live_path);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f,
		"pid=%ld received=%llu lost=%llu enobufs=%llu rate_limited=%llu unmatched=%llu "
		"identity_skipped=%llu queued=%llu queue_allowed=%llu receivers=%llu "
		"cgroups=%llu\n",
		(long)getpid(), (unsigned long long)d->stats.received,
		(unsigned long long)d->stats.lost, (unsigned long long)d->stats.enobufs,
		(unsigned long long)d->stats.rate_limited, (unsigned long long)d->stats.unmatched,
		(unsigned long long)d->stats.identity_skipped, (unsigned long long)d->stats.queued,
		(unsigned long long)d->stats.queue_allowed, (unsigned long long)d->stats.receivers,
		(unsigned long long)d->stats.cgroups);
	/* Exhaustion of the cgroup watch and sets (live.h), after the fields readers expect. */
	if (d->live)
		live_get_stats(d->live, &ls);
	fprintf(f,
		"cgroups_waiting=%llu cgroup_dirs_watched=%llu cgroup_dirs_polled=%llu "
		"cgroup_dirs_truncated=%llu cgroup_dirs_skipped=%llu cgroup_limit_hits=%llu "
		"update_errors=%llu\n",
		(unsigned long long)ls.cgroups_waiting, (unsigned long long)ls.cgroup_dirs_watched,
		(unsigned long long)ls.cgroup_dirs_polled,
		(unsigned long long)ls.cgroup_dirs_truncated,
		(unsigned long long)ls.cgroup_dirs_skipped,
		(unsigned long long)ls.cgroup_limit_hits, (unsigned long long)ls.update_errors);
	if (d->share) {
		struct share_stats ss;

		share_get_stats(d->share, &ss);
		fprintf(f,
			"share_grants=%llu share_elems=%llu share_requests=%llu share_refused=%llu "
			"share_rate_limited=%llu share_over_share=%llu\n",
			(unsigned long long)ss.grants, (unsigned long long)ss.elems,
			(unsigned long long)ss.requests, (unsigned long long)ss.refused,
			(unsigned long long)ss.rate_limited, (unsigned long long)ss.over_share);
	}
	if (fclose(f) == 0)
		rename(tmp, d->live_path);
	else
		unlink(tmp);
	d->live_pending = false;
	d->live_written_ms = mono_ns() / 1000000;
}

/* systemd's RuntimeDirectory= sets RUNTIME_DIRECTORY; by hand it is /run/loguard. NULL if it
 * cannot be made. */
static const char *runtime_dir(void)
{
	const char *dir = getenv("RUNTIME_DIRECTORY");

	if (!dir || !*dir) {
		dir = LOGUARD_RUN_DIR;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return NULL;
	}
	return dir;
}

static void open_live_stats(struct daemon *d)
{
	const char *dir = runtime_dir();

	if (!dir)
		return;
	if (asprintf(&d->live_path, "%s/%s", dir, LOGUARD_LIVE_STATS) < 0)
		d->live_path = NULL;
	write_live_stats(d);
}

static int on_event(const struct conn_event *ev, void *data);

static void emit_stats(struct daemon *d)
{
	struct timespec now;
	char *line = NULL;

	read_rate_limited(d);
	if (d->stats.enobufs) {
		nflog_read(d->nflog, on_event, d, &d->stats);
		read_sent(d);
	}
	take_live_stats(d);
	clock_gettime(CLOCK_REALTIME, &now);
	if (d->opts->text)
		record_stats_format_text(&d->stats, &now, &line);
	else
		record_stats_format_json(&d->stats, &now, &line);
	write_line(d, line);
	if (d->journal_fd >= 0)
		journal_send_stats(d->journal_fd, &d->stats, &d->journal_stuck);
	if (d->out)
		fflush(d->out);
	d->stats_pending = false;
	write_live_stats(d);
}

static long long mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Full lookup (sock_diag, cgroup, process, listener) while we keep up and stay within the
 * time budget; else names only (uid, gid, user, group still come from the kernel). */
static int identify(struct daemon *d, struct record *rec)
{
	long long t0 = mono_ns();
	int r;

	if (t0 / 1000000000LL != d->enrich_second) {
		d->enrich_second = t0 / 1000000000LL;
		d->enrich_ns = 0;
	}
	if (++d->batch_events >= BURST_EVENTS || d->enrich_ns > ENRICH_NS_PER_SECOND) {
		d->stats.identity_skipped++;
		return enrich_names(d->enrich, rec);
	}
	r = enrich_record(d->enrich, rec);
	if (r >= 0)
		r = listener_id_fill(d->lid, rec);
	d->enrich_ns += mono_ns() - t0;
	return r;
}

/* A held packet's sender waits for us: the full lookup, within hold.c's budget per uid
 * (not the NFLOG path's, which counts records behind the kernel: these are not). */
static int identify_held(struct daemon *d, struct record *rec, bool full)
{
	int r;

	if (!full) {
		d->stats.identity_skipped++;
		return enrich_names(d->enrich, rec);
	}
	r = enrich_record(d->enrich, rec);
	return r < 0 ? r : listener_id_fill(d->lid, rec);
}

/* held: a held packet's record (full: with the full lookup); else NFLOG's. */
static int write_record(struct daemon *d, const struct conn_event *ev, bool held, bool full)
{
	struct record rec = { .ev = *ev };
	char *line = NULL;
	int r;

	/* ports beyond the copy (counted as ports_unknown) name no guard */
	rec.guard = ev->ports_unknown ? NULL : ruleset_guard_of(d->cur.rs, ev->proto, ev->dport);
	if (!rec.guard && !ev->ports_unknown)
		d->stats.unmatched++;
	if (ev->verdict == RECORD_ALLOW && share_granted_by(d->share, ev, &rec.granted_by_uid)) {
		rec.has_granted_by = true;
		if (enrich_user_name(d->enrich, rec.granted_by_uid, &rec.granted_by) == -ENOMEM) {
			record_clear(&rec);
			return -ENOMEM;
		}
	}
	if (held)
		r = identify_held(d, &rec, full);
	else if (ev->verdict != RECORD_ALLOW && live_take_identity(d->live, &rec))
		r = enrich_names(d->enrich, &rec);
	else
		r = identify(d, &rec);
	if (r < 0) {
		record_clear(&rec);
		return r;
	}
	if (d->opts->text)
		r = record_format_text(&rec, &line);
	else
		r = record_format_json(&rec, &line);
	if (r >= 0)
		write_line(d, line);
	if (d->journal_fd >= 0 && journal_send_record(d->journal_fd, &rec, &d->journal_stuck) < 0)
		d->stats.journal_unsent++;
	record_clear(&rec);
	return r < 0 ? r : 0;
}

static int on_event(const struct conn_event *ev, void *data)
{
	return write_record(data, ev, false, false);
}

/* A held denial (hold.c): its sender is still there. */
static void on_held(void *data, const struct conn_event *ev, bool full)
{
	struct daemon *d = data;

	d->stats.received++;
	d->stats.ports_unknown += ev->ports_unknown;
	write_record(d, ev, true, full);
}

static void flush_out(void *data)
{
	struct daemon *d = data;

	if (d->out)
		fflush(d->out);
}

/* A connection the daemon itself allowed (owner-only port, executable), in a guard that logs
 * allowed ones: the kernel did not log it, so the record is written here. */
static void on_allowed(void *data, const struct conn_event *ev)
{
	on_event(ev, data);
}

static void notify_status(const struct daemon *d, const char *what)
{
	notify_sendf("%sSTATUS=%s %s: %zu guards, %zu guarded port entries, NFLOG group %u", what,
		     "guarding with", d->opts->policy_file, d->cur.policy->n_guards,
		     d->cur.rs->n_guard_index, d->cur.rs->log_group);
}

static int load_policy(struct daemon *d, struct diags *dg, struct loaded *ret)
{
	const struct policy_source src = { .file = d->opts->policy_file,
					   .dir = d->opts->policy_dir,
					   .dir_optional = d->opts->policy_dir_optional,
					   .cache = d->cache };

	return apply_load_source(&src, APPLY_TRUSTED | APPLY_LIVE, dg, ret);
}

static void reload_failed(struct daemon *d)
{
	fprintf(stderr, "loguard: reload of %s%s%s failed; the previous policy stays in force\n",
		d->opts->policy_file, d->opts->policy_dir ? " and " : "",
		d->opts->policy_dir ? d->opts->policy_dir : "");
	notify_sendf("READY=1\nSTATUS=reload failed; still guarding with the previous policy");
}

/*
 * The reload's table is in force but the daemon cannot follow it (live_apply() failed: the
 * queue bound by another process, no listener or cgroup events): put the previous table back
 * and follow that again, as a reload to it would, so that rules and daemon agree. Returns 0
 * with prev in force again (d->cur is prev, the new policy freed), or -errno with the new
 * table still in force (d->cur unchanged).
 */
static int reload_undo(struct daemon *d, const struct loaded *prev)
{
	struct loaded next = d->cur;
	struct diags dg = { 0 };
	int r = apply_ruleset_since(d->nl, prev->rs, next.rs, true, d->table_flags, &dg, NULL);

	diags_print(&dg, stderr);
	diags_free(&dg);
	if (r < 0) {
		fprintf(stderr, "loguard: cannot put the previous table back: %s\n", strerror(-r));
		return r;
	}
	d->cur = *prev;
	if (live_apply(d->live, &d->cur) < 0)
		fprintf(stderr, "loguard: the previous table is back, but loguard cannot follow "
				"all of it either (see above)\n");
	if (d->share)
		share_apply(d->share, &d->cur);
	apply_loaded_free(&next);
	return 0;
}

/*
 * Load and apply; on any error keep what is installed and say why. Never exits: a reload the
 * daemon cannot follow (live_apply() failing) puts the previous table back; only when even
 * that fails does the new table stay, followed as far as it can be, and the status says so.
 */
static int reload(struct daemon *d)
{
	struct diags dg = { 0 };
	struct loaded next = { 0 }, prev;
	struct nflog *nflog = NULL;
	struct emit_stats st = { 0 };
	long long t0 = mono_ns();
	int r;

	notify_reloading();
	/* The main file and every drop-in, judged and parsed again: one invalid or untrusted
	 * file keeps the whole previous policy. */
	r = load_policy(d, &dg, &next);
	if (r >= 0 && next.rs->log_group != d->cur.rs->log_group) {
		r = nflog_open(next.rs->log_group, &nflog);
		if (r < 0)
			diags_add(&dg, DIAG_ERROR, NULL, "cannot bind NFLOG group %u: %s",
				  next.rs->log_group, strerror(-r));
	}
	if (r >= 0)
		r = apply_ruleset_since(d->nl, next.rs, d->cur.rs, true, d->table_flags, &dg, &st);
	diags_print(&dg, stderr);
	diags_free(&dg);
	if (r < 0) {
		nflog_close(nflog);
		apply_loaded_free(&next);
		reload_failed(d);
		return r;
	}
	/* Drain what the old group still holds before switching. */
	if (nflog)
		nflog_read(d->nflog, on_event, d, &d->stats);
	/* The counter object stays through an in-place update, its count going on (one made
	 * anew starts at zero, which read_rate_limited() takes as a restart). */
	read_rate_limited(d);
	prev = d->cur;
	d->cur = next;
	/* A reload is how an admin says /etc/passwd, /etc/group or the units changed: names and
	 * cgroup paths cached for records are looked up again. */
	enrich_flush(d->enrich);
	/* The table was updated in place: keep what still holds of what we added. */
	r = live_apply(d->live, &d->cur);
	if (r < 0 && reload_undo(d, &prev) == 0) {
		nflog_close(nflog);
		reload_failed(d);
		return r;
	}
	if (nflog) {
		nflog_close(d->nflog);
		d->nflog = nflog;
	}
	apply_loaded_free(&prev);
	if (d->share)
		share_apply(d->share, &d->cur);
	hold_apply(d->hold, d->cur.rs);
	if (r < 0) {
		fprintf(stderr, "loguard: reloaded %s, but cannot follow all of it (see above)\n",
			d->opts->policy_file);
		notify_sendf("READY=1\nSTATUS=reload incomplete: guarding with %s, not all of it "
			     "followed (see the log)",
			     d->opts->policy_file);
		return r;
	}
	fprintf(stderr, "loguard: reloaded %s in %.1f ms (%zu elements added, %zu removed)\n",
		d->opts->policy_file, (double)(mono_ns() - t0) / 1e6, st.n_elems,
		st.n_elems_deleted);
	notify_status(d, "READY=1\n");
	return 0;
}

static int start(struct daemon *d)
{
	struct diags dg = { 0 };
	unsigned dg_errors;
	int r;

	r = load_policy(d, &dg, &d->cur);
	dg_errors = dg.n_errors;
	diags_print(&dg, stderr);
	diags_free(&dg);
	if (r < 0) {
		if (!dg_errors)
			fprintf(stderr, "loguard: %s: %s\n", d->opts->policy_file, strerror(-r));
		return r == -ENOMEM ? EXIT_SYSTEM : EXIT_POLICY;
	}
	r = nl_open(&d->nl);
	if (r >= 0)
		r = nflog_open(d->cur.rs->log_group, &d->nflog);
	if (r < 0) {
		fprintf(stderr, "loguard: cannot open netlink (NFLOG group %u): %s%s\n",
			d->cur.rs->log_group, strerror(-r),
			r == -EBUSY			  ? " (another process reads that group)"
			: r == -EPERM || r == -EACCES ? " (CAP_NET_ADMIN needed: run as root)"
						      : "");
		return EXIT_SYSTEM;
	}
	/* Bound before the rules that hold into them exist: no denial bypasses its record. */
	r = hold_new(on_held, flush_out, d, &d->hold);
	if (r >= 0)
		r = hold_apply(d->hold, d->cur.rs);
	if (r < 0)
		return EXIT_SYSTEM;
	/* Owned (no other process may change it while we live) and persistent (it stays in
	 * force if we die; a restarted daemon adopts it): fail closed. */
	r = apply_ruleset_owned(d->nl, d->cur.rs, true, &dg, NULL, &d->table_flags);
	if (r >= 0 && !d->table_flags)
		fprintf(stderr, "loguard: this kernel cannot keep an owned table after its owner "
				"exits (no NFT_TABLE_F_PERSIST): the table is not owned, so other "
				"processes can change it, but it stays if loguard dies\n");
	diags_print(&dg, stderr);
	diags_free(&dg);
	if (r < 0) {
		fprintf(stderr, "loguard: applying %s: %s\n", d->opts->policy_file, strerror(-r));
		return EXIT_SYSTEM;
	}
	r = enrich_new(NULL, &d->enrich);
	if (r >= 0)
		r = listener_id_new(d->enrich, &d->lid);
	if (r >= 0)
		r = live_new(d->nl, d->enrich, on_allowed, d, &d->live);
	if (r < 0) {
		fprintf(stderr, "loguard: %s\n", strerror(-r));
		return EXIT_SYSTEM;
	}
	if (live_apply(d->live, &d->cur) < 0)
		return EXIT_SYSTEM;
	/* Sharing is a convenience on top of the guard: without it the guard still stands. */
	r = runtime_dir() ? share_new(d->live, runtime_dir(), &d->share) : -ENOENT;
	if (r < 0)
		fprintf(stderr, "loguard: no control socket for `loguard share` (%s): %s\n",
			runtime_dir() ? runtime_dir() : LOGUARD_RUN_DIR, strerror(-r));
	else
		share_apply(d->share, &d->cur);
	counters_baseline(d);
	open_live_stats(d);
	return open_sinks(d) < 0 ? EXIT_SYSTEM : EXIT_OK;
}

/* Thousands of records a second: let the kernel batch them (one wakeup per 32); a
 * trickle: each at once, so the sender is still there to be identified. */
static void adapt_batching(struct daemon *d, unsigned events)
{
	time_t now = mono_ns() / 1000000000LL;

	if (now != d->rate_second) {
		d->last_second_events = now == d->rate_second + 1 ? d->rate_events : 0;
		d->rate_second = now;
		d->rate_events = 0;
	}
	d->rate_events += events;
	if (d->rate_events > BATCH_ABOVE_PER_SECOND)
		nflog_set_batching(d->nflog, true);
	else if (d->last_second_events < UNBATCH_BELOW_PER_SECOND &&
		 d->rate_events < UNBATCH_BELOW_PER_SECOND)
		nflog_set_batching(d->nflog, false);
}

/* CLOCK_MONOTONIC ms at which the stats record is due (when stats_pending). */
static long long stats_due_ms(const struct daemon *d)
{
	return d->stats_due.tv_sec * 1000LL + d->stats_due.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC ms at which the live counters file may be written again. */
static long long live_stats_due_ms(const struct daemon *d)
{
	return d->live_written_ms + LIVE_STATS_INTERVAL_MS;
}

static int timeout_ms(const struct daemon *d)
{
	long long now = mono_ns() / 1000000, ms = -1;

	/* Idle (nothing pending): -1, sleep until the kernel or a signal wakes us. */
	if (d->stats_pending)
		ms = stats_due_ms(d) - now;
	if (d->live_pending) {
		long long live = live_stats_due_ms(d) - now;

		if (ms < 0 || live < ms)
			ms = live;
	}
	if (!d->stats_pending && !d->live_pending)
		ms = -1;
	else if (ms < 0)
		ms = 0;
	else if (ms > 60 * 60 * 1000)
		ms = 60 * 60 * 1000;
	if (hold_pending(d->hold))
		return 0; /* held packets wait for their turn */
	if (d->share) {
		int sh = share_timeout_ms(d->share);

		if (sh >= 0 && (ms < 0 || sh < ms))
			ms = sh;
	}
	/* Known receivers of owner-only ports are looked at again now and then. */
	if (d->live) {
		int live = live_timeout_ms(d->live);

		if (live >= 0 && (ms < 0 || live < ms))
			ms = live;
	}
	return (int)ms;
}

/* ppoll() delivers a pending signal only when it returns EINTR, that is when it would have
 * slept: with a descriptor always ready (a flood on the queue) it returns at once, with the
 * signals still blocked and pending. Take them here, without waiting. */
static void take_pending_signals(void)
{
	const struct timespec zero = { 0, 0 };
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while ((sig = sigtimedwait(&set, NULL, &zero)) > 0)
		on_signal(sig);
}

/* Something happened: a stats record is due stats_interval from now, unless one is already. */
static void schedule_stats(struct daemon *d)
{
	if (d->stats_pending || !d->opts->stats_interval)
		return;
	clock_gettime(CLOCK_MONOTONIC, &d->stats_due);
	d->stats_due.tv_sec += d->opts->stats_interval;
	d->stats_pending = true;
}

/* Held senders wait for us: their records and verdicts first. */
static int handle_hold(struct daemon *d)
{
	int r = hold_handle(d->hold);

	if (r < 0) {
		fprintf(stderr, "loguard: reading held denials: %s\n", strerror(-r));
		return r;
	}
	schedule_stats(d);
	return 0;
}

/* Share requests (a bounded batch per turn, see share.c), or its timed work when due. */
static void handle_share(struct daemon *d, const struct pollfd *pfd, size_t n, int ready)
{
	bool due = share_timeout_ms(d->share) == 0;

	for (size_t i = 0; !due && ready > 0 && i < n; i++)
		due = pfd[i].revents != 0;
	if (due)
		share_handle(d->share);
}

/* live_handle() reads every source, a bounded batch each: a flood's queue is read over
 * several turns, with signals seen in between. */
static int handle_live(struct daemon *d)
{
	int r;

	d->batch_events = 0; /* a burst is counted per read, as for NFLOG */
	r = live_handle(d->live);
	if (r < 0) {
		fprintf(stderr, "loguard: %s\n", strerror(-r));
		return r;
	}
	schedule_stats(d);
	if (d->out)
		fflush(d->out);
	return 0;
}

static int handle_nflog(struct daemon *d)
{
	int r;

	d->batch_events = 0;
	r = nflog_read(d->nflog, on_event, d, &d->stats);
	if (r < 0) {
		fprintf(stderr, "loguard: reading NFLOG: %s\n", strerror(-r));
		return r;
	}
	if (r > 0)
		adapt_batching(d, (unsigned)r);
	if (d->out)
		fflush(d->out);
	if (r > 0)
		schedule_stats(d);
	return 0;
}

/* The live counters file and the stats record, each when due. */
static void write_due_stats(struct daemon *d)
{
	if (d->live_pending && live_stats_due_ms(d) <= mono_ns() / 1000000)
		write_live_stats(d);
	if (d->stats_pending && stats_due_ms(d) <= mono_ns() / 1000000)
		emit_stats(d);
}

static bool any_ready(const struct pollfd *pfd, size_t n, int ready)
{
	for (size_t i = 0; ready > 0 && i < n; i++)
		if (pfd[i].revents)
			return true;
	return false;
}

/* Held packets to handle: one of the hold queues is readable, or some wait their turn. */
static bool hold_ready(const struct daemon *d, const struct pollfd *pfd, size_t n, int ready)
{
	return any_ready(pfd, n, ready) || hold_pending(d->hold);
}

static int loop(struct daemon *d, const sigset_t *unblocked)
{
	for (;;) {
		struct pollfd pfd[1 + LIVE_MAX_FDS + HOLD_MAX_FDS + SHARE_MAX_FDS] = {
			{ .fd = nflog_fd(d->nflog), .events = POLLIN }
		};
		size_t n_live = live_pollfds(d->live, pfd + 1);
		size_t n_hold = hold_pollfds(d->hold, pfd + 1 + n_live);
		size_t share_at = 1 + n_live + n_hold;
		size_t n_pfd = share_at + share_pollfds(d->share, pfd + share_at);
		int t = timeout_ms(d), n, r = 0;
		struct timespec ts = { t / 1000, (t % 1000) * 1000000L };

		if (got_stop)
			return 0;
		if (got_reload) {
			got_reload = 0;
			reload(d);
			continue;
		}
		n = ppoll(pfd, n_pfd, t < 0 ? NULL : &ts, unblocked);
		if (n < 0 && errno != EINTR)
			return -errno;
		/* Also when ppoll() did not wait (held packets waiting their turn): it took no
		 * signal then either. */
		if (n > 0 || t == 0)
			take_pending_signals();
		live_tick(d->live);
		if (hold_ready(d, pfd + 1 + n_live, n_hold, n))
			r = handle_hold(d);
		if (r >= 0 && d->share)
			handle_share(d, pfd + share_at, n_pfd - share_at, n);
		if (r >= 0 && any_ready(pfd + 1, n_live, n))
			r = handle_live(d);
		if (r >= 0 && n > 0 && pfd[0].revents)
			r = handle_nflog(d);
		if (r < 0)
			return r;
		if (n > 0)
			d->live_pending = true;
		write_due_stats(d);
	}
}

int daemon_run(const struct daemon_opts *opts)
{
	struct daemon d = { .opts = opts, .journal_fd = -1, .cache = policy_cache_new() };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, unblocked;
	int status, r;

	/* A reload builds the next policy and ruleset while the current ones live: 10,000
	 * guards in 100 drop-ins, the daemon CPU of reloads 1-3 was 59, 44, 37 ms with glibc's
	 * defaults, 40, 26, 16 with the heap kept (steady state 12-22 ms either way). */
	apply_keep_heap();
	/* Block first, so a signal during startup waits for the loop. */
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	status = start(&d);
	if (status == EXIT_OK) {
		fprintf(stderr, "loguard: guarding with %s (%zu guards), logging NFLOG group %u\n",
			opts->policy_file, d.cur.policy->n_guards, d.cur.rs->log_group);
		notify_status(&d, "READY=1\n");
		r = loop(&d, &unblocked);
		notify_send("STOPPING=1");
		hold_handle(d.hold); /* held senders get their records and verdicts */
		nflog_read(d.nflog, on_event, &d, &d.stats); /* what is still queued */
		emit_stats(&d);
		/* A runtime error is no reason to open every guard: the table stays in force (its
		 * sets as last updated) for a restarted daemon to take over. Only a stop asked
		 * for removes it. */
		if (r < 0) {
			status = EXIT_SYSTEM;
			fprintf(stderr, "loguard: exiting on an error; table inet " LOGUARD_TABLE
					" stays in force\n");
		}
		if (!opts->keep_rules && r == 0) {
			struct diags dg = { 0 };

			if (apply_ruleset(d.nl, NULL, true, 0, &dg, NULL) < 0) {
				diags_print(&dg, stderr);
				status = EXIT_SYSTEM;
			}
			diags_free(&dg);
		}
	}
	if (d.out && d.out != stdout)
		fclose(d.out);
	else if (d.out)
		fflush(d.out);
	if (d.journal_fd >= 0)
		close(d.journal_fd);
	if (d.live_path)
		unlink(d.live_path); /* no daemon, no live counters */
	free(d.live_path);
	if (d.live) {
		struct live_stats ls;

		live_get_stats(d.live, &ls);
		if (ls.queued || ls.cgroups_added)
			fprintf(stderr,
				"loguard: judged %llu queued connections (%llu allowed, %llu "
				"refused); followed %llu cgroups appearing, %llu going\n",
				(unsigned long long)ls.queued, (unsigned long long)ls.accepted,
				(unsigned long long)ls.refused,
				(unsigned long long)ls.cgroups_added,
				(unsigned long long)ls.cgroups_removed);
		if (ls.exec_indexed || ls.exec_walked)
			fprintf(stderr,
				"loguard: executables: %llu checks from the process index, %llu by "
				"/proc walk; %llu process events, %llu losses, %llu rebuilds\n",
				(unsigned long long)ls.exec_indexed,
				(unsigned long long)ls.exec_walked,
				(unsigned long long)ls.proc_events,
				(unsigned long long)ls.proc_lost,
				(unsigned long long)ls.proc_rebuilds);
	}
	if (d.hold) {
		struct hold_stats hs;

		hold_get_stats(d.hold, &hs);
		if (hs.held || hs.enobufs)
			fprintf(stderr,
				"loguard: held %llu denials for their records (%.0f us CPU each; "
				"%llu past their uid's budget, %llu queue overflows)\n",
				(unsigned long long)hs.held,
				hs.held ? (double)hs.cpu_ns / 1e3 / (double)hs.held : 0.0,
				(unsigned long long)hs.unidentified,
				(unsigned long long)hs.enobufs);
	}
	hold_free(d.hold);
	share_free(d.share); /* before live: it unhooks itself */
	live_free(d.live);
	listener_id_free(d.lid);
	enrich_free(d.enrich);
	nflog_close(d.nflog);
	nl_close(d.nl);
	apply_loaded_free(&d.cur);
	policy_cache_free(d.cache);
	sigprocmask(SIG_SETMASK, &unblocked, NULL);
	return status;
}
