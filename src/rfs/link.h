/* One replication connection between PRIM and SECOND: TCP, the clear
 * hello, the direction keys and the HELLO frames (wire.h), then sealed
 * frames both ways. Blocking I/O, meant for dedicated threads: one thread
 * may send while another receives, never two of either.
 *
 * Every failure is logged with the peer's address and what went wrong
 * ("127.0.0.1:5600: HELLO: bad tag (wrong secret, cluster or session...)")
 * and returns -1; the connection is then only good for rfs_conn_close(). */
#ifndef VIGIL_RFS_LINK_H
#define VIGIL_RFS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "rfs/wire.h"

struct rfs_conn {
	int fd;
	char peer[64];                  /* "ADDR:PORT", for messages */
	struct wire_tx tx;
	struct wire_rx rx;
	struct wire_hello hello;        /* the peer's */
	uint8_t *sbuf;                  /* one sealed frame (sender thread) */
	uint8_t *rbuf;                  /* one received frame (receiver thread) */
	uint32_t io_timeout_ms;         /* a stalled peer mid-frame fails after it */
};

struct rfs_link_cfg {
	const uint8_t *secret;
	size_t secret_len;
	const char *cluster;
	const char *node;               /* this node's name, in HELLO */
	uint8_t role;                   /* enum wire_role */
	uint8_t dirs_hash[WIRE_DIRS_HASH_LEN];
	uint32_t io_timeout_ms;
	uint8_t gens[WIRE_GENS_LEN];    /* this node's generations (gen.h), in HELLO */
	uint32_t hello_flags;           /* WIRE_HELLO_* */
};

/* "ADDR:PORT" (IPv4) into a sockaddr; -1 with a message naming s. */
struct sockaddr_in;
int rfs_parse_addr(const char *s, struct sockaddr_in *out, char *err, size_t errlen);

/* Connects to addr and does the handshake as the dialer. 0 or -1. */
int rfs_conn_dial(const struct rfs_link_cfg *cfg, const char *addr, struct rfs_conn *c);
/* Listening socket on addr (SO_REUSEADDR). fd or -1. */
int rfs_listen(const char *addr);
/* Handshake as the listener on an accepted socket fd (taken over). */
int rfs_conn_accept(const struct rfs_link_cfg *cfg, int fd, const char *peer, struct rfs_conn *c);
void rfs_conn_close(struct rfs_conn *c);

/* Seals and sends one frame made of the pieces. 0 or -1. */
int rfs_conn_send(struct rfs_conn *c, uint8_t type, uint16_t nops, const struct iovec *iov,
                  int iovcnt);
/* Waits up to timeout_ms for a frame to begin: 1 with *hdr and *body (the
 * plain body, valid until the next call), 0 on timeout, -1 on error or
 * when the peer closed. */
int rfs_conn_recv(struct rfs_conn *c, int timeout_ms, struct wire_hdr *hdr, const uint8_t **body);

/* Sends an ACK (or ERROR when a->err_no != 0). 0 or -1. */
int rfs_conn_send_ack(struct rfs_conn *c, const struct wire_ack *a);

#endif
