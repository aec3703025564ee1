// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `loguard why PORT`: a refused client sees "Connection refused" or a hang and cannot tell a
 * guard from a dead server. This answers from the same pipeline the kernel's rules come from
 * (the compiled ruleset's guard lookup, so precedence is the rules' own) and from the
 * listening sockets (a sock_diag dump, which needs no privileges). Nothing here changes
 * anything.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include "enrich.h"
#include "listeners.h"
#include "share.h"
#include "why.h"

/* Listening sockets shown; a port with more is a curiosity, not a policy question. */
#define WHY_MAX_LISTENERS 16

/* One socket that would receive on the port. */
struct why_listener {
	int family;
	char addr[INET6_ADDRSTRLEN];
	uint32_t uid;
	uint32_t inode;
};

const char *why_refusal_seen(bool udp, bool drop)
{
	if (!udp && !drop)
		return "\"Connection refused\" at once (a TCP reset, as from a port nobody "
		       "listens on)";
	if (!udp)
		return "nothing: connect() hangs until it times out (SYNs dropped; about 2 "
		       "minutes by default, the client's own timeout if shorter)";
	if (!drop)
		return "datagrams lost; an ICMP port unreachable makes the next send or recv "
		       "on a connected socket fail with \"Connection refused\"";
	return "nothing: datagrams are silently lost";
}

/* Dump family/proto sockets bound to port (TCP: listening; UDP: not connected). */
static int dump_port(struct mnl_socket *nl, uint8_t family, uint8_t proto, uint16_t port,
		     struct why_listener *v, size_t *n)
{
	/* "Own port == port", as ss(8) builds it: accept past the end, reject 4 bytes beyond. */
	const struct inet_diag_bc_op bc[2] = {
		{ .code = INET_DIAG_BC_S_EQ, .yes = sizeof(bc), .no = sizeof(bc) + 4 },
		{ .no = port },
	};
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct inet_diag_req_v2 *req;
	unsigned seq = 1;

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = proto;
	req->idiag_states = proto == IPPROTO_TCP ? 1U << TCP_LISTEN : 1U << TCP_CLOSE;
	mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(bc), bc);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		int len = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));

		if (len < 0)
			return -errno;
		for (nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nlh->nlmsg_type == NLMSG_ERROR)
				return -EPROTO;
			if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    mnl_nlmsg_get_payload_len(nlh) < sizeof(*m) || *n == WHY_MAX_LISTENERS)
				continue;
			v[*n] = (struct why_listener){ .family = family,
						       .uid = m->idiag_uid,
						       .inode = m->idiag_inode };
			inet_ntop(family, m->id.idiag_src, v[*n].addr, sizeof(v[*n].addr));
			(*n)++;
		}
	}
}

/* The owner as `loguard run` judges it: the uid of the socket that receives a connection to
 * 127.0.0.1 (else ::1) on port, by listeners_find()'s rule (most specific address, sockets
 * bound to a device). False when nobody, or no single user, receives there. */
static bool receiver_uid(uint8_t proto, uint16_t port, uint32_t *ret_uid)
{
	static const struct in6_addr lo4 = { .s6_addr = { 127, 0, 0, 1 } };
	struct listeners *lk = NULL;
	struct listener rcv;
	int r = listeners_open_lookup(&lk);

	if (r == 0)
		r = listeners_find(lk, AF_INET, proto, &lo4, port, 0, &rcv);
	if (r == -ENOENT)
		r = listeners_find(lk, AF_INET6, proto, &in6addr_loopback, port, 0, &rcv);
	listeners_close(lk);
	if (r < 0 || rcv.contested || rcv.ambiguous)
		return false;
	*ret_uid = rcv.uid;
	return true;
}

/* A process holding the listener's socket (if we may look: our own, or any as root), by
 * enrich's bounded search among the processes of the socket's user, and its name. */
static bool socket_holder(struct enrich *e, const struct why_listener *l, long *ret_pid,
			  char *comm, size_t size)
{
	struct enrich_sock s = {
		.has_inode = true, .inode = l->inode, .has_uid = true, .uid = l->uid
	};
	char path[64];
	pid_t pid;
	FILE *f;

	if (!e || !l->inode || enrich_socket_pid(e, &s, NULL, &pid) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	f = fopen(path, "re");
	comm[0] = '\0';
	if (f) {
		if (fgets(comm, (int)size, f))
			comm[strcspn(comm, "\n")] = '\0';
		/* The process names itself: nothing but printable ASCII reaches the terminal. */
		for (char *c = comm; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				*c = '?';
		fclose(f);
	}
	*ret_pid = pid;
	return true;
}

static const char *user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, size, "%s (%u)", pw->pw_name, (unsigned)uid);
	else
		snprintf(buf, size, "uid %u", (unsigned)uid);
	return buf;
}

static void print_loc(FILE *f, const struct loc *loc)
{
	fprintf(f, "%s:%u:%u", loc->file, loc->line, loc->col);
}

/* A port argument: a number or a services(5) name for the protocol. 0: not a port. */
static uint16_t parse_port(const char *s, bool udp)
{
	char *end;
	unsigned long v;
	struct servent *se;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] >= '0' && s[0] <= '9' && !*end && !errno)
		return v >= 1 && v <= 65535 ? (uint16_t)v : 0;
	se = getservbyname(s, udp ? "udp" : "tcp");
	return se ? ntohs((uint16_t)se->s_port) : 0;
}

/* Why uid would be let through by g's users and groups: the first entry that names it. */
static const struct policy_ref *allowing_ref(const struct policy_guard *g, const struct passwd *pw,
					     bool *ret_group)
{
	for (size_t i = 0; i < g->n_users; i++) {
		const struct passwd *u = getpwnam(g->users[i].name);
		char *end;
		unsigned long id = strtoul(g->users[i].name, &end, 10);

		if ((u && u->pw_uid == pw->pw_uid) || (!*end && id == pw->pw_uid)) {
			*ret_group = false;
			return &g->users[i];
		}
	}
	for (size_t i = 0; i < g->n_groups; i++) {
		const struct group *gr = getgrnam(g->groups[i].name);
		char *end;
		unsigned long id = strtoul(g->groups[i].name, &end, 10);

		/* A number names a gid, as policy_check resolves it. */
		if (!gr && g->groups[i].name[0] && !*end)
			gr = getgrgid((gid_t)id);
		if (!gr)
			continue;
		if (gr->gr_gid == pw->pw_gid) {
			*ret_group = true;
			return &g->groups[i];
		}
		for (char **m = gr->gr_mem; m && *m; m++)
			if (!strcmp(*m, pw->pw_name)) {
				*ret_group = true;
				return &g->groups[i];
			}
	}
	return NULL;
}

static void print_refs(FILE *f, const char *what, const struct policy_ref *v, size_t n)
{
	if (!n)
		return;
	fprintf(f, "  %s:", what);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s %s", i ? "," : "", v[i].name);
	fputc('\n', f);
}

/* Other guards whose intervals hold the port too: the narrower guard took it from them. */
static void print_overridden(FILE *f, const struct policy *p, const struct policy_guard *owner,
			     unsigned proto, uint16_t port)
{
	for (size_t i = 0; i < p->n_guards; i++) {
		const struct policy_guard *g = &p->guards[i];

		if (g == owner || !(g->protocols & proto))
			continue;
		for (size_t k = 0; k < g->n_ports; k++) {
			if (g->ports[k].first > port || g->ports[k].last < port)
				continue;
			fprintf(f, "  it takes the port from guard '%s' (%u-%u, ", g->name,
				g->ports[k].first, g->ports[k].last);
			print_loc(f, &g->ports[k].loc);
			fputs("): a narrower guard takes precedence\n", f);
			break;
		}
	}
}

/* The grants `loguard run` reports on PORT (the caller's own, made or got; root: all) as
 * "PROTO PORT OWNER -> CLIENT[ (@GROUP)], LEFT[, in force]" lines, NUL-separated in a malloc'd
 * buffer; NULL when the daemon cannot be asked (*ret_err says why). */
static char *port_grants(const char *pname, uint16_t port, int *ret_err)
{
	struct share_request q = { .op = SHARE_OP_LIST };
	char *buf = NULL, *out, *w, prefix[24];
	size_t len = 0, plen;
	FILE *m = open_memstream(&buf, &len);
	int r;

	if (!m) {
		*ret_err = -ENOMEM;
		return NULL;
	}
	r = share_client(&q, m, m);
	if (fclose(m) || r < 0) {
		free(buf);
		*ret_err = r < 0 ? r : -ENOMEM;
		return NULL;
	}
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s %u ", pname, port);
	out = w = calloc(len + 2, 1);
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); out && line;
	     line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, prefix, plen))
			w = stpcpy(w, line) + 1;
	free(buf);
	if (!out)
		*ret_err = -ENOMEM;
	return out;
}

/* The grant line of grants that lets user in now, or NULL. */
static const char *grant_for(const char *grants, const char *user)
{
	size_t n = strlen(user);

	for (const char *l = grants; l && *l; l += strlen(l) + 1) {
		const char *c = strstr(l, " -> ");

		if (c && !strncmp(c + 4, user, n) && (c[4 + n] == ',' || c[4 + n] == ' ') &&
		    strstr(l, ", in force"))
			return l;
	}
	return NULL;
}

int why_explain(const struct loaded *l, const struct why_opts *o, FILE *f, FILE *err)
{
	const unsigned proto = o->udp ? POLICY_PROTO_UDP : POLICY_PROTO_TCP;
	const char *pname = o->udp ? "udp" : "tcp";
	struct why_listener ls[WHY_MAX_LISTENERS];
	const struct policy_guard *g = NULL;
	struct mnl_socket *nl = NULL;
	char who[64], lw[64];
	const char *gname;
	struct passwd pwbuf, *pw;
	bool any_owner = false, listeners_ok = false, by_group = false, exe_ok = false;
	uint32_t owner_uid = 0;
	size_t n = 0;
	uint16_t port;
	char *grants = NULL;
	const char *granted = NULL;
	int r = 0, grants_err = 0;

	port = parse_port(o->port, o->udp);
	if (!port) {
		fprintf(err, "loguard: why: '%s' is not a port (1-65535 or a %s service name)\n",
			o->port, pname);
		return -EINVAL;
	}
	if (o->user) {
		char *end;
		unsigned long id = strtoul(o->user, &end, 10);

		pw = getpwnam(o->user);
		if (!pw && o->user[0] && !*end)
			pw = getpwuid((uid_t)id);
	} else {
		pw = getpwuid(getuid());
	}
	if (!pw) {
		fprintf(err, "loguard: why: no such user '%s'\n", o->user ? o->user : "(caller)");
		return -EINVAL;
	}
	pwbuf = *pw;
	pwbuf.pw_name = strdupa(pw->pw_name);
	pw = &pwbuf;

	/* Who listens: a dump of the port's sockets, v4 and v6. */
	nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0) {
		r = dump_port(nl, AF_INET, o->udp ? IPPROTO_UDP : IPPROTO_TCP, port, ls, &n);
		if (r == 0)
			r = dump_port(nl, AF_INET6, o->udp ? IPPROTO_UDP : IPPROTO_TCP, port, ls,
				      &n);
		listeners_ok = r == 0;
	}
	if (nl)
		mnl_socket_close(nl);
	if (n)
		any_owner = receiver_uid(o->udp ? IPPROTO_UDP : IPPROTO_TCP, port, &owner_uid);

	gname = ruleset_guard_of(l->rs, o->udp ? IPPROTO_UDP : IPPROTO_TCP, port);
	for (size_t i = 0; gname && i < l->policy->n_guards; i++)
		if (!strcmp(l->policy->guards[i].name, gname))
			g = &l->policy->guards[i];

	if (!g) {
		fprintf(f, "port %u/%s: no guard; every local user and process may connect\n", port,
			pname);
	} else {
		fprintf(f, "port %u/%s: guard '%s' (", port, pname, g->name);
		print_loc(f, &g->loc);
		fprintf(f, "), %s", policy_mode_name(g->mode));
		if (g->mode == POLICY_MODE_ENFORCE)
			fprintf(f, ", action %s", policy_action_name(g->action));
		fputc('\n', f);
		print_overridden(f, l->policy, g, proto, port);

		fputs("allowed:\n", f);
		if (g->owner)
			fputs("  the user whose socket listens on the port (owner: true)\n", f);
		print_refs(f, "users", g->users, g->n_users);
		print_refs(f, "groups (every member)", g->groups, g->n_groups);
		print_refs(f, "units (any user in them)", g->units, g->n_units);
		print_refs(f, "cgroups (any user in them)", g->cgroups, g->n_cgroups);
		print_refs(f, "launched with loguard exec --as", g->launched, g->n_launched);
		print_refs(f, "executables (judged by loguard run)", g->executables,
			   g->n_executables);
		if (!g->owner && !g->n_users && !g->n_groups && !g->n_units && !g->n_cgroups &&
		    !g->n_launched && !g->n_executables)
			fputs("  nobody (the guard has no 'allow'), root included\n", f);

		user_name(pw->pw_uid, who, sizeof(who));
		if (o->exe) {
			struct stat st;

			if (stat(o->exe, &st) < 0) {
				fprintf(err, "loguard: why: --exe %s: %s\n", o->exe, strerror(errno));
				return -EINVAL;
			}
			for (size_t i = 0; i < g->n_exe_ids; i++)
				exe_ok |= g->exe_ids[i].dev == st.st_dev &&
					  g->exe_ids[i].ino == st.st_ino;
		}
		const struct policy_ref *ref = allowing_ref(g, pw, &by_group);

		if (g->owner && g->share) {
			grants = port_grants(pname, port, &grants_err);
			granted = grant_for(grants, pw->pw_name);
		}

		if (ref) {
			fprintf(f, "%s: allowed, %s '%s' (", who,
				by_group ? "a member of group" : "listed as", ref->name);
			print_loc(f, &ref->loc);
			fputs(")\n", f);
		} else if (g->owner && n && any_owner && owner_uid == pw->pw_uid) {
			fprintf(f, "%s: allowed, the owner of the listening socket\n", who);
		} else if (granted && g->mode == POLICY_MODE_ENFORCE) {
			fprintf(f, "%s: allowed, shared by the listener's owner (%s)\n", who, granted);
		} else if (exe_ok) {
			fprintf(f, "%s: allowed when the connecting program is %s (loguard run must "
				   "be running)\n",
				who, o->exe);
		} else {
			fprintf(f, "%s: %s", who,
				g->mode == POLICY_MODE_AUDIT ? "not allowed, but audit mode blocks "
							       "nothing (logged as would-deny)"
							     : "refused");
			if (g->owner && !n)
				fputs("; nobody listens, so no owner yet", f);
			else if (g->owner && !any_owner)
				fputs("; no one user's socket receives connections to 127.0.0.1 "
				      "or ::1 here: judged per connection",
				      f);
			else if (g->owner)
				fprintf(f, "; the listener's owner is %s",
					user_name(owner_uid, lw, sizeof(lw)));
			if (g->n_users || g->n_groups)
				fputs("; not in its users or groups", f);
			if (g->n_executables && !o->exe)
				fputs("; unless the program is one of its executables (--exe)", f);
			else if (g->n_executables)
				fprintf(f, "; %s is not one of its executables", o->exe);
			if (g->n_units || g->n_cgroups || g->n_launched)
				fputs("; unless the client runs in one of its units, cgroups or "
				      "launched commands",
				      f);
			fputc('\n', f);
			if (g->mode == POLICY_MODE_ENFORCE)
				fprintf(f, "  a refused %s client sees %s\n", pname,
					why_refusal_seen(o->udp, g->action == POLICY_ACTION_DROP));
		}
	}

	if (g && g->owner && g->share) {
		if (!grants)
			fprintf(f, "grants: unknown (loguard run cannot be asked: %s)\n",
				strerror(-grants_err));
		else if (!*grants)
			fprintf(f, "grants: none on port %u/%s (that you made or got; the listener's "
				   "owner may run `loguard share %u%s --with USER`)\n",
				port, pname, port, o->udp ? " --udp" : "");
		for (const char *line = grants; line && *line; line += strlen(line) + 1)
			fprintf(f, "grant: %s\n", line);
		free(grants);
	}
	if (!listeners_ok) {
		fputs("listening: unknown (sock_diag failed)\n", f);
	} else if (!n) {
		fprintf(f, "listening: nobody on port %u/%s (a client gets \"Connection refused\" "
			   "from the kernel, guard or not)\n",
			port, pname);
	}
	struct enrich *e = NULL;

	if (listeners_ok && n && enrich_new(NULL, &e) < 0)
		e = NULL; /* names no process; the rest stands */
	for (size_t i = 0; listeners_ok && i < n; i++) {
		long pid;
		char comm[32];

		fprintf(f, "listening: %s%s%s:%u %s, user %s", ls[i].family == AF_INET6 ? "[" : "",
			ls[i].addr, ls[i].family == AF_INET6 ? "]" : "", port, pname,
			user_name(ls[i].uid, lw, sizeof(lw)));
		if (socket_holder(e, &ls[i], &pid, comm, sizeof(comm)))
			fprintf(f, ", pid %ld (%s)", pid, comm);
		fputc('\n', f);
	}
	enrich_free(e);
	return ferror(f) ? -EIO : 0;
}
