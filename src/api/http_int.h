/* Internal to the console's server: http.c (listeners, routing, static
 * files, answers), http_api.c (the /api/v1/ endpoints), http_tls.c. */
#ifndef VIGIL_HTTP_INT_H
#define VIGIL_HTTP_INT_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>

#include "api/auth.h"

struct evhttp;
struct evhttp_request;
struct ssl_ctx_st;

#define HTTP_BODY_MAX (64 * 1024)
#define HTTP_COOKIE "vigil_session"

struct console {
	struct event_base *base;
	const struct config *cfg;
	char node[64];
	char config_dir[PATH_MAX];
	struct api *api;
	struct auth *auth;
	struct evhttp *plain, *tls;
	struct ssl_ctx_st *ctx;
	char http_state[200], https_state[300];
};

/* One request being answered. */
struct hreq {
	struct console *c;
	struct evhttp_request *req;
	bool tls;
	char client[64];             /* the peer's address */
	char sid[AUTH_TOKEN_LEN + 1]; /* the session, once checked */
	char origin[128];            /* for the commands log: admin@ADDR (https) */
	char what[96];               /* snapshot: the file name offered */
	char tmpdir[PATH_MAX];
};

/* Answers and frees h. */
void http_reply_json(struct hreq *h, int code, json_t *body);
void http_reply_error(struct hreq *h, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void http_hreq_free(struct hreq *h);

/* Routes /api/v1/...: path is the decoded path. */
void http_api_route(struct hreq *h, const char *path);

/* GET nodes/NAME/snapshot: the archive as a download. */
void http_snapshot(struct hreq *h, const char *node);

/* HTTPS: the server context from the config dir's certificates, or NULL
 * (why in err). */
struct ssl_ctx_st *http_tls_ctx(const char *config_dir, const char *node, char *err, size_t errlen);
void http_tls_ctx_free(struct ssl_ctx_st *ctx);
/* Sets up evhttp to wrap each connection in TLS with ctx. */
void http_tls_attach(struct evhttp *http, struct event_base *base, struct ssl_ctx_st *ctx);

#endif
