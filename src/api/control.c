/* The UNIX socket of vigild: one JSON request per line, one JSON answer. */
#include <errno.h>
#include <limits.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api.h"
#include "common/log.h"
#include "common/util.h"

#define REQUEST_MAX (64 * 1024)
#define CLIENT_TIMEOUT_S 30

struct control {
	control_handler handle;
	void *ctx;
	struct evconnlistener *l;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct conn {
	struct control *ctl;
	struct bufferevent *bev;     /* NULL once the client is gone */
	char origin[96];
	bool handled;
};

static void conn_close(struct conn *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	if (!c->handled)
		free(c);
}

static void on_written(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_close(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	conn_close(arg);
}

static void reply(json_t *resp, void *arg)
{
	struct conn *c = arg;
	char *s;

	if (!c->bev) {
		json_decref(resp);
		free(c);
		return;
	}
	s = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	if (s) {
		bufferevent_write(c->bev, s, strlen(s));
		bufferevent_write(c->bev, "\n", 1);
		free(s);
	}
	c->handled = false; /* from here on, the connection owns c again */
	bufferevent_setcb(c->bev, NULL, on_written, on_event, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void reply_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(struct conn *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("control socket: request from %s rejected: %s", c->origin, msg);
	c->handled = true;
	bufferevent_disable(c->bev, EV_READ);
	reply(json_pack("{s:b, s:s}", "ok", 0, "error", msg), c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = 0;
	char *line;
	json_error_t jerr;
	json_t *req;

	if (c->handled)
		return;
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (!line) {
		if (evbuffer_get_length(in) > REQUEST_MAX)
			reply_error(c, "request longer than %d bytes", REQUEST_MAX);
		return;
	}
	req = json_loadb(line, n, 0, &jerr);
	free(line);
	if (!req) {
		reply_error(c, "invalid request: not JSON (%s at column %d)", jerr.text, jerr.column);
		return;
	}
	if (!json_is_object(req)) {
		json_decref(req);
		reply_error(c, "invalid request: expected a JSON object");
		return;
	}
	c->handled = true;
	bufferevent_disable(bev, EV_READ);
	c->ctl->handle(c->ctl->ctx, req, c->origin, reply, c);
	json_decref(req);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct control *ctl = arg;
	struct conn *c = calloc(1, sizeof(*c));
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { CLIENT_TIMEOUT_S, 0 };

	if (!c) {
		close(fd);
		return;
	}
	c->ctl = ctl;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		snprintf(c->origin, sizeof(c->origin), "local uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
	else
		snprintf(c->origin, sizeof(c->origin), "local (unknown peer)");
	c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

bool control_in_use(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	bool up;
	int fd;

	if (!strlcpy_ok(sun.sun_path, path, sizeof(sun.sun_path)))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	up = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return up;
}

static void api_control(void *ctx, json_t *req, const char *origin, api_done_cb done, void *arg)
{
	api_handle(ctx, req, origin, false, done, arg);
}

struct control *control_new(struct event_base *base, struct api *a, const char *path)
{
	return control_new_with(base, api_control, a, path);
}

struct control *control_new_with(struct event_base *base, control_handler handle, void *ctx, const char *path)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[PATH_MAX];
	int fd = -1, r;

	if (!ctl)
		return NULL;
	ctl->handle = handle;
	ctl->ctx = ctx;
	if (!strlcpy_ok(sun.sun_path, path, sizeof(sun.sun_path))) {
		log_error("control socket path %s is too long (max %zu)", path, sizeof(sun.sun_path) - 1);
		goto fail;
	}
	strlcpy_ok(ctl->path, path, sizeof(ctl->path));
	strlcpy_ok(dir, path, sizeof(dir));
	*strrchr(dir, '/') = '\0';
	if (dir[0] && (r = mkdir_p(dir, 0755)) < 0) {
		log_error("cannot create %s: %s", dir, strerror(-r));
		goto fail;
	}
	/* A socket file left by a crash is stale unless someone answers on it. */
	if (control_in_use(path)) {
		log_error("another vigild is already listening on %s", path);
		goto fail;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 32) < 0) {
		log_error("cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	ctl->l = evconnlistener_new(base, on_accept, ctl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!ctl->l) {
		close(fd);
		goto fail;
	}
	return ctl;
fail:
	free(ctl);
	return NULL;
}

void control_free(struct control *ctl)
{
	if (!ctl)
		return;
	if (ctl->l)
		evconnlistener_free(ctl->l);
	unlink(ctl->path);
	free(ctl);
}
