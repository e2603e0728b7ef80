#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/peerlink.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#define ADDR0 "127.0.0.1"
#define ADDR1 "127.0.0.2"

static const char secret[] = "unit-test-peerlink-secret-0123456789";
static struct config cfg;

/* ---- the server side ---- */

enum answer { ANSWER_NOW, ANSWER_LATER };

struct server {
	struct event_base *base;
	enum answer mode;
	uint32_t delay_ms;
	int calls;
	int answered;
	char from[64];
};

struct later {
	struct server *srv;
	struct peerlink_reply *r;
	json_t *req;
	struct event *ev;
};

static json_t *echo_of(json_t *req)
{
	return json_pack("{s:O}", "echo", req);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;

	peerlink_reply_send(l->r, echo_of(l->req));
	l->srv->answered++;
	json_decref(l->req);
	event_free(l->ev);
	free(l);
}

static void handler(json_t *req, struct peerlink_reply *r, void *arg)
{
	struct server *srv = arg;

	srv->calls++;
	strlcpy_ok(srv->from, peerlink_reply_from(r), sizeof(srv->from));
	if (srv->mode == ANSWER_NOW) {
		peerlink_reply_send(r, echo_of(req));
		srv->answered++;
	} else {
		struct later *l = calloc(1, sizeof(*l));
		struct timeval tv = { srv->delay_ms / 1000, (srv->delay_ms % 1000) * 1000 };

		l->srv = srv;
		l->r = r;
		l->req = json_incref(req);
		l->ev = evtimer_new(srv->base, on_later, l);
		evtimer_add(l->ev, &tv);
	}
}

/* ---- the client side ---- */

struct result {
	bool done;
	int calls;
	json_t *resp;
	char err[512];
	uint64_t at;
};

static void on_resp(json_t *resp, const char *err, void *arg)
{
	struct result *res = arg;

	res->calls++;
	res->done = true;
	res->at = mono_ms();
	res->resp = resp ? json_incref(resp) : NULL;
	if (err)
		strlcpy_ok(res->err, err, sizeof(res->err));
}


static bool result_done(void *arg)
{
	return ((struct result *)arg)->done;
}

static void wait_result(struct event_base *base, struct result *res, uint32_t ms)
{
	if (!run_until(base, result_done, res, ms))
		fail_msg("no answer within %u ms", ms);
}

static void assert_echo(const struct result *res, json_t *req)
{
	json_t *want = echo_of(req);

	if (!res->resp)
		fail_msg("no response: %s", res->err);
	if (!json_equal(res->resp, want)) {
		char *got = json_dumps(res->resp, JSON_COMPACT);

		fail_msg("unexpected response %s", got);
	}
	json_decref(want);
}

static void result_clear(struct result *res)
{
	json_decref(res->resp);
	memset(res, 0, sizeof(*res));
}

/* ---- setup ---- */

static int tcp_listen_on(const char *addr, uint16_t port, bool do_listen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || (do_listen && listen(fd, 4) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A TCP port free on both node addresses. */
static uint16_t free_tcp_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		int a = tcp_listen_on(ADDR0, 0, false), b;
		uint16_t port;

		assert_true(a >= 0);
		assert_int_equal(getsockname(a, (struct sockaddr *)&sin, &len), 0);
		port = ntohs(sin.sin_port);
		b = tcp_listen_on(ADDR1, port, false);
		close(a);
		if (b >= 0) {
			close(b);
			return port;
		}
	}
	fail_msg("no free TCP port on %s and %s", ADDR0, ADDR1);
	return 0;
}

static void make_config(struct config *c, const char *sec)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->cluster_name, "ut-cluster");
	c->nnodes = 2;
	c->nnets = 1;
	strcpy(c->nodes[0].name, "alpha");
	strcpy(c->nodes[1].name, "beta");
	c->nodes[0].naddr = c->nodes[1].naddr = 1;
	inet_pton(AF_INET, ADDR0, &c->nodes[0].addr[0]);
	inet_pton(AF_INET, ADDR1, &c->nodes[1].addr[0]);
	c->hb_port = free_tcp_port();
	c->hb_interval_ms = 200;
	c->hb_timeout_ms = 1000;
	memcpy(c->secret, sec, strlen(sec));
	c->secret_len = strlen(sec);
}

static int group_setup(void **st)
{
	/* As vigild does: a peer that resets must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	/* Rejections are logged as warnings: expected here, keep them quiet. */
	log_init("ut-peerlink", true, LOG_LVL_ERROR);
	return 0;
}

struct pair {
	struct event_base *base;
	struct peerlink *pl0, *pl1;
	struct server srv0, srv1;
};

static void pair_start(struct pair *p, bool with0, bool with1)
{
	memset(p, 0, sizeof(*p));
	make_config(&cfg, secret);
	p->base = event_base_new();
	p->srv0.base = p->srv1.base = p->base;
	if (with0) {
		p->pl0 = peerlink_new(p->base, &cfg, 0, handler, &p->srv0);
		assert_non_null(p->pl0);
	}
	if (with1) {
		p->pl1 = peerlink_new(p->base, &cfg, 1, handler, &p->srv1);
		assert_non_null(p->pl1);
	}
}

static void pair_stop(struct pair *p)
{
	/* Let closing connections finish before the listeners go. */
	run_for(p->base, 20);
	peerlink_free(p->pl0);
	peerlink_free(p->pl1);
	event_base_free(p->base);
}

/* ---- tests ---- */

static void echo(void **st)
{
	struct pair p;
	struct result res = { 0 };
	json_t *req = json_pack("{s:s, s:i, s:[s,s]}", "cmd", "status", "n", 1, "args", "a", "b");

	pair_start(&p, true, true);
	peerlink_request(p.pl0, req, 2000, on_resp, &res);
	/* Serialised at once: the caller may change or drop req. */
	json_object_set_new(req, "n", json_integer(2));
	wait_result(p.base, &res, 3000);
	json_object_set_new(req, "n", json_integer(1));
	assert_echo(&res, req);
	assert_int_equal(res.calls, 1);
	assert_int_equal(p.srv1.calls, 1);
	assert_int_equal(p.srv0.calls, 0);
	assert_true(strncmp(p.srv1.from, "127.0.0.", 8) == 0);
	assert_non_null(strchr(p.srv1.from, ':'));
	result_clear(&res);

	/* The other way round. */
	peerlink_request(p.pl1, req, 2000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_echo(&res, req);
	assert_int_equal(p.srv0.calls, 1);
	result_clear(&res);

	/* One connection per request: a second request on the same link works. */
	peerlink_request(p.pl0, req, 2000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_echo(&res, req);
	assert_int_equal(p.srv1.calls, 2);
	result_clear(&res);

	json_decref(req);
	pair_stop(&p);
}

static void many_and_large(void **st)
{
	struct pair p;
	struct result res[8];
	json_t *reqs[8];
	/* Requests are capped at 64 KiB (peerlink.c REQUEST_MAX): stay under. */
	char *big = malloc(60 * 1024 + 1);

	memset(res, 0, sizeof(res));
	memset(big, 'b', 60 * 1024);
	big[60 * 1024] = '\0';
	pair_start(&p, true, true);
	/* Several requests in flight at once, one of them large (several reads). */
	for (int i = 0; i < 8; i++) {
		reqs[i] = json_pack("{s:i, s:s}", "id", i, "pad", i == 3 ? big : "small");
		peerlink_request(p.pl0, reqs[i], 3000, on_resp, &res[i]);
	}
	for (int i = 0; i < 8; i++) {
		wait_result(p.base, &res[i], 4000);
		assert_echo(&res[i], reqs[i]);
		assert_int_equal(res[i].calls, 1);
		result_clear(&res[i]);
		json_decref(reqs[i]);
	}
	assert_int_equal(p.srv1.calls, 8);
	free(big);
	pair_stop(&p);
}

/* A request past the cap is refused before the handler sees it: an
 * unauthenticated client cannot make the server buffer megabytes. */
static void oversized_request(void **st)
{
	struct pair p;
	struct result res;
	char *big = malloc(100 * 1024 + 1);
	json_t *req;

	memset(&res, 0, sizeof(res));
	memset(big, 'b', 100 * 1024);
	big[100 * 1024] = '\0';
	pair_start(&p, true, true);
	req = json_pack("{s:s}", "pad", big);
	peerlink_request(p.pl0, req, 3000, on_resp, &res);
	wait_result(p.base, &res, 8000);
	assert_int_equal(res.calls, 1);
	assert_null(res.resp);
	assert_int_equal(p.srv1.calls, 0);
	result_clear(&res);
	json_decref(req);
	free(big);
	pair_stop(&p);
}

static void answer_later(void **st)
{
	struct pair p;
	struct result res = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "slow");
	uint64_t t0;

	pair_start(&p, true, true);
	p.srv1.mode = ANSWER_LATER;
	p.srv1.delay_ms = 150;
	t0 = mono_ms();
	peerlink_request(p.pl0, req, 2000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_echo(&res, req);
	assert_int_equal(p.srv1.calls, 1);
	assert_int_equal(p.srv1.answered, 1);
	assert_true(res.at - t0 >= 140);
	result_clear(&res);
	json_decref(req);
	pair_stop(&p);
}

static void peer_not_listening(void **st)
{
	struct pair p;
	struct result res = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "status");
	uint64_t t0;

	pair_start(&p, true, false);
	t0 = mono_ms();
	peerlink_request(p.pl0, req, 1000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_null(res.resp);
	assert_int_equal(res.calls, 1);
	if (!strstr(res.err, "beta"))
		fail_msg("error does not name the peer: %s", res.err);
	assert_true(res.at - t0 <= 1000 + 300);
	/* Exactly one callback, even later. */
	run_for(p.base, 50);
	assert_int_equal(res.calls, 1);
	result_clear(&res);
	json_decref(req);
	pair_stop(&p);
}

/* The peer's port accepts connections (kernel backlog) but nobody answers:
 * the request gives up after its timeout. */
static void peer_silent_times_out(void **st)
{
	struct pair p;
	struct result res = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "status");
	const uint32_t timeout = 300;
	uint64_t t0;
	int silent;

	pair_start(&p, true, false);
	silent = tcp_listen_on(ADDR1, cfg.hb_port, true);
	assert_true(silent >= 0);
	t0 = mono_ms();
	peerlink_request(p.pl0, req, timeout, on_resp, &res);
	wait_result(p.base, &res, timeout + 3000);
	assert_null(res.resp);
	if (!strstr(res.err, "beta") || !strstr(res.err, "timed out"))
		fail_msg("unexpected error: %s", res.err);
	assert_true(res.at - t0 + 10 >= timeout);
	assert_true(res.at - t0 <= timeout + 500);
	close(silent);
	result_clear(&res);
	json_decref(req);
	pair_stop(&p);
}

static void wrong_secret(void **st)
{
	struct pair p;
	struct config bad;
	struct peerlink *client;
	struct server dummy = { 0 };
	struct result res = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "stop");

	pair_start(&p, false, true);
	memcpy(&bad, &cfg, sizeof(bad));
	memcpy(bad.secret, "a-different-secret-for-the-client", 33);
	bad.secret_len = 33;
	dummy.base = p.base;
	client = peerlink_new(p.base, &bad, 0, handler, &dummy);
	assert_non_null(client);
	peerlink_request(client, req, 1000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_null(res.resp);
	assert_true(res.err[0] != '\0');
	if (!strstr(res.err, "beta"))
		fail_msg("error does not name the peer: %s", res.err);
	assert_int_equal(p.srv1.calls, 0);
	result_clear(&res);

	/* Another cluster name with the same secret is another key too. */
	memcpy(&bad, &cfg, sizeof(bad));
	strcpy(bad.cluster_name, "other-cluster");
	peerlink_free(client);
	client = peerlink_new(p.base, &bad, 0, handler, &dummy);
	assert_non_null(client);
	peerlink_request(client, req, 1000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_null(res.resp);
	assert_int_equal(p.srv1.calls, 0);
	result_clear(&res);

	run_for(p.base, 20);
	peerlink_free(client);
	json_decref(req);
	pair_stop(&p);
}

/* ---- raw connections to the server ---- */

static int raw_connect(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(cfg.hb_port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, ADDR1, &sin.sin_addr);
	/* Loopback: the kernel completes the handshake from the backlog. */
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(set_nonblock(fd), 0);
	return fd;
}

struct raw_read {
	int fd;
	unsigned char buf[64];
	size_t want, got;
	bool eof;
};

static bool raw_ready(void *arg)
{
	struct raw_read *rr = arg;

	while (rr->got < rr->want) {
		ssize_t r = recv(rr->fd, rr->buf + rr->got, rr->want - rr->got, 0);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			rr->eof = true;
			return true;
		}
		if (r < 0)
			return false;
		rr->got += (size_t)r;
	}
	return true;
}

static bool raw_closed(void *arg)
{
	struct raw_read *rr = arg;
	unsigned char b[256];
	ssize_t r = recv(rr->fd, b, sizeof(b), 0);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		rr->eof = true;
	return rr->eof;
}

/* Connects and waits for the server's nonce. */
static int raw_session(struct event_base *base, unsigned char nonce[PROTO_NONCE_LEN])
{
	struct raw_read rr = { .fd = raw_connect(), .want = PROTO_NONCE_LEN };

	if (!run_until(base, raw_ready, &rr, 2000) || rr.eof)
		fail_msg("no nonce from the server");
	memcpy(nonce, rr.buf, PROTO_NONCE_LEN);
	return rr.fd;
}

static void raw_send(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Sends, then expects the server to drop the connection (well before its
 * own 10 s idle timeout). */
static void expect_dropped(struct event_base *base, int fd, const char *what)
{
	struct raw_read rr = { .fd = fd };

	if (!run_until(base, raw_closed, &rr, 2000))
		fail_msg("%s: the server kept the connection", what);
	close(fd);
}

static void signed_frame(const unsigned char *key, const unsigned char *nonce, char dir,
                         const char *body, unsigned char *out, size_t *outlen)
{
	uint32_t len = htobe32((uint32_t)strlen(body));

	memcpy(out, &len, 4);
	proto_hmac(key, nonce, PROTO_NONCE_LEN, &dir, 1, body, strlen(body), out + 4);
	memcpy(out + 4 + PROTO_MAC_LEN, body, strlen(body));
	*outlen = 4 + PROTO_MAC_LEN + strlen(body);
}

static void garbage(void **st)
{
	struct pair p;
	struct result res = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "after-garbage");
	unsigned char nonce[PROTO_NONCE_LEN], key[PROTO_KEY_LEN], frame[512];
	size_t flen;
	int fd;

	pair_start(&p, true, true);
	proto_derive_key(cfg.secret, cfg.secret_len, "control", cfg.cluster_name, key);

	/* Text instead of a frame: a huge length. */
	fd = raw_session(p.base, nonce);
	raw_send(fd, "GET / HTTP/1.0\r\n\r\n" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 62);
	expect_dropped(p.base, fd, "HTTP request");

	/* Length zero. */
	fd = raw_session(p.base, nonce);
	memset(frame, 0, 4 + PROTO_MAC_LEN);
	raw_send(fd, frame, 4 + PROTO_MAC_LEN);
	expect_dropped(p.base, fd, "zero length");

	/* A well-formed frame with a bad signature. */
	fd = raw_session(p.base, nonce);
	signed_frame(key, nonce, 'Q', "{\"cmd\":\"stop\"}", frame, &flen);
	frame[10] ^= 1;
	raw_send(fd, frame, flen);
	expect_dropped(p.base, fd, "bad signature");

	/* Signed for another connection (replayed with another nonce). */
	fd = raw_session(p.base, nonce);
	nonce[0] ^= 0xff;
	signed_frame(key, nonce, 'Q', "{\"cmd\":\"stop\"}", frame, &flen);
	raw_send(fd, frame, flen);
	expect_dropped(p.base, fd, "other nonce");

	/* Reflected: signed as an answer. */
	fd = raw_session(p.base, nonce);
	signed_frame(key, nonce, 'A', "{\"cmd\":\"stop\"}", frame, &flen);
	raw_send(fd, frame, flen);
	expect_dropped(p.base, fd, "answer direction");

	/* Signed, but not a JSON object. */
	fd = raw_session(p.base, nonce);
	signed_frame(key, nonce, 'Q', "[1,2,3]", frame, &flen);
	raw_send(fd, frame, flen);
	expect_dropped(p.base, fd, "JSON array");
	fd = raw_session(p.base, nonce);
	signed_frame(key, nonce, 'Q', "{not json", frame, &flen);
	raw_send(fd, frame, flen);
	expect_dropped(p.base, fd, "broken JSON");

	/* Half a frame, then gone; and connect-and-go. */
	fd = raw_session(p.base, nonce);
	signed_frame(key, nonce, 'Q', "{\"cmd\":\"stop\"}", frame, &flen);
	raw_send(fd, frame, flen - 3);
	close(fd);
	fd = raw_connect();
	close(fd);
	run_for(p.base, 50);

	assert_int_equal(p.srv1.calls, 0);

	/* Still answers a proper request. */
	peerlink_request(p.pl0, req, 2000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_echo(&res, req);
	assert_int_equal(p.srv1.calls, 1);
	result_clear(&res);

	/* And the raw protocol, done right, is answered (the frames above
	 * were rejected for what was wrong with them, not for being raw). */
	fd = raw_session(p.base, nonce);
	signed_frame(key, nonce, 'Q', "{\"cmd\":\"raw\"}", frame, &flen);
	raw_send(fd, frame, flen);
	{
		struct raw_read rr = { .fd = fd, .want = 4 };

		assert_true(run_until(p.base, raw_ready, &rr, 2000));
		assert_false(rr.eof);
	}
	close(fd);
	assert_int_equal(p.srv1.calls, 2);

	json_decref(req);
	pair_stop(&p);
}

static bool handler_called(void *arg)
{
	return ((struct server *)arg)->calls > 0;
}

/* The client vanishes (reset) while the handler is still working on its
 * request: the late answer fails to send and everything is freed (the
 * ASan build checks the "freed"). */
static void client_gone_before_answer(void **st)
{
	struct pair p;
	unsigned char nonce[PROTO_NONCE_LEN], key[PROTO_KEY_LEN], frame[512];
	size_t flen;
	struct linger lg = { 1, 0 };
	struct result res = { 0 };
	json_t *req = json_pack("{s:s}", "cmd", "after-reset");
	int fd;

	pair_start(&p, true, true);
	p.srv1.mode = ANSWER_LATER;
	p.srv1.delay_ms = 100;
	proto_derive_key(cfg.secret, cfg.secret_len, "control", cfg.cluster_name, key);

	fd = raw_session(p.base, nonce);
	signed_frame(key, nonce, 'Q', "{\"cmd\":\"slow\"}", frame, &flen);
	raw_send(fd, frame, flen);
	if (!run_until(p.base, handler_called, &p.srv1, 2000))
		fail_msg("the handler never got the raw request");
	/* Reset, not a polite close. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	run_for(p.base, 250);
	assert_int_equal(p.srv1.answered, 1);

	/* The server goes on. */
	peerlink_request(p.pl0, req, 2000, on_resp, &res);
	wait_result(p.base, &res, 3000);
	assert_echo(&res, req);
	result_clear(&res);
	json_decref(req);
	pair_stop(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(echo),
		cmocka_unit_test(many_and_large),
		cmocka_unit_test(oversized_request),
		cmocka_unit_test(answer_later),
		cmocka_unit_test(peer_not_listening),
		cmocka_unit_test(peer_silent_times_out),
		cmocka_unit_test(wrong_secret),
		cmocka_unit_test(garbage),
		cmocka_unit_test(client_gone_before_answer),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
