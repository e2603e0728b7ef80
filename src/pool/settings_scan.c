#include "pool/settings_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/names.h"

#define READ_CHUNK 65536

struct walk {
	const struct pool_scan_limits *lim;
	const struct pool_sset *prev;
	struct pool_sset *out;
	size_t cap;
	char *err;
	size_t errlen;
};

static int seterr(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int seterr(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, w->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct pool_sfile *)a)->path, ((const struct pool_sfile *)b)->path);
}

static const struct pool_sfile *find(const struct pool_sset *s, const char *path)
{
	struct pool_sfile key;

	if (!s || !s->n)
		return NULL;
	snprintf(key.path, sizeof(key.path), "%s", path);
	return bsearch(&key, s->v, s->n, sizeof(*s->v), by_path);
}

static int hash_fd(int fd, const char *path, struct pool_sfile *f, struct walk *w)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[READ_CHUNK], md[32];
	unsigned int mdlen = 0;
	uint64_t total = 0;
	ssize_t n;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return seterr(w, "%s: cannot hash: out of memory", path);
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			EVP_MD_CTX_free(ctx);
			return seterr(w, "%s: cannot read: %s", path, strerror(errno));
		}
		total += (uint64_t)n;
		/* It grew while we read: hashing on would pass the limit. */
		if (total > w->lim->file_max) {
			EVP_MD_CTX_free(ctx);
			return seterr(w, "%s: over the limit of %llu bytes", path, (unsigned long long)w->lim->file_max);
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < 32; i++)
		snprintf(f->sha256 + 2 * i, 3, "%02x", md[i]);
	/* What was hashed is what counts, even if the file changed size
	 * after its stat: the next scan sees the new mtime. */
	f->size = total;
	return 0;
}

static struct pool_sfile *push(struct walk *w, const char *path)
{
	struct pool_sset *s = w->out;

	if (s->n >= w->lim->count_max) {
		seterr(w, "%s: more than %zu files in the settings directory", path, w->lim->count_max);
		return NULL;
	}
	if (s->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct pool_sfile *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			seterr(w, "out of memory");
			return NULL;
		}
		s->v = v;
		w->cap = cap;
	}
	memset(&s->v[s->n], 0, sizeof(s->v[s->n]));
	return &s->v[s->n++];
}

static int add_file(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *st)
{
	const struct pool_sfile *old = find(w->prev, rel);
	struct pool_sfile *f;
	int fd, r;

	if ((uint64_t)st->st_size > w->lim->file_max)
		return seterr(w, "%s: %lld bytes, over the limit of %llu", rel, (long long)st->st_size,
		              (unsigned long long)w->lim->file_max);
	f = push(w, rel);
	if (!f)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s", rel);
	f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	f->ino = (uint64_t)st->st_ino;
	f->size = (uint64_t)st->st_size;
	if (old && old->size == f->size && old->mtime_ns == f->mtime_ns && old->ino == f->ino) {
		memcpy(f->sha256, old->sha256, sizeof(f->sha256));
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return seterr(w, "%s: cannot open: %s", rel, strerror(errno));
	r = hash_fd(fd, rel, f, w);
	close(fd);
	return r;
}

static int walk_dir(struct walk *w, int dirfd, const char *prefix, int depth)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *e;
	int r = 0;

	if (!d) {
		close(dirfd);
		return seterr(w, "%s: cannot list: %s", *prefix ? prefix : ".", strerror(errno));
	}
	while (r == 0 && (errno = 0, e = readdir(d))) {
		char rel[POOL_SFILE_PATH];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "/" : "", e->d_name) >= (int)sizeof(rel)) {
			r = seterr(w, "%s/%s: path longer than %d bytes", prefix, e->d_name, POOL_SFILE_PATH - 1);
			break;
		}
		/* The rule the master applies to what it receives. */
		if (!pool_path_ok(rel)) {
			r = seterr(w, "'%s': a name of non-printable or non-ASCII characters", rel);
			break;
		}
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)    /* removed meanwhile */
				continue;
			r = seterr(w, "%s: cannot stat: %s", rel, strerror(errno));
			break;
		}
		if (S_ISREG(st.st_mode)) {
			r = add_file(w, dirfd, e->d_name, rel, &st);
		} else if (S_ISDIR(st.st_mode)) {
			int sub;

			if (depth >= w->lim->depth_max) {
				r = seterr(w, "%s: deeper than %d levels", rel, w->lim->depth_max);
				break;
			}
			sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = seterr(w, "%s: cannot open: %s", rel, strerror(errno));
				break;
			}
			r = walk_dir(w, sub, rel, depth + 1);
		} else {
			w->out->skipped++;
		}
	}
	if (r == 0 && errno)
		r = seterr(w, "%s: cannot list: %s", *prefix ? prefix : ".", strerror(errno));
	closedir(d);
	return r;
}

int pool_settings_scan(const char *dir, const struct pool_scan_limits *lim, const struct pool_sset *prev,
                       struct pool_sset *out, char *err, size_t errlen)
{
	struct walk w = { .lim = lim, .prev = prev, .out = out, .err = err, .errlen = errlen };
	int fd;

	memset(out, 0, sizeof(*out));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "settings directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (walk_dir(&w, fd, "", 0) < 0) {
		char inner[512];

		snprintf(inner, sizeof(inner), "%s", err);
		snprintf(err, errlen, "settings directory %s: %s", dir, inner);
		pool_sset_free(out);
		return -1;
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), by_path);
	return 0;
}

void pool_files_free(struct pool_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].data);
	free(f);
}

void pool_sset_free(struct pool_sset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

size_t pool_sset_diff(const struct pool_sset *a, const struct pool_sset *b,
                      void (*cb)(const struct pool_sfile *f, bool present, void *arg), void *arg)
{
	size_t i = 0, j = 0, calls = 0;
	size_t an = a ? a->n : 0, bn = b ? b->n : 0;

	while (i < an || j < bn) {
		int c = i == an ? 1 : j == bn ? -1 : strcmp(a->v[i].path, b->v[j].path);

		if (c < 0) {
			cb(&a->v[i++], false, arg);
			calls++;
		} else if (c > 0) {
			cb(&b->v[j++], true, arg);
			calls++;
		} else {
			if (strcmp(a->v[i].sha256, b->v[j].sha256)) {
				cb(&b->v[j], true, arg);
				calls++;
			}
			i++;
			j++;
		}
	}
	return calls;
}
