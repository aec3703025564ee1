// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control protocol of `loguard share` (see share.h): decoding what any local user may send
 * the daemon, kept apart from the daemon so that the fuzzer reaches it alone.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "daemon_stats.h"
#include "share.h"

#define REQ_MAGIC0  'L'
#define REQ_MAGIC1  'G'
#define REQ_VERSION 1
#define REQ_F_KNOWN SHARE_F_GROUP

bool share_name_ok(const char *s, size_t n)
{
	if (!n || n > SHARE_NAME_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

int share_request_parse(const void *buf, size_t len, struct share_request *ret)
{
	const uint8_t *p = buf;
	struct share_request q = { 0 };
	size_t n;

	if (len < SHARE_REQ_HEADER || len > SHARE_REQ_MAX)
		return -EINVAL;
	n = p[6];
	if (p[0] != REQ_MAGIC0 || p[1] != REQ_MAGIC1 || p[2] != REQ_VERSION || p[7] || p[10] ||
	    p[11] || len != SHARE_REQ_HEADER + n || (p[5] & ~REQ_F_KNOWN))
		return -EINVAL;
	q.op = p[3];
	q.proto = p[4];
	q.flags = p[5];
	q.port = (uint16_t)(p[8] << 8 | p[9]);
	q.seconds = (uint32_t)p[12] << 24 | (uint32_t)p[13] << 16 | (uint32_t)p[14] << 8 | p[15];
	if (n && !share_name_ok((const char *)p + SHARE_REQ_HEADER, n))
		return -EINVAL;
	memcpy(q.name, p + SHARE_REQ_HEADER, n);
	switch (q.op) {
	case SHARE_OP_SHARE:
	case SHARE_OP_UNSHARE:
		if ((q.proto != IPPROTO_TCP && q.proto != IPPROTO_UDP) || !q.port ||
		    q.seconds > SHARE_SECONDS_MAX || (q.op == SHARE_OP_SHARE && !n) ||
		    (q.op == SHARE_OP_UNSHARE && q.seconds) || (!n && q.flags))
			return -EINVAL;
		break;
	case SHARE_OP_LIST:
		if (q.proto || q.port || q.seconds || n || q.flags)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	*ret = q;
	return 0;
}

int share_request_encode(const struct share_request *req, uint8_t buf[SHARE_REQ_MAX])
{
	size_t n = strnlen(req->name, sizeof(req->name));
	struct share_request check;

	if (n > SHARE_NAME_MAX)
		return -EINVAL;
	memset(buf, 0, SHARE_REQ_HEADER);
	buf[0] = REQ_MAGIC0;
	buf[1] = REQ_MAGIC1;
	buf[2] = REQ_VERSION;
	buf[3] = (uint8_t)req->op;
	buf[4] = req->proto;
	buf[5] = (uint8_t)req->flags;
	buf[6] = (uint8_t)n;
	buf[8] = req->port >> 8;
	buf[9] = req->port & 0xff;
	buf[12] = (uint8_t)(req->seconds >> 24);
	buf[13] = (uint8_t)(req->seconds >> 16);
	buf[14] = (uint8_t)(req->seconds >> 8);
	buf[15] = (uint8_t)req->seconds;
	memcpy(buf + SHARE_REQ_HEADER, req->name, n);
	if (share_request_parse(buf, SHARE_REQ_HEADER + n, &check) < 0)
		return -EINVAL;
	return (int)(SHARE_REQ_HEADER + n);
}

int share_duration_parse(const char *s, uint32_t *ret)
{
	unsigned long long v = 0, unit = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > SHARE_SECONDS_MAX)
			return -ERANGE;
	}
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		return -EINVAL;
	}
	if (*p && p[1])
		return -EINVAL;
	if (!v || v * unit > SHARE_SECONDS_MAX)
		return v ? -ERANGE : -EINVAL;
	*ret = (uint32_t)(v * unit);
	return 0;
}

int share_socket_path(char *buf, size_t size)
{
	const char *dir = getenv("RUNTIME_DIRECTORY");
	int n;

	/* The service's socket unit, unless a daemon run by hand says where it is. */
	if ((!dir || !*dir) && access(SHARE_SERVICE_SOCKET, F_OK) == 0)
		n = snprintf(buf, size, "%s", SHARE_SERVICE_SOCKET);
	else
		n = snprintf(buf, size, "%s/%s", dir && *dir ? dir : LOGUARD_RUN_DIR,
			     SHARE_SOCKET_NAME);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

