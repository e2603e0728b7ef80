#include "pool/conn.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/peerlink_tls.h"
#include "common/log.h"
#include "pki/pki.h"

#define HDR_LEN 4
/* A peer that stops reading gets this much queued before it is dropped:
 * a few settings pushes, never the master's memory. */
#define BACKLOG_MAX (64u << 20)
#define HANDSHAKE_S 10
#define FLUSH_S 3

struct pool_conn {
	struct event_base *base;
	struct bufferevent *bev;
	struct pool_conn_cbs cbs;
	void *arg;
	bool open, closing, ended;
	bool member;                    /* the peer's certificate is a pool member's */
	struct event *reaper;           /* frees the connection from the loop */
	char addr[INET_ADDRSTRLEN + 8];
	char peer[256];
};

static void reap(evutil_socket_t fd, short what, void *arg)
{
	struct pool_conn *c = arg;

	(void)fd, (void)what;
	if (c->bev)
		bufferevent_free(c->bev);
	event_free(c->reaper);
	free(c);
}

/* The memory goes at the next turn of the loop, after every callback on
 * the stack has returned. */
static void schedule_free(struct pool_conn *c)
{
	struct timeval now = { 0, 0 };

	c->closing = true;
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_add(c->reaper, &now);
}

static void end(struct pool_conn *c, const char *why)
{
	if (c->ended)
		return;
	c->ended = true;
	if (!c->closing && c->cbs.closed)
		c->cbs.closed(c, why, c->arg);
	schedule_free(c);
}

/* Whether the subject has OU PKI_POOL_MEMBER_OU (vigilctl pki member). */
static bool is_member(X509 *cert)
{
	X509_NAME *subj = X509_get_subject_name(cert);
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(subj, NID_organizationalUnitName, i)) >= 0) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));

		if (v && ASN1_STRING_length(v) == (int)strlen(PKI_POOL_MEMBER_OU) &&
		    !memcmp(ASN1_STRING_get0_data(v), PKI_POOL_MEMBER_OU, strlen(PKI_POOL_MEMBER_OU)))
			return true;
	}
	return false;
}

/* The verified CN, once: the handshake is over when data or CONNECTED
 * arrives. -1 (and the connection ends) if there is none. */
static int check_open(struct pool_conn *c)
{
	SSL *ssl;
	X509 *cert;
	long v;

	if (c->open)
		return 0;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	if (!cert) {
		end(c, "no certificate shown");
		return -1;
	}
	v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK) {
		char why[160];

		snprintf(why, sizeof(why), "certificate not trusted: %s", X509_verify_cert_error_string(v));
		X509_free(cert);
		end(c, why);
		return -1;
	}
	c->peer[0] = '\0';
	X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, c->peer, sizeof(c->peer));
	c->member = is_member(cert);
	X509_free(cert);
	if (!c->peer[0]) {
		end(c, "certificate has no common name");
		return -1;
	}
	c->open = true;
	/* From now on the heartbeats and detect timers watch the peer. */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	if (c->cbs.open)
		c->cbs.open(c, c->peer, c->arg);
	return c->closing ? -1 : 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct pool_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->closing || check_open(c) < 0)
		return;
	while (!c->closing) {
		unsigned char hdr[HDR_LEN];
		struct pool_msg m;
		char err[512], *body;
		uint32_t len;

		if (evbuffer_copyout(in, hdr, HDR_LEN) < HDR_LEN)
			return;
		len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
		if (len == 0 || len > POOL_MSG_MAX) {
			char why[96];

			snprintf(why, sizeof(why), "frame of %u bytes (limit %u)", len, POOL_MSG_MAX);
			if (c->cbs.bad)
				c->cbs.bad(c, why, c->arg);
			if (!c->closing)
				end(c, why);
			return;
		}
		if (evbuffer_get_length(in) < HDR_LEN + (size_t)len)
			return;
		evbuffer_drain(in, HDR_LEN);
		body = (char *)evbuffer_pullup(in, len);
		if (!body) {
			end(c, "out of memory");
			return;
		}
		if (pool_msg_parse(body, len, &m, err, sizeof(err)) < 0) {
			evbuffer_drain(in, len);
			if (c->cbs.bad)
				c->cbs.bad(c, err, c->arg);
			continue;
		}
		evbuffer_drain(in, len);
		if (c->cbs.msg)
			c->cbs.msg(c, &m, c->arg);
		pool_msg_free(&m);
	}
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct pool_conn *c = arg;

	/* A flushing close ends once all is sent. */
	if (c->closing && !c->ended && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		c->ended = true;
		schedule_free(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pool_conn *c = arg;
	char buf[160], why[256];
	int err = EVUTIL_SOCKET_ERROR(), soerr = 0;
	socklen_t len = sizeof(soerr);
	const char *tls;

	if (what & BEV_EVENT_CONNECTED) {
		check_open(c);
		return;
	}
	tls = tls_bev_error(bev, buf, sizeof(buf));
	/* A refused or unreachable connect shows up as a TLS error too: the
	 * socket's own error says it better. */
	if (!c->open && getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr)
		err = soerr;
	if (!c->open && (what & BEV_EVENT_ERROR) && err)
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(err));
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), c->open ? "timed out" : "no TLS handshake within %d s", HANDSHAKE_S);
	else if (tls)
		snprintf(why, sizeof(why), "TLS: %s", tls);
	else if (tls_socket_failure(err))
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(err));
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "closed by the peer");
	else
		snprintf(why, sizeof(why), "%s", err ? evutil_socket_error_to_string(err) : "connection lost");
	if (c->closing) {
		c->ended = true;
		schedule_free(c);
		return;
	}
	end(c, why);
}

static struct pool_conn *conn_new(struct event_base *base, struct ssl_ctx_st *tls, int fd, bool server,
                                  const struct pool_conn_cbs *cbs, void *arg)
{
	struct pool_conn *c = calloc(1, sizeof(*c));
	struct timeval hs = { HANDSHAKE_S, 0 };
	SSL *ssl = NULL;

	if (!c || !(c->reaper = evtimer_new(base, reap, c)) || !(ssl = SSL_new(tls))) {
		log_error("pool link: out of memory");
		goto fail;
	}
	c->base = base;
	c->cbs = *cbs;
	c->arg = arg;
	c->bev = bufferevent_openssl_socket_new(base, fd, ssl,
	                                        server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		log_error("pool link: cannot set up a TLS connection");
		ssl = NULL;     /* freed by the failed call */
		goto fail;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, &hs, &hs);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
fail:
	if (fd >= 0)
		close(fd);
	if (c && c->reaper)
		event_free(c->reaper);
	free(c);
	return NULL;
}

struct pool_conn *pool_conn_accept(struct event_base *base, struct ssl_ctx_st *tls, int fd,
                                   const struct pool_conn_cbs *cbs, void *arg)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct pool_conn *c = conn_new(base, tls, fd, true, cbs, arg);
	char ip[INET_ADDRSTRLEN] = "?";

	if (!c)
		return NULL;
	if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0 && sa.sin_family == AF_INET)
		inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, len ? ntohs(sa.sin_port) : 0);
	return c;
}

struct pool_conn *pool_conn_connect(struct event_base *base, struct ssl_ctx_st *tls,
                                    const struct sockaddr_in *to, const struct pool_conn_cbs *cbs, void *arg)
{
	struct pool_conn *c = conn_new(base, tls, -1, false, cbs, arg);
	char ip[INET_ADDRSTRLEN];

	if (!c)
		return NULL;
	inet_ntop(AF_INET, &to->sin_addr, ip, sizeof(ip));
	snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, ntohs(to->sin_port));
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)to, sizeof(*to)) < 0) {
		/* The error comes back as an event: let it end the connection
		 * from the loop, as any other failure does. */
		log_debug("pool link: connect to %s failed at once", c->addr);
	}
	return c;
}

int pool_conn_send(struct pool_conn *c, json_t *msg)
{
	char *body = NULL;
	size_t len;
	unsigned char hdr[HDR_LEN];
	struct evbuffer *out;

	if (c->closing) {
		json_decref(msg);
		return -1;
	}
	body = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!body) {
		log_error("pool link %s: cannot encode a message", c->addr);
		return -1;
	}
	len = strlen(body);
	out = bufferevent_get_output(c->bev);
	if (len > POOL_MSG_MAX || evbuffer_get_length(out) + len > BACKLOG_MAX) {
		char why[96];

		snprintf(why, sizeof(why), len > POOL_MSG_MAX ? "message of %zu bytes is over the limit"
		                                                 : "peer too slow (%zu bytes queued)",
		         len > POOL_MSG_MAX ? len : evbuffer_get_length(out));
		free(body);
		end(c, why);
		return -1;
	}
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	bufferevent_write(c->bev, hdr, HDR_LEN);
	bufferevent_write(c->bev, body, len);
	free(body);
	return 0;
}

void pool_conn_close(struct pool_conn *c, bool flush)
{
	struct timeval t = { FLUSH_S, 0 };

	if (!c || c->closing)
		return;
	c->closing = true;
	if (flush && !c->ended && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_set_timeouts(c->bev, NULL, &t);
		return;                 /* on_write or on_event frees it */
	}
	c->ended = true;
	schedule_free(c);
}

void pool_conn_free(struct pool_conn *c)
{
	if (!c)
		return;
	if (c->bev)
		bufferevent_free(c->bev);
	event_free(c->reaper);
	free(c);
}

const char *pool_conn_addr(const struct pool_conn *c)
{
	return c->addr;
}

const char *pool_conn_peer(const struct pool_conn *c)
{
	return c->open ? c->peer : "";
}

bool pool_conn_peer_member(const struct pool_conn *c)
{
	return c->member;
}
