/* The setup channel: TLS 1.3 between node1 (client) and node2's setup agent
 * (server), length-prefixed JSON messages, and the security code that
 * authenticates both ends. Blocking sockets with timeouts: only vigilctl
 * uses this, never an event loop. */
#include "vigilctl_setup_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/util.h"

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* RFC 4648 base32 without padding, nchars characters of it. */
static void base32(const unsigned char *in, size_t inlen, char *out, size_t nchars)
{
	size_t bit = 0;

	for (size_t i = 0; i < nchars; i++, bit += 5) {
		size_t byte = bit / 8, off = bit % 8;
		unsigned v = (unsigned)(byte < inlen ? in[byte] : 0) << 8 | (byte + 1 < inlen ? in[byte + 1] : 0);

		out[i] = b32[(v >> (11 - off)) & 31];
	}
	out[nchars] = '\0';
}

int setup_code_make(const unsigned char keyhash[32], const unsigned char rnd[SETUP_CODE_RAND_BYTES],
		    char out[SETUP_CODE_TEXT])
{
	char raw[SETUP_CODE_CHARS + 1];
	size_t o = 0;

	base32(keyhash, 32, raw, SETUP_CODE_KEY_CHARS);
	base32(rnd, SETUP_CODE_RAND_BYTES, raw + SETUP_CODE_KEY_CHARS, SETUP_CODE_CHARS - SETUP_CODE_KEY_CHARS);
	for (size_t i = 0; i < SETUP_CODE_CHARS; i++) {
		if (i && i % 4 == 0)
			out[o++] = '-';
		out[o++] = raw[i];
	}
	out[o] = '\0';
	return 0;
}

int setup_code_normalize(const char *in, char out[SETUP_CODE_CHARS + 1], char *err, size_t errlen)
{
	static const char want[] = "expected 20 characters of A-Z and 2-7 in groups of 4, like "
				   "ABCD-EFGH-IJKL-MNOP-QRST (as node2 printed it)";
	size_t n = 0, all = 0;
	const char *bad = NULL;

	for (const char *s = in; *s; s++) {
		char c = *s;

		if (c == '-' || c == ' ' || c == '\t')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		all++;
		if (!strchr(b32, c)) {
			bad = bad ? bad : s;
			continue;
		}
		if (n < SETUP_CODE_CHARS)
			out[n++] = c;
	}
	if (bad) {
		/* A byte, not a character: UTF-8 shows as its hex. */
		if ((unsigned char)*bad >= 0x20 && (unsigned char)*bad < 0x7f)
			snprintf(err, errlen, "security code '%.60s': '%c' is not one of A-Z and 2-7; %s", in, *bad, want);
		else
			snprintf(err, errlen, "security code '%.60s': byte 0x%02x is not one of A-Z and 2-7; %s", in,
				 (unsigned char)*bad, want);
		return -1;
	}
	if (all != SETUP_CODE_CHARS) {
		snprintf(err, errlen, "security code '%.60s': %zu characters, %s", in, all, want);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

bool setup_code_fits_key(const char norm[SETUP_CODE_CHARS + 1], const unsigned char keyhash[32])
{
	char want[SETUP_CODE_KEY_CHARS + 1];

	base32(keyhash, 32, want, SETUP_CODE_KEY_CHARS);
	return CRYPTO_memcmp(want, norm, SETUP_CODE_KEY_CHARS) == 0;
}

bool setup_code_equal(const char *a, const char *b)
{
	return strlen(a) == SETUP_CODE_CHARS && strlen(b) == SETUP_CODE_CHARS &&
	       CRYPTO_memcmp(a, b, SETUP_CODE_CHARS) == 0;
}

static int x509_keyhash(X509 *x, unsigned char out[32])
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	int rc = -1;

	if (len > 0 && EVP_Digest(der, (size_t)len, out, NULL, EVP_sha256(), NULL) == 1)
		rc = 0;
	OPENSSL_free(der);
	return rc;
}

int setup_cert_keyhash(const char *certfile, unsigned char out[32], char *err, size_t errlen)
{
	FILE *f = fopen(certfile, "re");
	X509 *x;
	int rc;

	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", certfile, strerror(errno));
		return -1;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		snprintf(err, errlen, "%s: no certificate in it", certfile);
		return -1;
	}
	rc = x509_keyhash(x, out);
	X509_free(x);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot hash its public key", certfile);
	return rc;
}

/* The first OpenSSL error, for a message ("" if none was queued). */
static const char *ssl_why(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	buf[0] = '\0';
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

void setup_chan_init(struct setup_chan *c)
{
	*c = (struct setup_chan){ .fd = -1 };
}

void setup_chan_close(struct setup_chan *c)
{
	if (c->ssl) {
		/* A close_notify, not waited for: the peer may be gone. */
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	/* ctx belongs to the caller on the server side (one per agent). */
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	setup_chan_init(c);
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = SETUP_IO_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int tcp_connect(struct in_addr host, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = host };
	char ip[INET_ADDRSTRLEN];
	struct pollfd pfd;
	int fd, soerr = 0, r;
	socklen_t sl = sizeof(soerr);

	inet_ntop(AF_INET, &host, ip, sizeof(ip));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		soerr = errno;
		goto fail;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	do
		r = poll(&pfd, 1, SETUP_CONNECT_TIMEOUT_S * 1000);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		snprintf(err, errlen, "cannot reach node2's setup agent at %s port %u: no answer within %d s "
			 "(is `vigilctl setup secondary` running there, and the address right?)",
			 ip, port, SETUP_CONNECT_TIMEOUT_S);
		close(fd);
		return -1;
	}
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr)
		goto fail;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		soerr = errno;
		goto fail;
	}
	set_timeouts(fd);
	return fd;
fail:
	snprintf(err, errlen, "cannot reach node2's setup agent at %s port %u: %s%s", ip, port, strerror(soerr),
		 soerr == ECONNREFUSED ? " (run `vigilctl setup secondary` on node2 first)" : "");
	close(fd);
	return -1;
}

int setup_chan_connect(struct setup_chan *c, struct in_addr host, uint16_t port, unsigned char keyhash[32],
		       char *err, size_t errlen)
{
	X509 *x;

	setup_chan_init(c);
	inet_ntop(AF_INET, &host, c->peer, sizeof(c->peer));
	if ((c->fd = tcp_connect(host, port, err, errlen)) < 0)
		return -1;
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION)) {
		snprintf(err, errlen, "TLS: cannot set up: %s", ssl_why());
		goto fail;
	}
	/* No chain to verify: the agent's certificate is its own, made for
	 * this setup; the security code names its key. */
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	if (!(c->ssl = SSL_new(c->ctx)) || !SSL_set_fd(c->ssl, c->fd)) {
		snprintf(err, errlen, "TLS: cannot set up: %s", ssl_why());
		goto fail;
	}
	if (SSL_connect(c->ssl) != 1) {
		const char *why = ssl_why();

		snprintf(err, errlen, "TLS handshake with %s port %u failed: %s", c->peer, port,
			 *why ? why : errno ? strerror(errno) : "the connection was closed");
		goto fail;
	}
	x = SSL_get1_peer_certificate(c->ssl);
	if (!x || x509_keyhash(x, keyhash) < 0) {
		X509_free(x);
		snprintf(err, errlen, "TLS: %s port %u sent no usable certificate", c->peer, port);
		goto fail;
	}
	X509_free(x);
	return 0;
fail:
	setup_chan_close(c);
	return -1;
}

struct ssl_ctx_st *setup_chan_server_ctx(const char *keyfile, const char *certfile, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) {
		snprintf(err, errlen, "TLS: cannot set up: %s", ssl_why());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_file(ctx, certfile, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "TLS: cannot use %s and %s: %s", certfile, keyfile, ssl_why());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int setup_chan_accept(struct setup_chan *c, struct ssl_ctx_st *ctx, int fd, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	setup_chan_init(c);
	c->fd = fd;
	if (getpeername(fd, (struct sockaddr *)&sa, &sl) == 0 && sa.sin_family == AF_INET)
		inet_ntop(AF_INET, &sa.sin_addr, c->peer, sizeof(c->peer));
	else
		snprintf(c->peer, sizeof(c->peer), "?");
	set_timeouts(fd);
	if (!(c->ssl = SSL_new(ctx)) || !SSL_set_fd(c->ssl, fd)) {
		snprintf(err, errlen, "TLS: cannot set up: %s", ssl_why());
		return -1;
	}
	if (SSL_accept(c->ssl) != 1) {
		const char *why = ssl_why();

		snprintf(err, errlen, "TLS handshake with %s failed: %s", c->peer,
			 *why ? why : errno ? strerror(errno) : "the connection was closed");
		return -1;
	}
	return 0;
}

static int ssl_write_all(struct setup_chan *c, const void *buf, size_t len, char *err, size_t errlen)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		if (SSL_write_ex(c->ssl, (const char *)buf + done, len - done, &n) != 1) {
			const char *why = ssl_why();

			snprintf(err, errlen, "cannot send to %s: %s", c->peer,
				 *why ? why : errno == EAGAIN ? "timed out" : errno ? strerror(errno) : "closed");
			return -1;
		}
		done += n;
	}
	return 0;
}

static int ssl_read_all(struct setup_chan *c, void *buf, size_t len, char *err, size_t errlen)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		errno = 0;
		if (SSL_read_ex(c->ssl, (char *)buf + done, len - done, &n) != 1) {
			int e = errno;
			const char *why = ssl_why();

			if (e == EAGAIN || e == EWOULDBLOCK)
				snprintf(err, errlen, "%s sent nothing within %d s", c->peer, SETUP_IO_TIMEOUT_S);
			else
				snprintf(err, errlen, "%s closed the connection%s%s", c->peer, *why ? ": " : "", why);
			return -1;
		}
		done += n;
	}
	return 0;
}

int setup_chan_send(struct setup_chan *c, json_t *msg, char *err, size_t errlen)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	unsigned char hdr[4];
	size_t len;
	int rc;

	if (!text) {
		snprintf(err, errlen, "cannot encode a message (out of memory)");
		return -1;
	}
	len = strlen(text);
	if (len > SETUP_MSG_MAX) {
		snprintf(err, errlen, "a message of %zu bytes is too large", len);
		free(text);
		return -1;
	}
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	rc = ssl_write_all(c, hdr, 4, err, errlen);
	if (rc == 0)
		rc = ssl_write_all(c, text, len, err, errlen);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

json_t *setup_chan_recv(struct setup_chan *c, char *err, size_t errlen)
{
	unsigned char hdr[4];
	json_error_t jerr;
	json_t *msg;
	size_t len;
	char *buf;

	if (ssl_read_all(c, hdr, 4, err, errlen) < 0)
		return NULL;
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len > SETUP_MSG_MAX) {
		snprintf(err, errlen, "%s sent a message of %zu bytes (1 to %u allowed): not a vigil setup peer?",
			 c->peer, len, SETUP_MSG_MAX);
		return NULL;
	}
	if (!(buf = malloc(len))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (ssl_read_all(c, buf, len, err, errlen) < 0) {
		free(buf);
		return NULL;
	}
	msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	explicit_bzero(buf, len);
	free(buf);
	if (!json_is_object(msg)) {
		snprintf(err, errlen, "%s sent something that is not a JSON object%s%s", c->peer, msg ? "" : ": ",
			 msg ? "" : jerr.text);
		json_decref(msg);
		return NULL;
	}
	return msg;
}
