#include "cluster/witness_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/witness_proto.h"
#include "common/log.h"
#include "common/util.h"

_Static_assert(WP_NAME_MAX == CFG_NAME_MAX, "witness names are config names");

#define HISTORY 16              /* requests an answer is matched against */
#define MIN_PERIOD_MS 20
#define REASON_MAX 384

struct sent {
	bool used;
	uint64_t seq;
	uint64_t at_ms;
	enum wp_op op;
	uint64_t term;
};

struct wclient {
	struct event_base *base;
	const struct config *cfg;
	char node[WP_NAME_MAX];
	char addr[INET_ADDRSTRLEN + 8];         /* "10.0.0.3:4800" for messages */
	uint64_t incarnation;
	uint64_t seq;
	uint32_t lease_ms, period_ms;
	unsigned char key[PROTO_KEY_LEN];
	int fd;
	bool connected;
	struct event *rd, *tick, *expire, *notify;
	void (*changed)(void *arg);
	void *arg;

	enum wc_want want;
	uint64_t term;
	struct sent sent[HISTORY];
	unsigned next;                          /* ring index of the next request */
	uint64_t release_seq;                   /* grants asked up to it are void */
	uint64_t void_before_ms;                /* so are grants of requests sent before */
	uint64_t asking_since_ms;               /* when want last left NONE */
	uint64_t last_acquire_ms;

	bool have_grant;
	uint64_t grant_sent_ms;
	uint64_t grant_term;
	bool refused;
	char error[WP_ERROR_MAX];
	uint64_t witness_term;
	bool answered;                          /* since asking_since_ms */
	uint64_t last_answer_ms;
	uint64_t last_answered_seq;

	bool told_granted, told_refused;        /* as last reported through changed */
	char *reason;                           /* wclient_reason()'s buffer */
};

const char *wc_want_str(enum wc_want w)
{
	static const char *const names[] = { "none", "hold", "take" };
	return (unsigned)w < ARRAY_SIZE(names) ? names[w] : "?";
}

bool wclient_granted(const struct wclient *w)
{
	return w->have_grant && mono_ms() < w->grant_sent_ms + w->lease_ms;
}

bool wclient_fresh(const struct wclient *w)
{
	return w->have_grant && mono_ms() < w->grant_sent_ms + w->lease_ms / 3;
}

bool wclient_refused(const struct wclient *w)
{
	return w->refused;
}

uint64_t wclient_witness_term(const struct wclient *w)
{
	return w->witness_term;
}

/* Tells the owner if what it can see changed. Must be the last thing a
 * loop callback does with w: changed may free it. */
static void notify_owner(struct wclient *w)
{
	bool g = wclient_granted(w);

	if (g == w->told_granted && w->refused == w->told_refused)
		return;
	w->told_granted = g;
	w->told_refused = w->refused;
	if (w->changed)
		w->changed(w->arg);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	notify_owner(arg);
}

static void send_request(struct wclient *w, enum wp_op op)
{
	/* primary only while the lease is ours: a witness that restarted
	 * grants primary requests at once, and a node whose lease ran out
	 * may already have been replaced by its peer. */
	struct wp_request r = {
		.op = op, .term = w->term, .primary = w->want == WC_HOLD && wclient_granted(w),
		.lease_ms = w->lease_ms, .incarnation = w->incarnation, .seq = ++w->seq,
	};
	struct sent *s = &w->sent[w->next];
	uint8_t buf[WP_DATAGRAM_MAX];
	size_t len;

	strlcpy_ok(r.cluster, w->cfg->cluster_name, sizeof(r.cluster));
	strlcpy_ok(r.node, w->node, sizeof(r.node));
	if (wp_encode_request(&r, w->key, buf, &len) < 0) {
		log_error("witness %s: cannot encode a request (term %llu)", w->addr,
		          (unsigned long long)w->term);
		return;
	}
	w->next = (w->next + 1) % HISTORY;
	*s = (struct sent){ .used = true, .seq = r.seq, .at_ms = mono_ms(), .op = op, .term = r.term };
	if (op == WP_ACQUIRE)
		w->last_acquire_ms = s->at_ms;
	/* The network may come up after vigild: keep trying to connect. */
	if (!w->connected) {
		if (connect(w->fd, (const struct sockaddr *)&w->cfg->witness_addr,
		            sizeof(w->cfg->witness_addr)) < 0) {
			log_debug("witness %s: connect: %s", w->addr, strerror(errno));
			return;
		}
		w->connected = true;
	}
	/* A lost request is a missing answer: the next period asks again. */
	if (send(w->fd, buf, len, MSG_DONTWAIT) < 0)
		log_debug("witness %s: send %s seq %llu: %s", w->addr, wp_op_str(op),
		          (unsigned long long)r.seq, strerror(errno));
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct wclient *w = arg;

	if (w->want != WC_NONE)
		send_request(w, WP_ACQUIRE);
}

static void arm_expire(struct wclient *w)
{
	uint64_t now = mono_ms(), end = w->grant_sent_ms + w->lease_ms;
	struct timeval tv;

	/* +1: mono_ms() rounds down, so fire when granted() is surely false. */
	ms_to_timeval(end > now ? end - now + 1 : 1, &tv);
	evtimer_add(w->expire, &tv);
}

/* If the lease ran out by the clock: forget it, and void the grants of
 * requests sent before its end. Such a grant, arriving late, would revive
 * a lease this node already gave up on, while its peer may have been
 * granted since (by a witness that restarted in between and lost track). */
static bool check_expired(struct wclient *w)
{
	uint64_t end = w->grant_sent_ms + w->lease_ms;

	if (!w->have_grant || mono_ms() < end)
		return false;
	w->have_grant = false;
	if (end > w->void_before_ms)
		w->void_before_ms = end;
	return true;
}

static void on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct wclient *w = arg;

	if (!w->have_grant)
		return;
	if (!check_expired(w)) {
		arm_expire(w);
		return;
	}
	log_info("witness %s: the lease (term %llu) ran out: no grant for %u ms", w->addr,
	         (unsigned long long)w->grant_term, w->lease_ms);
	notify_owner(w);
}

static const struct sent *find_sent(const struct wclient *w, uint64_t seq)
{
	for (int i = 0; i < HISTORY; i++)
		if (w->sent[i].used && w->sent[i].seq == seq)
			return &w->sent[i];
	return NULL;
}

static void take_answer(struct wclient *w, const struct wp_answer *a)
{
	const struct sent *s;
	bool was_granted = wclient_granted(w), was_refused = w->refused;

	if (strcmp(a->cluster, w->cfg->cluster_name) || strcmp(a->node, w->node) ||
	    a->incarnation != w->incarnation || !(s = find_sent(w, a->seq))) {
		log_debug("witness %s: answer for %s/%s incarnation %llu seq %llu is not for one of "
		          "our last %d requests; ignored", w->addr, a->cluster, a->node,
		          (unsigned long long)a->incarnation, (unsigned long long)a->seq, HISTORY);
		return;
	}
	/* UDP may reorder: an answer older than one already taken says less. */
	if (a->seq <= w->last_answered_seq) {
		log_debug("witness %s: late answer to seq %llu ignored", w->addr, (unsigned long long)a->seq);
		return;
	}
	w->last_answered_seq = a->seq;
	w->last_answer_ms = mono_ms();
	w->answered = true;
	w->witness_term = a->term;
	if (s->op == WP_RELEASE) {
		w->refused = false;
		return;
	}
	if (w->want == WC_NONE || a->seq <= w->release_seq) {
		log_debug("witness %s: answer to seq %llu came after we let the lease go; ignored",
		          w->addr, (unsigned long long)a->seq);
		return;
	}
	if (a->granted) {
		check_expired(w);
		if (s->at_ms < w->void_before_ms) {
			log_debug("witness %s: grant to seq %llu was asked before our lease ran out; ignored",
			          w->addr, (unsigned long long)a->seq);
			return;
		}
		w->refused = false;
		if (!w->have_grant || s->at_ms > w->grant_sent_ms) {
			w->have_grant = true;
			w->grant_sent_ms = s->at_ms;
			w->grant_term = s->term;
			arm_expire(w);
		}
		if (!was_granted && wclient_granted(w))
			log_info("witness %s granted the lease to %s (term %llu)", w->addr, w->node,
			         (unsigned long long)s->term);
		return;
	}
	w->refused = true;
	strlcpy_ok(w->error, a->error[0] ? a->error : "refused without a reason", sizeof(w->error));
	if (!was_refused)
		log_info("witness %s refused %s (term %llu): %s", w->addr, w->node,
		         (unsigned long long)s->term, w->error);
	else
		log_debug("witness %s refused %s (term %llu): %s", w->addr, w->node,
		          (unsigned long long)s->term, w->error);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct wclient *w = arg;

	for (int budget = 64; budget > 0; budget--) {
		uint8_t buf[WP_DATAGRAM_MAX + 1];
		struct wp_answer a;
		char why[160];
		enum wp_error e;
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		/* ECONNREFUSED (no witness listening) and the like are only
		 * missing answers; EAGAIN ends the batch. */
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			log_debug("witness %s: %s", w->addr, strerror(errno));
			continue;
		}
		if (r < 0)
			break;
		e = wp_decode_answer(buf, (size_t)r, w->key, &a, why, sizeof(why));
		if (e != WP_OK) {
			log_debug("witness %s: answer rejected: %s", w->addr, why);
			continue;
		}
		take_answer(w, &a);
	}
	notify_owner(w);
}

void wclient_want(struct wclient *w, enum wc_want want, uint64_t term)
{
	struct timeval tv;

	if (want == w->want && (want == WC_NONE || term == w->term))
		return;
	log_debug("witness %s: want %s (term %llu), was %s (term %llu)", w->addr, wc_want_str(want),
	          (unsigned long long)term, wc_want_str(w->want), (unsigned long long)w->term);
	if (want == WC_NONE) {
		/* A request whose answer was lost may have been granted. */
		bool may_hold = wclient_granted(w) ||
		                (w->last_acquire_ms && mono_ms() < w->last_acquire_ms + w->lease_ms);

		w->want = WC_NONE;
		event_del(w->tick);
		if (may_hold)
			send_request(w, WP_RELEASE);
		w->release_seq = w->seq;
		w->have_grant = false;
		w->refused = false;
		w->answered = false;
		event_active(w->notify, 0, 0);
		return;
	}
	if (w->want == WC_NONE) {
		w->asking_since_ms = mono_ms();
		w->answered = false;
	}
	w->want = want;
	w->term = term;
	send_request(w, WP_ACQUIRE);
	ms_to_timeval(w->period_ms, &tv);
	event_add(w->tick, &tv);
}

const char *wclient_reason(const struct wclient *w)
{
	uint64_t now = mono_ms(), since;

	if (w->want == WC_NONE) {
		snprintf(w->reason, REASON_MAX, "not asked");
	} else if (wclient_granted(w)) {
		snprintf(w->reason, REASON_MAX, "granted (term %llu, %llu ms left)",
		         (unsigned long long)w->grant_term,
		         (unsigned long long)(w->grant_sent_ms + w->lease_ms - now));
	} else if ((since = w->answered ? w->last_answer_ms : w->asking_since_ms),
	           now - since >= (w->answered ? w->lease_ms / 3 : 2 * w->period_ms)) {
		snprintf(w->reason, REASON_MAX, "no answer from %s for %llu ms", w->addr,
		         (unsigned long long)(now - since));
	} else if (w->refused) {
		snprintf(w->reason, REASON_MAX, "refused: %s", w->error);
	} else {
		snprintf(w->reason, REASON_MAX, "asking %s", w->addr);
	}
	return w->reason;
}

struct wclient *wclient_new(struct event_base *base, const struct config *cfg, int self,
                            uint64_t incarnation, void (*changed)(void *arg), void *arg)
{
	struct wclient *w;
	char ip[INET_ADDRSTRLEN];

	if (!cfg->witness_enabled || !cfg->witness_addr.sin_port) {
		log_error("witness: no [witness] address configured in %s", cfg->path);
		return NULL;
	}
	if (cfg->witness_lease_ms < WP_LEASE_MIN_MS || cfg->witness_lease_ms > WP_LEASE_MAX_MS) {
		log_error("witness: lease_ms %u is outside %d to %d", cfg->witness_lease_ms,
		          WP_LEASE_MIN_MS, WP_LEASE_MAX_MS);
		return NULL;
	}
	if (self < 0 || self >= cfg->nnodes) {
		log_error("witness: node index %d out of range", self);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w || !(w->reason = malloc(REASON_MAX))) {
		log_error("witness: out of memory");
		free(w);
		return NULL;
	}
	w->base = base;
	w->cfg = cfg;
	w->fd = -1;
	strlcpy_ok(w->node, cfg->nodes[self].name, sizeof(w->node));
	inet_ntop(AF_INET, &cfg->witness_addr.sin_addr, ip, sizeof(ip));
	snprintf(w->addr, sizeof(w->addr), "%s:%u", ip, ntohs(cfg->witness_addr.sin_port));
	w->incarnation = incarnation;
	/* A client made again in the same process (same incarnation) must not
	 * repeat sequence numbers: start from the monotonic clock in µs, which
	 * grows faster than one request per 20 ms. */
	w->seq = mono_us();
	w->lease_ms = cfg->witness_lease_ms;
	w->period_ms = w->lease_ms / 6 > MIN_PERIOD_MS ? w->lease_ms / 6 : MIN_PERIOD_MS;
	w->changed = changed;
	w->arg = arg;
	wp_derive_key(cfg->secret, cfg->secret_len, cfg->cluster_name, w->key);
	snprintf(w->reason, REASON_MAX, "not asked");
	w->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->fd < 0) {
		log_error("witness %s: socket: %s", w->addr, strerror(errno));
		goto fail;
	}
	if (connect(w->fd, (const struct sockaddr *)&cfg->witness_addr, sizeof(cfg->witness_addr)) == 0)
		w->connected = true;
	else
		log_warn("witness %s: cannot connect yet (%s); will retry at each request", w->addr,
		         strerror(errno));
	w->rd = event_new(base, w->fd, EV_READ | EV_PERSIST, on_read, w);
	w->tick = event_new(base, -1, EV_PERSIST, on_tick, w);
	w->expire = evtimer_new(base, on_expire, w);
	w->notify = event_new(base, -1, 0, on_notify, w);
	if (!w->rd || !w->tick || !w->expire || !w->notify || event_add(w->rd, NULL) < 0) {
		log_error("witness %s: cannot set up events", w->addr);
		goto fail;
	}
	return w;
fail:
	wclient_free(w);
	return NULL;
}

void wclient_free(struct wclient *w)
{
	if (!w)
		return;
	/* No release here: a vigild leaving its service running (second
	 * SIGTERM) must not hand the lease over. wclient_want(WC_NONE) is
	 * the way to give it up. */
	if (w->rd)
		event_free(w->rd);
	if (w->tick)
		event_free(w->tick);
	if (w->expire)
		event_free(w->expire);
	if (w->notify)
		event_free(w->notify);
	if (w->fd >= 0)
		close(w->fd);
	memset(w->key, 0, sizeof(w->key));
	free(w->reason);
	free(w);
}
