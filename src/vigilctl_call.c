#include "vigilctl_call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one reply line (or up to EOF) into a malloc'd, NUL-terminated buffer. */
static char *recv_reply(int fd, const char *path, int timeout_s, struct conn_err *e)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf) {
		snprintf(e->msg, sizeof(e->msg), "out of memory");
		e->code = EXIT_FAIL;
		return NULL;
	}
	for (;;) {
		ssize_t n;
		char *nl;

		if (len + 1 == cap) {
			char *nb;

			if (cap >= VIGILCTL_REPLY_MAX + 1) {
				snprintf(e->msg, sizeof(e->msg), "reply from vigild at %s is larger than %u MiB",
					 path, VIGILCTL_REPLY_MAX >> 20);
				e->code = EXIT_FAIL;
				goto fail;
			}
			cap = cap * 2 > VIGILCTL_REPLY_MAX + 1 ? VIGILCTL_REPLY_MAX + 1 : cap * 2;
			if (!(nb = realloc(buf, cap))) {
				snprintf(e->msg, sizeof(e->msg), "out of memory");
				e->code = EXIT_FAIL;
				goto fail;
			}
			buf = nb;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				snprintf(e->msg, sizeof(e->msg), "no reply from vigild at %s within %d s",
					 path, timeout_s);
			else
				snprintf(e->msg, sizeof(e->msg), "cannot read from vigild at %s: %s",
					 path, strerror(errno));
			e->code = EXIT_UNREACHABLE;
			goto fail;
		}
		if (n == 0)
			break;
		nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			len = (size_t)(nl - buf);
			break;
		}
	}
	buf[len] = '\0';
	if (!len) {
		snprintf(e->msg, sizeof(e->msg), "vigild at %s closed the connection without a reply", path);
		e->code = EXIT_UNREACHABLE;
		goto fail;
	}
	return buf;
fail:
	free(buf);
	return NULL;
}

json_t *vigilctl_call(const char *path, json_t *req, int timeout_s, struct conn_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_s };
	json_t *reply = NULL, *result = NULL;
	json_error_t jerr;
	char *text = NULL, *line = NULL;
	int fd;

	if (!strlcpy_ok(sa.sun_path, path, sizeof(sa.sun_path))) {
		snprintf(e->msg, sizeof(e->msg), "socket path %s is too long", path);
		e->code = EXIT_USAGE;
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(e->msg, sizeof(e->msg), "socket: %s", strerror(errno));
		e->code = EXIT_FAIL;
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(e->msg, sizeof(e->msg), "cannot reach vigild at %s: %s (is vigild running?)",
			 path, strerror(errno));
		e->code = EXIT_UNREACHABLE;
		goto out;
	}
	text = json_dumps(req, JSON_COMPACT);
	/* One write: a server may read the request in a single recv(). */
	if (text) {
		size_t n = strlen(text);
		char *t = realloc(text, n + 2);

		if (t) {
			memcpy(t + n, "\n", 2);
			text = t;
		} else {
			free(text);
			text = NULL;
		}
	}
	if (!text) {
		snprintf(e->msg, sizeof(e->msg), "cannot encode the request");
		e->code = EXIT_FAIL;
		goto out;
	}
	if (send_all(fd, text, strlen(text)) < 0) {
		snprintf(e->msg, sizeof(e->msg), "cannot send to vigild at %s: %s", path,
			 errno == EAGAIN ? "timed out" : strerror(errno));
		e->code = EXIT_UNREACHABLE;
		goto out;
	}
	if (!(line = recv_reply(fd, path, timeout_s, e)))
		goto out;
	reply = json_loads(line, 0, &jerr);
	if (!json_is_object(reply)) {
		snprintf(e->msg, sizeof(e->msg), "invalid reply from vigild at %s: %s", path,
			 reply ? "not a JSON object" : jerr.text);
		e->code = EXIT_FAIL;
		goto out;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *err = json_string_value(json_object_get(reply, "error"));

		snprintf(e->msg, sizeof(e->msg), "%s", err ? err : "vigild refused the request (no reason given)");
		e->code = EXIT_FAIL;
		e->wait_sync = json_is_string(json_object_get(reply, "wait")) &&
			       !strcmp(json_string_value(json_object_get(reply, "wait")), "sync");
		goto out;
	}
	result = json_object_get(reply, "result");
	if (!result) {
		snprintf(e->msg, sizeof(e->msg), "invalid reply from vigild at %s: no \"result\"", path);
		e->code = EXIT_FAIL;
		goto out;
	}
	json_incref(result);
out:
	json_decref(reply);
	free(line);
	free(text);
	close(fd);
	return result;
}
