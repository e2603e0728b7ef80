/* HTTPS for the console: OpenSSL under libevent's bufferevents. The files
 * are the ones docs/pki.md names: custom ones in the config directory
 * first, then those `vigilctl pki` made. */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/http_int.h"
#include "common/log.h"
#include "pki/pki.h"

static void ssl_err(char *err, size_t errlen, const char *what, const char *path)
{
	char e[160];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf(err, errlen, "%s %s: %s", what, path, e);
	ERR_clear_error();
}

struct ssl_ctx_st *http_tls_ctx(const char *config_dir, const char *node, char *err, size_t errlen)
{
	struct pki_paths p;
	SSL_CTX *ctx;

	char why[600];

	if (pki_paths(config_dir, node, &p) < 0) {
		snprintf(err, errlen, "certificate paths under %s are too long", config_dir);
		return NULL;
	}
	if (!p.cert.exists || !p.key.exists) {
		if (pki_paths_check(&p, why, sizeof(why)) < 0)
			snprintf(err, errlen, "%s: run vigilctl pki, or put server.crt and server.key in %s", why,
			         config_dir);
		else
			snprintf(err, errlen, "no server certificate in %s", config_dir);
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, p.cert.path) != 1) {
		ssl_err(err, errlen, "cannot load the certificate", p.cert.path);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, p.key.path, SSL_FILETYPE_PEM) != 1) {
		ssl_err(err, errlen, "cannot load the key", p.key.path);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s does not match %s", p.key.path, p.cert.path);
		goto fail;
	}
	/* clcacert.crt: only browsers holding a certificate it signed may
	 * connect at all (the password is still asked). */
	if (p.client_ca.exists) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(p.client_ca.path);

		if (SSL_CTX_load_verify_locations(ctx, p.client_ca.path, NULL) != 1 || !names) {
			if (names)
				sk_X509_NAME_pop_free(names, X509_NAME_free);
			ssl_err(err, errlen, "cannot load the client CA", p.client_ca.path);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		log_info("console: HTTPS asks for a client certificate signed by %s", p.client_ca.path);
	}
	log_info("console: HTTPS certificate %s", p.cert.path);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void http_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

static struct bufferevent *new_tls_bev(struct event_base *base, void *arg)
{
	SSL *ssl = SSL_new(arg);

	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

void http_tls_attach(struct evhttp *http, struct event_base *base, struct ssl_ctx_st *ctx)
{
	(void)base;
	evhttp_set_bevcb(http, new_tls_bev, ctx);
}
