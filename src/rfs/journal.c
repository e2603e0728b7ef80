/* The dirty record's file: group commit, compaction, hot files and their
 * cooling. See journal.h for the format and rules; journal_codec.c has the
 * codec and replay. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "rfs/journal.h"

/* ---- the file */

struct jbuf {
	uint8_t *p;
	size_t len, cap;
};

struct journal {
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* a flush round ended */
	char *path, *path_new, *dir_path;
	int fd;
	struct dirty_set *set;
	struct jbuf buf;                /* records not yet written */
	struct jbuf wbuf;               /* the records a flush round is writing */
	uint64_t appended;              /* records appended so far (a sequence) */
	uint64_t durable;               /* records up to this one are on disk */
	uint64_t size;                  /* bytes in the file */
	uint64_t compact_bytes;
	uint64_t last_compact;          /* size right after the last compaction */
	uint64_t syncs, compactions;
	uint64_t base;                  /* see JREC_BASE */
	uint32_t epoch;                 /* journal_cool_idle() periods */
	bool mem;                       /* no file: every sync is a no-op */
	bool flushing;                  /* a round runs without the mutex */
	bool broken;                    /* the file may hold a torn write */
};

static int jbuf_reserve(struct jbuf *b, size_t more)
{
	size_t ncap;
	uint8_t *np;

	if (b->cap - b->len >= more)
		return 0;
	ncap = b->cap ? b->cap : 4096;
	while (ncap - b->len < more)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Appends to the buffer; the set already holds the change. Out of memory
 * loses the record, so the file no longer matches memory: broken, and the
 * next sync rewrites it. */
static void append(struct journal *j, enum journal_rec type, uint8_t dir, uint64_t ino,
                   uint64_t off, uint64_t len)
{
	j->appended++;
	if (jbuf_reserve(&j->buf, JOURNAL_REC_MAX) < 0) {
		if (!j->broken)
			log_error("journal %s: out of memory buffering a %s record; rewriting the file at the next sync",
			          j->path, journal_rec_str(type));
		j->broken = true;
		return;
	}
	j->buf.len += journal_encode(j->buf.p + j->buf.len, type, dir, ino, off, len);
}

struct image {
	struct jbuf b;
	int err;
};

static void image_add(struct image *im, enum journal_rec type, const struct dirty_file *f,
                      uint64_t off, uint64_t len)
{
	if (im->err || jbuf_reserve(&im->b, JOURNAL_REC_MAX) < 0) {
		im->err = ENOMEM;
		return;
	}
	im->b.len += journal_encode(im->b.p + im->b.len, type, f->dir, f->ino, off, len);
}

/* The records that rebuild one file: replay order does not matter, as
 * each is a flag or a disjoint interval. */
static int image_file(struct dirty_file *f, void *arg)
{
	struct image *im = arg;

	if (f->flags & DIRTY_WHOLE)
		image_add(im, JREC_WHOLE, f, 0, 0);
	for (uint32_t i = 0; i < f->n; i++)
		image_add(im, JREC_EXT, f, f->iv[i].start, f->iv[i].end - f->iv[i].start);
	if (f->flags & DIRTY_UNSURE)
		image_add(im, JREC_UNSURE, f, 0, 0);
	if (f->flags & DIRTY_HOT)
		image_add(im, JREC_HOT, f, 0, 0);
	return im->err;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	if (rc < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

/* Rewrites the file from the set. Mutex held, no flush round running.
 * Before the rename a failure leaves the old file as it was; after it, the
 * rename may not be durable, so the journal is broken until the next one. */
static int compact_locked(struct journal *j)
{
	struct image im = { { NULL, 0, 0 }, 0 };
	const char *what;
	int fd;

	if (j->mem) {
		j->buf.len = 0;
		j->durable = j->appended;
		return 0;
	}
	if (j->base) {
		struct dirty_file b = { .ino = j->base };

		image_add(&im, JREC_BASE, &b, 0, 0);
	}
	dirty_foreach(j->set, image_file, &im);
	if (im.err) {
		free(im.b.p);
		log_error("journal %s: out of memory building the compacted record", j->path);
		return -1;
	}
	fd = open(j->path_new, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("journal %s: cannot create %s: %s", j->path, j->path_new, strerror(errno));
		free(im.b.p);
		return -1;
	}
	what = "write";
	if (write_all(fd, im.b.p, im.b.len) < 0)
		goto fail;
	what = "fsync";
	if (fsync(fd) < 0)
		goto fail;
	what = "rename";
	if (rename(j->path_new, j->path) < 0)
		goto fail;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd;
	j->size = j->last_compact = im.b.len;
	j->buf.len = 0;
	j->compactions++;
	free(im.b.p);
	if (fsync_dir(j->dir_path) < 0) {
		log_error("journal %s: fsync of directory %s after compaction: %s", j->path, j->dir_path,
		          strerror(errno));
		j->broken = true;
		return -1;
	}
	j->durable = j->appended;
	j->broken = false;
	log_debug("journal %s: compacted to %" PRIu64 " bytes", j->path, j->size);
	return 0;
fail:
	log_error("journal %s: compaction: %s of %s: %s", j->path, what, j->path_new, strerror(errno));
	close(fd);
	unlink(j->path_new);
	free(im.b.p);
	return -1;
}

static void maybe_compact(struct journal *j)
{
	if (j->size >= j->compact_bytes && j->size >= 2 * j->last_compact)
		compact_locked(j);
}

/* One write + fdatasync of everything buffered, without the mutex so that
 * hot files and buffered records are served meanwhile; whoever needs a
 * sync while it runs waits for the next round, which takes all the records
 * buffered by then (group commit). Mutex held on entry and exit. */
static int flush_round(struct journal *j)
{
	struct jbuf t = j->wbuf;
	uint64_t target = j->appended;
	int fd = j->fd, err = 0;
	const char *what = "write";

	j->wbuf = j->buf;
	j->buf = t;
	j->buf.len = 0;
	j->flushing = true;
	pthread_mutex_unlock(&j->mu);
	if (write_all(fd, j->wbuf.p, j->wbuf.len) < 0) {
		err = errno;
	} else if (fdatasync(fd) < 0) {
		err = errno;
		what = "fdatasync";
	}
	pthread_mutex_lock(&j->mu);
	j->flushing = false;
	j->syncs++;
	if (!err) {
		j->size += j->wbuf.len;
		j->durable = target;
	} else {
		log_error("journal %s: %s of %zu bytes at byte %" PRIu64 ": %s; rewriting it from memory",
		          j->path, what, j->wbuf.len, j->size, strerror(err));
		j->broken = true;
	}
	j->wbuf.len = 0;
	pthread_cond_broadcast(&j->cv);
	if (!err)
		maybe_compact(j);
	return err ? -1 : 0;
}

/* Returns once records up to seq are on disk. Mutex held. */
static int sync_to(struct journal *j, uint64_t seq)
{
	bool tried = false;

	while (j->durable < seq) {
		if (j->flushing) {
			pthread_cond_wait(&j->cv, &j->mu);
			continue;
		}
		if (j->broken) {
			/* A suspect file is never appended to: rewrite it. One try
			 * per call, so a full disk fails the caller, not hangs it. */
			if (tried)
				return -1;
			tried = true;
			if (compact_locked(j) < 0)
				return -1;
			continue;
		}
		if (!j->buf.len || j->mem) {
			j->buf.len = 0;
			j->durable = j->appended;
			continue;
		}
		flush_round(j);
	}
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* The whole file into memory: it is kept small by compaction. */
static int read_all(int fd, const char *path, uint8_t **out, size_t *outlen)
{
	struct stat st;
	uint8_t *p;
	size_t got = 0;

	if (fstat(fd, &st) < 0) {
		log_error("journal %s: fstat: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("journal %s: not a regular file", path);
		return -1;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		log_error("journal %s: out of memory reading %lld bytes", path, (long long)st.st_size);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			log_error("journal %s: read at byte %zu: %s", path, got, strerror(errno));
			free(p);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*out = p;
	*outlen = got;
	return 0;
}

/* Replays the existing file into j->set. 0, or -1 (logged). */
static int load(struct journal *j, bool *need_compact)
{
	struct journal_replay r;
	uint8_t *data;
	size_t len;

	if (read_all(j->fd, j->path, &data, &len) < 0)
		return -1;
	if (journal_replay_buf(data, len, j->set, &r) < 0) {
		log_error("journal %s: out of memory replaying record %zu", j->path, r.records + 1);
		free(data);
		return -1;
	}
	free(data);
	j->base = r.base;
	if (r.cut)
		log_warn("journal %s: cut at byte %zu of %zu: %s (%zu bytes dropped, %zu records kept)",
		         j->path, r.good, len, r.cut, len - r.good, r.records);
	if (r.unsure)
		log_info("journal %s: %zu files were hot at the crash: now unsure (compared by "
		         "block hashes)", j->path, r.unsure);
	j->size = len;
	*need_compact = r.cut || r.unsure || len >= j->compact_bytes;
	if (!*need_compact && lseek(j->fd, 0, SEEK_END) < 0) {
		log_error("journal %s: lseek: %s", j->path, strerror(errno));
		return -1;
	}
	return 0;
}

struct journal *journal_open(const char *path, uint64_t compact_bytes)
{
	struct journal *j = calloc(1, sizeof(*j));
	bool need_compact = true;

	if (j && !path) {
		j->fd = -1;
		j->mem = true;
		pthread_mutex_init(&j->mu, NULL);
		pthread_cond_init(&j->cv, NULL);
		j->path = strdup("(in memory)");
		j->set = dirty_new();
		if (j->path && j->set)
			return j;
		journal_close(j);
		log_error("journal in memory: out of memory");
		return NULL;
	}
	if (!path)
		path = "(in memory)";
	if (!j) {
		log_error("journal %s: out of memory", path);
		return NULL;
	}
	j->fd = -1;
	j->compact_bytes = compact_bytes ? compact_bytes : JOURNAL_COMPACT_DEFAULT;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->path = strdup(path);
	j->dir_path = dir_of(path);
	j->set = dirty_new();
	if (!j->path || !j->dir_path || !j->set || asprintf(&j->path_new, "%s.new", path) < 0) {
		j->path_new = NULL;
		log_error("journal %s: out of memory", path);
		goto fail;
	}
	j->fd = open(path, O_RDWR | O_CLOEXEC);
	if (j->fd < 0 && errno != ENOENT) {
		log_error("journal %s: open: %s", path, strerror(errno));
		goto fail;
	}
	if (j->fd >= 0 && load(j, &need_compact) < 0)
		goto fail;
	/* A new file is created the same way, so it exists for sure (rename
	 * and directory fsync) before the first HOT is trusted to it. */
	if (need_compact && compact_locked(j) < 0)
		goto fail;
	return j;
fail:
	journal_close(j);
	return NULL;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->set) {
		pthread_mutex_lock(&j->mu);
		if (j->fd >= 0 && sync_to(j, j->appended) < 0)
			log_error("journal %s: closing with records not on disk", j->path);
		pthread_mutex_unlock(&j->mu);
	}
	if (j->fd >= 0)
		close(j->fd);
	dirty_free(j->set);
	free(j->buf.p);
	free(j->wbuf.p);
	free(j->path);
	free(j->path_new);
	free(j->dir_path);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

int journal_hot(struct journal *j, uint8_t dir, uint64_t ino)
{
	struct dirty_file *f;
	uint64_t seq;
	int rc;

	pthread_mutex_lock(&j->mu);
	f = dirty_find(j->set, dir, ino);
	if (f && (f->flags & DIRTY_HOT)) {
		/* mark: the seq of its HOT record, which another thread may
		 * still be syncing. */
		seq = f->mark;
	} else {
		if (dirty_hot(j->set, dir, ino) < 0) {
			pthread_mutex_unlock(&j->mu);
			log_error("journal %s: out of memory marking dir %u ino %" PRIu64 " hot",
			          j->path, dir, ino);
			return -1;
		}
		append(j, JREC_HOT, dir, ino, 0, 0);
		seq = j->appended;
		f = dirty_find(j->set, dir, ino);
		f->mark = seq;
	}
	f->busy++;
	f->epoch = j->epoch;
	rc = seq <= j->durable ? 0 : sync_to(j, seq);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

void journal_done(struct journal *j, uint8_t dir, uint64_t ino, uint64_t seq)
{
	struct dirty_file *f;

	pthread_mutex_lock(&j->mu);
	f = dirty_find(j->set, dir, ino);
	/* Not there: cleared or forgotten meanwhile, nothing to keep hot. */
	if (f && f->busy) {
		f->busy--;
		if (seq > f->seq)
			f->seq = seq;
	}
	pthread_mutex_unlock(&j->mu);
}

struct cool_arg {
	struct dirty_file **v;
	size_t n, cap;
	uint64_t covered;
	uint32_t epoch;
	bool oom;
};

static int pick_cool(struct dirty_file *f, void *arg)
{
	struct cool_arg *a = arg;

	if (!(f->flags & DIRTY_HOT) || f->busy || f->epoch == a->epoch || f->seq > a->covered)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		struct dirty_file **v = realloc(a->v, cap * sizeof(*v));

		if (!v) {
			a->oom = true;
			return 1;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = f;
	return 0;
}

size_t journal_cool_idle(struct journal *j, uint64_t covered)
{
	struct cool_arg a = { .covered = covered };
	size_t cooled = 0;

	pthread_mutex_lock(&j->mu);
	a.epoch = j->epoch;
	/* Collected first: cooling may remove a file from the set. */
	dirty_foreach(j->set, pick_cool, &a);
	for (size_t i = 0; i < a.n; i++) {
		uint8_t dir = a.v[i]->dir;
		uint64_t ino = a.v[i]->ino;

		if (dirty_cool(j->set, dir, ino) > 0) {
			append(j, JREC_COOL, dir, ino, 0, 0);
			cooled++;
		}
	}
	j->epoch++;
	pthread_mutex_unlock(&j->mu);
	free(a.v);
	return cooled;
}

typedef int (*flag_op)(struct dirty_set *s, uint8_t dir, uint64_t ino);

static int buffered(struct journal *j, flag_op op, enum journal_rec type, uint8_t dir, uint64_t ino)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rc = op(j->set, dir, ino);
	if (rc > 0)
		append(j, type, dir, ino, 0, 0);
	pthread_mutex_unlock(&j->mu);
	if (rc < 0)
		log_error("journal %s: out of memory recording %s for dir %u ino %" PRIu64,
		          j->path, journal_rec_str(type), dir, ino);
	return rc < 0 ? -1 : 0;
}

int journal_cool(struct journal *j, uint8_t dir, uint64_t ino)
{
	return buffered(j, dirty_cool, JREC_COOL, dir, ino);
}

int journal_sure(struct journal *j, uint8_t dir, uint64_t ino)
{
	return buffered(j, dirty_sure, JREC_SURE, dir, ino);
}

int journal_unsure(struct journal *j, uint8_t dir, uint64_t ino)
{
	return buffered(j, dirty_unsure, JREC_UNSURE, dir, ino);
}

int journal_whole(struct journal *j, uint8_t dir, uint64_t ino)
{
	return buffered(j, dirty_whole, JREC_WHOLE, dir, ino);
}

int journal_forget(struct journal *j, uint8_t dir, uint64_t ino)
{
	return buffered(j, dirty_forget, JREC_FORGET, dir, ino);
}

int journal_ext(struct journal *j, uint8_t dir, uint64_t ino, uint64_t off, uint64_t len)
{
	struct dirty_file *f;
	bool was_whole;
	int rc;

	if (off >= DIRTY_LIMIT) {
		log_warn("journal %s: extent at %" PRIu64 " (+%" PRIu64 ") of dir %u ino %" PRIu64
		         " is past 2^63: marking the file whole", j->path, off, len, dir, ino);
		return journal_whole(j, dir, ino);
	}
	pthread_mutex_lock(&j->mu);
	f = dirty_find(j->set, dir, ino);
	was_whole = f && (f->flags & DIRTY_WHOLE);
	rc = dirty_add(j->set, dir, ino, off, len);
	if (rc > 0) {
		f = dirty_find(j->set, dir, ino);
		/* An add that overflowed (or could not grow the array) made the
		 * file WHOLE: one record says so exactly. */
		if (!was_whole && (f->flags & DIRTY_WHOLE))
			append(j, JREC_WHOLE, dir, ino, 0, 0);
		else
			append(j, JREC_EXT, dir, ino, off, len);
	}
	pthread_mutex_unlock(&j->mu);
	if (rc < 0)
		log_error("journal %s: out of memory recording an extent of dir %u ino %" PRIu64,
		          j->path, dir, ino);
	return rc < 0 ? -1 : 0;
}

int journal_truncate(struct journal *j, uint8_t dir, uint64_t ino, uint64_t size)
{
	pthread_mutex_lock(&j->mu);
	dirty_truncate(j->set, dir, ino, size);
	pthread_mutex_unlock(&j->mu);
	return 0;
}

/* CLEAR if clear, then BASE(gen) unless clear and gen 0; durable. */
static int rebase(struct journal *j, bool clear, uint64_t gen)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	if (clear) {
		/* Written even if memory is empty: the file may replay to more
		 * than memory holds (journal_truncate). */
		dirty_clear(j->set, true);
		append(j, JREC_CLEAR, 0, 0, 0, 0);
	}
	j->base = gen;
	if (gen || !clear)
		append(j, JREC_BASE, 0, gen, 0, 0);
	rc = sync_to(j, j->appended);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int journal_clear(struct journal *j)
{
	return rebase(j, true, 0);
}

int journal_reset(struct journal *j, uint64_t gen)
{
	return rebase(j, true, gen);
}

int journal_set_base(struct journal *j, uint64_t gen)
{
	return rebase(j, false, gen);
}

uint64_t journal_base(struct journal *j)
{
	uint64_t b;

	pthread_mutex_lock(&j->mu);
	b = j->base;
	pthread_mutex_unlock(&j->mu);
	return b;
}

int journal_flush(struct journal *j)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rc = sync_to(j, j->appended);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int journal_compact(struct journal *j)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	while (j->flushing)
		pthread_cond_wait(&j->cv, &j->mu);
	rc = compact_locked(j);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int journal_foreach(struct journal *j, dirty_fn fn, void *arg)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rc = dirty_foreach(j->set, fn, arg);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

void journal_count(struct journal *j, struct dirty_count *c)
{
	pthread_mutex_lock(&j->mu);
	dirty_count(j->set, c);
	pthread_mutex_unlock(&j->mu);
}

uint64_t journal_bytes(struct journal *j, dirty_size_fn size_fn, void *arg)
{
	uint64_t b;

	pthread_mutex_lock(&j->mu);
	b = dirty_bytes(j->set, size_fn, arg);
	pthread_mutex_unlock(&j->mu);
	return b;
}

int journal_get(struct journal *j, uint8_t dir, uint64_t ino, uint8_t *flags,
                struct dirty_ival **iv, uint32_t *n)
{
	const struct dirty_file *f;
	int r = 1;

	*flags = 0;
	*iv = NULL;
	*n = 0;
	pthread_mutex_lock(&j->mu);
	f = dirty_find(j->set, dir, ino);
	if (f) {
		r = 0;
		*flags = f->flags;
		if (f->n) {
			*iv = malloc(f->n * sizeof(**iv));
			if (*iv) {
				memcpy(*iv, f->iv, f->n * sizeof(**iv));
				*n = f->n;
			} else {
				r = -1;
			}
		}
	}
	pthread_mutex_unlock(&j->mu);
	return r;
}

int journal_flags(struct journal *j, uint8_t dir, uint64_t ino)
{
	const struct dirty_file *f;
	int flags;

	pthread_mutex_lock(&j->mu);
	f = dirty_find(j->set, dir, ino);
	flags = f ? f->flags : -1;
	pthread_mutex_unlock(&j->mu);
	return flags;
}

void journal_stats(struct journal *j, struct journal_stats *st)
{
	pthread_mutex_lock(&j->mu);
	st->file_bytes = j->size;
	st->syncs = j->syncs;
	st->compactions = j->compactions;
	st->broken = j->broken;
	pthread_mutex_unlock(&j->mu);
}
