/* One pool link connection (docs/pool-protocol.md): mutual TLS 1.3 over
 * TCP, frames of a 4-byte big-endian length and one JSON object, each
 * checked by pool_msg_parse() before anyone sees it.
 *
 * Callbacks run on the loop. A callback may call pool_conn_close() on its
 * own connection; the memory goes later, from the loop, so the caller
 * never touches freed memory. */
#ifndef VIGIL_POOL_CONN_H
#define VIGIL_POOL_CONN_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "pool/msg.h"

struct event_base;
struct ssl_ctx_st;
struct pool_conn;

struct pool_conn_cbs {
	/* The handshake is done: peer is the verified CN of its certificate. */
	void (*open)(struct pool_conn *c, const char *peer, void *arg);
	/* One checked message; m is freed after the call. */
	void (*msg)(struct pool_conn *c, const struct pool_msg *m, void *arg);
	/* A frame that failed its checks: err names the field. The
	 * connection stays open: the callee answers and closes. */
	void (*bad)(struct pool_conn *c, const char *err, void *arg);
	/* The connection ended (peer closed, error, timeout); not called
	 * after pool_conn_close(). The connection is gone after the call. */
	void (*closed)(struct pool_conn *c, const char *why, void *arg);
};

/* An accepted socket (server side of the handshake) or a new outgoing
 * connection. NULL on error (logged; fd is closed). */
struct pool_conn *pool_conn_accept(struct event_base *base, struct ssl_ctx_st *tls, int fd,
                                   const struct pool_conn_cbs *cbs, void *arg);
struct pool_conn *pool_conn_connect(struct event_base *base, struct ssl_ctx_st *tls,
                                    const struct sockaddr_in *to, const struct pool_conn_cbs *cbs, void *arg);

/* Sends msg (the reference is taken). 0, or -1 when the connection is
 * closing or too far behind (then it is closed, and closed() is called
 * later from the loop). */
int pool_conn_send(struct pool_conn *c, json_t *msg);
/* Ends the connection: with flush, what is queued is sent first (for an
 * error message; at most a few seconds). No callback runs after this. */
void pool_conn_close(struct pool_conn *c, bool flush);
/* Ends and frees it now, no callback: never from inside one of its own
 * callbacks (a timer or shutdown path only). */
void pool_conn_free(struct pool_conn *c);
/* "10.0.0.21:40112" */
const char *pool_conn_addr(const struct pool_conn *c);
/* The peer's CN once open, else "". */
const char *pool_conn_peer(const struct pool_conn *c);
/* Once open: the peer's certificate is a pool member's (OU
 * PKI_POOL_MEMBER_OU, made by vigilctl pki member), not a node's. */
bool pool_conn_peer_member(const struct pool_conn *c);

#endif
