#include "cluster/peerlink.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cluster/peerlink_tls.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#define HDR_LEN (4 + PROTO_MAC_LEN)
#define SERVER_TIMEOUT_S 10
/* Requests are small; answers (logs) may be large. Bounding requests keeps
 * a client that has not yet proven it knows the secret from making us
 * buffer megabytes. */
#define REQUEST_MAX (64u * 1024)

struct peerlink {
	struct event_base *base;
	const struct config *cfg;
	int self, peer;
	unsigned char key[PROTO_KEY_LEN];
	peerlink_handler handler;
	void *arg;
	struct evconnlistener *listeners[CFG_MAX_NETS];
	SSL_CTX *tls;                /* NULL: signed frames alone */
};

/* A TCP bufferevent, or one under TLS when the link has it. */
static struct bufferevent *new_bev(struct peerlink *pl, evutil_socket_t fd, bool server)
{
	SSL *ssl;
	struct bufferevent *bev;

	if (!pl->tls)
		return bufferevent_socket_new(pl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	ssl = SSL_new(pl->tls);
	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(pl->base, fd, ssl,
	                                     server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	/* One request per connection: a close without close_notify after
	 * the answer is the end of it, not an attack on the data. */
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Under TLS: the peer's certificate must name the peer node. 0 or -1. */
static int check_peer(struct peerlink *pl, struct bufferevent *bev, char *why, size_t whylen)
{
	SSL *ssl = pl->tls ? bufferevent_openssl_get_ssl(bev) : NULL;

	if (!pl->tls)
		return 0;
	if (!ssl) {
		snprintf(why, whylen, "no TLS session");
		return -1;
	}
	return peerlink_tls_check_peer(ssl, pl->cfg->nodes[pl->peer].name, why, whylen);
}

/* Reads one frame from in; 1 = complete (json set), 0 = need more, -1 = bad. */
static int read_frame(struct peerlink *pl, struct evbuffer *in, const unsigned char *nonce,
                      char dir, uint32_t max, json_t **json, const char **why)
{
	unsigned char hdr[HDR_LEN], mac[PROTO_MAC_LEN];
	uint32_t len;
	char *body;
	json_error_t jerr;

	if (evbuffer_get_length(in) < HDR_LEN)
		return 0;
	evbuffer_copyout(in, hdr, HDR_LEN);
	memcpy(&len, hdr, 4);
	len = be32toh(len);
	if (len == 0 || len > max) {
		*why = "frame length out of range";
		return -1;
	}
	if (evbuffer_get_length(in) < HDR_LEN + (size_t)len)
		return 0;
	evbuffer_drain(in, HDR_LEN);
	body = malloc(len);
	if (!body) {
		*why = "out of memory";
		return -1;
	}
	evbuffer_remove(in, body, len);
	proto_hmac(pl->key, nonce, PROTO_NONCE_LEN, &dir, 1, body, len, mac);
	if (!proto_mac_equal(mac, hdr + 4)) {
		free(body);
		*why = "bad signature (wrong secret or forged)";
		return -1;
	}
	*json = json_loadb(body, len, 0, &jerr);
	free(body);
	if (!*json || !json_is_object(*json)) {
		json_decref(*json);
		*json = NULL;
		*why = "signed, but not a JSON object";
		return -1;
	}
	return 1;
}

static void write_frame(struct peerlink *pl, struct bufferevent *bev, const unsigned char *nonce,
                        char dir, json_t *json)
{
	char *body = json_dumps(json, JSON_COMPACT);
	unsigned char hdr[HDR_LEN];
	uint32_t len;

	if (!body)
		return;
	len = htobe32((uint32_t)strlen(body));
	memcpy(hdr, &len, 4);
	proto_hmac(pl->key, nonce, PROTO_NONCE_LEN, &dir, 1, body, strlen(body), hdr + 4);
	bufferevent_write(bev, hdr, HDR_LEN);
	bufferevent_write(bev, body, strlen(body));
	free(body);
}

/* ---- server ---- */

struct peerlink_reply {
	struct peerlink *pl;
	struct bufferevent *bev;     /* NULL once the connection is gone */
	unsigned char nonce[PROTO_NONCE_LEN];
	char from[64];
	bool handled;                /* the request went to the handler */
	bool checked;                /* TLS: the peer's certificate was checked */
};

static void srv_free(struct peerlink_reply *r)
{
	if (r->bev)
		bufferevent_free(r->bev);
	free(r);
}

static void srv_written(struct bufferevent *bev, void *arg)
{
	struct peerlink_reply *r = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		srv_free(r);
}

static void srv_event(struct bufferevent *bev, short what, void *arg)
{
	struct peerlink_reply *r = arg;
	char e[160];
	const char *te;

	/* TLS: the handshake is done; the request follows. */
	if (what & BEV_EVENT_CONNECTED)
		return;
	te = r->pl->tls && (what & BEV_EVENT_ERROR) ? tls_bev_error(bev, e, sizeof(e)) : NULL;
	if (te)
		log_warn("peer link: TLS with %s failed: %s", r->from, te);
	bufferevent_free(r->bev);
	r->bev = NULL;
	/* The handler still holds r and will answer into the void. */
	if (!r->handled)
		free(r);
}

static void srv_read(struct bufferevent *bev, void *arg)
{
	struct peerlink_reply *r = arg;
	json_t *req = NULL;
	const char *why = NULL;
	int k;

	if (r->handled)
		return;
	if (!r->checked) {
		char cwhy[200];

		if (check_peer(r->pl, bev, cwhy, sizeof(cwhy)) < 0) {
			log_warn("peer link: connection from %s refused: %s", r->from, cwhy);
			srv_event(bev, 0, r);
			return;
		}
		r->checked = true;
	}
	k = read_frame(r->pl, bufferevent_get_input(bev), r->nonce, 'Q', REQUEST_MAX, &req, &why);
	if (k == 0)
		return;
	if (k < 0) {
		log_warn("peer link: request from %s rejected: %s", r->from, why);
		srv_event(bev, 0, r);
		return;
	}
	r->handled = true;
	bufferevent_disable(bev, EV_READ);
	r->pl->handler(req, r, r->pl->arg);
	json_decref(req);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct peerlink *pl = arg;
	struct peerlink_reply *r = calloc(1, sizeof(*r));
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;
	struct timeval tv = { SERVER_TIMEOUT_S, 0 };

	if (!r) {
		evutil_closesocket(fd);
		return;
	}
	r->pl = pl;
	snprintf(r->from, sizeof(r->from), "%s:%u", inet_ntoa(sin->sin_addr), ntohs(sin->sin_port));
	r->bev = new_bev(pl, fd, true);
	if (!r->bev || random_bytes(r->nonce, sizeof(r->nonce)) < 0) {
		if (!r->bev)
			evutil_closesocket(fd);
		srv_free(r);
		return;
	}
	bufferevent_setcb(r->bev, srv_read, NULL, srv_event, r);
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	bufferevent_write(r->bev, r->nonce, sizeof(r->nonce));
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

void peerlink_reply_send(struct peerlink_reply *r, json_t *resp)
{
	if (!r->bev) {
		json_decref(resp);
		free(r);
		return;
	}
	write_frame(r->pl, r->bev, r->nonce, 'A', resp);
	json_decref(resp);
	r->handled = false; /* from here on, the connection owns r again */
	bufferevent_setcb(r->bev, NULL, srv_written, srv_event, r);
	bufferevent_enable(r->bev, EV_WRITE);
}

const char *peerlink_reply_from(const struct peerlink_reply *r)
{
	return r->from;
}

/* ---- client ---- */

struct req {
	struct peerlink *pl;
	struct bufferevent *bev;
	char *body;                 /* the request, serialised */
	json_t *json;
	peerlink_resp_cb cb;
	void *arg;
	uint32_t timeout_ms;
	int net;                    /* the network being tried */
	bool have_nonce;
	unsigned char nonce[PROTO_NONCE_LEN];
	char err[512];
};

static void try_next(struct req *q);

static void req_finish(struct req *q, json_t *resp, const char *err)
{
	if (q->bev)
		bufferevent_free(q->bev);
	q->cb(resp, err, q->arg);
	json_decref(resp);
	json_decref(q->json);
	free(q);
}

static void cli_read(struct bufferevent *bev, void *arg)
{
	struct req *q = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	json_t *resp = NULL;
	const char *why = NULL;
	int k;

	if (!q->have_nonce) {
		if (evbuffer_get_length(in) < PROTO_NONCE_LEN)
			return;
		evbuffer_remove(in, q->nonce, PROTO_NONCE_LEN);
		q->have_nonce = true;
		write_frame(q->pl, bev, q->nonce, 'Q', q->json);
	}
	k = read_frame(q->pl, in, q->nonce, 'A', PROTO_FRAME_MAX, &resp, &why);
	if (k == 0)
		return;
	if (k < 0) {
		snprintf(q->err, sizeof(q->err), "answer from %s rejected: %s",
		         q->pl->cfg->nodes[q->pl->peer].name, why);
		log_warn("peer link: %s", q->err);
		req_finish(q, NULL, q->err);
		return;
	}
	req_finish(q, resp, NULL);
}

static void cli_event(struct bufferevent *bev, short what, void *arg)
{
	struct req *q = arg;
	int err = EVUTIL_SOCKET_ERROR();
	char e[160], cwhy[200];
	const char *te = NULL;

	if (what & BEV_EVENT_CONNECTED) {
		if (check_peer(q->pl, bev, cwhy, sizeof(cwhy)) == 0)
			return;
		snprintf(q->err, sizeof(q->err), "%s (%s) refused over TLS: %s", q->pl->cfg->nodes[q->pl->peer].name,
		         inet_ntoa(q->pl->cfg->nodes[q->pl->peer].addr[q->net]), cwhy);
		log_warn("peer link: %s", q->err);
		req_finish(q, NULL, q->err);
		return;
	}
	if (q->pl->tls && (what & BEV_EVENT_ERROR))
		te = tls_bev_error(bev, e, sizeof(e));
	snprintf(q->err, sizeof(q->err), "cannot reach vigild on %s (%s): %s%s",
	         q->pl->cfg->nodes[q->pl->peer].name, inet_ntoa(q->pl->cfg->nodes[q->pl->peer].addr[q->net]),
	         te ? "TLS: " : "",
	         te ? te : (what & BEV_EVENT_TIMEOUT) ? "timed out" :
	         tls_socket_failure(err) ? evutil_socket_error_to_string(err) :
	         (what & BEV_EVENT_EOF) ? "connection closed" :
	         err ? evutil_socket_error_to_string(err) : "connection lost");
	bufferevent_free(q->bev);
	q->bev = NULL;
	q->have_nonce = false;
	q->net++;
	try_next(q);
}

static void try_next(struct req *q)
{
	struct peerlink *pl = q->pl;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(pl->cfg->hb_port) };
	struct timeval tv;

	if (q->net >= pl->cfg->nnets) {
		req_finish(q, NULL, q->err[0] ? q->err : "no heartbeat network to reach the peer");
		return;
	}
	ms_to_timeval(q->timeout_ms, &tv);
	sin.sin_addr = pl->cfg->nodes[pl->peer].addr[q->net];
	q->bev = new_bev(pl, -1, false);
	if (!q->bev) {
		req_finish(q, NULL, "out of memory");
		return;
	}
	bufferevent_setcb(q->bev, cli_read, NULL, cli_event, q);
	bufferevent_set_timeouts(q->bev, &tv, &tv);
	bufferevent_enable(q->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(q->bev, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		cli_event(q->bev, BEV_EVENT_ERROR, q);
}

void peerlink_request(struct peerlink *pl, json_t *req, uint32_t timeout_ms, peerlink_resp_cb cb, void *arg)
{
	struct req *q = calloc(1, sizeof(*q));

	if (!q) {
		cb(NULL, "out of memory", arg);
		return;
	}
	q->pl = pl;
	q->json = json_deep_copy(req);
	q->cb = cb;
	q->arg = arg;
	q->timeout_ms = timeout_ms;
	try_next(q);
}

struct peerlink *peerlink_new(struct event_base *base, const struct config *cfg, int self,
                              peerlink_handler handler, void *arg)
{
	struct peerlink *pl = calloc(1, sizeof(*pl));

	if (!pl)
		return NULL;
	pl->base = base;
	pl->cfg = cfg;
	pl->self = self;
	pl->peer = 1 - self;
	pl->handler = handler;
	pl->arg = arg;
	proto_derive_key(cfg->secret, cfg->secret_len, "control", cfg->cluster_name, pl->key);
	{
		char err[1024];
		bool off;

		pl->tls = peerlink_tls_ctx(cfg, self, &off, err, sizeof(err));
		if (!pl->tls && !off) {
			log_error("peer link: [cluster] link_tls = %s: %s", link_tls_str(cfg->link_tls), err);
			goto fail;
		}
		if (!pl->tls)
			log_info("peer link: signed frames without TLS (%s)", err);
	}
	for (int i = 0; i < cfg->nnets; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(cfg->hb_port),
		                           .sin_addr = cfg->nodes[self].addr[i] };
		evutil_socket_t fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;

		if (fd < 0)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 16) < 0) {
			log_error("peer link: cannot listen on %s:%u: %s", inet_ntoa(sin.sin_addr),
			          cfg->hb_port, strerror(errno));
			evutil_closesocket(fd);
			goto fail;
		}
		pl->listeners[i] = evconnlistener_new(base, on_accept, pl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		if (!pl->listeners[i]) {
			evutil_closesocket(fd);
			goto fail;
		}
	}
	return pl;
fail:
	peerlink_free(pl);
	return NULL;
}

void peerlink_free(struct peerlink *pl)
{
	if (!pl)
		return;
	for (int i = 0; i < CFG_MAX_NETS; i++)
		if (pl->listeners[i])
			evconnlistener_free(pl->listeners[i]);
	memset(pl->key, 0, sizeof(pl->key));
	peerlink_tls_ctx_free(pl->tls);
	free(pl);
}
