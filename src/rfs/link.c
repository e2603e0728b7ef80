/* The replication connection: TCP setup, handshake and frame I/O. */
#include "rfs/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define SOCK_BUF (4 << 20)

int rfs_parse_addr(const char *s, struct sockaddr_in *out, char *err, size_t errlen)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	uint64_t port;

	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (!colon || (size_t)(colon - s) >= sizeof(host)) {
		snprintf(err, errlen, "'%s': expected IPv4:PORT", s);
		return -1;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
		snprintf(err, errlen, "'%s': '%s' is not an IPv4 address", s, host);
		return -1;
	}
	if (parse_u64(colon + 1, 1, 65535, &port) < 0) {
		snprintf(err, errlen, "'%s': port must be 1 to 65535", s);
		return -1;
	}
	out->sin_port = htons((uint16_t)port);
	return 0;
}

static void tune(int fd, uint32_t timeout_ms)
{
	int one = 1, buf = SOCK_BUF;
	unsigned int uto = timeout_ms;
	struct timeval tv;

	/* Small frames (acks, one-op frames) must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	/* Unacknowledged data older than this ends the connection. */
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
	ms_to_timeval(timeout_ms, &tv);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int write_all(struct rfs_conn *c, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("%s: send: %s", c->peer,
			          w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
			                  ? "timed out (the peer does not read)" : strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(struct rfs_conn *c, uint8_t *p, size_t n, const char *what)
{
	while (n) {
		ssize_t r = recv(c->fd, p, n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			log_error("%s: connection closed by the peer%s%s", c->peer, what ? " during " : "",
			          what ? what : "");
			return -1;
		}
		if (r < 0) {
			log_error("%s: receive%s%s: %s", c->peer, what ? " of " : "", what ? what : "",
			          errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int alloc_bufs(struct rfs_conn *c)
{
	c->sbuf = malloc(WIRE_FRAME_MAX);
	c->rbuf = malloc(WIRE_FRAME_MAX);
	if (!c->sbuf || !c->rbuf) {
		log_error("%s: out of memory for frame buffers", c->peer);
		return -1;
	}
	return 0;
}

/* Clear hellos, keys, then HELLO frames: the dialer speaks first each time. */
static int handshake(const struct rfs_link_cfg *cfg, struct rfs_conn *c, bool dialer)
{
	struct wire_hello_clear mine = { .version = WIRE_VERSION }, theirs;
	uint8_t out[WIRE_HELLO_CLEAR_LEN], buf[WIRE_HELLO_CLEAR_LEN];
	struct wire_key ktx, krx;
	struct wire_hello h = { .version = WIRE_VERSION, .role = cfg->role };
	struct wire_hdr hdr;
	const uint8_t *body;
	uint8_t hb[256];
	size_t hlen;
	enum wire_err e;
	struct iovec iov;
	int rc = -1, r;

	if (alloc_bufs(c) < 0 || random_bytes(mine.nonce, sizeof(mine.nonce)) < 0)
		return -1;
	wire_hello_clear_encode(&mine, out);
	if (dialer && write_all(c, out, sizeof(out)) < 0)
		return -1;
	if (read_all(c, buf, sizeof(buf), "the clear hello") < 0)
		return -1;
	e = wire_hello_clear_decode(buf, &theirs);
	if (e != WIRE_OK) {
		log_error("%s: hello: %s%s", c->peer, wire_err_str(e),
		          e == WIRE_ERR_VERSION ? " (the peer runs another vigil-rfs version)" : "");
		return -1;
	}
	if (!dialer && write_all(c, out, sizeof(out)) < 0)
		return -1;
	{
		const uint8_t *nd = dialer ? mine.nonce : theirs.nonce;
		const uint8_t *nl = dialer ? theirs.nonce : mine.nonce;

		if (wire_key_derive(cfg->secret, cfg->secret_len, cfg->cluster, nd, nl, dialer ? 'D' : 'L',
		                    &ktx) < 0 ||
		    wire_key_derive(cfg->secret, cfg->secret_len, cfg->cluster, nd, nl, dialer ? 'L' : 'D',
		                    &krx) < 0)
			goto out;
	}
	if (wire_tx_init(&c->tx, &ktx) < 0 || wire_rx_init(&c->rx, &krx, &ktx) < 0)
		goto out;
	memcpy(h.dirs_hash, cfg->dirs_hash, sizeof(h.dirs_hash));
	memcpy(h.gens, cfg->gens, sizeof(h.gens));
	h.flags = cfg->hello_flags;
	snprintf(h.node, sizeof(h.node), "%s", cfg->node);
	snprintf(h.cluster, sizeof(h.cluster), "%s", cfg->cluster);
	if (wire_hello_encode(&h, hb, sizeof(hb), &hlen) != WIRE_OK) {
		log_error("%s: cannot encode HELLO (node '%s', cluster '%s')", c->peer, cfg->node,
		          cfg->cluster);
		goto out;
	}
	iov = (struct iovec){ .iov_base = hb, .iov_len = hlen };
	if (dialer && rfs_conn_send(c, WIRE_HELLO, 0, &iov, 1) < 0)
		goto out;
	r = rfs_conn_recv(c, (int)c->io_timeout_ms, &hdr, &body);
	if (r == 0)
		log_error("%s: no HELLO within %u ms", c->peer, c->io_timeout_ms);
	if (r <= 0)
		goto out;
	if (hdr.type != WIRE_HELLO) {
		log_error("%s: expected HELLO, got %s", c->peer, wire_type_str(hdr.type));
		goto out;
	}
	e = wire_hello_decode(body, hdr.len, &c->hello);
	if (e != WIRE_OK) {
		log_error("%s: HELLO: %s", c->peer, wire_err_str(e));
		goto out;
	}
	if (strcmp(c->hello.cluster, cfg->cluster) != 0 ||
	    memcmp(c->hello.dirs_hash, cfg->dirs_hash, sizeof(cfg->dirs_hash)) != 0) {
		log_error("%s: node '%s' replicates %s: refusing it", c->peer, c->hello.node,
		          strcmp(c->hello.cluster, cfg->cluster) ? "for another cluster"
		                                                  : "another list of directories");
		goto out;
	}
	if (c->hello.role == cfg->role) {
		log_error("%s: node '%s' has the same role (%s) as this node", c->peer, c->hello.node,
		          wire_role_str(cfg->role));
		goto out;
	}
	if (!dialer && rfs_conn_send(c, WIRE_HELLO, 0, &iov, 1) < 0)
		goto out;
	rc = 0;
out:
	wire_key_wipe(&ktx);
	wire_key_wipe(&krx);
	return rc;
}

static void conn_init(struct rfs_conn *c, int fd, const char *peer, uint32_t timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->io_timeout_ms = timeout_ms ? timeout_ms : 5000;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	tune(fd, c->io_timeout_ms);
}

int rfs_conn_dial(const struct rfs_link_cfg *cfg, const char *addr, struct rfs_conn *c)
{
	struct sockaddr_in sin;
	char err[160];
	int fd;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (rfs_parse_addr(addr, &sin, err, sizeof(err)) < 0) {
		log_error("peer address %s", err);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	conn_init(c, fd, addr, cfg->io_timeout_ms);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		log_debug("%s: connect: %s", addr, strerror(errno));
		return -1;
	}
	return handshake(cfg, c, true);
}

int rfs_listen(const char *addr)
{
	struct sockaddr_in sin;
	char err[160];
	int fd, one = 1;

	if (rfs_parse_addr(addr, &sin, err, sizeof(err)) < 0) {
		log_error("listen address %s", err);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4) < 0) {
		log_error("listen on %s: %s", addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int rfs_conn_accept(const struct rfs_link_cfg *cfg, int fd, const char *peer, struct rfs_conn *c)
{
	conn_init(c, fd, peer, cfg->io_timeout_ms);
	return handshake(cfg, c, false);
}

void rfs_conn_close(struct rfs_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	wire_tx_free(&c->tx);
	wire_rx_free(&c->rx);
	free(c->sbuf);
	free(c->rbuf);
	c->sbuf = c->rbuf = NULL;
}

int rfs_conn_send(struct rfs_conn *c, uint8_t type, uint16_t nops, const struct iovec *iov,
                  int iovcnt)
{
	size_t n = wire_seal_iov(&c->tx, type, 0, nops, iov, iovcnt, c->sbuf, WIRE_FRAME_MAX);

	if (!n) {
		log_error("%s: cannot seal a %s frame", c->peer, wire_type_str(type));
		return -1;
	}
	return write_all(c, c->sbuf, n);
}

int rfs_conn_recv(struct rfs_conn *c, int timeout_ms, struct wire_hdr *hdr, const uint8_t **body)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	enum wire_err e;
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		log_error("%s: poll: %s", c->peer, strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;
	if (recv(c->fd, c->rbuf, 1, MSG_PEEK) == 0) {
		/* Between frames: an orderly end, not a failure. */
		log_info("%s: the peer closed the connection", c->peer);
		return -1;
	}
	if (read_all(c, c->rbuf, WIRE_HDR_LEN, "a frame header") < 0)
		return -1;
	e = wire_open_hdr(c->rbuf, hdr);
	if (e != WIRE_OK) {
		log_error("%s: frame header: %s", c->peer, wire_err_str(e));
		return -1;
	}
	if (read_all(c, c->rbuf + WIRE_HDR_LEN, hdr->len + WIRE_TAG_LEN, wire_type_str(hdr->type)) < 0)
		return -1;
	e = wire_open(&c->rx, hdr, c->rbuf + WIRE_HDR_LEN, c->rbuf + WIRE_HDR_LEN);
	if (e != WIRE_OK) {
		log_error("%s: %s frame %llu: %s", c->peer, wire_type_str(hdr->type),
		          (unsigned long long)hdr->frame_no, wire_err_str(e));
		return -1;
	}
	*body = c->rbuf + WIRE_HDR_LEN;
	return 1;
}

int rfs_conn_send_ack(struct rfs_conn *c, const struct wire_ack *a)
{
	uint8_t b[WIRE_ACK_FIXED_LEN + WIRE_TEXT_MAX];
	struct iovec iov = { .iov_base = b };
	uint8_t type = a->err_no ? WIRE_ERROR : WIRE_ACK;

	if (wire_ack_encode(type, a, b, sizeof(b), &iov.iov_len) != WIRE_OK) {
		log_error("%s: cannot encode an %s", c->peer, wire_type_str(type));
		return -1;
	}
	return rfs_conn_send(c, type, 0, &iov, 1);
}
