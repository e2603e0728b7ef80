/* The SECOND's receive-and-apply loop (contract in second.h). One thread:
 * read a frame, ack it received, apply it, ack what is applied. The next
 * frame waits in the socket buffers meanwhile; acks for received frames
 * therefore follow the apply of the previous one. */
#include "rfs/second.h"

#include <arpa/inet.h>
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

#define POLL_MS 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rfs_second_status st = { .uptodate = true };

void rfs_second_status(struct rfs_second_status *out)
{
	pthread_mutex_lock(&lock);
	*out = st;
	pthread_mutex_unlock(&lock);
}

/* The appliers of the dirs, and the stream-wide seqs of the acks: each
 * applier sees only its dir's ops, the stream's order spans them all. */
struct rx {
	struct rfs_applier *a[RFS_MAX_DIRS];
	uint8_t n;
	uint64_t recv, applied, durable, ckpt;
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

/* One OPS frame: validate all, ack received, apply all, ack applied.
 * 0, or -1 when the connection must end. */
static int take_ops(struct rfs_conn *c, struct rx *x, const struct wire_hdr *hdr,
                    const uint8_t *body)
{
	struct wire_op_iter it;
	struct wire_op op;
	char text[RFS_APPLY_ERR_LEN];
	uint64_t last = x->recv;
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
	if (ack(c, x) < 0)
		return -1;
	wire_op_iter_init(&it, body, hdr->len, hdr->nops, 0);
	while (wire_op_next(&it, &op) == 1) {
		struct rfs_applier *a = x->a[op.dir];

		if (rfs_apply(a, &op, text, sizeof(text)) < 0) {
			uint64_t es;
			int en = EIO;

			rfs_applier_diverged(a, &es, &en);
			send_error(c, x, op.seq, en, text);
			return -1;
		}
		x->applied = op.seq;
		if (rfs_applier_durable_seq(a) == op.seq)
			x->durable = op.seq;
	}
	return ack(c, x);
}

static void serve(const struct rfs_second_cfg *cfg, struct rfs_conn *c, struct rx *x,
                  volatile sig_atomic_t *stop)
{
	uint64_t last_ckpt = mono_ms();

	for (uint8_t d = 0; d < x->n; d++)
		rfs_applier_reset(x->a[d]);
	x->recv = x->applied = x->durable = x->ckpt = 0;
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
	struct rx x = { .n = cfg->ndirs };
	int lfd = -1, rc = -1;

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
		if (rfs_conn_accept(&cfg->link, fd, peer, &c) == 0)
			serve(cfg, &c, &x, stop);
		rfs_conn_close(&c);
	}
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);
	for (uint8_t d = 0; d < x.n; d++)
		rfs_applier_free(x.a[d]);
	return rc;
}
