/* The SECOND's receive-and-apply loop (contract in second.h). One thread:
 * read a frame, ack it received, apply it, ack what is applied. The next
 * frame waits in the socket buffers meanwhile; acks for received frames
 * therefore follow the apply of the previous one. */
#include "rfs/second.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <time.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/apply.h"
#include "rfs/gen.h"
#include "rfs/hash.h"
#include "rfs/record.h"

#define POLL_MS 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rfs_second_status st = { .uptodate = true };

void rfs_second_status(struct rfs_second_status *out)
{
	pthread_mutex_lock(&lock);
	*out = st;
	pthread_mutex_unlock(&lock);
}

static struct rfs_gen gen;             /* this copy's generations; the loop thread's */

/* The appliers of the dirs, and the stream-wide seqs of the acks: each
 * applier sees only its dir's ops, the stream's order spans them all. */
struct rx {
	const struct rfs_second_cfg *cfg;
	struct rfs_applier *a[RFS_MAX_DIRS];
	uint8_t n;
	uint64_t recv, applied, durable, ckpt;
	bool verify;                    /* the sync-full mark is set */
};

static void publish(const struct rx *x)
{
	pthread_mutex_lock(&lock);
	st.recv = x->recv;
	st.applied = x->applied;
	st.durable = x->durable;
	st.ckpt = x->ckpt;
	pthread_mutex_unlock(&lock);
}

static void set_error(const char *text)
{
	pthread_mutex_lock(&lock);
	snprintf(st.error, sizeof(st.error), "%s", text);
	st.uptodate = false;
	pthread_mutex_unlock(&lock);
}

static int ack(struct rfs_conn *c, struct rx *x)
{
	struct wire_ack k = { .recv_seq = x->recv, .applied_seq = x->applied,
	                      .durable_seq = x->durable, .ckpt_seq = x->ckpt };

	publish(x);
	return rfs_conn_send_ack(c, &k);
}

static void send_error(struct rfs_conn *c, struct rx *x, uint64_t err_seq, int err_no,
                       const char *text)
{
	struct wire_ack k = {
		.recv_seq = x->recv,
		.applied_seq = x->applied,
		.durable_seq = x->durable,
		.ckpt_seq = x->ckpt,
		.err_seq = err_seq,
		.err_no = (uint32_t)(err_no ? err_no : EIO),
		.text = text,
		.text_len = (uint16_t)strnlen(text, WIRE_TEXT_MAX),
	};

	log_error("%s", text);
	set_error(text);
	rfs_conn_send_ack(c, &k);
}

/* syncfs of every copy: all applied ops are durable. 0 or -1. */
static int checkpoint(struct rx *x)
{
	uint64_t upto = x->applied;

	for (uint8_t d = 0; d < x->n; d++)
		if (rfs_applier_checkpoint(x->a[d]) < 0)
			return -1;
	x->ckpt = upto;
	if (x->durable < upto)
		x->durable = upto;
	return 0;
}

/* The PRIM says the copy is whole again (after a BARRIER made it durable). */
static int setgen(struct rx *x, uint64_t prim_c, char *text, size_t len)
{
	struct rfs_gen g = gen;

	if (rfs_gen_resync_done(&g, prim_c) < 0 || rfs_gen_store(x->cfg->meta, &g) < 0) {
		snprintf(text, len, "cannot record the reintegration in %s", x->cfg->meta);
		return -1;
	}
	gen = g;
	pthread_mutex_lock(&lock);
	st.uptodate = true;
	st.error[0] = 0;
	pthread_mutex_unlock(&lock);
	/* This copy is PRIM's at prim_c: the record a takeover starts from. */
	if (x->cfg->journal)
		rfs_record_reset(prim_c);
	for (uint8_t d = 0; d < x->n; d++)
		rfs_applier_clear_stash(x->a[d]);
	if (x->cfg->verify && rfs_gen_verify_mark(x->cfg->verify, false) == 0 && x->verify) {
		log_info("the compare asked by sync full is done");
		x->verify = false;
	}
	log_info("copy up to date (generation %016" PRIx64 ")", prim_c);
	return 0;
}

/* This copy cannot be merged into (why): forget its generations, so the
 * next PRIM meets a copy it does not know, sets it aside and copies
 * everything. */
static void forget_copy(struct rx *x, const char *why)
{
	struct rfs_gen g = { 0 };

	rfs_gen_set_outdated(&g, wall_ms());
	if (rfs_gen_store(x->cfg->meta, &g) < 0) {
		log_error("cannot record in %s that this copy needs a full copy", x->cfg->meta);
		return;
	}
	gen = g;
	log_warn("%s: the next reintegration copies everything", why);
}

/* Moves every entry of each copy's root under aside_dir/aside-<UTC>/<d>/:
 * a PRIM that does not know this copy rebuilds it from nothing, and what
 * only this copy held is kept. 0, or -1 (text says why). */
static int set_aside(struct rx *x, char *text, size_t len)
{
	char dir[PATH_MAX], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	size_t moved = 0;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (uint8_t d = 0; d < x->n; d++) {
		int lfd = openat(x->cfg->root_fd[d], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), afd = -1;
		DIR *dp = lfd >= 0 ? fdopendir(lfd) : NULL;
		struct dirent *de;

		if (!dp) {
			snprintf(text, len, "setting the copy aside: listing dir %u: %s", d, strerror(errno));
			if (lfd >= 0)
				close(lfd);
			return -1;
		}
		while ((de = readdir(dp))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (afd < 0) {
				snprintf(dir, sizeof(dir), "%s/aside-%s/%u", x->cfg->aside_dir, stamp, d);
				int e = mkdir_p(dir, 0700);

				if (e < 0)
					errno = -e;
				if (e < 0 || (afd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
					snprintf(text, len, "setting the copy aside: %.200s: %s", dir, strerror(errno));
					closedir(dp);
					return -1;
				}
			}
			if (renameat(x->cfg->root_fd[d], de->d_name, afd, de->d_name) < 0) {
				snprintf(text, len, "setting the copy aside: %.100s into %.200s: %s%s", de->d_name,
				         dir, strerror(errno), errno == EXDEV ? " (the aside dir must be on "
				         "the file system of the replicated dirs)" : "");
				close(afd);
				closedir(dp);
				return -1;
			}
			moved++;
		}
		if (afd >= 0)
			close(afd);
		closedir(dp);
	}
	if (moved)
		log_warn("the copy was set aside (%zu entries) under %s/aside-%s: this node's data "
		         "is not the PRIM's; nothing was deleted", moved, x->cfg->aside_dir, stamp);
	return 0;
}

/* A merge may take back objects renamed on PRIM (apply_stash.c): each
 * copy's stash, aside_dir/stash-<d>, on the dirs' file system. */
static void use_stash(struct rx *x)
{
	char dir[PATH_MAX];

	if (mkdir_p(x->cfg->aside_dir, 0700) < 0)
		log_warn("cannot make %s: renamed files are sent whole", x->cfg->aside_dir);
	for (uint8_t d = 0; d < x->n; d++) {
		snprintf(dir, sizeof(dir), "%s/stash-%u", x->cfg->aside_dir, d);
		rfs_applier_set_stash(x->a[d], dir);
	}
}

/* A HASHREQ, answered at its place in the stream: the hashes are of this
 * copy as it is after every earlier op. 0, or -1 if the frame could not be
 * sent (the connection ends). */
static int answer_hashes(struct rfs_conn *c, struct rfs_applier *a, const struct wire_op *op)
{
	static uint8_t buf[WIRE_DATA_MAX];
	uint8_t hashes[(WIRE_DATA_MAX / 4096) * WIRE_HASH_LEN];
	uint8_t frame[WIRE_HASHES_FIXED_LEN + sizeof(hashes)];
	struct wire_hashes h = { .seq = op->seq, .fid = op->fid, .off = op->arg,
	                         .len = (uint32_t)op->len, .block = op->block, .dir = op->dir,
	                         .count = rfs_hash_count((uint32_t)op->len, op->block),
	                         .hashes = hashes };
	struct iovec iov;
	size_t len;

	rfs_apply_hashes(a, op, buf, hashes);
	if (wire_hashes_encode(&h, frame, sizeof(frame), &len) != WIRE_OK)
		return -1;
	iov = (struct iovec){ .iov_base = frame, .iov_len = len };
	return rfs_conn_send(c, WIRE_HASHES, 0, &iov, 1);
}

/* One OPS frame: validate all, ack received, apply all, ack applied.
 * 0, or -1 when the connection must end. */
static int take_ops(struct rfs_conn *c, struct rx *x, const struct wire_hdr *hdr,
                    const uint8_t *body)
{
	struct wire_op_iter it;
	struct wire_op op;
	char text[RFS_APPLY_ERR_LEN];
	uint64_t last = x->recv;
	bool send_failed;
	int r;

	wire_op_iter_init(&it, body, hdr->len, hdr->nops, x->recv);
	while ((r = wire_op_next(&it, &op)) == 1) {
		if (op.dir >= x->n) {
			snprintf(text, sizeof(text), "op seq %" PRIu64 " (%s) names dir %u; this node "
			         "replicates %u", op.seq, wire_code_str(op.code), op.dir, x->n);
			send_error(c, x, op.seq, EPROTO, text);
			return -1;
		}
		last = op.seq;
	}
	if (r < 0) {
		char why[256];

		wire_op_iter_explain(&it, why, sizeof(why));
		snprintf(text, sizeof(text), "malformed OPS frame %" PRIu64 ": %s", hdr->frame_no, why);
		send_error(c, x, it.err_seq, EPROTO, text);
		return -1;
	}
	x->recv = last;
	/* Applied even if the PRIM cannot hear the ack: it may have heard
	 * an earlier copy of it, and what it sent is its own, applied there. */
	send_failed = ack(c, x) < 0;
	wire_op_iter_init(&it, body, hdr->len, hdr->nops, 0);
	while (wire_op_next(&it, &op) == 1) {
		struct rfs_applier *a = x->a[op.dir];

		if (op.code == WIRE_OP_HASHREQ) {
			if (answer_hashes(c, a, &op) < 0)
				return -1;
			x->applied = op.seq;
			continue;
		}
		if (op.code == WIRE_OP_SETGEN) {
			if (setgen(x, op.gen, text, sizeof(text)) < 0) {
				send_error(c, x, op.seq, EIO, text);
				return -1;
			}
			x->applied = op.seq;
			continue;
		}
		if (rfs_apply(a, &op, text, sizeof(text)) < 0) {
			uint64_t es;
			int en = EIO;

			rfs_applier_diverged(a, &es, &en);
			if (rfs_applier_needs_full(a))
				forget_copy(x, "this copy differs from what PRIM's record says");
			send_error(c, x, op.seq, en, text);
			return -1;
		}
		x->applied = op.seq;
		if (rfs_applier_durable_seq(a) == op.seq)
			x->durable = op.seq;
	}
	return send_failed ? -1 : ack(c, x);
}

static void serve(const struct rfs_second_cfg *cfg, struct rfs_conn *c, struct rx *x,
                  volatile sig_atomic_t *stop)
{
	uint64_t last_ckpt = mono_ms();

	for (uint8_t d = 0; d < x->n; d++)
		rfs_applier_reset(x->a[d]);
	x->recv = x->applied = x->durable = x->ckpt = 0;
	{
		struct rfs_gen peer;
		enum rfs_relation rel;
		char text[RFS_APPLY_ERR_LEN];
		bool incremental, verify;

		if (rfs_gen_decode(c->hello.gens, c->hello.flags, &peer, text, sizeof(text)) < 0) {
			send_error(c, x, 0, EPROTO, text);
			return;
		}
		rel = rfs_gen_relation(&gen, &peer);
		/* PRIM decides the same from the same gens and flag: its walk
		 * is merged into this copy, which is only older than PRIM's. */
		incremental = rfs_gen_incremental(&peer, &gen, c->hello.flags & WIRE_HELLO_RECORD);
		verify = rfs_gen_verify(&peer, &gen, x->verify);
		log_info("%s: PRIM %s: data %s%s", c->peer, c->hello.node, rfs_relation_str(rel),
		         verify ? ", compared whole by block hashes (sync full)" :
		         incremental ? ", incremental from PRIM's record" : "");
		incremental = incremental || verify;
		if (rel != RFS_REL_EQUAL || verify) {
			struct rfs_gen g = gen;

			rfs_gen_set_outdated(&g, wall_ms());
			if (rfs_gen_store(cfg->meta, &g) < 0) {
				snprintf(text, sizeof(text), "cannot record in %s that the copy is outdated",
				         cfg->meta);
				send_error(c, x, 0, EIO, text);
				return;
			}
			gen = g;
			pthread_mutex_lock(&lock);
			st.uptodate = false;
			pthread_mutex_unlock(&lock);
			if (!incremental && set_aside(x, text, sizeof(text)) < 0) {
				send_error(c, x, 0, EIO, text);
				return;
			}
			if (incremental)
				use_stash(x);
		} else {
			pthread_mutex_lock(&lock);
			st.uptodate = !gen.outdated;
			pthread_mutex_unlock(&lock);
		}
	}
	pthread_mutex_lock(&lock);
	st.connected = true;
	snprintf(st.peer, sizeof(st.peer), "%s", c->peer);
	pthread_mutex_unlock(&lock);
	publish(x);
	log_info("%s: PRIM %s connected", c->peer, c->hello.node);
	while (!*stop) {
		struct wire_hdr hdr;
		const uint8_t *body;
		int r = rfs_conn_recv(c, POLL_MS, &hdr, &body);

		if (r < 0)
			break;
		if (r == 1 && hdr.type == WIRE_OPS) {
			if (take_ops(c, x, &hdr, body) < 0)
				break;
		} else if (r == 1 && hdr.type == WIRE_PING) {
			if (ack(c, x) < 0)
				break;
		} else if (r == 1) {
			char text[128];

			snprintf(text, sizeof(text), "unexpected %s frame from PRIM",
			         wire_type_str(hdr.type));
			send_error(c, x, 0, EPROTO, text);
			break;
		}
		/* Everything received becomes durable within ckpt_ms. */
		if (x->applied > x->ckpt && mono_ms() - last_ckpt >= cfg->ckpt_ms) {
			last_ckpt = mono_ms();
			if (checkpoint(x) == 0 && ack(c, x) < 0)
				break;
		}
	}
	/* What was applied stays; make it durable before the next PRIM. */
	if (x->applied > x->ckpt)
		checkpoint(x);
	publish(x);
	pthread_mutex_lock(&lock);
	st.connected = false;
	pthread_mutex_unlock(&lock);
	log_info("%s: PRIM %s gone after seq %" PRIu64 " (applied %" PRIu64 ")", c->peer,
	         c->hello.node, x->recv, x->applied);
}

int rfs_second_run(const struct rfs_second_cfg *cfg, volatile sig_atomic_t *stop)
{
	struct rx x = { .cfg = cfg, .n = cfg->ndirs };
	int lfd = -1, rc = -1;
	char err[256];

	if (rfs_gen_load(cfg->meta, &gen, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (cfg->journal) {
		if (rfs_record_open(cfg->journal) < 0)
			return -1;
		if (gen.c && !rfs_record_clean(gen.c)) {
			/* This node changed its copy as PRIM after it was last
			 * equal to the peer's (a crash left files hot, or it went
			 * on alone), or its record does not say: only a full copy
			 * can be trusted, and what it holds is set aside first. */
			log_warn("record %s: not empty, or not since generation %016" PRIx64,
			         cfg->journal, gen.c);
			forget_copy(&x, "this copy may hold changes of its own as PRIM");
		}
	}
	pthread_mutex_lock(&lock);
	st.uptodate = gen.c != 0 && !gen.outdated;
	pthread_mutex_unlock(&lock);

	for (uint8_t d = 0; d < x.n; d++)
		if (!(x.a[d] = rfs_applier_new(cfg->root_fd[d], d)))
			goto out;
	lfd = rfs_listen(cfg->listen);
	if (lfd < 0)
		goto out;
	log_info("listening on %s", cfg->listen);
	while (!*stop) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		struct rfs_conn c;
		char peer[64], ip[INET_ADDRSTRLEN];
		int fd;

		if (poll(&pfd, 1, POLL_MS) <= 0)
			continue;
		fd = accept4(lfd, (struct sockaddr *)&sin, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN)
				log_warn("accept on %s: %s", cfg->listen, strerror(errno));
			continue;
		}
		inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
		snprintf(peer, sizeof(peer), "%s:%u", ip, ntohs(sin.sin_port));
		struct rfs_link_cfg lc = cfg->link;

		rfs_gen_encode(&gen, lc.gens, &lc.hello_flags);
		x.verify = cfg->verify && access(cfg->verify, F_OK) == 0;
		if (x.verify)
			lc.hello_flags |= WIRE_HELLO_VERIFY;
		if (rfs_conn_accept(&lc, fd, peer, &c) == 0)
			serve(cfg, &c, &x, stop);
		rfs_conn_close(&c);
	}
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);
	for (uint8_t d = 0; d < x.n; d++)
		rfs_applier_free(x.a[d]);
	if (cfg->journal)
		rfs_record_close();
	return rc;
}
