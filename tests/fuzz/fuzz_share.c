// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the control protocol of `loguard share`: any local user can send the
 * daemon any bytes. share_request_parse() must never read past the message, and what it accepts
 * must be a request the rules allow: a known op, TCP or UDP, a port where one is needed, a
 * duration within the limit, a name of the allowed characters; and it must encode back to the
 * very same bytes (one encoding per request: nothing the parser ignores).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "share.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: ASan catches any read past the message. */
	uint8_t *m = malloc(size ? size : 1), out[SHARE_REQ_MAX];
	struct share_request q;
	uint32_t secs;
	char *s;
	int n;

	memcpy(m, data, size);
	if (share_request_parse(m, size, &q) == 0) {
		size_t len = strlen(q.name);

		assert(q.op >= SHARE_OP_SHARE && q.op < __SHARE_OP_MAX);
		assert(len <= SHARE_NAME_MAX && (!len || share_name_ok(q.name, len)));
		assert(q.seconds <= SHARE_SECONDS_MAX);
		if (q.op == SHARE_OP_LIST)
			assert(!q.proto && !q.port && !len && !q.seconds);
		else
			assert((q.proto == IPPROTO_TCP || q.proto == IPPROTO_UDP) && q.port);
		if (q.op == SHARE_OP_SHARE)
			assert(len);
		n = share_request_encode(&q, out);
		assert(n >= 0 && (size_t)n == size && !memcmp(out, m, size));
	}
	/* The CLI's duration parser takes what a user types. */
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (share_duration_parse(s, &secs) == 0)
		assert(secs >= 1 && secs <= SHARE_SECONDS_MAX);
	free(s);
	free(m);
	return 0;
}
