#include "api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/http_int.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "console/assets.h"

/* A client that sends nothing for this long is dropped. */
#define HTTP_TIMEOUT_S 30

static const char *reason_of(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* The console's page may run its own script and talk to its own origin,
 * nothing else; no framing (clickjacking), no sniffing, no caching of the
 * API's answers. */
static void security_headers(struct evhttp_request *req, bool api)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "Content-Security-Policy",
	                  "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'");
	if (api)
		evhttp_add_header(out, "Cache-Control", "no-store");
}

void http_hreq_free(struct hreq *h)
{
	if (!h)
		return;
	free(h);
}

void http_reply_json(struct hreq *h, int code, json_t *body)
{
	struct evbuffer *buf = evbuffer_new();
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	security_headers(h->req, true);
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Content-Type",
	                  "application/json; charset=utf-8");
	if (buf && s) {
		evbuffer_add(buf, s, strlen(s));
		evbuffer_add(buf, "\n", 1);
	}
	evhttp_send_reply(h->req, code, reason_of(code), buf);
	if (buf)
		evbuffer_free(buf);
	free(s);
	http_hreq_free(h);
}

void http_reply_error(struct hreq *h, int code, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (code >= 500)
		log_warn("console: %s %s from %s: %d %s", evhttp_request_get_command(h->req) == EVHTTP_REQ_GET ? "GET" : "POST",
		         evhttp_request_get_uri(h->req), h->client, code, msg);
	else
		log_debug("console: %s from %s: %d %s", evhttp_request_get_uri(h->req), h->client, code, msg);
	http_reply_json(h, code, json_pack("{s:s}", "error", msg));
}

/* The language the browser asks for first among ours: en, fr, ja. */
static const char *pick_lang(const char *accept)
{
	const char *p = accept;
	const char *best = "en";
	double best_q = -1;

	while (p && *p) {
		char tag[16] = "";
		double q = 1.0;
		const char *end = strchr(p, ','), *semi;
		size_t n;

		if (!end)
			end = p + strlen(p);
		while (*p == ' ')
			p++;
		semi = memchr(p, ';', (size_t)(end - p));
		n = (size_t)((semi ? semi : end) - p);
		if (n < sizeof(tag)) {
			memcpy(tag, p, n);
			tag[n] = '\0';
		}
		if (semi) {
			const char *qs = strstr(semi, "q=");

			if (qs && qs < end)
				q = strtod(qs + 2, NULL);
		}
		for (const char *l = "en\0fr\0ja\0"; *l; l += 3) {
			if (!strncasecmp(tag, l, 2) && (tag[2] == '\0' || tag[2] == '-') && q > best_q) {
				best_q = q;
				best = l;
			}
		}
		p = *end ? end + 1 : end;
	}
	return best;
}

/* An embedded file, answered as it is (no copy: the data lives in the
 * binary). */
static void send_asset(struct hreq *h, const struct console_asset *as, bool api, const char *hname,
                       const char *hval)
{
	struct evbuffer *buf = evbuffer_new();

	security_headers(h->req, api);
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Content-Type", as->type);
	evhttp_add_header(evhttp_request_get_output_headers(h->req), hname, hval);
	if (buf)
		evbuffer_add_reference(buf, as->data, as->len, NULL, NULL);
	evhttp_send_reply(h->req, 200, "OK", buf);
	if (buf)
		evbuffer_free(buf);
	http_hreq_free(h);
}

/* Each strings file is already the answer, {"lang", "strings"}. */
static void serve_i18n(struct hreq *h)
{
	const char *lang = pick_lang(evhttp_find_header(evhttp_request_get_input_headers(h->req),
	                                                "Accept-Language"));
	char path[32];
	const struct console_asset *as;

	snprintf(path, sizeof(path), "/i18n/%s.json", lang);
	as = console_asset_find(path);
	if (!as) {
		http_reply_error(h, 500, "the console's %s strings are missing", lang);
		return;
	}
	send_asset(h, as, true, "Vary", "Accept-Language");
}

static void serve_asset(struct hreq *h, const char *path)
{
	const struct console_asset *as = console_asset_find(path);

	if (!as || !strncmp(path, "/i18n/", 6)) {
		http_reply_error(h, 404, "no such page: %s", path);
		return;
	}
	send_asset(h, as, false, "Cache-Control", "no-cache");
}

static void on_request(struct evhttp_request *req, void *arg, bool tls)
{
	struct console *c = arg;
	struct hreq *h = calloc(1, sizeof(*h));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	char *addr = NULL;
	char *path;
	ev_uint16_t port = 0;
	size_t plen = 0;

	if (!h) {
		evhttp_send_error(req, 503, "out of memory");
		return;
	}
	h->c = c;
	h->req = req;
	h->tls = tls;
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
	snprintf(h->client, sizeof(h->client), "%s", addr ? addr : "?");
	snprintf(h->origin, sizeof(h->origin), "%s@%s (%s)", AUTH_USER, h->client, tls ? "https" : "http");
	if (!raw || !*raw)
		raw = "/";
	/* Decoded once, then checked: "%2e%2e/" is ".." as much as "../" is. */
	path = evhttp_uridecode(raw, 0, &plen);
	if (!path || strlen(path) != plen || strstr(path, "/../") || strstr(path, "/./") ||
	    (plen >= 3 && !strcmp(path + plen - 3, "/..")) || strchr(path, '\\')) {
		free(path);
		http_reply_error(h, 400, "bad path: '..', '.', '\\' and NUL are not allowed in a path");
		return;
	}
	if (!strncmp(path, "/api/", 5)) {
		http_api_route(h, path);
	} else if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	           evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		http_reply_error(h, 405, "%s: only GET", path);
	} else if (!strcmp(path, "/i18n.json")) {
		serve_i18n(h);
	} else {
		serve_asset(h, path);
	}
	free(path);
}

static void on_plain(struct evhttp_request *req, void *arg)
{
	on_request(req, arg, false);
}

static void on_tls(struct evhttp_request *req, void *arg)
{
	on_request(req, arg, true);
}

static struct evhttp *listen_on(struct console *c, uint16_t port, bool tls, char *state, size_t statelen)
{
	struct evhttp *http = evhttp_new(c->base);

	if (!http) {
		snprintf(state, statelen, "off: out of memory");
		return NULL;
	}
	evhttp_set_max_body_size(http, HTTP_BODY_MAX);
	evhttp_set_max_headers_size(http, 16 * 1024);
	evhttp_set_timeout(http, HTTP_TIMEOUT_S);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(http, tls ? on_tls : on_plain, c);
	if (tls)
		http_tls_attach(http, c->base, c->ctx);
	if (!evhttp_bind_socket_with_handle(http, "0.0.0.0", port)) {
		snprintf(state, statelen, "off: cannot listen on port %u: %s", port, strerror(errno));
		log_error("console: %s %s", tls ? "HTTPS" : "HTTP", state);
		evhttp_free(http);
		return NULL;
	}
	snprintf(state, statelen, "on, port %u", port);
	log_info("console: %s on port %u", tls ? "HTTPS" : "HTTP", port);
	return http;
}

struct console *console_new(struct event_base *base, const struct config *cfg, const char *node_name,
                            struct api *api, struct auth *auth)
{
	struct console *c = calloc(1, sizeof(*c));
	char tmp[PATH_MAX], err[256];

	if (!c)
		return NULL;
	c->base = base;
	c->cfg = cfg;
	c->api = api;
	c->auth = auth;
	snprintf(c->node, sizeof(c->node), "%s", node_name);
	snprintf(tmp, sizeof(tmp), "%s", cfg->path);
	snprintf(c->config_dir, sizeof(c->config_dir), "%s", dirname(tmp));
	snprintf(c->http_state, sizeof(c->http_state), "off (http_port = 0)");
	snprintf(c->https_state, sizeof(c->https_state), "off (https_port = 0)");
	if (cfg->console_http_port)
		c->plain = listen_on(c, cfg->console_http_port, false, c->http_state, sizeof(c->http_state));
	if (cfg->console_https_port) {
		c->ctx = http_tls_ctx(c->config_dir, node_name, err, sizeof(err));
		if (!c->ctx) {
			snprintf(c->https_state, sizeof(c->https_state), "off: %s", err);
			log_error("console: HTTPS %s", c->https_state);
		} else {
			c->tls = listen_on(c, cfg->console_https_port, true, c->https_state, sizeof(c->https_state));
		}
	}
	return c;
}

void console_free(struct console *c)
{
	if (!c)
		return;
	if (c->plain)
		evhttp_free(c->plain);
	if (c->tls)
		evhttp_free(c->tls);
	http_tls_ctx_free(c->ctx);
	free(c);
}

const char *console_http_state(const struct console *c)
{
	return c ? c->http_state : "off";
}

const char *console_https_state(const struct console *c)
{
	return c ? c->https_state : "off";
}
