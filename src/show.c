// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `loguard show`: the table as table_read.c read it back, as text or JSON. A guard's counts
 * are derived here from what the kernel counted (see guard_counts()).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

#include "ruleset.h"
#include "share.h"
#include "show.h"

/* Connections, allowed and denied of g: a guard the daemon judges has its denials counted
 * where they happen and passes the map twice for each repeat; the others are denied what no
 * allow set took. */
static void guard_counts(const struct table_guard *g, uint64_t *ret_conn, uint64_t *ret_allowed,
			 uint64_t *ret_denied)
{
	uint64_t conn = g->connections, denied;

	if (g->judged) {
		conn = conn > g->asked ? conn - g->asked : 0;
		denied = g->denied < conn ? g->denied : conn;
		*ret_allowed = conn - denied;
	} else {
		denied = conn > g->allowed ? conn - g->allowed : 0;
		*ret_allowed = g->allowed;
	}
	*ret_conn = conn;
	*ret_denied = denied;
}

static const char *guard_mode(const struct table_guard *g)
{
	return g->mode < __POLICY_MODE_MAX ? policy_mode_name(g->mode) : "?";
}

static void print_ports_list(const struct table_guard *g, FILE *f)
{
	for (size_t i = 0; i < g->n_ports; i++) {
		const struct table_ports *p = &g->ports[i];

		fprintf(f, "%s%s/%u", i ? "," : "", p->proto == IPPROTO_TCP ? "tcp" : "udp",
			p->first);
		if (p->last != p->first)
			fprintf(f, "-%u", p->last);
	}
}

int show_print_text(const struct table_state *t, FILE *f)
{
	bool files = false;

	if (!t->installed) {
		fputs("table inet " LOGUARD_TABLE ": not installed\n", f);
		return 0;
	}
	fprintf(f, "table inet " LOGUARD_TABLE ": %zu guards (ruleset generation %u)\n",
		t->n_guards, t->genid);
	for (size_t i = 0; i < t->n_guards; i++)
		files |= t->guards[i].file != NULL;
	fprintf(f, "%-24s %-8s %-7s %12s %12s %12s  %s%s\n", "GUARD", "MODE", "ACTION", "CONNECTIONS",
		"ALLOWED", "DENIED", "PORTS", files ? "  FILE" : "");
	for (size_t i = 0; i < t->n_guards; i++) {
		const struct table_guard *g = &t->guards[i];
		uint64_t conn, allowed, denied;

		guard_counts(g, &conn, &allowed, &denied);
		fprintf(f, "%-24s %-8s %-7s ", g->name, guard_mode(g),
			g->mode == POLICY_MODE_ENFORCE ? policy_action_name(g->action) : "-");
		if (t->counters)
			fprintf(f, "%12llu %12llu %12llu  ", (unsigned long long)conn,
				(unsigned long long)allowed, (unsigned long long)denied);
		else
			fprintf(f, "%12s %12s %12s  ", "-", "-", "-");
		print_ports_list(g, f);
		if (files)
			fprintf(f, "  %s", g->file ? g->file : "-");
		fputc('\n', f);
	}
	if (t->has_rate_limit)
		fprintf(f, "log records suppressed by the rate limit: %llu\n",
			(unsigned long long)t->rate_limited);
	if (t->daemon.live)
		fprintf(f,
			"loguard run (pid %ld): %llu records received, %llu lost, %llu socket "
			"overflows, %llu without full identity; %llu connections judged (%llu "
			"allowed), %llu receivers and %llu cgroups followed\n",
			t->daemon.pid, t->daemon.received, t->daemon.lost, t->daemon.enobufs,
			t->daemon.identity_skipped, t->daemon.queued, t->daemon.queue_allowed,
			t->daemon.receivers, t->daemon.cgroups);
	if (t->daemon.live && t->daemon.has_limits)
		fprintf(f,
			"cgroup watch: %llu directories watched, %llu rescanned without a watch, "
			"%llu with children left out by a limit (%llu left out, %llu limits hit); "
			"%llu matched cgroups waiting for room in the sets, %llu set updates "
			"refused\n",
			t->daemon.cgroup_dirs_watched, t->daemon.cgroup_dirs_polled,
			t->daemon.cgroup_dirs_truncated, t->daemon.cgroup_dirs_skipped,
			t->daemon.cgroup_limit_hits, t->daemon.cgroups_waiting,
			t->daemon.update_errors);
	/* Grants live in the daemon (the kernel holds only those in force now): ask it. */
	if (t->daemon.live) {
		fputs("grants (loguard shares):\n", f);
		if (share_client(&(struct share_request){ .op = SHARE_OP_LIST }, f, f) < 0)
			fputs("  (loguard run did not answer)\n", f);
	}
	if (!t->counters)
		fputs("(no counters: the policy says counters: false)\n", f);
	else
		for (size_t i = 0; i < t->n_guards; i++)
			if (t->guards[i].mode == POLICY_MODE_AUDIT) {
				fputs("(audit guards: DENIED counts connections that enforce mode "
				      "would deny)\n",
				      f);
				break;
			}
	return ferror(f) ? -EIO : 0;
}

/* Guard names are restricted by the parser; escape defensively anyway. */
static void json_string(const char *s, FILE *f)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int show_print_json(const struct table_state *t, FILE *f)
{
	fprintf(f, "{\"table\":\"inet " LOGUARD_TABLE "\",\"installed\":%s",
		t->installed ? "true" : "false");
	if (t->installed)
		fprintf(f, ",\"generation\":%u", t->genid);
	if (t->has_rate_limit)
		fprintf(f, ",\"log_rate_limited\":%llu", (unsigned long long)t->rate_limited);
	if (t->daemon.live)
		fprintf(f,
			",\"daemon\":{\"pid\":%ld,\"received\":%llu,\"lost\":%llu,\"enobufs\":%llu,"
			"\"identity_skipped\":%llu,\"queued\":%llu,\"queue_allowed\":%llu,"
			"\"receivers\":%llu,\"cgroups\":%llu}",
			t->daemon.pid, t->daemon.received, t->daemon.lost, t->daemon.enobufs,
			t->daemon.identity_skipped, t->daemon.queued, t->daemon.queue_allowed,
			t->daemon.receivers, t->daemon.cgroups);
	if (t->daemon.live && t->daemon.has_limits)
		fprintf(f,
			",\"cgroup_watch\":{\"watched\":%llu,\"polled\":%llu,\"truncated\":%llu,"
			"\"skipped\":%llu,\"limit_hits\":%llu,\"cgroups_waiting\":%llu,"
			"\"update_errors\":%llu}",
			t->daemon.cgroup_dirs_watched, t->daemon.cgroup_dirs_polled,
			t->daemon.cgroup_dirs_truncated, t->daemon.cgroup_dirs_skipped,
			t->daemon.cgroup_limit_hits, t->daemon.cgroups_waiting,
			t->daemon.update_errors);
	fputs(",\"guards\":[", f);
	for (size_t i = 0; i < t->n_guards; i++) {
		const struct table_guard *g = &t->guards[i];
		uint64_t conn, allowed, denied;

		guard_counts(g, &conn, &allowed, &denied);
		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		json_string(g->name, f);
		fprintf(f, ",\"mode\":\"%s\"", guard_mode(g));
		if (g->mode == POLICY_MODE_ENFORCE)
			fprintf(f, ",\"action\":\"%s\",\"log\":\"%s\"",
				policy_action_name(g->action), policy_log_name(g->log));
		fputs(",\"ports\":[", f);
		for (size_t k = 0; k < g->n_ports; k++)
			fprintf(f, "%s{\"protocol\":\"%s\",\"first\":%u,\"last\":%u}", k ? "," : "",
				g->ports[k].proto == IPPROTO_TCP ? "tcp" : "udp", g->ports[k].first,
				g->ports[k].last);
		fprintf(f, "],\"allow_entries\":%zu,", g->n_allow);
		if (g->file) {
			fputs("\"file\":", f);
			json_string(g->file, f);
			fputc(',', f);
		}
		if (t->counters)
			fprintf(f, "\"connections\":%llu,\"allowed\":%llu,\"%s\":%llu}",
				(unsigned long long)conn, (unsigned long long)allowed,
				g->mode == POLICY_MODE_AUDIT ? "would_deny" : "denied",
				(unsigned long long)denied);
		else /* unknown, not zero */
			fprintf(f, "\"connections\":null,\"allowed\":null,\"%s\":null}",
				g->mode == POLICY_MODE_AUDIT ? "would_deny" : "denied");
	}
	fputs("]}\n", f);
	return ferror(f) ? -EIO : 0;
}
