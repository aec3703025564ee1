/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LOGUARD_RULESET_H
#define LOGUARD_RULESET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"

#define LOGUARD_TABLE		     "loguard"
#define LOGUARD_HOOK_CHAIN	     "output"
#define LOGUARD_CAST_CHAIN	     "udp_cast"
#define LOGUARD_GUARD_MAP	     "guards"
#define LOGUARD_ALLOW_UID_SET	     "allow_uid"
#define LOGUARD_ALLOW_CGROUP_SET_FMT "allow_cgroup_l%u"
/* Counting sets of the guards the daemon judges: a connection the daemon sends back through
 * the hook (NF_REPEAT) passes the guard map twice, and one it accepts never reaches an allow
 * set, so `show` counts their denials and repeats where they happen. */
#define LOGUARD_ASKED_SET  "asked"
#define LOGUARD_DENIED_SET "denied"
/* Port ranges live in a twin set with this suffix: see struct rs_set. */
#define LOGUARD_RANGES_SUFFIX "_ranges"

/* Owner-only ports: the daemon fills, per address family, which (destination address, protocol,
 * port) has a known receiving socket, and that socket's uid. */
#define LOGUARD_OWNER_SET_FMT	    "owner%u"	    /* owner4, owner6 */
#define LOGUARD_OWNER_KNOWN_SET_FMT "owner_known%u" /* owner_known4, owner_known6 */
/* Shared ports (`share: true`, `loguard share`): the daemon puts in, per address family,
 * (destination address, protocol, port, client uid) for each grant of the port's current
 * receiver, only while that receiver's owner4/6 element is in (see share.h); each element
 * carries the kernel's timeout when the grant has a duration. */
#define LOGUARD_GRANT_SET_FMT "grant%u" /* grant4, grant6 */
/* Declared size of the sets the daemon fills while it runs. */
#define LOGUARD_LIVE_SET_SIZE 65536

/* Cgroup levels the daemon keeps a set for when units/cgroups may appear while it runs. */
#define LOGUARD_LIVE_CGROUP_LEVELS 8

/* Packet mark bit the daemon sets on a queued connection it does not accept itself, before
 * NF_REPEAT: the packet goes through the rules again, the sets decide (they may have just
 * learned a cgroup or a receiver), and the queue rules skip it, so what the sets do not allow
 * takes the guard's deny path (log, reject or drop). Audit clears it before its accept. */
#define LOGUARD_MARK_ASKED 0x20000000U

/*
 * Under `loguard run`, what the log meters let through of denials and would-be denials is held
 * in an NFQUEUE instead of being logged: the client is still blocked in connect() (or its
 * datagram waits), so the daemon finds who sent it, writes the record, then lets the packet go
 * on. The kernel keeps the decision: an enforce denial is marked with its deny action before it
 * is queued, and the queueing chain (hook output, LOGUARD_HOOK_PRIORITY) is left by every way
 * out of the queue (the daemon's accept, no daemon bound: bypass) into the base chain
 * LOGUARD_HELD_CHAIN one priority later, which rejects or drops what carries the mark. A full
 * queue drops (enforce; TCP retransmits the SYN) or accepts (audit, which blocks nothing).
 * Queues: policy queue + LOGUARD_HOLD_QUEUE_DENY (enforce) and + LOGUARD_HOLD_QUEUE_AUDIT.
 */
#define LOGUARD_HELD_CHAIN	    "held"
#define LOGUARD_HELD_PRIORITY	    (LOGUARD_HOOK_PRIORITY + 1)
#define LOGUARD_MARK_HOLD_REJECT    0x10000000U
#define LOGUARD_MARK_HOLD_DROP	    0x40000000U
#define LOGUARD_MARK_HOLD	    (LOGUARD_MARK_HOLD_REJECT | LOGUARD_MARK_HOLD_DROP)
#define LOGUARD_HOLD_QUEUE_DENY	    1
#define LOGUARD_HOLD_QUEUE_AUDIT    2

/* The guard judges in the output hook before destination NAT (nat output is at -100,
 * conntrack at -200): on the address and port the client asked for, before a container
 * runtime's DNAT of 127.0.0.1:PORT reroutes the packet off lo. -110 is after mangle (-150),
 * where type route chains may reroute. */
#define LOGUARD_HOOK_PRIORITY (-110)

/* Log rate meters, one token bucket per (protocol, port, uid): elements expire after this
 * long without traffic (at least; longer when the bucket takes longer to refill, see
 * rs_log_rate_timeout_s()); at most this many. When the meter is full, the pairs it has no
 * room for share one bucket of the same rate and burst; packets without a socket (no uid)
 * share another. */
#define LOGUARD_LOG_RATE_TIMEOUT_S 60
#define LOGUARD_LOG_RATE_SIZE	   131072

/* Named counter of log records the kernel's rate limit suppressed (read by the daemon). */
#define LOGUARD_RATE_COUNTER "log_rate_limited"
/* Named counter of log records the kernel handed to NFLOG: what the daemon did not receive of
 * them was lost, even when no later record shows a sequence gap (a burst's end). */
#define LOGUARD_SENT_COUNTER "log_sent"

/* Log prefixes: the daemon reads the verdict from the prefix and the guard from the port. */
#define LOGUARD_PREFIX_ALLOW	  "loguard allow"
#define LOGUARD_PREFIX_DENY	  "loguard deny"
#define LOGUARD_PREFIX_WOULD_DENY "loguard would-deny"

/* Kinds of set the compiler produces; the key layout follows from the kind. */
enum rs_set_kind {
	RS_SET_GUARDS,	     /* map l4proto . dport : verdict (goto profile chain) */
	RS_SET_ALLOW_UID,    /* map l4proto . dport . skuid : verdict (accept, or goto allow_log) */
	RS_SET_ALLOW_CGROUP, /* set l4proto . dport . socket cgroupv2 level N */
	RS_SET_LOG_RATE,     /* dynamic set l4proto . dport . skuid, a log rate limit each */
	RS_SET_OWNER,	     /* set ipN daddr . l4proto . dport . uid (filled by the daemon) */
	RS_SET_OWNER_KNOWN,  /* set ipN daddr . l4proto . dport (filled by the daemon) */
	RS_SET_ASKED,	     /* set l4proto . dport, counters: packets the daemon sent back */
	RS_SET_DENIED,	     /* set l4proto . dport, counters: denied (audit: would-deny) */
	RS_SET_GRANT,	     /* set ipN daddr . l4proto . dport . uid, flags timeout (daemon) */
	__RS_SET_KIND_MAX
};

/* One set element; `id` is the uid or cgroup id for allow sets. */
struct rs_elem {
	struct in6_addr addr; /* owner sets: destination address (IPv4: 4 bytes first) */
	uint8_t proto;	      /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port_first, port_last;
	uint64_t id;
	const char *chain;     /* verdict maps: goto target (RS_SET_ALLOW_UID: NULL is accept) */
	const char *comment;   /* guard name, or cgroup path; may be NULL */
	const struct loc *loc; /* policy node this element came from, for kernel errors */
	uint64_t timeout_ms;   /* RS_SET_GRANT: the kernel removes it after this long; 0 never */
};

/* A named set or verdict map with its elements. Single ports go to hash sets
 * (O(1) insert and lookup); port ranges to a twin interval set, whose pipapo
 * backend costs O(n) per insert: 20,000 elements took 2.5 s to install there
 * against well under 0.1 s in a hash (measured here, kernel 6.18). */
struct rs_set {
	char *name;
	enum rs_set_kind kind;
	bool interval;	 /* elements are port ranges; keys big endian with a key end */
	unsigned level;	 /* RS_SET_ALLOW_CGROUP only */
	unsigned family; /* owner sets: 4 or 6 */
	bool live;	 /* the daemon adds and removes elements while it runs */
	struct rs_elem *elems;
	size_t n_elems, cap_elems;
};

/* The fixed vocabulary of rules the ruleset is built from; a packet sees a constant number. */
enum rs_rule_kind {
	RS_RULE_ACCEPT_NOT_LO,		/* meta oif != lo accept */
	RS_RULE_ACCEPT_NOT_LO_NOT_UDP,	/* meta oif != lo meta l4proto != udp accept */
	RS_RULE_NOT_LO_JUMP,		/* meta oif != lo jump target */
	RS_RULE_ACCEPT_IP6_NOT_MCAST,	/* ip6 daddr != ff00::/8 accept */
	RS_RULE_ACCEPT_IP_UNICAST,	/* meta nfproto ipv4 fib daddr type unicast accept */
	RS_RULE_ACCEPT_TCP_NOT_SYN,	/* tcp flags != syn / syn,ack accept */
	RS_RULE_DISPATCH,		/* meta l4proto . th dport vmap @guards */
	RS_RULE_ALLOW_UID_MAP,		/* meta l4proto . th dport . meta skuid vmap @set */
	RS_RULE_ALLOW_CGROUP,		/* ... . socket cgroupv2 level N @set <verdict> */
	RS_RULE_LOG,			/* log prefix P group G */
	RS_RULE_LOG_METERED,	/* update @meter { key limit rate R } log prefix P group G return */
	RS_RULE_LOG_METER_FULL, /* key != @meter limit rate R log prefix P group G return */
	RS_RULE_LOG_OVER_SOCKET, /* meta skuid != 4294967295 counter name C return */
	RS_RULE_LOG_NO_SOCKET,	 /* limit rate R log prefix P group G return */
	RS_RULE_LOG_OVER,	 /* counter name C */
	RS_RULE_JUMP,		 /* jump target */
	RS_RULE_REJECT_TCP,	 /* meta l4proto tcp reject with tcp reset */
	RS_RULE_REJECT,		 /* reject (icmpx port-unreachable) */
	RS_RULE_DROP,		 /* drop */
	RS_RULE_ACCEPT,		 /* accept */
	RS_RULE_ALLOW_OWNER,	 /* ipN daddr . l4proto . dport . meta skuid @ownerN <verdict> */
	RS_RULE_QUEUE_OWNER_UNKNOWN, /* mark ok, ipN daddr . l4proto . dport != @owner_knownN queue
				      */
	RS_RULE_QUEUE,		     /* mark ok, queue (the daemon judges executables) */
	RS_RULE_CLEAR_MARK,	     /* meta mark set meta mark & ~LOGUARD_MARK_ASKED */
	RS_RULE_COUNT_ASKED, /* meta mark & ASKED == ASKED meta l4proto . th dport @set (counts) */
	RS_RULE_COUNT,	     /* meta l4proto . th dport @set (counts its element) */
	/* update @meter { key limit rate R } counter name C queue [flags bypass] to Q */
	RS_RULE_HOLD_METERED,
	/* key != @meter limit rate R counter name C queue [flags bypass] to Q */
	RS_RULE_HOLD_METER_FULL,
	RS_RULE_SET_MARK, /* meta mark set meta mark & ~mark_mask | mark_value */
	__RS_RULE_KIND_MAX
};

/* One rule: its kind plus the operands that kind uses. */
struct rs_rule {
	enum rs_rule_kind kind;
	const char *set;	/* ALLOW_*, DISPATCH, LOG_METERED, LOG_METER_FULL */
	bool interval;		/* the set holds port ranges (big-endian keys) */
	unsigned level;		/* ALLOW_CGROUP */
	unsigned family;	/* ALLOW_OWNER, QUEUE_OWNER_UNKNOWN: 4 or 6 */
	bool bypass;		/* QUEUE*, HOLD*: accept when no daemon listens (fail: open) */
	uint16_t queue;		/* HOLD*: queue number */
	/* Any kind (match_mark): the rule first matches meta mark & mark_mask == mark_value.
	 * SET_MARK: meta mark set meta mark & ~mark_mask | mark_value. */
	bool match_mark;
	uint32_t mark_mask, mark_value;
	const char *goto_chain; /* ALLOW_*: goto this chain instead of accept (to log allows) */
	const char *prefix;	/* LOG* */
	const char *target;	/* JUMP, NOT_LO_JUMP */
	const char *comment;	/* NUL-terminated rule comment */
};

/* A chain; base chains are hooked at output with their priority. */
struct rs_chain {
	char *name;
	bool base;    /* type filter hook output priority P; policy accept */
	int priority; /* base chains */
	struct rs_rule *rules;
	size_t n_rules, cap_rules;
};

/* One guarded (protocol, port interval), for finding the guard of a log record. */
struct rs_guard_port {
	uint8_t proto;
	uint16_t first, last;
	const char *guard;
};

/* The whole `table inet loguard` as plain data. */
struct ruleset {
	bool counters; /* per-element counters on every set */
	uint16_t log_group;
	uint16_t queue_num;	   /* NFQUEUE of the QUEUE* rules */
	bool hold;		   /* denials the meters log are held (LOGUARD_HELD_CHAIN) */
	uint32_t log_rate;	   /* 0 = unlimited */
	uint32_t log_burst;	   /* records per key before the rate applies */
	const char *log_rate_unit; /* "second", ... */
	const char *rate_counter;  /* named counter: log records the rate limit suppressed */
	const char *sent_counter;  /* named counter: log records handed to NFLOG */
	struct rs_set *sets;
	size_t n_sets;
	struct rs_chain *chains;
	size_t n_chains;
	struct rs_guard_port *guard_index; /* sorted; built by ruleset_index_guards() */
	size_t n_guard_index;
};

/* Declared size of a hash set: twice its elements plus slack, room for
 * incremental updates between applies (the kernel refuses elements past it). */
static inline uint32_t rs_set_size(const struct rs_set *s)
{
	uint32_t n = s->n_elems > UINT32_MAX / 4 ? UINT32_MAX / 2 : (uint32_t)(2 * s->n_elems + 64);

	return s->live && n < LOGUARD_LIVE_SET_SIZE ? LOGUARD_LIVE_SET_SIZE : n;
}

/* The queue holding denials (enforce) or would-be denials (audit); wraps past 65535. */
static inline uint16_t rs_hold_queue(const struct ruleset *rs, bool audit)
{
	return (uint16_t)(rs->queue_num + (audit ? LOGUARD_HOLD_QUEUE_AUDIT : LOGUARD_HOLD_QUEUE_DENY));
}

/* Timeout of the log meters' elements: never shorter than a depleted bucket takes to refill,
 * so an element that expires gives nobody a budget it would not have had anyway. */
uint64_t rs_log_rate_timeout_s(const struct ruleset *rs);

/* Seconds of a rate unit name ("second", "minute", "hour", "day"). */
uint64_t rs_rate_unit_seconds(const char *unit);

/* Print the table in nft syntax (the `print` command and golden-file format). */
int ruleset_print(const struct ruleset *rs, FILE *f);

/* Find a set by name; NULL if absent. */
struct rs_set *ruleset_find_set(const struct ruleset *rs, const char *name);

/* Build the (protocol, port) → guard index from the guard maps. Returns 0 or -ENOMEM. */
int ruleset_index_guards(struct ruleset *rs);

/* The guard that owns (proto, port), or NULL: O(log n), for every log record. */
const char *ruleset_guard_of(const struct ruleset *rs, uint8_t proto, uint16_t port);

/* Free the whole graph; accepts NULL. */
void ruleset_free(struct ruleset *rs);

#endif
