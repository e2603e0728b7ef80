/* The PRIM's replication stream: seqs, the send queue, the sender and
 * receiver threads, and the waits of sync mode (contract in stream.h).
 *
 * Order: a change gets its seqs and its place in the queue under one lock,
 * after its local apply and before its reply; the kernel keeps conflicting
 * changes apart until the reply (rfs_op.h), so queue order is a valid replay
 * order. Encoding happens before the lock, so the lock only covers a few
 * pointer moves. */
#include "rfs/stream.h"
#include "rfs/record.h"
#include "rfs/resync.h"
#include "rfs/stream_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

#define PING_IDLE_MS 1000
#define RECV_POLL_MS 100

struct qop {
	struct qop *next;
	uint64_t seq;
	uint32_t len;
	uint8_t bytes[];
};

static struct {
	bool started;
	struct rfs_stream_cfg cfg;
	struct rfs_conn conn;
	pthread_t sender, receiver;
	pthread_mutex_t lock;
	pthread_cond_t work;            /* queue grew, or state changed */
	pthread_cond_t room;            /* queue shrank, or state changed */
	pthread_cond_t acked;           /* an ack arrived, or state changed */
	struct qop *head, *tail;
	struct rfs_stream_status st;
	uint64_t sent_seq;              /* last seq handed to the socket */
	uint64_t progress_ms;           /* last ack progress, or when nothing was due */
	bool stopping;
	bool threads;                   /* sender and receiver of a connection run */
	bool gate_on;
	pthread_rwlock_t gate;          /* rfs_gate_enter */
	struct rfs_resync *resync;      /* while one runs: UNBINDs it takes over */
	void (*on_lost)(void);          /* called under the lock when the link is lost */
	bool unsafe_loss;               /* ... and it could not make the loss safe */
} S = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.room = PTHREAD_COND_INITIALIZER,
	.acked = PTHREAD_COND_INITIALIZER,
};

const char *rfs_mode_str(enum rfs_mode m)
{
	switch (m) {
	case RFS_MODE_SYNC: return "sync";
	case RFS_MODE_ASYNC: return "async";
	case RFS_MODE_END: break;
	}
	return "unknown";
}

const char *rfs_link_state_str(enum rfs_link_state s)
{
	switch (s) {
	case RFS_LINK_OFF: return "off";
	case RFS_LINK_CONNECTED: return "connected";
	case RFS_LINK_LOST: return "lost";
	case RFS_LINK_END: break;
	}
	return "unknown";
}

static void free_queue(void)
{
	while (S.head) {
		struct qop *q = S.head;

		S.head = q->next;
		free(q);
	}
	S.tail = NULL;
	S.st.queued_bytes = 0;
}

/* Lock held. Once lost, stays lost: SECOND misses changes from here on. */
static void lose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void lose(const char *fmt, ...)
{
	va_list ap;

	if (S.st.state != RFS_LINK_CONNECTED)
		return;
	va_start(ap, fmt);
	vsnprintf(S.st.error, sizeof(S.st.error), fmt, ap);
	va_end(ap);
	S.st.state = RFS_LINK_LOST;
	log_error("replication to %s lost: %s; SECOND is not up to date (changes are applied "
	          "here only from now on)", S.conn.peer, S.st.error);
	/* Before any waiter returns: what SECOND may lack is recorded, and
	 * the generation moves on. */
	rfs_record_lost(S.st.seq);
	if (S.on_lost)
		S.on_lost();
	free_queue();
	shutdown(S.conn.fd, SHUT_RDWR);
	pthread_cond_broadcast(&S.work);
	pthread_cond_broadcast(&S.room);
	pthread_cond_broadcast(&S.acked);
}

static struct qop *encode(const struct wire_op *w)
{
	struct wire_op tmp = *w;
	size_t size = wire_op_size(w), len;
	const char *why = NULL;
	struct qop *q;
	enum wire_err e;

	tmp.seq = 1;    /* the real one is patched in under the lock */
	if (!size || wire_op_check(&tmp, &why) != WIRE_OK) {
		log_error("journal: cannot encode %s fid %" PRIu64 ": %s", wire_code_str(w->code),
		          w->fid, why ? why : "unknown op");
		return NULL;
	}
	q = malloc(sizeof(*q) + size);
	if (!q) {
		log_error("journal: out of memory for a %zu-byte op", size);
		return NULL;
	}
	e = wire_op_encode(&tmp, q->bytes, size, &len);
	if (e != WIRE_OK) {
		log_error("journal: encoding %s: %s", wire_code_str(w->code), wire_err_str(e));
		free(q);
		return NULL;
	}
	q->len = (uint32_t)len;
	q->next = NULL;
	return q;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Two writers of one file each read its mtime after their write, but may
 * take the lock in the other order: the TIMES queued last would then carry
 * the older time, and SECOND keep it. Read again under the lock, where the
 * queue order is decided, so the last TIMES queued has the latest time. */
static void refresh_mtimes_locked(struct wire_op *w, struct qop **q, int n, int mtime_fd,
                                  uint64_t mtime_fid)
{
	if (mtime_fd < 0)
		return;
	for (int i = 0; i < n; i++) {
		int64_t now;
		struct qop *r;

		if (w[i].code != WIRE_OP_TIMES || w[i].fid != mtime_fid)
			continue;
		now = rfs_mtime_of(mtime_fd);
		if (!now || now == w[i].mtime_ns)
			continue;
		w[i].mtime_ns = now;
		r = encode(&w[i]);
		if (!r)
			continue; /* same size as before: cannot fail but for memory */
		free(q[i]);
		q[i] = r;
	}
}

/* Queues the ops with consecutive seqs; *last = the last seq, 0 when the
 * stream is not connected (nothing queued). Lock held. */
static int enqueue_locked(struct wire_op *w, struct qop **q, int n, uint64_t *last,
                          int mtime_fd, uint64_t mtime_fid)
{
	size_t total = 0;

	for (int i = 0; i < n; i++)
		total += q[i]->len;
	*last = 0;
	while (S.st.state == RFS_LINK_CONNECTED && S.st.queued_bytes &&
	       S.st.queued_bytes + total > S.cfg.queue_max)
		pthread_cond_wait(&S.room, &S.lock);
	if (S.st.state != RFS_LINK_CONNECTED) {
		S.st.unshipped++;
		for (int i = 0; i < n; i++)
			free(q[i]);
		return 0;
	}
	/* After the wait for room: the lock is not let go from here on. */
	refresh_mtimes_locked(w, q, n, mtime_fd, mtime_fid);
	for (int i = 0; i < n; i++) {
		q[i]->seq = ++S.st.seq;
		put_be64(q[i]->bytes, q[i]->seq);
		if (S.tail)
			S.tail->next = q[i];
		else
			S.head = q[i];
		S.tail = q[i];
	}
	S.st.queued_bytes += total;
	*last = S.st.seq;
	pthread_cond_signal(&S.work);
	return 0;
}

/* Sync mode: until SECOND received ops up to last, and made the first
 * durable if asked (the op asking for durability is the first: a WRITE's
 * TIMES follows it; SECOND reports durability per such op). Lock held. */
static int wait_locked(uint64_t first, uint64_t last, bool durable)
{
	if (S.cfg.mode != RFS_MODE_SYNC)
		return 0;
	while (S.st.state == RFS_LINK_CONNECTED &&
	       (S.st.recv < last || (durable && S.st.durable < first && S.st.ckpt < first)))
		pthread_cond_wait(&S.acked, &S.lock);
	/* Lost without the peer's copy marked outdated (a hold ended by a
	 * stop): the change is here only, and must not be acknowledged. */
	if (S.st.state != RFS_LINK_CONNECTED && S.unsafe_loss &&
	    (S.st.recv < last || (durable && S.st.durable < first && S.st.ckpt < first)))
		return EIO;
	return 0;
}

void rfs_stream_unsafe_loss_locked(void)
{
	S.unsafe_loss = true;
}

static int ship_t(struct wire_op *w, int n, bool durable, bool wait,
                  struct rfs_journal_ticket *ticket, int mtime_fd, uint64_t mtime_fid);

static int ship(const struct wire_op *w, int n, bool durable, bool wait)
{
	struct wire_op c[RFS_STREAM_MAX_WOPS];

	if (n > RFS_STREAM_MAX_WOPS)
		abort();
	memcpy(c, w, sizeof(*w) * (size_t)n);
	return ship_t(c, n, durable, wait, NULL, -1, 0);
}

static int ship_t(struct wire_op *w, int n, bool durable, bool wait,
                  struct rfs_journal_ticket *ticket, int mtime_fd, uint64_t mtime_fid)
{
	struct qop *q[RFS_STREAM_MAX_WOPS];
	uint64_t last;
	int err = 0;

	if (n == 0) {
		pthread_mutex_lock(&S.lock);
		last = S.st.state == RFS_LINK_CONNECTED ? S.st.seq : 0;
		while (wait && last && S.cfg.mode == RFS_MODE_SYNC &&
		       S.st.state == RFS_LINK_CONNECTED && S.st.recv < last)
			pthread_cond_wait(&S.acked, &S.lock);
		pthread_mutex_unlock(&S.lock);
		return 0;
	}

	for (int i = 0; i < n; i++) {
		q[i] = encode(&w[i]);
		if (!q[i]) {
			while (i--)
				free(q[i]);
			pthread_mutex_lock(&S.lock);
			lose("a change could not be encoded (see above)");
			pthread_mutex_unlock(&S.lock);
			return 0;
		}
	}
	pthread_mutex_lock(&S.lock);
	enqueue_locked(w, q, n, &last, mtime_fd, mtime_fid);
	if (last && wait)
		err = wait_locked(last - (uint64_t)(n - 1), last, durable);
	if (ticket)
		*ticket = (struct rfs_journal_ticket){ .first = last ? last - (uint64_t)(n - 1) : 0,
		                                       .last = last, .durable = durable };
	pthread_mutex_unlock(&S.lock);
	return err;
}

int rfs_stream_ship(const struct wire_op *w, int n, bool durable, bool wait)
{
	return S.started ? ship(w, n, durable, wait) : 0;
}

void rfs_stream_unsure_why(const char *fmt, ...)
{
	char why[WIRE_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&S.lock);
	lose("%s", why);
	pthread_mutex_unlock(&S.lock);
}

void rfs_stream_unsure(uint8_t dir, uint64_t ino, const char *name)
{
	if (S.started)
		rfs_record_incomplete("a hard link reached through an excluded name");
	if (S.started)
		rfs_stream_unsure_why("dir %u: %s (inode %" PRIu64 ") is a hard link of a file whose "
		                      "other names may be replicated, reached through an excluded name",
		                      dir, name, ino);
}

int rfs_stream_op_begin(const struct rfs_op *op, struct rfs_journal_ticket *t)
{
	struct wire_op w[RFS_STREAM_MAX_WOPS];
	bool durable, data;
	int n, err;

	memset(t, 0, sizeof(*t));
	if (!S.started)
		return 0;
	err = rfs_stream_translate(op, w, &n, &durable);
	if (err) {
		pthread_mutex_lock(&S.lock);
		lose("a %s could not be shipped", rfs_op_type_str(op->type));
		pthread_mutex_unlock(&S.lock);
		return 0;
	}
	/* Only a data change's TIMES (stream_op.c times_after) reads the
	 * time of the object after the change. */
	data = op->type == RFS_OP_WRITE || op->type == RFS_OP_FALLOCATE ||
	       op->type == RFS_OP_COPY_RANGE;
	return n ? ship_t(w, n, durable, false, t, data ? op->fd : -1, op->ino.ino) : 0;
}

int rfs_stream_op_wait(const struct rfs_journal_ticket *t)
{
	if (!S.started || !t->last)
		return 0;
	int err;

	pthread_mutex_lock(&S.lock);
	err = wait_locked(t->first, t->last, t->durable);
	pthread_mutex_unlock(&S.lock);
	return err;
}

int rfs_stream_op(const struct rfs_op *op)
{
	struct rfs_journal_ticket t;
	bool handled;
	int err;

	if (!S.started)
		return 0;
	err = rfs_stream_crossing(op, &handled);
	if (!handled) {
		err = rfs_stream_op_begin(op, &t);
		if (!err)
			err = rfs_stream_op_wait(&t);
	}
	/* Whether or not it was shipped, and whatever SECOND answered: the
	 * record keeps it until SECOND has it durably. */
	pthread_mutex_lock(&S.lock);
	rfs_record_op(op, S.st.state == RFS_LINK_CONNECTED ? S.st.seq : 0);
	pthread_mutex_unlock(&S.lock);
	return err;
}

void rfs_stream_bind(uint8_t dir, uint64_t ino, uint64_t parent_ino, const char *name)
{
	struct wire_op w = { .code = WIRE_OP_BIND, .dir = dir, .fid = ino,
	                     .arg = parent_ino, .name = name,
	                     .name_len = (uint16_t)strnlen(name, WIRE_NAME_MAX + 1) };

	if (S.started)
		ship(&w, 1, false, false);
}

void rfs_stream_unbind(uint8_t dir, uint64_t ino)
{
	struct wire_op w = { .code = WIRE_OP_UNBIND, .dir = dir, .fid = ino };

	/* A file whose data the resync still has to send stays bound. */
	if (S.started && !rfs_resync_defer_unbind(S.resync, dir, ino))
		ship(&w, 1, false, false);
}

void rfs_stream_set_hooks(void (*on_lost)(void), struct rfs_resync *r)
{
	pthread_mutex_lock(&S.lock);
	S.on_lost = on_lost;
	S.resync = r;
	pthread_mutex_unlock(&S.lock);
}

void rfs_stream_set_resync(bool active, uint64_t total, uint64_t done)
{
	pthread_mutex_lock(&S.lock);
	S.st.resyncing = active;
	S.st.resync_total = total;
	S.st.resync_done = done;
	pthread_mutex_unlock(&S.lock);
}

void rfs_stream_wait_queue_below(uint64_t bytes)
{
	pthread_mutex_lock(&S.lock);
	while (S.st.state == RFS_LINK_CONNECTED && !S.stopping && S.st.queued_bytes > bytes)
		pthread_cond_wait(&S.room, &S.lock);
	pthread_mutex_unlock(&S.lock);
}

/* Takes whole ops from the queue head into one frame (up to the body
 * limit), sends it, frees them. */
static void *sender_main(void *arg)
{
	struct iovec *iov = calloc(UINT16_MAX, sizeof(*iov));
	struct qop **batch = calloc(UINT16_MAX, sizeof(*batch));

	(void)arg;
	if (!iov || !batch) {
		pthread_mutex_lock(&S.lock);
		lose("out of memory in the sender");
		pthread_mutex_unlock(&S.lock);
	}
	pthread_mutex_lock(&S.lock);
	while (iov && batch && S.st.state == RFS_LINK_CONNECTED && !(S.stopping && !S.head)) {
		size_t body = 0, nb = 0;
		struct timespec ts;
		int rc;

		if (!S.head) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += PING_IDLE_MS / 1000;
			if (pthread_cond_timedwait(&S.work, &S.lock, &ts) == ETIMEDOUT &&
			    S.st.state == RFS_LINK_CONNECTED && !S.head && !S.stopping) {
				/* Idle: a PING makes SECOND answer, so a dead
				 * peer is noticed before a change needs it. */
				pthread_mutex_unlock(&S.lock);
				rc = rfs_conn_send(&S.conn, WIRE_PING, 0, NULL, 0);
				pthread_mutex_lock(&S.lock);
				if (rc < 0)
					lose("sending a PING failed");
			}
			continue;
		}
		while (S.head && nb < UINT16_MAX && body + S.head->len <= WIRE_BODY_MAX) {
			struct qop *q = S.head;

			S.head = q->next;
			if (!S.head)
				S.tail = NULL;
			batch[nb] = q;
			iov[nb].iov_base = q->bytes;
			iov[nb].iov_len = q->len;
			body += q->len;
			nb++;
		}
		if (S.sent_seq == S.st.recv)
			S.progress_ms = mono_ms();      /* the clock runs from now */
		/* Before the send: the ack may come back before send() returns. */
		S.sent_seq = batch[nb - 1]->seq;
		pthread_mutex_unlock(&S.lock);
		rc = rfs_conn_send(&S.conn, WIRE_OPS, (uint16_t)nb, iov, (int)nb);
		pthread_mutex_lock(&S.lock);
		if (rc < 0)
			lose("sending changes failed");
		else
			S.st.sent_bytes += body;
		if (S.st.state == RFS_LINK_CONNECTED)
			S.st.queued_bytes -= body;
		for (size_t i = 0; i < nb; i++)
			free(batch[i]);
		pthread_cond_broadcast(&S.room);
	}
	pthread_mutex_unlock(&S.lock);
	free(iov);
	free(batch);
	return NULL;
}

static void take_ack(const struct wire_hdr *hdr, const uint8_t *body)
{
	struct wire_ack a;
	enum wire_err e = wire_ack_decode(hdr->type, body, hdr->len, &a);

	pthread_mutex_lock(&S.lock);
	if (e != WIRE_OK) {
		lose("bad %s from SECOND: %s", wire_type_str(hdr->type), wire_err_str(e));
	} else if (hdr->type == WIRE_ERROR) {
		lose("SECOND failed: %.*s", (int)a.text_len, a.text);
	} else if (a.recv_seq > S.sent_seq || a.applied_seq > a.recv_seq) {
		lose("SECOND acknowledged seq %" PRIu64 " (applied %" PRIu64 ") but only %" PRIu64
		     " was sent", a.recv_seq, a.applied_seq, S.sent_seq);
	} else {
		if (a.recv_seq > S.st.recv)
			S.progress_ms = mono_ms();
#define UP(f, v) if ((v) > S.st.f) S.st.f = (v)
		UP(recv, a.recv_seq);
		UP(applied, a.applied_seq);
		UP(durable, a.durable_seq);
		UP(ckpt, a.ckpt_seq);
#undef UP
		rfs_record_ckpt(S.st.ckpt);
		pthread_cond_broadcast(&S.acked);
	}
	pthread_mutex_unlock(&S.lock);
}

/* SECOND's block hashes for the reintegration's compare. Under the lock:
 * the resync may end meanwhile (rfs_stream_set_hooks clears it first). */
static void take_hashes(const struct wire_hdr *hdr, const uint8_t *body)
{
	struct wire_hashes h;
	enum wire_err e = wire_hashes_decode(body, hdr->len, &h);

	pthread_mutex_lock(&S.lock);
	if (e != WIRE_OK)
		lose("bad HASHES from SECOND: %s", wire_err_str(e));
	else if (S.resync)
		rfs_resync_hashes(S.resync, &h);
	pthread_mutex_unlock(&S.lock);
}

static void *receiver_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct wire_hdr hdr;
		const uint8_t *body;
		int r;

		pthread_mutex_lock(&S.lock);
		/* Stopping: on until SECOND's checkpoint covers everything too
		 * (rfs_stream_wait_durable), or the detach. */
		if (S.st.state != RFS_LINK_CONNECTED ||
		    (S.stopping && S.st.applied >= S.st.seq && S.st.ckpt >= S.st.seq)) {
			pthread_mutex_unlock(&S.lock);
			break;
		}
		if (S.sent_seq > S.st.recv && mono_ms() - S.progress_ms > S.cfg.ack_timeout_ms)
			lose("no acknowledgement for %u ms", S.cfg.ack_timeout_ms);
		pthread_mutex_unlock(&S.lock);
		r = rfs_conn_recv(&S.conn, RECV_POLL_MS, &hdr, &body);
		if (r == 0)
			continue;
		if (r < 0) {
			pthread_mutex_lock(&S.lock);
			lose("receiving from SECOND failed");
			pthread_mutex_unlock(&S.lock);
			break;
		}
		if (hdr.type == WIRE_ACK || hdr.type == WIRE_ERROR) {
			take_ack(&hdr, body);
		} else if (hdr.type == WIRE_HASHES) {
			take_hashes(&hdr, body);
		} else {
			pthread_mutex_lock(&S.lock);
			lose("unexpected %s frame from SECOND", wire_type_str(hdr.type));
			pthread_mutex_unlock(&S.lock);
		}
	}
	return NULL;
}

void rfs_stream_init(const struct rfs_stream_cfg *cfg)
{
	pthread_rwlockattr_t ga;

	S.cfg = *cfg;
	memset(&S.st, 0, sizeof(S.st));
	S.st.mode = cfg->mode;
	S.st.state = RFS_LINK_OFF;
	if (!S.gate_on) {
		/* Writers first: a reintegration step must not starve behind a
		 * steady flow of changes. */
		pthread_rwlockattr_init(&ga);
		pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&S.gate, &ga);
		pthread_rwlockattr_destroy(&ga);
		S.gate_on = true;
	}
	S.started = true;
}

int rfs_stream_attach(struct rfs_conn *conn)
{
	pthread_mutex_lock(&S.lock);
	S.conn = *conn;
	/* Seqs go on growing across connections; this one's acks start from
	 * here. */
	S.st.recv = S.st.applied = S.st.durable = S.st.ckpt = S.sent_seq = S.st.seq;
	S.st.state = RFS_LINK_CONNECTED;
	S.unsafe_loss = false;
	S.st.error[0] = 0;
	S.stopping = false;
	S.progress_ms = mono_ms();
	pthread_mutex_unlock(&S.lock);
	for (uint8_t d = 0; d < S.cfg.ndirs; d++) {
		struct wire_op root = { .code = WIRE_OP_BIND, .dir = d, .fid = S.cfg.root_ino[d] };

		ship(&root, 1, false, false);
	}
	if (pthread_create(&S.sender, NULL, sender_main, NULL) != 0) {
		log_error("cannot start the sender thread");
		goto fail;
	}
	if (pthread_create(&S.receiver, NULL, receiver_main, NULL) != 0) {
		log_error("cannot start the receiver thread");
		pthread_mutex_lock(&S.lock);
		lose("no receiver thread");
		pthread_mutex_unlock(&S.lock);
		pthread_join(S.sender, NULL);
		goto fail;
	}
	S.threads = true;
	log_info("replicating to %s (node %s), mode %s", S.conn.peer, S.conn.hello.node,
	         rfs_mode_str(S.cfg.mode));
	return 0;
fail:
	pthread_mutex_lock(&S.lock);
	if (S.st.state == RFS_LINK_CONNECTED)
		S.st.state = RFS_LINK_LOST;
	free_queue();
	pthread_mutex_unlock(&S.lock);
	rfs_conn_close(&S.conn);
	return -1;
}

int rfs_stream_start(const struct rfs_stream_cfg *cfg, struct rfs_conn *conn)
{
	rfs_stream_init(cfg);
	return rfs_stream_attach(conn);
}

void rfs_stream_wait_lost(void)
{
	pthread_mutex_lock(&S.lock);
	while (S.st.state == RFS_LINK_CONNECTED && !S.stopping)
		pthread_cond_wait(&S.acked, &S.lock);
	pthread_mutex_unlock(&S.lock);
}

/* Ends the connection's threads and closes it. */
static void detach(void)
{
	pthread_mutex_lock(&S.lock);
	if (S.st.state == RFS_LINK_CONNECTED) {
		S.st.state = RFS_LINK_OFF;
		shutdown(S.conn.fd, SHUT_RDWR);
	}
	pthread_cond_broadcast(&S.work);
	pthread_cond_broadcast(&S.room);
	pthread_cond_broadcast(&S.acked);
	pthread_mutex_unlock(&S.lock);
	if (S.threads) {
		pthread_join(S.sender, NULL);
		pthread_join(S.receiver, NULL);
		S.threads = false;
		rfs_conn_close(&S.conn);
	}
	pthread_mutex_lock(&S.lock);
	free_queue();
	pthread_mutex_unlock(&S.lock);
}

void rfs_stream_detach(void)
{
	detach();
}

/* Waits on acked for at most 50 ms (lock held): deadlines are checked by
 * the callers against the monotonic clock. */
static void wait_acked_a_while(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 50 * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&S.acked, &S.lock, &ts);
}

bool rfs_stream_drain(uint32_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	bool all;

	pthread_mutex_lock(&S.lock);
	S.stopping = true;
	pthread_cond_broadcast(&S.work);
	pthread_cond_broadcast(&S.acked);
	pthread_cond_broadcast(&S.room);
	while (S.st.state == RFS_LINK_CONNECTED && S.st.applied < S.st.seq && mono_ms() < end) {
		wait_acked_a_while();
	}
	all = S.st.state == RFS_LINK_CONNECTED && S.st.applied >= S.st.seq;
	if (!all && S.threads)
		log_warn("stopping with SECOND %s: applied up to seq %" PRIu64 " of %" PRIu64,
		         S.st.state == RFS_LINK_CONNECTED ? "behind" : "lost", S.st.applied, S.st.seq);
	pthread_mutex_unlock(&S.lock);
	return all;
}

bool rfs_stream_stop(uint32_t timeout_ms)
{
	bool all;

	if (!S.started)
		return false;
	all = rfs_stream_drain(timeout_ms);
	detach();
	S.started = false;
	return all;
}

bool rfs_stream_wait_applied(uint32_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms, target;
	bool ok;

	pthread_mutex_lock(&S.lock);
	target = S.st.seq;
	while (S.st.state == RFS_LINK_CONNECTED && S.st.applied < target && mono_ms() < end) {
		wait_acked_a_while();
	}
	ok = S.st.state == RFS_LINK_CONNECTED && S.st.applied >= target;
	pthread_mutex_unlock(&S.lock);
	return ok;
}

bool rfs_stream_wait_durable(uint32_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms, target;
	bool ok;

	pthread_mutex_lock(&S.lock);
	target = S.st.seq;
	while (S.st.state == RFS_LINK_CONNECTED && S.st.ckpt < target && mono_ms() < end)
		wait_acked_a_while();
	ok = S.st.ckpt >= target;
	pthread_mutex_unlock(&S.lock);
	return ok;
}

bool rfs_stream_stopping(void)
{
	return __atomic_load_n(&S.stopping, __ATOMIC_RELAXED);
}

bool rfs_stream_connected(void)
{
	bool c;

	pthread_mutex_lock(&S.lock);
	c = S.st.state == RFS_LINK_CONNECTED;
	pthread_mutex_unlock(&S.lock);
	return c;
}

uint64_t rfs_stream_seq(void)
{
	uint64_t q;

	pthread_mutex_lock(&S.lock);
	q = S.st.seq;
	pthread_mutex_unlock(&S.lock);
	return q;
}

void rfs_gate_enter(void)
{
	if (S.gate_on)
		pthread_rwlock_rdlock(&S.gate);
}

void rfs_gate_leave(void)
{
	if (S.gate_on)
		pthread_rwlock_unlock(&S.gate);
}

void rfs_stream_gate_exclusive(bool on)
{
	if (!S.gate_on)
		return;
	if (on)
		pthread_rwlock_wrlock(&S.gate);
	else
		pthread_rwlock_unlock(&S.gate);
}

void rfs_stream_status(struct rfs_stream_status *out)
{
	pthread_mutex_lock(&S.lock);
	*out = S.st;
	pthread_mutex_unlock(&S.lock);
}

bool rfs_stream_status_try(struct rfs_stream_status *out)
{
	if (pthread_mutex_trylock(&S.lock) != 0)
		return false;
	*out = S.st;
	pthread_mutex_unlock(&S.lock);
	return true;
}
