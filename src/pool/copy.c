#include "pool/copy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "pool/names.h"

#define PART_SUFFIX ".vigil-part"
#define CHUNK 65536
#define LINE_MAX_LEN 512

/* ---- shared: lines and bytes over SSL ------------------------------------ */

struct chan {
	SSL *ssl;
	char buf[LINE_MAX_LEN * 2];
	size_t have;
};

static int chan_write(struct chan *c, const void *data, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		if (SSL_write_ex(c->ssl, (const char *)data + done, len - done, &n) != 1)
			return -1;
		done += n;
	}
	return 0;
}

static int chan_printf(struct chan *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int chan_printf(struct chan *c, const char *fmt, ...)
{
	char line[LINE_MAX_LEN + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return chan_write(c, line, (size_t)n);
}

/* One line without its '\n'; -1 on error, EOF or a line too long. */
static int chan_line(struct chan *c, char *out, size_t outlen)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->have);
		size_t n = 0;

		if (nl) {
			size_t len = (size_t)(nl - c->buf);

			if (len >= outlen)
				return -1;
			memcpy(out, c->buf, len);
			out[len] = '\0';
			memmove(c->buf, nl + 1, c->have - len - 1);
			c->have -= len + 1;
			return 0;
		}
		if (c->have == sizeof(c->buf))
			return -1;
		if (SSL_read_ex(c->ssl, c->buf + c->have, sizeof(c->buf) - c->have, &n) != 1)
			return -1;
		c->have += n;
	}
}

/* Exactly len bytes (what is buffered first). */
static int chan_read(struct chan *c, void *out, size_t len)
{
	size_t done = c->have < len ? c->have : len;

	memcpy(out, c->buf, done);
	memmove(c->buf, c->buf + done, c->have - done);
	c->have -= done;
	while (done < len) {
		size_t n = 0;

		if (SSL_read_ex(c->ssl, (char *)out + done, len - done, &n) != 1)
			return -1;
		done += n;
	}
	return 0;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { COPY_IO_TIMEOUT_S, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* SHA-256 of a file's first len bytes (all of it: len = -1). */
static int file_sha256(const char *path, off_t len, char out[65])
{
	unsigned char buf[CHUNK], md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
	off_t left = len;

	if (fd < 0 || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, len < 0 || left > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)left);

		if (n < 0)
			goto out;
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		left -= n;
		if (len >= 0 && left == 0)
			break;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ---- the recorder's side ----------------------------------------------------- */

struct copy_server {
	struct ssl_ctx_st *tls;
	char dir[PATH_MAX];
	int fd;
	pthread_t thread;
	volatile int stop;
};

static int mkdirs_for(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	size_t base = strlen(dir) + 1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
		return -1;
	for (char *p = path + base; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

static void fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Answers ERR: the spare gives this copy up; -1 ends the connection. */
static int refuse_file(struct chan *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse_file(struct chan *c, const char *fmt, ...)
{
	char msg[LINE_MAX_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("pool copy: refused: %s", msg);
	chan_printf(c, "ERR %s\n", msg);
	return -1;
}

/* One FILE request: 0 when the file is home (or was already), -1 when
 * the connection ends. */
static int serve_file(struct copy_server *s, struct chan *c, char *line)
{
	unsigned long long size;
	char sum[65], have_sum[65], dst[PATH_MAX], part[PATH_MAX + 16], buf[CHUNK];
	int off = 0, fd;
	const char *path;
	struct stat st;
	off_t have = 0;

	if (sscanf(line, "FILE %llu %64s %n", &size, sum, &off) != 2 || !off)
		return refuse_file(c, "bad request");
	path = line + off;
	if (!pool_path_ok(path) || !pool_sha256_ok(sum) || strstr(path, PART_SUFFIX))
		return refuse_file(c, "bad path or checksum");
	if (snprintf(dst, sizeof(dst), "%s/%s", s->dir, path) >= (int)sizeof(dst))
		return refuse_file(c, "path too long");
	snprintf(part, sizeof(part), "%s%s", dst, PART_SUFFIX);
	if (stat(dst, &st) == 0) {
		/* Already home: the same file is not written twice; another file
		 * under its name is not overwritten. */
		if ((unsigned long long)st.st_size == size && file_sha256(dst, -1, have_sum) == 0 && !strcmp(have_sum, sum))
			return chan_printf(c, "SKIP\n");
		return refuse_file(c, "%s exists with other content", path);
	}
	if (mkdirs_for(s->dir, path) < 0)
		return refuse_file(c, "cannot make the directory for %s: %s", path, strerror(errno));
	if (stat(part, &st) == 0 && (unsigned long long)st.st_size <= size)
		have = st.st_size;
	fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC | (have ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0)
		return refuse_file(c, "cannot write %s: %s", path, strerror(errno));
	if (chan_printf(c, "HAVE %lld\n", (long long)have) < 0) {
		close(fd);
		return -1;
	}
	for (unsigned long long left = size - (unsigned long long)have; left;) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);

		/* What arrived stays in the .part: the next attempt goes on
		 * from there. */
		if (chan_read(c, buf, n) < 0 || write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return -1;
		}
		left -= n;
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		return refuse_file(c, "cannot write %s: %s", path, strerror(errno));
	if (file_sha256(part, -1, have_sum) < 0 || strcmp(have_sum, sum)) {
		unlink(part);
		return refuse_file(c, "%s: checksum mismatch, copy again", path);
	}
	if (rename(part, dst) < 0)
		return refuse_file(c, "cannot rename %s: %s", path, strerror(errno));
	fsync_parent(dst);
	return chan_printf(c, "OK\n");
}

static void serve(struct copy_server *s, int fd)
{
	SSL *ssl = SSL_new(s->tls);
	struct chan c = { .ssl = ssl };
	char line[LINE_MAX_LEN];
	X509 *peer;

	set_timeouts(fd);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) {
		log_warn("pool copy: a TLS handshake failed");
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	if (!peer || SSL_get_verify_result(ssl) != X509_V_OK) {
		log_warn("pool copy: a peer without a trusted certificate");
		X509_free(peer);
		goto out;
	}
	X509_free(peer);
	while (!s->stop && chan_line(&c, line, sizeof(line)) == 0) {
		if (!strcmp(line, "END")) {
			chan_printf(&c, "BYE\n");
			break;
		}
		if (strncmp(line, "FILE ", 5) || serve_file(s, &c, line) < 0)
			break;
	}
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	ERR_clear_error();
	close(fd);
}

static void *server_main(void *arg)
{
	struct copy_server *s = arg;

	while (!s->stop) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (!s->stop)
				log_warn("pool copy: accept: %s", strerror(errno));
			break;
		}
		serve(s, fd);
	}
	return NULL;
}

struct copy_server *copy_server_start(struct ssl_ctx_st *tls, uint16_t port, const char *dir, char *err,
                                      size_t errlen)
{
	struct copy_server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY };
	int one = 1;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->tls = tls;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->fd, 8) < 0) {
		snprintf(err, errlen, "copy_port %u: %s", port, strerror(errno));
		goto fail;
	}
	if ((errno = pthread_create(&s->thread, NULL, server_main, s))) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(errno));
		goto fail;
	}
	return s;
fail:
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return NULL;
}

void copy_server_stop(struct copy_server *s)
{
	if (!s)
		return;
	s->stop = 1;
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
	free(s);
}

/* ---- the spare's side -------------------------------------------------------- */

struct flist {
	char (*path)[PATH_MAX];
	unsigned long long *size;
	size_t n, cap;
};

static int walk(const char *root, const char *rel, struct flist *l, int depth)
{
	char dir[PATH_MAX];
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (depth > 16 || snprintf(dir, sizeof(dir), "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof(dir))
		return -1;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT && !*rel ? 0 : -1;
	while (rc == 0 && (e = readdir(d))) {
		char sub[PATH_MAX], full[PATH_MAX * 2];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof(sub))
			continue;
		snprintf(full, sizeof(full), "%s/%s", root, sub);
		if (lstat(full, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			rc = walk(root, sub, l, depth + 1);
		} else if (S_ISREG(st.st_mode) && pool_path_ok(sub)) {
			if (l->n == l->cap) {
				size_t cap = l->cap ? 2 * l->cap : 256;
				void *p = realloc(l->path, cap * sizeof(*l->path)), *q;

				if (!p)
					rc = -1;
				else
					l->path = p;
				q = p ? realloc(l->size, cap * sizeof(*l->size)) : NULL;
				if (!q) {
					rc = -1;
					break;
				}
				l->size = q;
				l->cap = cap;
			}
			snprintf(l->path[l->n], PATH_MAX, "%s", sub);
			l->size[l->n++] = (unsigned long long)st.st_size;
		}
	}
	closedir(d);
	return rc;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int fail(struct copy_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct copy_task *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int connect_to(struct copy_task *t)
{
	char ip[64];
	char *colon;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd;

	snprintf(ip, sizeof(ip), "%s", t->address);
	colon = strrchr(ip, ':');
	if (!colon)
		return fail(t, "bad address '%s'", t->address);
	*colon = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return fail(t, "bad address '%s'", t->address);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(t, "socket: %s", strerror(errno));
	set_timeouts(fd);               /* SO_SNDTIMEO bounds connect() too */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fail(t, "cannot connect to %s: %s", t->address, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int send_file(struct copy_task *t, struct chan *c, const char *rel, unsigned long long size)
{
	char src[PATH_MAX * 2], sum[65], line[LINE_MAX_LEN], buf[CHUNK];
	long long have;
	int fd;

	snprintf(src, sizeof(src), "%s/%s", t->src, rel);
	if (file_sha256(src, -1, sum) < 0)
		return fail(t, "cannot read %s: %s", src, strerror(errno));
	if (chan_printf(c, "FILE %llu %s %s\n", size, sum, rel) < 0 || chan_line(c, line, sizeof(line)) < 0)
		return fail(t, "%s: the recorder stopped answering", rel);
	if (!strcmp(line, "SKIP"))
		goto done;
	if (sscanf(line, "HAVE %lld", &have) != 1 || have < 0 || (unsigned long long)have > size)
		return fail(t, "%s: the recorder said '%.200s'", rel, line);
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || lseek(fd, (off_t)have, SEEK_SET) < 0) {
		if (fd >= 0)
			close(fd);
		return fail(t, "cannot read %s: %s", src, strerror(errno));
	}
	t->stats.bytes_done += (uint64_t)have;
	for (unsigned long long left = size - (unsigned long long)have; left;) {
		ssize_t n = read(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf));

		if (n <= 0 || t->cancel || chan_write(c, buf, (size_t)n) < 0) {
			close(fd);
			return fail(t, t->cancel ? "cancelled" : n <= 0 ? "%s changed while being copied"
			                                                 : "%s: the connection broke", rel);
		}
		left -= (unsigned long long)n;
		t->stats.bytes_done += (uint64_t)n;
	}
	close(fd);
	if (chan_line(c, line, sizeof(line)) < 0)
		return fail(t, "%s: the recorder stopped answering", rel);
	if (strcmp(line, "OK"))
		return fail(t, "%s: the recorder said '%.200s'", rel, line);
	t->stats.bytes_done -= size;    /* counted once below */
done:
	t->stats.bytes_done += size;
	t->stats.files_done++;
	if (t->remove_after && unlink(src) < 0)
		log_warn("pool copy: cannot remove %s after the copy: %s", src, strerror(errno));
	return 0;
}

void copy_run(struct copy_task *t)
{
	struct flist l = { 0 };
	SSL *ssl = NULL;
	struct chan c = { 0 };
	char cn[256] = "", line[LINE_MAX_LEN];
	X509 *peer;
	int fd = -1;

	t->ok = false;
	t->err[0] = '\0';
	memset(&t->stats, 0, sizeof(t->stats));
	if (walk(t->src, "", &l, 0) < 0) {
		fail(t, "cannot list %s: %s", t->src, strerror(errno));
		goto out;
	}
	if (l.n)                        /* qsort(NULL, 0) is undefined */
		qsort(l.path, l.n, sizeof(*l.path), cmp_path);
	/* qsort moved the paths: sizes are looked up again below. */
	t->stats.files_total = (uint32_t)l.n;
	for (size_t i = 0; i < l.n; i++) {
		char full[PATH_MAX * 2];
		struct stat st;

		snprintf(full, sizeof(full), "%s/%s", t->src, l.path[i]);
		l.size[i] = stat(full, &st) == 0 ? (unsigned long long)st.st_size : 0;
		t->stats.bytes_total += l.size[i];
	}
	if ((fd = connect_to(t)) < 0)
		goto out;
	ssl = SSL_new(t->tls);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
		fail(t, "TLS with %s failed", t->address);
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	if (peer)
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
	X509_free(peer);
	if (SSL_get_verify_result(ssl) != X509_V_OK || strcmp(cn, t->recorder)) {
		fail(t, "%s is not recorder %s (certificate for '%s')", t->address, t->recorder, cn);
		goto out;
	}
	c.ssl = ssl;
	for (size_t i = 0; i < l.n; i++)
		if (send_file(t, &c, l.path[i], l.size[i]) < 0)
			goto out;
	if (chan_printf(&c, "END\n") < 0 || chan_line(&c, line, sizeof(line)) < 0 || strcmp(line, "BYE")) {
		fail(t, "the recorder did not confirm the end");
		goto out;
	}
	t->ok = true;
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	ERR_clear_error();
	if (fd >= 0)
		close(fd);
	free(l.path);
	free(l.size);
}
