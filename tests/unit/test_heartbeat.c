#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/heartbeat.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#define ADDR0 "127.0.0.1"
#define ADDR1 "127.0.0.2"
#define ADDR_STRANGER "127.0.0.3"

static const char secret[] = "unit-test-heartbeat-secret-0123456789";

static struct config cfg;

/* What one hb instance's callbacks saw. */
struct seen {
	int peer_count;
	struct hb_msg last;
	int last_net;
	uint64_t last_at;
	int lost_count;
	uint64_t lost_at;
	int suspect_count;
	uint64_t suspect_at;
};

static void on_peer(void *arg, const struct hb_msg *m, int net)
{
	struct seen *s = arg;

	s->peer_count++;
	s->last = *m;
	s->last_net = net;
	s->last_at = mono_ms();
}

static void on_lost(void *arg)
{
	struct seen *s = arg;

	s->lost_count++;
	s->lost_at = mono_ms();
}

static void on_suspect(void *arg)
{
	struct seen *s = arg;

	s->suspect_count++;
	s->suspect_at = mono_ms();
}

static int udp_socket_on(const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A UDP port free on both node addresses. */
static uint16_t free_udp_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		int a = udp_socket_on(ADDR0, 0), b;
		uint16_t port;

		assert_true(a >= 0);
		assert_int_equal(getsockname(a, (struct sockaddr *)&sin, &len), 0);
		port = ntohs(sin.sin_port);
		b = udp_socket_on(ADDR1, port);
		close(a);
		if (b >= 0) {
			close(b);
			return port;
		}
	}
	fail_msg("no free UDP port on %s and %s", ADDR0, ADDR1);
	return 0;
}

static void make_config(uint32_t interval_ms, uint32_t timeout_ms)
{
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.cluster_name, "ut-cluster");
	cfg.nnodes = 2;
	cfg.nnets = 1;
	strcpy(cfg.nodes[0].name, "alpha");
	strcpy(cfg.nodes[1].name, "beta");
	cfg.nodes[0].naddr = cfg.nodes[1].naddr = 1;
	inet_pton(AF_INET, ADDR0, &cfg.nodes[0].addr[0]);
	inet_pton(AF_INET, ADDR1, &cfg.nodes[1].addr[0]);
	cfg.hb_port = free_udp_port();
	cfg.hb_interval_ms = interval_ms;
	cfg.hb_timeout_ms = timeout_ms;
	memcpy(cfg.secret, secret, sizeof(secret) - 1);
	cfg.secret_len = sizeof(secret) - 1;
}


static struct hb *new_hb(struct event_base *base, int self, uint64_t inc, struct seen *s)
{
	struct hb_callbacks cb = { .peer = on_peer, .lost = on_lost, .suspect = on_suspect, .arg = s };
	struct hb *h = hb_new(base, &cfg, self, inc, &cb);

	assert_non_null(h);
	return h;
}

static int group_setup(void **st)
{
	/* Rejections are logged as warnings: expected here, keep them quiet. */
	log_init("ut-heartbeat", true, LOG_LVL_ERROR);
	return 0;
}

/* ---- two instances talking ---- */

struct both {
	struct seen *a, *b;
	uint8_t state_a, state_b;  /* what each must have heard from the other */
};

static bool both_heard(void *arg)
{
	struct both *w = arg;

	return w->a->peer_count > 0 && w->b->peer_count > 0 &&
	       w->a->last.state == w->state_b && w->b->last.state == w->state_a;
}

static void exchange(void **st)
{
	struct event_base *base = event_base_new();
	struct seen s0 = { 0 }, s1 = { 0 };
	struct hb *h0, *h1;
	struct both w = { &s0, &s1, 3, 4 };

	make_config(20, 150);
	h0 = new_hb(base, 0, 1000, &s0);
	h1 = new_hb(base, 1, 2000, &s1);
	assert_false(hb_peer_reachable(h0));
	assert_false(hb_net_up(h0, 0));
	hb_set_local(h0, 3, 7, 0x11);
	hb_set_local(h1, 4, 8, 0x22);
	assert_true(run_until(base, both_heard, &w, 2000));

	assert_int_equal(s0.last.node, 1);
	assert_int_equal(s0.last.state, 4);
	assert_true(s0.last.term == 8);
	assert_int_equal(s0.last.flags, 0x22);
	assert_true(s0.last.incarnation == 2000);
	assert_int_equal(s0.last.net, 0);
	assert_int_equal(s0.last_net, 0);

	assert_int_equal(s1.last.node, 0);
	assert_int_equal(s1.last.state, 3);
	assert_true(s1.last.term == 7);
	assert_int_equal(s1.last.flags, 0x11);
	assert_true(s1.last.incarnation == 1000);

	/* Periodic heartbeats keep coming; sequence numbers grow. */
	{
		int c0 = s0.peer_count;
		uint64_t seq0 = s0.last.seq;

		run_for(base, 120);
		assert_true(s0.peer_count >= c0 + 2);
		assert_true(s0.last.seq > seq0);
	}
	assert_true(hb_peer_reachable(h0));
	assert_true(hb_peer_reachable(h1));
	assert_true(hb_net_up(h0, 0));
	assert_true(hb_net_up(h1, 0));
	assert_int_equal(s0.lost_count, 0);
	assert_int_equal(s1.lost_count, 0);
	assert_true(hb_rejected(h0) == 0);
	assert_true(hb_rejected(h1) == 0);

	hb_free(h0);
	hb_free(h1);
	event_base_free(base);
}

static bool lost_fired(void *arg)
{
	return ((struct seen *)arg)->lost_count > 0;
}

static bool heard_again(void *arg)
{
	struct seen *s = arg;

	return s->peer_count > 0 && s->last.incarnation == 3000;
}

static void loss_after_timeout(void **st)
{
	const uint32_t timeout = 150, lead = 100;
	struct event_base *base = event_base_new();
	struct seen s0 = { 0 }, s1 = { 0 };
	struct hb *h0, *h1;
	struct both w = { &s0, &s1, 2, 2 };
	uint64_t t_free, last_rx;

	make_config(20, timeout);
	h0 = new_hb(base, 0, 1000, &s0);
	h1 = new_hb(base, 1, 2000, &s1);
	hb_set_suspect_lead(h0, lead);
	hb_set_local(h0, 2, 1, 0);
	hb_set_local(h1, 2, 1, 0);
	assert_true(run_until(base, both_heard, &w, 2000));
	run_for(base, 60);
	assert_int_equal(s0.lost_count, 0);
	assert_int_equal(s0.suspect_count, 0);
	assert_true(hb_peer_reachable(h0));

	hb_free(h1);
	t_free = mono_ms();
	last_rx = s0.last_at;
	assert_true(run_until(base, lost_fired, &s0, timeout + 1000));
	assert_int_equal(s0.lost_count, 1);
	assert_false(hb_peer_reachable(h0));
	assert_false(hb_net_up(h0, 0));
	/* Counted from the last heartbeat heard (a little slack for the
	 * loop's cached clock), and not much later than timeout after the
	 * peer went silent. */
	if (s0.lost_at + 10 < last_rx + timeout)
		fail_msg("lost %llu ms after the last heartbeat, timeout is %u",
		         (unsigned long long)(s0.lost_at - last_rx), timeout);
	if (s0.lost_at > t_free + timeout + 300)
		fail_msg("lost only %llu ms after the peer stopped, timeout is %u",
		         (unsigned long long)(s0.lost_at - t_free), timeout);
	/* suspect came first, lead ms before the loss. */
	assert_int_equal(s0.suspect_count, 1);
	assert_true(s0.suspect_at <= s0.lost_at);
	assert_true(s0.suspect_at + 10 >= last_rx + timeout - lead);

	/* Lost once, not again and again. */
	run_for(base, timeout + 50);
	assert_int_equal(s0.lost_count, 1);
	assert_int_equal(s0.suspect_count, 1);

	/* The peer comes back (restarted: new incarnation): heard again. */
	s0.peer_count = 0;
	h1 = new_hb(base, 1, 3000, &s1);
	assert_true(run_until(base, heard_again, &s0, 2000));
	assert_true(hb_peer_reachable(h0));
	assert_true(hb_net_up(h0, 0));
	assert_true(hb_rejected(h0) == 0);

	hb_free(h0);
	hb_free(h1);
	event_base_free(base);
}

struct wait_state {
	struct seen *s;
	uint8_t state;
};

static bool saw_state(void *arg)
{
	struct wait_state *w = arg;

	return w->s->peer_count > 0 && w->s->last.state == w->state;
}

/* True if one of the interval ticks (counted from t0) falls in [a, b]. */
static bool tick_within(uint64_t t0, uint32_t interval, uint64_t a, uint64_t b)
{
	for (uint64_t t = t0 + interval; t <= b + 20; t += interval)
		if (t + 20 >= a)
			return true;
	return false;
}

static void change_sends_at_once(void **st)
{
	const uint32_t interval = 1000;
	struct event_base *base = event_base_new();
	struct seen s0 = { 0 }, s1 = { 0 };
	struct hb *h0, *h1;
	struct wait_state w = { &s0, 2 };
	uint64_t t0, t_set, a, b;
	int count;

	make_config(interval, 5000);
	t0 = mono_ms();
	h0 = new_hb(base, 0, 1000, &s0);
	h1 = new_hb(base, 1, 2000, &s1);

	hb_set_local(h1, 2, 1, 0);
	t_set = mono_ms();
	assert_true(run_until(base, saw_state, &w, 2000));
	if (s0.last_at - t_set >= interval / 2)
		fail_msg("the first change took %llu ms to arrive (interval %u)",
		         (unsigned long long)(s0.last_at - t_set), interval);

	/* The same values again: no change, nothing sent. */
	count = s0.peer_count;
	a = mono_ms();
	hb_set_local(h1, 2, 1, 0);
	run_for(base, 100);
	b = mono_ms();
	if (!tick_within(t0, interval, a, b))
		assert_int_equal(s0.peer_count, count);

	/* Each of state, term and flags is a change. */
	struct { uint8_t state; uint64_t term; uint32_t flags; } steps[] = {
		{ 5, 1, 0 }, { 5, 2, 0 }, { 5, 2, 0x4 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		count = s0.peer_count;
		hb_set_local(h1, steps[i].state, steps[i].term, steps[i].flags);
		t_set = mono_ms();
		w.state = steps[i].state;
		while (!(s0.peer_count > count && s0.last.term == steps[i].term &&
		         s0.last.flags == steps[i].flags)) {
			if (mono_ms() - t_set > 2000)
				fail_msg("change %zu never arrived", i);
			run_for(base, 2);
		}
		assert_int_equal(s0.last.state, steps[i].state);
		if (s0.last_at - t_set >= interval / 2)
			fail_msg("change %zu took %llu ms to arrive (interval %u)", i,
			         (unsigned long long)(s0.last_at - t_set), interval);
	}
	assert_true(hb_rejected(h0) == 0);

	hb_free(h0);
	hb_free(h1);
	event_base_free(base);
}

/* ---- bad datagrams, sent by hand to node 0 ---- */

struct injector {
	int fd_peer;      /* bound to the peer's address */
	int fd_stranger;  /* bound to another loopback address */
	unsigned char key[PROTO_KEY_LEN];
	struct sockaddr_in to;
};

static void send_raw(int fd, const struct sockaddr_in *to, const void *buf, size_t len)
{
	assert_int_equal(sendto(fd, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)), (ssize_t)len);
}

static struct hb_msg msg(uint64_t inc, uint64_t seq)
{
	struct hb_msg m = { .node = 1, .net = 0, .state = 6, .flags = 0, .incarnation = inc,
	                    .seq = seq, .term = 3 };
	return m;
}

static void send_msg(struct injector *in, int fd, const struct hb_msg *m, const unsigned char *key)
{
	uint8_t buf[HB_WIRE_LEN];

	hb_encode(m, key, buf);
	send_raw(fd, &in->to, buf, sizeof(buf));
}

struct count_wait {
	struct seen *s;
	int count;
};

static bool count_reached(void *arg)
{
	struct count_wait *w = arg;

	return w->s->peer_count >= w->count;
}

/* Sends a valid heartbeat with sequence seq after the bad one: once it is
 * heard, the bad one (sent before, same socket) has been judged. */
static void sentinel(struct event_base *base, struct injector *in, struct seen *s, struct hb *h,
                     uint64_t inc, uint64_t seq, uint64_t rejected_before, const char *what)
{
	struct hb_msg m = msg(inc, seq);
	struct count_wait w = { s, s->peer_count + 1 };

	send_msg(in, in->fd_peer, &m, in->key);
	if (!run_until(base, count_reached, &w, 2000))
		fail_msg("%s: the valid heartbeat after it was not heard", what);
	if (s->peer_count != w.count)
		fail_msg("%s: the peer callback ran for it (%d calls, want %d)", what, s->peer_count, w.count);
	assert_true(s->last.seq == seq);
	if (hb_rejected(h) != rejected_before + 1)
		fail_msg("%s: rejected %llu, want %llu", what, (unsigned long long)hb_rejected(h),
		         (unsigned long long)rejected_before + 1);
}

static void rejects(void **st)
{
	struct event_base *base = event_base_new();
	struct seen s0 = { 0 };
	struct injector in = { 0 };
	struct hb *h0;
	unsigned char other_secret_key[PROTO_KEY_LEN], other_cluster_key[PROTO_KEY_LEN],
	              other_purpose_key[PROTO_KEY_LEN];
	static const char wrong_secret[] = "another-secret-of-enough-length!!";
	uint8_t captured[HB_WIRE_LEN];
	struct count_wait w = { &s0, 1 };
	struct hb_msg m;
	uint64_t seq = 10, rej;

	make_config(1000, 5000);
	h0 = new_hb(base, 0, 1000, &s0);
	in.fd_peer = udp_socket_on(ADDR1, 0);
	in.fd_stranger = udp_socket_on(ADDR_STRANGER, 0);
	assert_true(in.fd_peer >= 0 && in.fd_stranger >= 0);
	in.to = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(cfg.hb_port) };
	inet_pton(AF_INET, ADDR0, &in.to.sin_addr);
	proto_derive_key(cfg.secret, cfg.secret_len, "heartbeat", cfg.cluster_name, in.key);
	proto_derive_key((const unsigned char *)wrong_secret, sizeof(wrong_secret) - 1, "heartbeat",
	                 cfg.cluster_name, other_secret_key);
	proto_derive_key(cfg.secret, cfg.secret_len, "heartbeat", "other-cluster", other_cluster_key);
	proto_derive_key(cfg.secret, cfg.secret_len, "control", cfg.cluster_name, other_purpose_key);

	/* A genuine one first: accepted. Keep its bytes to replay them. */
	m = msg(500, seq);
	hb_encode(&m, in.key, captured);
	send_raw(in.fd_peer, &in.to, captured, sizeof(captured));
	assert_true(run_until(base, count_reached, &w, 2000));
	assert_int_equal(s0.peer_count, 1);
	assert_true(s0.last.seq == seq);
	assert_true(hb_peer_reachable(h0));
	assert_true(hb_rejected(h0) == 0);

	/* Replayed as is. */
	rej = hb_rejected(h0);
	send_raw(in.fd_peer, &in.to, captured, sizeof(captured));
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "replayed datagram");

	/* Signed again, but an old sequence number. */
	rej = hb_rejected(h0);
	m = msg(500, seq - 1);
	send_msg(&in, in.fd_peer, &m, in.key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "old sequence number");

	/* Wrong keys: another secret, another cluster, another purpose. */
	rej = hb_rejected(h0);
	m = msg(500, ++seq);
	send_msg(&in, in.fd_peer, &m, other_secret_key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "forged (other secret)");

	rej = hb_rejected(h0);
	m = msg(500, ++seq);
	send_msg(&in, in.fd_peer, &m, other_cluster_key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "other cluster's key");

	rej = hb_rejected(h0);
	m = msg(500, ++seq);
	send_msg(&in, in.fd_peer, &m, other_purpose_key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "control key");

	/* Valid signature, but from an address that is not the peer's. */
	rej = hb_rejected(h0);
	m = msg(500, ++seq);
	send_msg(&in, in.fd_stranger, &m, in.key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "from a stranger's address");

	/* Signed, but claims to be node 0 (ourselves). */
	rej = hb_rejected(h0);
	m = msg(500, ++seq);
	m.node = 0;
	send_msg(&in, in.fd_peer, &m, in.key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "claims our own node");

	/* Signed for another network. */
	rej = hb_rejected(h0);
	m = msg(500, ++seq);
	m.net = 1;
	send_msg(&in, in.fd_peer, &m, in.key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "another network");

	/* An older incarnation (a stale process) with a high sequence. */
	rej = hb_rejected(h0);
	m = msg(499, 1000000);
	send_msg(&in, in.fd_peer, &m, in.key);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "older incarnation");

	/* Garbage: short, and a valid datagram with a flipped bit. */
	rej = hb_rejected(h0);
	send_raw(in.fd_peer, &in.to, "VGL1", 4);
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "short datagram");

	rej = hb_rejected(h0);
	m = msg(500, ++seq);
	hb_encode(&m, in.key, captured);
	captured[20] ^= 0x40;
	send_raw(in.fd_peer, &in.to, captured, sizeof(captured));
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "flipped bit");

	rej = hb_rejected(h0);
	{
		uint8_t big[400];

		memset(big, 0x5a, sizeof(big));
		send_raw(in.fd_peer, &in.to, big, sizeof(big));
	}
	sentinel(base, &in, &s0, h0, 500, ++seq, rej, "oversized datagram");

	/* A restarted peer (newer incarnation) starts its sequence again. */
	rej = hb_rejected(h0);
	m = msg(501, 1);
	send_msg(&in, in.fd_peer, &m, in.key);
	w.count = s0.peer_count + 1;
	assert_true(run_until(base, count_reached, &w, 2000));
	assert_true(s0.last.incarnation == 501 && s0.last.seq == 1);
	assert_true(hb_rejected(h0) == rej);

	assert_int_equal(s0.lost_count, 0);
	close(in.fd_peer);
	close(in.fd_stranger);
	hb_free(h0);
	event_base_free(base);
}

/* ---- two heartbeat networks: order over all of them ---- */

/* Network 1 of each node; node 0 is the one under test. */
#define NET1_ADDR0 "127.0.1.1"
#define NET1_ADDR1 "127.0.1.2"

static void make_config_two_nets(uint32_t interval_ms, uint32_t timeout_ms)
{
	for (int tries = 0; tries < 50; tries++) {
		int fd;

		make_config(interval_ms, timeout_ms);
		fd = udp_socket_on(NET1_ADDR0, cfg.hb_port);
		if (fd < 0)
			continue;
		close(fd);
		cfg.nnets = 2;
		cfg.nodes[0].naddr = cfg.nodes[1].naddr = 2;
		inet_pton(AF_INET, NET1_ADDR0, &cfg.nodes[0].addr[1]);
		inet_pton(AF_INET, NET1_ADDR1, &cfg.nodes[1].addr[1]);
		return;
	}
	fail_msg("no UDP port free on %s, %s and %s", ADDR0, ADDR1, NET1_ADDR0);
}

/* Plays the peer (node 1) on both networks, sending to node 0. */
struct two_nets {
	int fd[2];                 /* bound to the peer's address on each network */
	struct sockaddr_in to[2];  /* node 0's address on each network */
	unsigned char key[PROTO_KEY_LEN];
};

static void two_nets_open(struct two_nets *t)
{
	const char *from[2] = { ADDR1, NET1_ADDR1 }, *to[2] = { ADDR0, NET1_ADDR0 };

	for (int i = 0; i < 2; i++) {
		t->fd[i] = udp_socket_on(from[i], 0);
		assert_true(t->fd[i] >= 0);
		t->to[i] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(cfg.hb_port) };
		inet_pton(AF_INET, to[i], &t->to[i].sin_addr);
	}
	proto_derive_key(cfg.secret, cfg.secret_len, "heartbeat", cfg.cluster_name, t->key);
}

static void two_nets_close(struct two_nets *t)
{
	close(t->fd[0]);
	close(t->fd[1]);
}

static void send_on(struct two_nets *t, int net, uint64_t inc, uint64_t seq, uint8_t state,
                    uint64_t term)
{
	struct hb_msg m = { .node = 1, .net = (uint8_t)net, .state = state, .incarnation = inc,
	                    .seq = seq, .term = term };
	uint8_t buf[HB_WIRE_LEN];

	hb_encode(&m, t->key, buf);
	send_raw(t->fd[net], &t->to[net], buf, sizeof(buf));
}

struct net_wait {
	struct hb *h;
	int net;
};

static bool net_is_up(void *arg)
{
	struct net_wait *w = arg;

	return hb_net_up(w->h, w->net);
}

struct rej_wait {
	struct hb *h;
	uint64_t count;
};

static bool rejected_reached(void *arg)
{
	struct rej_wait *w = arg;

	return hb_rejected(w->h) >= w->count;
}

/* Waits for the peer callback to have run `count` times in all. */
static void wait_count(struct event_base *base, struct seen *s, int count, const char *what)
{
	struct count_wait w = { s, count };

	if (!run_until(base, count_reached, &w, 2000))
		fail_msg("%s: not passed on (%d peer calls, want %d)", what, s->peer_count, count);
	if (s->peer_count != count)
		fail_msg("%s: %d peer calls, want %d", what, s->peer_count, count);
}

/* The sender numbers heartbeats over all networks. One sent before another
 * that already came on a faster network shows its network works, but its
 * state is older: passed on, the peer would seem to step back to it. */
static void overtaken_on_slower_network(void **st)
{
	enum { A = 5, B = 2, C = 7 };
	struct event_base *base = event_base_new();
	struct seen s0 = { 0 };
	struct two_nets t;
	struct hb *h0;
	struct net_wait nw;
	struct rej_wait rw;

	make_config_two_nets(1000, 5000);
	h0 = new_hb(base, 0, 1000, &s0);
	two_nets_open(&t);
	nw.h = rw.h = h0;

	/* seq 10 (state A) on network 0. */
	send_on(&t, 0, 500, 10, A, 4);
	wait_count(base, &s0, 1, "seq 10 on network 0");
	assert_int_equal(s0.last.state, A);
	assert_true(s0.last.seq == 10);
	assert_int_equal(s0.last_net, 0);
	assert_true(hb_net_up(h0, 0));
	assert_false(hb_net_up(h0, 1));

	/* seq 9 (state B), sent earlier, arrives later on network 1: network 1
	 * is up, but state B never reaches the callback. */
	send_on(&t, 1, 500, 9, B, 3);
	nw.net = 1;
	if (!run_until(base, net_is_up, &nw, 2000))
		fail_msg("seq 9 on network 1 did not mark network 1 up");
	run_for(base, 30);
	if (s0.peer_count != 1 || s0.last.state != A)
		fail_msg("overtaken seq 9 was passed on: %d peer calls, last state %u seq %llu "
		         "(want 1 call, state %d seq 10)", s0.peer_count, s0.last.state,
		         (unsigned long long)s0.last.seq, A);
	assert_true(hb_net_up(h0, 0));
	assert_true(hb_net_up(h0, 1));
	assert_true(hb_peer_reachable(h0));
	/* Not a bad packet: it counts as heard, not as rejected. */
	assert_true(hb_rejected(h0) == 0);

	/* seq 11 (state C) on network 1: newer, passed on. */
	send_on(&t, 1, 500, 11, C, 5);
	wait_count(base, &s0, 2, "seq 11 on network 1");
	assert_int_equal(s0.last.state, C);
	assert_true(s0.last.seq == 11);
	assert_true(s0.last.term == 5);
	assert_int_equal(s0.last_net, 1);
	assert_true(hb_rejected(h0) == 0);

	/* Replays on one network are still rejected (and not passed on):
	 * seq 11 and seq 9 again on network 1, seq 10 again on network 0. */
	send_on(&t, 1, 500, 11, C, 5);
	rw.count = 1;
	assert_true(run_until(base, rejected_reached, &rw, 2000));
	send_on(&t, 1, 500, 9, B, 3);
	rw.count = 2;
	assert_true(run_until(base, rejected_reached, &rw, 2000));
	send_on(&t, 0, 500, 10, A, 4);
	rw.count = 3;
	assert_true(run_until(base, rejected_reached, &rw, 2000));
	run_for(base, 30);
	assert_int_equal(s0.peer_count, 2);
	assert_int_equal(s0.last.state, C);
	assert_true(hb_rejected(h0) == 3);

	/* Network 0 catches up with a newer one: passed on. */
	send_on(&t, 0, 500, 12, A, 6);
	wait_count(base, &s0, 3, "seq 12 on network 0");
	assert_true(s0.last.seq == 12);
	assert_int_equal(s0.last_net, 0);

	/* The peer restarts: a new incarnation starts its seq low, on network 1
	 * (its window there is at 500/11) and passes. */
	send_on(&t, 1, 501, 1, B, 7);
	wait_count(base, &s0, 4, "new incarnation seq 1 on network 1");
	assert_true(s0.last.incarnation == 501);
	assert_true(s0.last.seq == 1);
	assert_int_equal(s0.last.state, B);
	assert_int_equal(s0.last_net, 1);

	/* A late heartbeat of the old process on network 0 (window there at
	 * 500/12, so 500/13 is new for that network) must not bring back the
	 * old state; the next one of the new process, sent after it on the
	 * same socket, shows it was judged. */
	send_on(&t, 0, 500, 13, A, 6);
	send_on(&t, 0, 501, 2, B, 7);
	wait_count(base, &s0, 5, "new incarnation seq 2 on network 0");
	assert_true(s0.last.incarnation == 501);
	assert_true(s0.last.seq == 2);
	assert_int_equal(s0.last_net, 0);
	run_for(base, 30);
	if (s0.peer_count != 5 || s0.last.incarnation != 501)
		fail_msg("old incarnation's late heartbeat was passed on: %d peer calls, last incarnation %llu",
		         s0.peer_count, (unsigned long long)s0.last.incarnation);
	assert_true(hb_rejected(h0) == 3);
	assert_int_equal(s0.lost_count, 0);

	two_nets_close(&t);
	hb_free(h0);
	event_base_free(base);
}

/* After our restart the floor holds on every network and over all of them:
 * the floor incarnation itself starts again at any seq, older ones are
 * rejected, a newer one (the peer restarted too) passes. */
static void replay_floor_two_nets(void **st)
{
	struct event_base *base = event_base_new();
	struct seen s0 = { 0 };
	struct two_nets t;
	struct hb *h0;
	struct rej_wait rw;

	make_config_two_nets(1000, 5000);
	h0 = new_hb(base, 0, 1000, &s0);
	two_nets_open(&t);
	rw.h = h0;
	hb_set_replay_floor(h0, 500);

	/* Older than the floor: rejected on either network. */
	send_on(&t, 0, 499, 1000, 2, 1);
	rw.count = 1;
	assert_true(run_until(base, rejected_reached, &rw, 2000));
	send_on(&t, 1, 499, 1001, 2, 1);
	rw.count = 2;
	assert_true(run_until(base, rejected_reached, &rw, 2000));
	run_for(base, 30);
	assert_int_equal(s0.peer_count, 0);
	assert_false(hb_net_up(h0, 0));
	assert_false(hb_net_up(h0, 1));
	assert_false(hb_peer_reachable(h0));

	/* The floor incarnation, seq from 1. */
	send_on(&t, 1, 500, 1, 3, 2);
	wait_count(base, &s0, 1, "floor incarnation seq 1 on network 1");
	assert_true(s0.last.incarnation == 500 && s0.last.seq == 1);
	send_on(&t, 0, 500, 2, 4, 2);
	wait_count(base, &s0, 2, "floor incarnation seq 2 on network 0");
	assert_true(s0.last.seq == 2);
	assert_int_equal(s0.last.state, 4);

	/* The peer restarts: new incarnation, seq 1, on network 0. */
	send_on(&t, 0, 501, 1, 5, 3);
	wait_count(base, &s0, 3, "new incarnation seq 1 on network 0");
	assert_true(s0.last.incarnation == 501 && s0.last.seq == 1);

	/* The old process's late seq 3 on network 1 (new for that network,
	 * which last saw 500/1): network 1 stays up, its state is not
	 * passed on. */
	send_on(&t, 1, 500, 3, 4, 2);
	send_on(&t, 1, 501, 2, 5, 3);
	wait_count(base, &s0, 4, "new incarnation seq 2 on network 1");
	assert_true(s0.last.incarnation == 501 && s0.last.seq == 2);
	run_for(base, 30);
	assert_int_equal(s0.peer_count, 4);
	assert_int_equal(s0.last.state, 5);
	assert_true(hb_net_up(h0, 0));
	assert_true(hb_net_up(h0, 1));
	assert_true(hb_rejected(h0) == 2);

	two_nets_close(&t);
	hb_free(h0);
	event_base_free(base);
}

/* The port is taken by a socket without SO_REUSEADDR: hb_new fails cleanly. */
static void bind_failure(void **st)
{
	struct event_base *base = event_base_new();
	struct seen s = { 0 };
	struct hb_callbacks cb = { .peer = on_peer, .lost = on_lost, .arg = &s };
	int blocker;

	make_config(20, 150);
	blocker = udp_socket_on(ADDR0, cfg.hb_port);
	assert_true(blocker >= 0);
	assert_null(hb_new(base, &cfg, 0, 1, &cb));
	close(blocker);
	hb_free(NULL);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exchange),
		cmocka_unit_test(loss_after_timeout),
		cmocka_unit_test(change_sends_at_once),
		cmocka_unit_test(rejects),
		cmocka_unit_test(overtaken_on_slower_network),
		cmocka_unit_test(replay_floor_two_nets),
		cmocka_unit_test(bind_failure),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
