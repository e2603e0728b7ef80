/* The /api/v1/ endpoints of docs/api.md: sessions here, everything else
 * through api_handle(), the handlers vigilctl uses. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/http_int.h"
#include <openssl/evp.h>
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"

#define LINES_MAX 5000

static const char *const node_actions[] = { "start", "stop", "restart", "swap", "forcestart", "stopstart",
                                            "prim", "second", "boot", "failover", "checkers", "errd",
                                            "sync", "dump", NULL };

static bool is_post(struct hreq *h)
{
	return evhttp_request_get_command(h->req) == EVHTTP_REQ_POST;
}

static bool is_get(struct hreq *h)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(h->req);

	return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
}

/* The session id of the cookie header, or "" */
static void cookie_sid(struct hreq *h, char out[AUTH_TOKEN_LEN + 1])
{
	const char *hdr = evhttp_find_header(evhttp_request_get_input_headers(h->req), "Cookie");
	size_t klen = strlen(HTTP_COOKIE);

	out[0] = '\0';
	for (const char *p = hdr; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncmp(p, HTTP_COOKIE, klen) && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t n = strcspn(v, "; ");

			if (n == AUTH_TOKEN_LEN) {
				memcpy(out, v, n);
				out[n] = '\0';
			}
			return;
		}
		p = strchr(p, ';');
	}
}

/* The body as a JSON object (an empty body is {}), or NULL after answering
 * 400. */
static json_t *body_object(struct hreq *h)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(h->req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	json_t *j;

	if (len == 0)
		return json_object();
	j = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		http_reply_error(h, 400, "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
		                 jerr.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_reply_error(h, 400, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Every key of body is one of allowed (NULL-ended); else answers 400. */
static bool only_keys(struct hreq *h, json_t *body, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(body, k, v) {
		bool known = false;

		for (int i = 0; allowed[i]; i++)
			known = known || !strcmp(k, allowed[i]);
		if (!known) {
			http_reply_error(h, 400, "unknown field '%.64s' in the body", k);
			return false;
		}
	}
	return true;
}

static bool known_node(struct hreq *h, const char *name)
{
	const struct config *cfg = h->c->cfg;

	for (int i = 0; i < cfg->nnodes; i++)
		if (!strcmp(cfg->nodes[i].name, name))
			return true;
	http_reply_error(h, 404, "unknown node '%.64s' (nodes: %s, %s)", name, cfg->nodes[0].name,
	                 cfg->nodes[1].name);
	return false;
}

/* ---- api_handle's answers ---- */

static void on_api_answer(json_t *resp, void *arg)
{
	struct hreq *h = arg;
	bool good = json_is_true(json_object_get(resp, "ok"));
	int code = good ? 200 : json_is_true(json_object_get(resp, "unreachable")) ? 502 : 409;

	if (good && !strcmp(h->what, "result")) {
		json_t *r = json_incref(json_object_get(resp, "result"));

		json_decref(resp);
		http_reply_json(h, 200, r);
		return;
	}
	http_reply_json(h, code, resp);
}

/* Runs req (stolen) through the API; the answer's "result" alone when
 * result_only, else the whole {"ok", "result"|"error"}. */
static void call_api(struct hreq *h, json_t *req, bool result_only)
{
	snprintf(h->what, sizeof(h->what), "%s", result_only ? "result" : "");
	api_handle(h->c->api, req, h->origin, false, on_api_answer, h);
	json_decref(req);
}

/* ---- sessions ---- */

static void set_cookie(struct hreq *h, const char *sid, bool clear)
{
	char v[256];

	snprintf(v, sizeof(v), "%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s", HTTP_COOKIE, clear ? "" : sid,
	         h->tls ? "; Secure" : "", clear ? "; Max-Age=0" : "");
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Set-Cookie", v);
}

static void on_login(const struct auth_login *res, void *arg)
{
	struct hreq *h = arg;
	char ra[16];

	switch (res->result) {
	case AUTH_OK:
		log_command("%s: login -> ok", h->origin);
		set_cookie(h, res->sid, false);
		http_reply_json(h, 200, json_pack("{s:s, s:s}", "csrf", res->csrf, "user", AUTH_USER));
		return;
	case AUTH_BAD:
		log_command("%s: login -> refused: wrong user or password", h->origin);
		http_reply_error(h, 401, "wrong user or password");
		return;
	case AUTH_THROTTLED:
		snprintf(ra, sizeof(ra), "%u", res->retry_after_s);
		evhttp_add_header(evhttp_request_get_output_headers(h->req), "Retry-After", ra);
		http_reply_error(h, 429, "too many failed logins from %s: retry in %u s", h->client, res->retry_after_s);
		return;
	case AUTH_BUSY:
		evhttp_add_header(evhttp_request_get_output_headers(h->req), "Retry-After", "1");
		http_reply_error(h, 503, "too many logins under way: retry in a second");
		return;
	case AUTH_NO_PASSWORD:
		http_reply_error(h, 503, "logins are refused: %s", res->why);
		return;
	case AUTH_ERROR:
		break;
	}
	http_reply_error(h, 500, "login failed: %s", res->why);
}

static void login(struct hreq *h)
{
	static const char *const allowed[] = { "user", "password", NULL };
	json_t *body = body_object(h);
	json_t *user, *pw;

	if (!body)
		return;
	if (!only_keys(h, body, allowed)) {
		json_decref(body);
		return;
	}
	user = json_object_get(body, "user");
	pw = json_object_get(body, "password");
	if (!json_is_string(user) || !json_is_string(pw)) {
		json_decref(body);
		http_reply_error(h, 400, "login needs \"user\" and \"password\", both strings");
		return;
	}
	auth_login(h->c->auth, h->client, json_string_value(user), json_string_value(pw), on_login, h);
	json_decref(body);
}

/* ---- password ---- */

static void password(struct hreq *h)
{
	static const char *const allowed[] = { "password", NULL };
	json_t *body = body_object(h);
	const char *pw, *rule;

	if (!body)
		return;
	if (!only_keys(h, body, allowed)) {
		json_decref(body);
		return;
	}
	pw = json_string_value(json_object_get(body, "password"));
	rule = pw ? auth_password_rule(pw) : "\"password\" (a string) is missing";
	if (rule) {
		json_decref(body);
		http_reply_error(h, 400, "password refused: %s", rule);
		return;
	}
	call_api(h, json_pack("{s:s, s:s}", "cmd", "password", "password", pw), false);
	json_decref(body);
}

/* ---- nodes/NAME/... ---- */

/* The name offered for download: vigil-NODE-STAMP.tar.gz, nothing that
 * could break out of the header's quotes. */
static bool safe_file_name(const char *s)
{
	if (!s || !*s || strlen(s) > 120 || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("._-", *s)))
			return false;
	return true;
}

static void on_snapshot(json_t *resp, void *arg)
{
	struct hreq *h = arg;
	json_t *r = json_object_get(resp, "result");
	const char *data = json_string_value(json_object_get(r, "data"));
	const char *name = json_string_value(json_object_get(r, "name"));
	json_int_t size = json_integer_value(json_object_get(r, "size"));
	size_t dlen = data ? strlen(data) : 0;
	struct evbuffer *buf;
	unsigned char *bin;
	char disp[200];
	int n;

	if (!json_is_true(json_object_get(resp, "ok"))) {
		on_api_answer(resp, h);
		return;
	}
	if (!data || !safe_file_name(name) || dlen % 4 || size < 0 || (size_t)size > dlen / 4 * 3) {
		json_decref(resp);
		http_reply_error(h, 502, "the snapshot came back malformed");
		return;
	}
	bin = malloc(dlen / 4 * 3 + 1);
	n = bin ? EVP_DecodeBlock(bin, (const unsigned char *)data, (int)dlen) : -1;
	if (n < 0 || n < size) {
		free(bin);
		json_decref(resp);
		http_reply_error(h, 502, "the snapshot came back malformed (base64)");
		return;
	}
	buf = evbuffer_new();
	if (buf)
		evbuffer_add(buf, bin, (size_t)size);
	free(bin);
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", name);
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Content-Type", "application/gzip");
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Content-Disposition", disp);
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "Cache-Control", "no-store");
	evhttp_add_header(evhttp_request_get_output_headers(h->req), "X-Content-Type-Options", "nosniff");
	json_decref(resp);
	evhttp_send_reply(h->req, 200, "OK", buf);
	if (buf)
		evbuffer_free(buf);
	http_hreq_free(h);
}

void http_snapshot(struct hreq *h, const char *node)
{
	json_t *req = json_pack("{s:s, s:s}", "cmd", "snapshot", "node", node);

	api_handle(h->c->api, req, h->origin, false, on_snapshot, h);
	json_decref(req);
}

/* The body's options (a JSON object of allowed keys, strings and bools
 * where named) added to req (stolen), then through the API; else 400. */
static void call_with_body(struct hreq *h, json_t *req, const char *const *allowed, const char *const *strings,
                           const char *const *bools)
{
	json_t *body = body_object(h);

	if (!body || !only_keys(h, body, allowed)) {
		json_decref(body);
		json_decref(req);
		return;
	}
	for (int i = 0; strings[i]; i++) {
		json_t *v = json_object_get(body, strings[i]);

		if (v && !json_is_string(v)) {
			http_reply_error(h, 400, "\"%s\" must be a string", strings[i]);
			goto bad;
		}
	}
	for (int i = 0; bools[i]; i++) {
		json_t *v = json_object_get(body, bools[i]);

		if (v && !json_is_boolean(v)) {
			http_reply_error(h, 400, "\"%s\" must be true or false", bools[i]);
			goto bad;
		}
	}
	json_object_update(req, body);
	json_decref(body);
	call_api(h, req, false);
	return;
bad:
	json_decref(body);
	json_decref(req);
}

static void node_action(struct hreq *h, const char *node, const char *action)
{
	static const char *const allowed[] = { "nosync", "mode", NULL };
	static const char *const strings[] = { "mode", NULL }, *const bools[] = { "nosync", NULL };
	bool known = false;

	for (int i = 0; node_actions[i]; i++)
		known = known || !strcmp(action, node_actions[i]);
	if (!known) {
		http_reply_error(h, 404, "unknown action '%.64s' (start, stop, restart, swap, forcestart, stopstart, "
		                 "prim, second, boot, failover, checkers, errd, sync, dump)", action);
		return;
	}
	call_with_body(h, json_pack("{s:s, s:s}", "cmd", action, "node", node), allowed, strings, bools);
}

static void node_log(struct hreq *h, const char *node, const char *log)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(h->req));
	struct evkeyvalq q = { 0 };
	const char *verbose = NULL, *lines = NULL;
	uint64_t n = 200;
	json_t *req;

	if (strcmp(log, "module") && strcmp(log, "application") && strcmp(log, "commands")) {
		http_reply_error(h, 404, "unknown log '%.64s' (module, application or commands)", log);
		return;
	}
	if (query && evhttp_parse_query_str(query, &q) < 0) {
		http_reply_error(h, 400, "bad query string");
		return;
	}
	verbose = evhttp_find_header(&q, "verbose");
	lines = evhttp_find_header(&q, "lines");
	if (verbose && strcmp(verbose, "0") && strcmp(verbose, "1")) {
		evhttp_clear_headers(&q);
		http_reply_error(h, 400, "verbose must be 0 or 1");
		return;
	}
	if (lines && parse_u64(lines, 1, LINES_MAX, &n) < 0) {
		evhttp_clear_headers(&q);
		http_reply_error(h, 400, "lines must be a whole number from 1 to %d", LINES_MAX);
		return;
	}
	req = json_pack("{s:s, s:s, s:s, s:b, s:I}", "cmd", "log", "node", node, "log", log, "verbose",
	                verbose && !strcmp(verbose, "1"), "lines", (json_int_t)n);
	evhttp_clear_headers(&q);
	call_api(h, req, true);
}

static void route_node(struct hreq *h, const char *rest)
{
	char node[72], tail[200];
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);

	if (!slash || n == 0 || n >= sizeof(node) || strlen(slash + 1) >= sizeof(tail)) {
		http_reply_error(h, 404, "no such endpoint: /api/v1/nodes/%.100s", rest);
		return;
	}
	memcpy(node, rest, n);
	node[n] = '\0';
	snprintf(tail, sizeof(tail), "%s", slash + 1);
	if (!known_node(h, node))
		return;
	if (!strncmp(tail, "logs/", 5)) {
		if (!is_get(h)) {
			http_reply_error(h, 405, "logs: only GET");
			return;
		}
		if (strchr(tail + 5, '/')) {
			http_reply_error(h, 404, "unknown log '%.64s' (module, application or commands)", tail + 5);
			return;
		}
		node_log(h, node, tail + 5);
		return;
	}
	if (!strcmp(tail, "snapshot")) {
		if (!is_get(h)) {
			http_reply_error(h, 405, "snapshot: only GET");
			return;
		}
		http_snapshot(h, node);
		return;
	}
	if (!strcmp(tail, "info")) {
		if (!is_get(h)) {
			http_reply_error(h, 405, "info: only GET");
			return;
		}
		call_api(h, json_pack("{s:s, s:s}", "cmd", "info", "node", node), true);
		return;
	}
	if (strchr(tail, '/')) {
		http_reply_error(h, 404, "no such endpoint: /api/v1/nodes/%s/%.100s", node, tail);
		return;
	}
	if (!is_post(h)) {
		http_reply_error(h, 405, "%s: only POST", tail);
		return;
	}
	node_action(h, node, tail);
}

/* /api/v1/pool, /pool/queue, /pool/log (GET) and
 * /pool/recorders/NAME/ACTION (POST, body {"role": ...} optional). */
static void route_pool(struct hreq *h, const char *rest)
{
	static const char *const allowed[] = { "role", NULL }, *const none[] = { NULL };
	char name[72], action[32];
	const char *slash;

	if (!*rest || !strcmp(rest, "queue") || !strcmp(rest, "log")) {
		if (!is_get(h)) {
			http_reply_error(h, 405, "pool: only GET");
			return;
		}
		call_api(h, json_pack("{s:s, s:s}", "cmd", "pool", "action", *rest ? rest : "status"), true);
		return;
	}
	slash = strncmp(rest, "recorders/", 10) ? NULL : strchr(rest + 10, '/');
	if (!slash || slash == rest + 10 || (size_t)(slash - rest - 10) >= sizeof(name) ||
	    strlen(slash + 1) >= sizeof(action) || !slash[1] || strchr(slash + 1, '/')) {
		http_reply_error(h, 404, "no such endpoint: /api/v1/pool/%.100s", rest);
		return;
	}
	if (!is_post(h)) {
		http_reply_error(h, 405, "%s: only POST", slash + 1);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(slash - rest - 10), rest + 10);
	snprintf(action, sizeof(action), "%s", slash + 1);
	call_with_body(h, json_pack("{s:s, s:s, s:s}", "cmd", "pool", "action", action, "recorder", name), allowed,
	               allowed, none);
}

void http_api_route(struct hreq *h, const char *path)
{
	char csrf[AUTH_TOKEN_LEN + 1];
	const char *ep;

	if (strncmp(path, "/api/v1/", 8)) {
		http_reply_error(h, 404, "no such endpoint: %.100s (the API is under /api/v1/)", path);
		return;
	}
	ep = path + 8;
	if (!strcmp(ep, "login")) {
		if (!is_post(h))
			http_reply_error(h, 405, "login: only POST");
		else
			login(h);
		return;
	}
	cookie_sid(h, h->sid);
	if (!auth_session(h->c->auth, h->sid, csrf)) {
		http_reply_error(h, 401, "not logged in (POST /api/v1/login first)");
		return;
	}
	if (is_post(h) && !auth_csrf_ok(h->c->auth, h->sid,
	                                evhttp_find_header(evhttp_request_get_input_headers(h->req), "X-CSRF-Token"))) {
		http_reply_error(h, 403, "missing or wrong X-CSRF-Token header");
		return;
	}
	if (!strcmp(ep, "logout")) {
		if (!is_post(h)) {
			http_reply_error(h, 405, "logout: only POST");
			return;
		}
		auth_logout(h->c->auth, h->sid);
		log_command("%s: logout -> ok", h->origin);
		set_cookie(h, NULL, true);
		http_reply_json(h, 200, json_pack("{s:b}", "ok", 1));
	} else if (!strcmp(ep, "session")) {
		if (!is_get(h))
			http_reply_error(h, 405, "session: only GET");
		else
			http_reply_json(h, 200, json_pack("{s:s, s:s, s:s}", "user", AUTH_USER, "csrf", csrf, "node",
			                                  h->c->node));
	} else if (!strcmp(ep, "cluster")) {
		if (!is_get(h))
			http_reply_error(h, 405, "cluster: only GET");
		else
			call_api(h, json_pack("{s:s}", "cmd", "status"), true);
	} else if (!strcmp(ep, "info")) {
		if (!is_get(h))
			http_reply_error(h, 405, "info: only GET");
		else
			call_api(h, json_pack("{s:s}", "cmd", "info"), true);
	} else if (!strcmp(ep, "password")) {
		if (!is_post(h))
			http_reply_error(h, 405, "password: only POST");
		else
			password(h);
	} else if (!strncmp(ep, "nodes/", 6)) {
		route_node(h, ep + 6);
	} else if (!strcmp(ep, "pool") || !strncmp(ep, "pool/", 5)) {
		route_pool(h, ep[4] ? ep + 5 : "");
	} else {
		http_reply_error(h, 404, "no such endpoint: %.100s", path);
	}
}
