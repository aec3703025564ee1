// SPDX-License-Identifier: GPL-2.0-or-later
/* sd_notify(3) in a page: the daemon tells systemd it is ready, reloading or stopping. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

/* $NOTIFY_SOCKET as a socket address: a path, or "@name" in the abstract namespace (the '@'
 * becomes a NUL, and the name is not NUL-terminated: the length says where it ends). */
static int notify_address(const char *e, struct sockaddr_un *ret_sa, socklen_t *ret_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(e);
	socklen_t salen;

	if (e[0] == '/') {
		if (len >= sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		memcpy(sa.sun_path, e, len);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	} else if (e[0] == '@') {
		if (len < 2)
			return -EINVAL;
		if (len > sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		memcpy(sa.sun_path + 1, e + 1, len - 1);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		/* systemd also knows "vsock:CID:PORT" (for VMs); loguard runs on the host */
		return e[0] ? -EAFNOSUPPORT : -EINVAL;
	}
	*ret_sa = sa;
	*ret_len = salen;
	return 0;
}

int notify_send(const char *state)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	ssize_t n;
	int fd, err;

	if (!e)
		return 0;
	if (!state)
		return -EINVAL;
	err = notify_address(e, &sa, &salen);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	err = n < 0 ? -errno : 1;
	close(fd);
	return err;
}

int notify_sendf(const char *fmt, ...)
{
	char *state;
	va_list ap;
	int r;

	/* no formatting (nor allocation) when nobody listens */
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	va_start(ap, fmt);
	r = vasprintf(&state, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	r = notify_send(state);
	free(state);
	return r;
}

int notify_reloading(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		return -errno;
	return notify_sendf("RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
			    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}
