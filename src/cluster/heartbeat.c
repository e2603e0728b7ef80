#include "cluster/heartbeat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* Warnings about bad packets: the first at once, then one summary per
 * period, so a flood cannot flood the log. */
#define WARN_PERIOD_MS 10000

struct hb_net {
	struct hb *h;
	int idx;
	int fd;
	struct event *ev;
	struct sockaddr_in peer;
	uint64_t last_rx_ms;
	bool heard;
	struct hb_replay replay;
};

struct hb {
	struct event_base *base;
	const struct config *cfg;
	int self, peer;
	unsigned char key[PROTO_KEY_LEN];
	struct hb_callbacks cb;
	struct hb_net nets[CFG_MAX_NETS];
	int nnets;
	struct event *tick;     /* send timer */
	struct event *loss;     /* peer-lost timer */
	struct event *suspect;  /* timer firing suspect_lead before the loss */
	uint32_t suspect_lead;
	bool reachable;
	struct hb_replay newest;        /* over all networks: the peer's latest state */
	uint8_t newest_state;           /* and what it said */
	uint64_t newest_term;
	struct hb_msg local;
	uint64_t rejected;
	uint64_t warn_last_ms;
	uint64_t warn_suppressed;
};

static void send_all(struct hb *h)
{
	uint8_t buf[HB_WIRE_LEN];

	for (int i = 0; i < h->nnets; i++) {
		struct hb_net *n = &h->nets[i];

		if (n->fd < 0)
			continue;
		h->local.net = (uint8_t)i;
		h->local.seq++;
		hb_encode(&h->local, h->key, buf);
		/* A full socket buffer or a down link loses one heartbeat: that is
		 * what timeout_ms is for, so no retry here. */
		if (sendto(n->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&n->peer,
		           sizeof(n->peer)) < 0 && errno != EAGAIN)
			log_debug("heartbeat send on network %d to %s failed: %s", i,
			          inet_ntoa(n->peer.sin_addr), strerror(errno));
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	send_all(arg);
}

static void reject(struct hb *h, const struct sockaddr_in *from, int net, const char *why)
{
	uint64_t now = mono_ms();
	char addr[INET_ADDRSTRLEN];

	h->rejected++;
	inet_ntop(AF_INET, &from->sin_addr, addr, sizeof(addr));
	if (h->warn_last_ms && now - h->warn_last_ms < WARN_PERIOD_MS) {
		h->warn_suppressed++;
		log_debug("heartbeat from %s:%u on network %d rejected: %s", addr, ntohs(from->sin_port), net, why);
		return;
	}
	if (h->warn_suppressed)
		log_warn("%llu more heartbeats were rejected in the last %d s",
		         (unsigned long long)h->warn_suppressed, WARN_PERIOD_MS / 1000);
	h->warn_suppressed = 0;
	h->warn_last_ms = now;
	log_warn("heartbeat from %s:%u on network %d rejected: %s", addr, ntohs(from->sin_port), net, why);
}

static void arm_loss(struct hb *h)
{
	struct timeval tv;

	ms_to_timeval(h->cfg->hb_timeout_ms, &tv);
	evtimer_add(h->loss, &tv);
	if (h->suspect_lead && h->suspect_lead < h->cfg->hb_timeout_ms && h->cb.suspect) {
		ms_to_timeval(h->cfg->hb_timeout_ms - h->suspect_lead, &tv);
		evtimer_add(h->suspect, &tv);
	}
}

static void on_suspect(evutil_socket_t fd, short what, void *arg)
{
	struct hb *h = arg;

	if (h->reachable)
		h->cb.suspect(h->cb.arg);
}

void hb_set_replay_floor(struct hb *h, uint64_t incarnation)
{
	if (!incarnation)
		return;
	for (int i = 0; i < h->nnets; i++)
		h->nets[i].replay = (struct hb_replay){ .seen = true, .incarnation = incarnation, .seq = 0 };
	h->newest = (struct hb_replay){ .seen = true, .incarnation = incarnation, .seq = 0 };
}

void hb_set_suspect_lead(struct hb *h, uint32_t lead_ms)
{
	h->suspect_lead = lead_ms;
}

static void on_loss(evutil_socket_t fd, short what, void *arg)
{
	struct hb *h = arg;

	if (!h->reachable)
		return;
	h->reachable = false;
	h->cb.lost(h->cb.arg);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct hb_net *n = arg;
	struct hb *h = n->h;

	for (int budget = 64; budget > 0; budget--) {
		uint8_t buf[512];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		struct hb_msg m;
		enum hb_error err;
		enum hb_replay_verdict v;
		ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);

		if (r < 0)
			return;
		if (from.sin_addr.s_addr != n->peer.sin_addr.s_addr) {
			reject(h, &from, n->idx, "not from the peer's address on this network");
			continue;
		}
		err = hb_decode(buf, (size_t)r, h->key, &m);
		if (err != HB_OK) {
			reject(h, &from, n->idx, hb_error_str(err));
			continue;
		}
		if (m.node != h->peer) {
			reject(h, &from, n->idx, "signed, but claims to come from another node");
			continue;
		}
		if (m.net != n->idx) {
			reject(h, &from, n->idx, "signed for another heartbeat network");
			continue;
		}
		v = hb_replay_check(&n->replay, m.incarnation, m.seq);
		if (v == HB_REPLAYED || v == HB_OLD_INCARNATION) {
			reject(h, &from, n->idx, hb_replay_verdict_str(v));
			continue;
		}
		if (v == HB_NEW_INCARNATION)
			log_info("%s restarted (new incarnation %llu, heard on network %d)",
			         h->cfg->nodes[h->peer].name, (unsigned long long)m.incarnation, n->idx);
		if (!n->heard || mono_ms() - n->last_rx_ms > h->cfg->hb_timeout_ms)
			log_info("heartbeat network %d (%s) up", n->idx, inet_ntoa(n->peer.sin_addr));
		n->heard = true;
		n->last_rx_ms = mono_ms();
		/* Sent before one that already came on a faster network: it shows
		 * this network works, but its state is older than the one we
		 * know. Passed on, it would make the peer seem to step back to
		 * that state for a moment (e.g. HELD after GO_PRIM), and both
		 * nodes could take the PRIM role. The sender numbers its
		 * heartbeats over all networks, so seq orders them. */
		v = hb_replay_check(&h->newest, m.incarnation, m.seq);
		if (v == HB_REPLAYED || v == HB_OLD_INCARNATION) {
			if (m.state != h->newest_state || m.term != h->newest_term)
				log_debug("heartbeat on network %d (state %u, term %llu) overtaken by a newer "
				          "one on another network; ignored", n->idx, m.state,
				          (unsigned long long)m.term);
			continue;
		}
		h->newest_state = m.state;
		h->newest_term = m.term;
		h->reachable = true;
		arm_loss(h);
		h->cb.peer(h->cb.arg, &m, n->idx);
	}
}

static int open_net(struct hb *h, int i)
{
	struct hb_net *n = &h->nets[i];
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(h->cfg->hb_port) };
	int one = 1;

	n->h = h;
	n->idx = i;
	n->peer = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(h->cfg->hb_port),
	                                .sin_addr = h->cfg->nodes[h->peer].addr[i] };
	local.sin_addr = h->cfg->nodes[h->self].addr[i];
	n->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->fd < 0) {
		log_error("heartbeat network %d: socket: %s", i, strerror(errno));
		return -1;
	}
	setsockopt(n->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The address may come up after us (interface still configuring). */
	setsockopt(n->fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(n->fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		log_error("heartbeat network %d: cannot bind %s:%u: %s", i, inet_ntoa(local.sin_addr),
		          h->cfg->hb_port, strerror(errno));
		close(n->fd);
		n->fd = -1;
		return -1;
	}
	n->ev = event_new(h->base, n->fd, EV_READ | EV_PERSIST, on_read, n);
	event_add(n->ev, NULL);
	return 0;
}

struct hb *hb_new(struct event_base *base, const struct config *cfg, int self,
                  uint64_t incarnation, const struct hb_callbacks *cb)
{
	struct hb *h = calloc(1, sizeof(*h));
	struct timeval tv;

	if (!h)
		return NULL;
	h->base = base;
	h->cfg = cfg;
	h->self = self;
	h->peer = 1 - self;
	h->cb = *cb;
	h->nnets = cfg->nnets;
	proto_derive_key(cfg->secret, cfg->secret_len, "heartbeat", cfg->cluster_name, h->key);
	h->local.node = (uint8_t)self;
	h->local.incarnation = incarnation;
	for (int i = 0; i < h->nnets; i++)
		h->nets[i].fd = -1;
	for (int i = 0; i < h->nnets; i++) {
		if (open_net(h, i) < 0) {
			hb_free(h);
			return NULL;
		}
	}
	h->tick = event_new(base, -1, EV_PERSIST, on_tick, h);
	ms_to_timeval(cfg->hb_interval_ms, &tv);
	h->loss = evtimer_new(base, on_loss, h);
	h->suspect = evtimer_new(base, on_suspect, h);
	event_add(h->tick, &tv);
	return h;
}

void hb_free(struct hb *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nnets; i++) {
		if (h->nets[i].ev)
			event_free(h->nets[i].ev);
		if (h->nets[i].fd >= 0)
			close(h->nets[i].fd);
	}
	if (h->tick)
		event_free(h->tick);
	if (h->loss)
		event_free(h->loss);
	if (h->suspect)
		event_free(h->suspect);
	memset(h->key, 0, sizeof(h->key));
	free(h);
}

void hb_set_local(struct hb *h, uint8_t state, uint64_t term, uint32_t flags)
{
	bool changed = h->local.state != state || h->local.term != term || h->local.flags != flags;

	h->local.state = state;
	h->local.term = term;
	h->local.flags = flags;
	if (changed)
		send_all(h);
}

bool hb_peer_reachable(const struct hb *h)
{
	return h->reachable;
}

bool hb_net_up(const struct hb *h, int net)
{
	const struct hb_net *n = &h->nets[net];

	return n->heard && mono_ms() - n->last_rx_ms <= h->cfg->hb_timeout_ms;
}

uint64_t hb_rejected(const struct hb *h)
{
	return h->rejected;
}
