// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lgprobe — a small deterministic network probe for loguard's integration tests and benchmarks.
 *
 *   lgprobe listen tcp|udp ADDR PORT [--dual]
 *	Bind, print "ready", serve forever: TCP echoes every byte back per connection (so every
 *	line comes back), UDP echoes each datagram to its sender. --dual clears IPV6_V6ONLY on
 *	an IPv6 socket (e.g. "::") so it also takes IPv4; otherwise a v6 socket is v6-only.
 *
 *   lgprobe connect tcp|udp ADDR PORT [--timeout-ms N] [--v6only-mapped]
 *	One attempt. Prints one word and exits with its code:
 *	  connected 0  TCP: handshake done and a "ping" line echoed; UDP: "ping" echoed
 *	  refused   1  ECONNREFUSED / ECONNRESET (TCP RST, ICMP port unreachable on UDP)
 *	  timeout   2  nothing came back in time (the packet was dropped)
 *	  error     3  anything else (message on stderr)
 *	A v4-mapped ADDR (::ffff:127.0.0.1) always uses an AF_INET6 socket. --v6only-mapped
 *	also connects to an IPv4 ADDR through an AF_INET6 socket, as ::ffff:ADDR.
 *	A UDP send() that fails with EPERM means local netfilter dropped the datagram; for a
 *	reject the ICMP error follows, so lgprobe then waits for the error or the timeout.
 *	IPv6 extension headers in front of the ports, as a client may add them:
 *	  --rthdr N       a segment routing header (IPV6_RTHDR, type 4, allowed to any user) of
 *	                  N segments, every one ADDR, none left, so the packet goes to ADDR and
 *	                  is delivered (8 + 16 N bytes; N <= 127)
 *	  --hopopts B     hop-by-hop options of B bytes of padding (IPV6_HOPOPTS; CAP_NET_RAW)
 *	  --dstopts B     destination options before the routing header (IPV6_RTHDRDSTOPTS;
 *	                  CAP_NET_RAW); B a multiple of 8, 8..2048
 *
 *   lgprobe hold tcp ADDR PORT [--timeout-ms N]
 *	Connect, print "connected"; for every line on stdin send it and print the echoed
 *	line. Exit 0 when stdin closes and every echo arrived, 1 if the connection broke
 *	(or an echo did not come back within the timeout), 3 if the connect failed (the
 *	verdict word — refused, timeout, error — is printed instead of "connected").
 *
 *   lgprobe sink tcp|udp ADDR PORT [--threads N]
 *	Benchmark server: accept and close at once (udp: receive and discard), from N threads;
 *	prints "ready".
 *
 *   lgprobe flood tcp ADDR PORT --seconds S [--threads N] [--src FIRST-LAST] [--timeout-ms N]
 *	Benchmark client: N threads each loop { connect; wait for the server's FIN; close with
 *	SO_LINGER {1,0} } for S seconds. The RST close leaves no TIME_WAIT on either side, so
 *	ephemeral ports are reused at once; --src spreads clients over IPv4 source addresses
 *	FIRST..LAST (e.g. 127.0.0.2-127.0.0.200) for even more 4-tuples. Prints
 *	"conns=N errors=E seconds=S rate=R cpu_us_per_conn=C" (R = completed connections per
 *	second; C = the flood process's user+system CPU time per connection — on loopback the
 *	sender's syscalls also run the output hook and, in softirq, most of the receive path, so
 *	C tracks the per-connection cost and is less disturbed by other load than R) and exits 0
 *	only if no attempt failed: a refused flood is not a fast flood. SIGTERM ends it early
 *	(the report is still printed), for a flood that runs as long as something else does.
 *
 *   lgprobe flood udp ADDR PORT --seconds S [--threads N]
 *	The same for datagrams: N threads each send 32-byte datagrams on a connected socket for
 *	S seconds; every one is judged by the ruleset (UDP has no handshake to skip). "conns" are
 *	datagrams sent; a failed send (EPERM from a drop, ECONNREFUSED after a reject) is an
 *	error. The sink may drop what it cannot read in time: that costs the receiver, after the
 *	output hook, alike in every configuration.
 *
 * Everything is numeric (no DNS) and single-shot, so tests see deterministic verdicts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum verdict {
	V_CONNECTED = 0,
	V_REFUSED = 1,
	V_TIMEOUT = 2,
	V_ERROR = 3,
};

static const char *const verdict_word[] = {
	[V_CONNECTED] = "connected",
	[V_REFUSED] = "refused",
	[V_TIMEOUT] = "timeout",
	[V_ERROR] = "error",
};

/* Command-line options shared by all modes. */
struct opts {
	const char *mode;
	int socktype; /* SOCK_STREAM or SOCK_DGRAM */
	const char *addr;
	const char *port;
	int timeout_ms;
	bool dual;
	bool v6only_mapped;
	unsigned rthdr_segs;		   /* --rthdr */
	unsigned hopopts_len, dstopts_len; /* --hopopts, --dstopts */
	double seconds;
	unsigned threads;
	struct in_addr src_first, src_last;
	bool have_src;
};

static void __attribute__((format(printf, 1, 2))) warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("lgprobe: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((noreturn)) usage(void)
{
	fputs("usage: lgprobe listen  tcp|udp ADDR PORT [--dual]\n"
	      "       lgprobe connect tcp|udp ADDR PORT [--timeout-ms N] [--v6only-mapped]\n"
	      "                       [--rthdr N] [--hopopts BYTES] [--dstopts BYTES]\n"
	      "       lgprobe hold    tcp ADDR PORT [--timeout-ms N]\n"
	      "       lgprobe sink    tcp|udp ADDR PORT [--threads N]\n"
	      "       lgprobe flood   tcp|udp ADDR PORT --seconds S [--threads N] [--src A-B]"
	      " [--timeout-ms N]\n"
	      "       lgprobe forks   N     (fork N children that exit at once, one at a time)\n",
	      stderr);
	exit(V_ERROR);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(long long deadline)
{
	long long left = deadline - now_ms();

	return left < 0 ? 0 : (int)left;
}

static unsigned long parse_ulong(const char *s, const char *what, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		warnx("bad %s: %s", what, s);
		usage();
	}
	return v;
}

static void parse_src_range(struct opts *o, const char *s)
{
	char buf[64], *dash;

	if (strlen(s) >= sizeof(buf))
		usage();
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash++ = '\0';
	if (inet_pton(AF_INET, buf, &o->src_first) != 1 ||
	    inet_pton(AF_INET, dash ? dash : buf, &o->src_last) != 1 ||
	    ntohl(o->src_last.s_addr) < ntohl(o->src_first.s_addr)) {
		warnx("bad --src range (want IPv4 FIRST-LAST): %s", s);
		usage();
	}
	o->have_src = true;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = 2000;
	o->threads = 1;
	if (argc < 5)
		usage();
	o->mode = argv[1];
	if (!strcmp(argv[2], "tcp"))
		o->socktype = SOCK_STREAM;
	else if (!strcmp(argv[2], "udp"))
		o->socktype = SOCK_DGRAM;
	else
		usage();
	o->addr = argv[3];
	o->port = argv[4];
	parse_ulong(o->port, "port", 65535);
	for (i = 5; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--dual")) {
			o->dual = true;
		} else if (!strcmp(a, "--v6only-mapped")) {
			o->v6only_mapped = true;
		} else if (!strcmp(a, "--rthdr") && val) {
			o->rthdr_segs = (unsigned)parse_ulong(val, "--rthdr", 127);
			i++;
		} else if ((!strcmp(a, "--hopopts") || !strcmp(a, "--dstopts")) && val) {
			unsigned n = (unsigned)parse_ulong(val, a, 2048);

			if (n < 8 || n % 8)
				usage();
			*(a[2] == 'h' ? &o->hopopts_len : &o->dstopts_len) = n;
			i++;
		} else if (!strcmp(a, "--timeout-ms") && val) {
			o->timeout_ms = (int)parse_ulong(val, "--timeout-ms", INT_MAX / 2);
			i++;
		} else if (!strcmp(a, "--threads") && val) {
			o->threads = (unsigned)parse_ulong(val, "--threads", 1024);
			if (!o->threads)
				usage();
			i++;
		} else if (!strcmp(a, "--seconds") && val) {
			char *end;

			o->seconds = strtod(val, &end);
			if (*end || !(o->seconds > 0))
				usage();
			i++;
		} else if (!strcmp(a, "--src") && val) {
			parse_src_range(o, val);
			i++;
		} else {
			warnx("unknown or incomplete option: %s", a);
			usage();
		}
	}
}

/* Numeric address → sockaddr. For --v6only-mapped an IPv4 address becomes ::ffff:a.b.c.d. */
static int resolve(const struct opts *o, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = o->socktype };
	struct addrinfo *res;
	char mapped[INET6_ADDRSTRLEN + 8];
	struct in_addr a4;
	const char *addr = o->addr;
	int r;

	if (o->v6only_mapped && inet_pton(AF_INET, addr, &a4) == 1) {
		snprintf(mapped, sizeof(mapped), "::ffff:%s", addr);
		addr = mapped;
	}
	r = getaddrinfo(addr, o->port, &hints, &res);
	if (r) {
		warnx("bad address %s port %s: %s", addr, o->port, gai_strerror(r));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool is_v4mapped(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	return ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
}

static int set_int(int fd, int level, int name, int val, const char *what)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)) < 0) {
		warnx("setsockopt %s: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

/* Classify a socket error as a verdict. */
static enum verdict errno_verdict(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
		return V_REFUSED;
	case ETIMEDOUT:
		return V_TIMEOUT;
	default:
		return V_ERROR;
	}
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/* ---- listen ------------------------------------------------------------------------------ */

static int open_listener(const struct opts *o, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (resolve(o, &ss, &len) < 0)
		return -1;
	fd = socket(ss.ss_family, o->socktype | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		warnx("socket: %s", strerror(errno));
		return -1;
	}
	if (set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR") < 0)
		goto fail;
	if (ss.ss_family == AF_INET6 && !is_v4mapped(&ss) &&
	    set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->dual ? 0 : 1, "IPV6_V6ONLY") < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		warnx("bind %s port %s: %s", o->addr, o->port, strerror(errno));
		goto fail;
	}
	if (o->socktype == SOCK_STREAM && listen(fd, backlog) < 0) {
		warnx("listen: %s", strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write_all(fd, buf, (size_t)n) < 0)
			break;
	}
	close(fd);
	return NULL;
}

/* Echo datagrams from the address they were sent to: a wildcard socket would otherwise answer
 * 127.0.0.2 from 127.0.0.1, and the client's connected socket would ignore the reply. */
static int udp_echo(int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo)) +
			 CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;
	char buf[65536];
	struct sockaddr_storage peer, self;
	socklen_t slen = sizeof(self);

	/* Ask for the destination address of v4 (also on a dual v6 socket) and v6 datagrams. */
	if (getsockname(fd, (struct sockaddr *)&self, &slen) < 0)
		return V_ERROR;
	set_int(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
	if (self.ss_family == AF_INET6)
		set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr m = { .msg_name = &peer,
				    .msg_namelen = sizeof(peer),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *c;
		ssize_t n = recvmsg(fd, &m, 0);

		if (n < 0) {
			/* ICMP errors left over from a reply, signals: keep serving. */
			if (errno == ECONNREFUSED || errno == EINTR || errno == EAGAIN ||
			    errno == EHOSTUNREACH || errno == ENETUNREACH || errno == ENOBUFS)
				continue;
			warnx("udp echo: recvmsg: %s", strerror(errno));
			return V_ERROR;
		}
		/* Send the pktinfo back: the kernel then uses its address as our source. */
		for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(c);

				pi->ipi_spec_dst = pi->ipi_addr;
				pi->ipi_ifindex = 0;
			} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo *pi = (struct in6_pktinfo *)CMSG_DATA(c);

				pi->ipi6_ifindex = 0;
			}
		}
		iov.iov_len = (size_t)n;
		m.msg_flags = 0;
		if (sendmsg(fd, &m, 0) < 0)
			warnx("udp echo: sendmsg: %s", strerror(errno));
	}
	return V_ERROR;
}

static int run_listen(const struct opts *o)
{
	pthread_attr_t attr;
	int fd = open_listener(o, 128);

	if (fd < 0)
		return V_ERROR;
	printf("ready\n");
	fflush(stdout);

	if (o->socktype == SOCK_DGRAM)
		return udp_echo(fd);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (;;) {
		pthread_t t;
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE)
				continue;
			warnx("accept: %s", strerror(errno));
			return V_ERROR;
		}
		if (pthread_create(&t, &attr, echo_conn, (void *)(intptr_t)c))
			close(c);
	}
}

/* ---- connect / hold ------------------------------------------------------------------------ */

/* An options header (hop-by-hop or destination) of len bytes: next header, length, then Pad1
 * options (zero bytes) only. */
static int set_opts_hdr(int fd, int optname, unsigned len, const char *what)
{
	uint8_t h[2048] = { 0 };

	h[1] = (uint8_t)(len / 8 - 1);
	if (setsockopt(fd, IPPROTO_IPV6, optname, h, len) < 0) {
		warnx("%s (%u bytes): %s", what, len, strerror(errno));
		return -1;
	}
	return 0;
}

/* The extension headers of --rthdr, --hopopts, --dstopts on a v6 socket to ss. */
static int set_ext_headers(int fd, const struct sockaddr_storage *ss, const struct opts *o)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (!o || !(o->rthdr_segs || o->hopopts_len || o->dstopts_len))
		return 0;
	if (ss->ss_family != AF_INET6) {
		warnx("extension headers need an IPv6 ADDR");
		return -1;
	}
	if (o->rthdr_segs) {
		/* struct ipv6_sr_hdr: next, hdrlen, type 4, segments_left, first_segment,
		 * flags, tag (2), then the segments */
		size_t len = 8 + 16 * (size_t)o->rthdr_segs;
		uint8_t h[8 + 16 * 127] = { 0 };

		h[1] = (uint8_t)(2 * o->rthdr_segs);
		h[2] = 4;
		/* segments left 0: the kernel sends to the last segment, ADDR, and the
		 * receiver delivers it (a router would forward it on) */
		h[4] = (uint8_t)(o->rthdr_segs - 1);
		for (unsigned i = 0; i < o->rthdr_segs; i++)
			memcpy(h + 8 + 16 * i, &sin6->sin6_addr, 16);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_RTHDR, h, (socklen_t)len) < 0) {
			warnx("IPV6_RTHDR (%zu bytes): %s", len, strerror(errno));
			return -1;
		}
	}
	if (o->hopopts_len && set_opts_hdr(fd, IPV6_HOPOPTS, o->hopopts_len, "IPV6_HOPOPTS") < 0)
		return -1;
	if (o->dstopts_len &&
	    set_opts_hdr(fd, IPV6_RTHDRDSTOPTS, o->dstopts_len, "IPV6_RTHDRDSTOPTS") < 0)
		return -1;
	return 0;
}

/* Nonblocking connect with deadline; returns a connected fd or -verdict. o: the extension
 * headers to add (NULL: none). */
static int connect_deadline(const struct sockaddr_storage *ss, socklen_t len, int socktype,
			    long long deadline, bool quiet, const struct opts *o)
{
	struct pollfd p;
	int fd, r, err;

	fd = socket(ss->ss_family, socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		if (!quiet)
			warnx("socket: %s", strerror(errno));
		return -V_ERROR;
	}
	if (set_ext_headers(fd, ss, o) < 0)
		goto fail_error;
	/* A mapped address on a v6 socket needs v6only off (the default, but be explicit). */
	if (is_v4mapped(ss) && set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY") < 0)
		goto fail_error;
	r = connect(fd, (const struct sockaddr *)ss, len);
	if (r == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	for (;;) {
		r = poll(&p, 1, remaining_ms(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	if (r < 0) {
		err = errno;
		goto fail;
	}
	if (r == 0) {
		close(fd);
		return -V_TIMEOUT;
	}
	err = sock_error(fd);
	if (err == 0)
		return fd;
fail:
	if (!quiet && errno_verdict(err) == V_ERROR)
		warnx("connect: %s", strerror(err));
	close(fd);
	return -(int)errno_verdict(err);
fail_error:
	close(fd);
	return -V_ERROR;
}

/* Read one '\n'-terminated line (or a datagram) before the deadline; 0 or -verdict. */
static int recv_line(int fd, char *buf, size_t cap, size_t *ret_len, long long deadline,
		     bool datagram)
{
	size_t len = 0;

	while (len < cap - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r = poll(&p, 1, remaining_ms(deadline));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			warnx("poll: %s", strerror(errno));
			return -V_ERROR;
		}
		if (r == 0)
			return -V_TIMEOUT;
		n = recv(fd, buf + len, datagram ? cap - 1 : 1, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno_verdict(errno) == V_ERROR)
				warnx("recv: %s", strerror(errno));
			return -(int)errno_verdict(errno);
		}
		if (n == 0) {
			warnx("connection closed by peer before the echo arrived");
			return -V_REFUSED;
		}
		len += (size_t)n;
		if (datagram || buf[len - 1] == '\n')
			break;
	}
	buf[len] = '\0';
	*ret_len = len;
	return 0;
}

static enum verdict udp_probe(int fd, long long deadline)
{
	char buf[512];
	size_t len;
	int r;

	for (;;) {
		if (send(fd, "ping", 4, 0) == 4)
			break;
		if (errno == EINTR)
			continue;
		/* EPERM: dropped by local netfilter (drop and reject alike). A reject's ICMP
		 * error arrives on the socket next, so wait for it below rather than guess. */
		if (errno == EPERM)
			break;
		if (errno_verdict(errno) == V_ERROR)
			warnx("send: %s", strerror(errno));
		return errno_verdict(errno);
	}
	r = recv_line(fd, buf, sizeof(buf), &len, deadline, true);
	if (r < 0)
		return (enum verdict) - r;
	if (len != 4 || memcmp(buf, "ping", 4)) {
		warnx("unexpected echo (%zu bytes)", len);
		return V_ERROR;
	}
	return V_CONNECTED;
}

static enum verdict tcp_probe(int fd, long long deadline)
{
	char buf[512];
	size_t len;
	int r;

	if (write_all(fd, "ping\n", 5) < 0) {
		if (errno_verdict(errno) == V_ERROR)
			warnx("send: %s", strerror(errno));
		return errno_verdict(errno);
	}
	r = recv_line(fd, buf, sizeof(buf), &len, deadline, false);
	if (r < 0)
		return (enum verdict) - r;
	if (strcmp(buf, "ping\n")) {
		warnx("unexpected echo: %s", buf);
		return V_ERROR;
	}
	return V_CONNECTED;
}

static int run_connect(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	long long deadline = now_ms() + o->timeout_ms;
	enum verdict v;
	int fd;

	if (resolve(o, &ss, &len) < 0) {
		v = V_ERROR;
		goto out;
	}
	fd = connect_deadline(&ss, len, o->socktype, deadline, false, o);
	if (fd < 0) {
		v = (enum verdict) - fd;
		goto out;
	}
	v = o->socktype == SOCK_DGRAM ? udp_probe(fd, deadline) : tcp_probe(fd, deadline);
	close(fd);
out:
	printf("%s\n", verdict_word[v]);
	return v;
}

static int run_hold(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd, rc = 0;

	if (o->socktype != SOCK_STREAM)
		usage();
	if (resolve(o, &ss, &len) < 0)
		return V_ERROR;
	fd = connect_deadline(&ss, len, SOCK_STREAM, now_ms() + o->timeout_ms, false, NULL);
	if (fd < 0) {
		printf("%s\n", verdict_word[-fd]);
		return V_ERROR; /* exit 1 means "broke later"; a failed connect is 3 */
	}
	printf("connected\n");
	fflush(stdout);
	while ((n = getline(&line, &cap, stdin)) > 0) {
		char buf[4096];
		size_t got;
		int r;

		if (line[n - 1] != '\n') {
			/* Always send whole lines, so the echo can be matched. */
			char *l2 = realloc(line, (size_t)n + 2);

			if (!l2)
				break;
			line = l2;
			line[n++] = '\n';
			line[n] = '\0';
		}
		if (write_all(fd, line, (size_t)n) < 0) {
			warnx("hold: send failed: %s", strerror(errno));
			rc = 1;
			break;
		}
		r = recv_line(fd, buf, sizeof(buf), &got, now_ms() + o->timeout_ms, false);
		if (r < 0) {
			warnx("hold: no echo for %.*s (%s)", (int)n - 1, line, verdict_word[-r]);
			rc = 1;
			break;
		}
		fputs(buf, stdout);
		fflush(stdout);
	}
	free(line);
	close(fd);
	return rc;
}

/* ---- sink / flood (benchmarks) -------------------------------------------------------------- */

static void *sink_thread(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE &&
			 errno != ENFILE)
			break;
	}
	return NULL;
}

static void *sink_udp_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[64];

	while (recv(fd, buf, sizeof(buf), 0) >= 0 || errno == EINTR)
		;
	return NULL;
}

static int run_sink(const struct opts *o)
{
	void *(*fn)(void *) = o->socktype == SOCK_STREAM ? sink_thread : sink_udp_thread;
	unsigned i;
	int fd;

	fd = open_listener(o, 4096);
	if (fd < 0)
		return V_ERROR;
	for (i = 1; i < o->threads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, fn, (void *)(intptr_t)fd)) {
			warnx("pthread_create failed");
			return V_ERROR;
		}
	}
	printf("ready\n");
	fflush(stdout);
	fn((void *)(intptr_t)fd);
	warnx("%s: %s", o->socktype == SOCK_STREAM ? "accept" : "recv", strerror(errno));
	return V_ERROR;
}

/* SIGTERM: floods stop early and report. */
static volatile sig_atomic_t flood_stop;

static void on_flood_stop(int sig)
{
	(void)sig;
	flood_stop = 1;
}

/* One flood worker's parameters and results. */
struct flood_worker {
	pthread_t thread;
	const struct opts *o;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	unsigned index;
	double stop_at;
	unsigned long long conns, errors;
	int first_error; /* verdict of the first failure, for the report */
};

/* One connection: connect, wait for the server's FIN (it accepted and closed), RST-close. */
static int flood_one(struct flood_worker *w, uint32_t src)
{
	static const struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	long long deadline = now_ms() + w->o->timeout_ms;
	struct pollfd p;
	char b;
	int fd, r;

	fd = socket(w->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -V_ERROR;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (src) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(src) };
		int one = 1;

		/* Let connect() pick the port per 4-tuple instead of reserving it at bind. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			return -V_ERROR;
		}
	}
	r = connect(fd, (struct sockaddr *)&w->dst, w->dst_len);
	if (r < 0 && errno != EINPROGRESS) {
		r = -(int)errno_verdict(errno);
		close(fd);
		return r;
	}
	/* Wait until readable: EOF (server closed) after a successful handshake, or an error. */
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	do
		r = poll(&p, 1, remaining_ms(deadline));
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		close(fd);
		return r == 0 ? -V_TIMEOUT : -V_ERROR;
	}
	r = (int)recv(fd, &b, 1, 0);
	if (r < 0) {
		r = -(int)errno_verdict(errno);
		close(fd);
		return r;
	}
	close(fd);
	return r == 0 ? 0 : -V_ERROR;
}

static void *flood_thread(void *arg)
{
	struct flood_worker *w = arg;
	const struct opts *o = w->o;
	uint32_t first = ntohl(o->src_first.s_addr), last = ntohl(o->src_last.s_addr);
	uint32_t src = o->have_src ? first + w->index % (last - first + 1) : 0;
	unsigned n = 0;

	for (;;) {
		int r;

		/* Check the clock every 16 connections: cheap, and ≤ a few µs late. */
		if (flood_stop || ((n++ & 15) == 0 && now_s() >= w->stop_at))
			break;
		r = flood_one(w, src);
		if (r == 0) {
			w->conns++;
		} else {
			if (!w->errors++)
				w->first_error = -r;
		}
		if (o->have_src && ++src > last)
			src = first;
	}
	return NULL;
}

/* Datagrams on one connected socket: the route and the destination are looked up once, so
 * what a datagram costs beyond that is the stack and the ruleset. */
static void *flood_udp_thread(void *arg)
{
	static const char payload[32];
	struct flood_worker *w = arg;
	unsigned n = 0;
	int fd;

	fd = socket(w->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&w->dst, w->dst_len) < 0) {
		w->errors++;
		w->first_error = V_ERROR;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		if (flood_stop || ((n++ & 255) == 0 && now_s() >= w->stop_at))
			break;
		if (send(fd, payload, sizeof(payload), 0) == (ssize_t)sizeof(payload)) {
			w->conns++;
		} else if (errno != EINTR) {
			if (!w->errors++)
				w->first_error = (int)errno_verdict(errno);
		}
	}
	close(fd);
	return NULL;
}

static double rusage_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int run_flood(const struct opts *o)
{
	struct flood_worker *w;
	unsigned long long conns = 0, errors = 0;
	int first_error = 0;
	double t0, t1, cpu0, cpu1;
	unsigned i;

	if (!(o->seconds > 0) || (o->socktype != SOCK_STREAM && o->have_src))
		usage();
	w = calloc(o->threads, sizeof(*w));
	if (!w)
		return V_ERROR;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_flood_stop);
	cpu0 = rusage_cpu_s();
	t0 = now_s();
	for (i = 0; i < o->threads; i++) {
		w[i].o = o;
		w[i].index = i;
		w[i].stop_at = t0 + o->seconds;
		if (resolve(o, &w[i].dst, &w[i].dst_len) < 0)
			return V_ERROR;
		if (o->have_src && w[i].dst.ss_family != AF_INET) {
			warnx("--src needs an IPv4 destination");
			return V_ERROR;
		}
		if (pthread_create(&w[i].thread, NULL,
				   o->socktype == SOCK_STREAM ? flood_thread : flood_udp_thread,
				   &w[i])) {
			warnx("pthread_create failed");
			return V_ERROR;
		}
	}
	for (i = 0; i < o->threads; i++) {
		pthread_join(w[i].thread, NULL);
		conns += w[i].conns;
		if (w[i].errors && !errors)
			first_error = w[i].first_error;
		errors += w[i].errors;
	}
	t1 = now_s();
	cpu1 = rusage_cpu_s();
	free(w);
	printf("conns=%llu errors=%llu seconds=%.3f rate=%.1f cpu_us_per_conn=%.2f\n", conns,
	       errors, t1 - t0, (double)conns / (t1 - t0),
	       conns ? (cpu1 - cpu0) * 1e6 / (double)conns : 0.0);
	if (errors) {
		warnx("flood: %llu connection attempts failed (first: %s)", errors,
		      verdict_word[first_error]);
		return V_ERROR;
	}
	return 0;
}

/* A burst of process events (fork, exit) for tests of the daemon's process index. */
static int run_forks(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return V_ERROR;
		}
		if (pid == 0)
			_exit(0);
		waitpid(pid, NULL, 0);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (argc == 3 && !strcmp(argv[1], "forks"))
		return run_forks(parse_ulong(argv[2], "forks", 10000000));
	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(o.mode, "listen"))
		return run_listen(&o);
	if (!strcmp(o.mode, "connect"))
		return run_connect(&o);
	if (!strcmp(o.mode, "hold"))
		return run_hold(&o);
	if (!strcmp(o.mode, "sink"))
		return run_sink(&o);
	if (!strcmp(o.mode, "flood"))
		return run_flood(&o);
	usage();
}
