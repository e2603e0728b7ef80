/* Mutual TLS for the command link between the two vigild, with the
 * cluster's certificates (docs/pki.md): each side proves it holds a
 * certificate of the cluster's CA whose common name is the node it claims
 * to be. The signed frames of common/proto.h still travel inside. */
#ifndef VIGIL_PEERLINK_TLS_H
#define VIGIL_PEERLINK_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

struct ssl_ctx_st;
struct ssl_st;

/* The context for this node (both ends of connections), or NULL: *off set
 * when [cluster] link_tls and the files say plain frames (err says why),
 * clear when TLS is wanted but cannot be had (err says why: fatal). */
struct ssl_ctx_st *peerlink_tls_ctx(const struct config *cfg, int self, bool *off, char *err, size_t errlen);
/* The same for any member of the cluster's PKI (a pool recorder or spare):
 * DIR/pki/cacert.crt, DIR/pki/NAME.crt and NAME.key, DIR the config
 * file's directory. off (may be NULL) is set when none of the files
 * exists. what names the link in the log. */
struct ssl_ctx_st *tls_mutual_ctx(const char *config_path, const char *name, bool *off, const char *what,
                                  char *err, size_t errlen);
void peerlink_tls_ctx_free(struct ssl_ctx_st *ctx);

/* After the handshake: 0 when the peer's certificate names `peer`, else -1
 * with why. */
int peerlink_tls_check_peer(struct ssl_st *ssl, const char *peer, char *why, size_t whylen);

/* What went wrong on a TLS bufferevent, for the log (the queue of errors
 * is emptied), or NULL when OpenSSL has nothing to say. */
struct bufferevent;
const char *tls_bev_error(struct bufferevent *bev, char *buf, size_t len);
/* err (errno as the TLS bufferevent's event callback found it) is a socket
 * failure worth naming: a TLS bufferevent reports a refused or reset
 * connection as a dirty EOF, with the reason only in errno. */
bool tls_socket_failure(int err);

#endif
