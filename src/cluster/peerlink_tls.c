#include "cluster/peerlink_tls.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static void ssl_err(char *err, size_t errlen, const char *what, const char *path)
{
	char e[160];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf(err, errlen, "%s %.200s: %s", what, path, e);
	ERR_clear_error();
}

struct ssl_ctx_st *peerlink_tls_ctx(const struct config *cfg, int self, bool *off, char *err, size_t errlen)
{
	*off = false;
	if (cfg->link_tls == LINK_TLS_OFF) {
		*off = true;
		snprintf(err, errlen, "link_tls = off");
		return NULL;
	}
	return tls_mutual_ctx(cfg->path, cfg->nodes[self].name, cfg->link_tls == LINK_TLS_AUTO ? off : NULL,
	                      "peer link", err, errlen);
}

struct ssl_ctx_st *tls_mutual_ctx(const char *config_path, const char *name, bool *off, const char *what,
                                  char *err, size_t errlen)
{
	char tmp[PATH_MAX], dir[PATH_MAX], ca[PATH_MAX + 16], crt[PATH_MAX + 80], key[PATH_MAX + 80];
	SSL_CTX *ctx;
	int have;

	if (off)
		*off = false;
	/* The link trusts the cluster's own CA only, whatever certificates
	 * the console shows browsers (custom ones may come from elsewhere). */
	snprintf(tmp, sizeof(tmp), "%s", config_path);
	snprintf(dir, sizeof(dir), "%s/pki", dirname(tmp));
	if (snprintf(ca, sizeof(ca), "%s/cacert.crt", dir) >= (int)sizeof(ca) ||
	    snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name) >= (int)sizeof(crt) ||
	    snprintf(key, sizeof(key), "%s/%s.key", dir, name) >= (int)sizeof(key)) {
		snprintf(err, errlen, "certificate paths too long");
		return NULL;
	}
	have = (access(ca, R_OK) == 0) + (access(crt, R_OK) == 0) + (access(key, R_OK) == 0);
	if (have < 3) {
		snprintf(err, errlen, "%s: %s, %s and %s are needed (vigilctl pki)",
		         have ? "some certificate files are missing" : "no certificates", ca, crt, key);
		if (off)
			*off = have == 0;
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_method());
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1) {
		ssl_err(err, errlen, "cannot load the certificate", crt);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errlen, "cannot load the key (or it does not match the certificate)", key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		ssl_err(err, errlen, "cannot load the CA", ca);
		goto fail;
	}
	/* Both ends show a certificate of the cluster's CA. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	log_info("%s: mutual TLS with %s (CA %s)", what, crt, ca);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void peerlink_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

int peerlink_tls_check_peer(struct ssl_st *ssl, const char *peer, char *why, size_t whylen)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	char cn[256] = "";
	long v = SSL_get_verify_result(ssl);

	if (!cert) {
		snprintf(why, whylen, "no certificate shown");
		return -1;
	}
	if (v != X509_V_OK) {
		snprintf(why, whylen, "certificate not trusted: %s", X509_verify_cert_error_string(v));
		X509_free(cert);
		return -1;
	}
	X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
	X509_free(cert);
	if (strcmp(cn, peer)) {
		snprintf(why, whylen, "certificate is for '%.100s', not %s", cn, peer);
		return -1;
	}
	return 0;
}

bool tls_socket_failure(int err)
{
	switch (err) {
	case ECONNREFUSED: case ECONNRESET: case ECONNABORTED: case EPIPE:
	case EHOSTUNREACH: case ENETUNREACH: case EHOSTDOWN: case ENETDOWN: case ETIMEDOUT:
		return true;
	default:
		return false;
	}
}

/* libevent queues SSL_get_error()'s own code (SSL_ERROR_SYSCALL = 5 for a
 * refused or reset socket) next to OpenSSL's packed errors; alone, it would
 * print as "error:00000005:lib(0)::reason(5)". Those small codes are not
 * TLS errors: skipped, and with nothing else the caller reports the socket's
 * error instead. */
const char *tls_bev_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e, found = 0;

	while ((e = bufferevent_get_openssl_error(bev)))
		if (!found && ERR_GET_LIB(e) != 0)
			found = e;
	if (!found)
		return NULL;
	ERR_error_string_n(found, buf, len);
	return buf;
}
