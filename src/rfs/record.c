/* The PRIM's record of what SECOND lacks (contract in record.h). */
#include "rfs/record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "rfs/journal.h"
#include "rfs/stream.h"
#include "rfs/wire.h"

/* A hot file cools after one to two of these without a change, once SECOND
 * has its changes durably: a file written all the time stays hot and costs
 * one journal sync in total, not one per write. */
#define COOL_PERIOD_MS 10000
#define FLUSH_PERIOD_MS 1000

enum kind { K_EXT, K_WHOLE };

struct entry {
	uint64_t seq;
	uint64_t ino;
	uint64_t off, len;
	uint8_t dir;
	uint8_t kind;
};

static struct {
	pthread_mutex_t mu;
	struct journal *j;              /* the set: on disk once rfs_record_open() ran */
	struct entry *ring;             /* circular: head .. head + n */
	size_t cap, head, n;
	bool complete;
	uint64_t gen;                   /* the copies were equal at this generation */
	uint64_t covered;               /* every change up to this seq is durable there, or in the set */
	pthread_t ticker;
	bool ticking;
	pthread_cond_t cv;              /* wakes the ticker to stop */
	bool stop;
	struct origin_map *origins;     /* renamed while SECOND was away */
	char *root[RFS_MAX_DIRS];       /* each dir's root path */
} R = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Lock held. Durable at once (a rare event, worth a sync): a restart must
 * not find the record complete again. */
static void incomplete_locked(const char *why)
{
	if (R.complete) {
		log_warn("the record of changes SECOND lacks is incomplete (%s): its next "
		         "reintegration copies everything", why);
		if (R.j && journal_set_base(R.j, 0) < 0)
			log_error("record: cannot mark the journal incomplete");
	}
	R.complete = false;
	origin_clear(R.origins);
}

static bool have_set_locked(void)
{
	if (!R.j && !(R.j = journal_open(NULL, 0))) {
		incomplete_locked("out of memory");
		return false;
	}
	return true;
}

static void apply_locked(const struct entry *e)
{
	int r;

	if (!have_set_locked())
		return;
	if (e->kind == K_WHOLE || e->off >= DIRTY_LIMIT)
		r = journal_whole(R.j, e->dir, e->ino);
	else
		r = journal_ext(R.j, e->dir, e->ino, e->off, e->len);
	if (r < 0)
		incomplete_locked("out of memory");
}

static bool ring_push_locked(const struct entry *e)
{
	if (R.n) {
		struct entry *last = &R.ring[(R.head + R.n - 1) % R.cap];

		/* Sequential writes to one file are one entry. */
		if (last->kind == K_EXT && e->kind == K_EXT && last->dir == e->dir &&
		    last->ino == e->ino && last->off + last->len == e->off &&
		    e->len <= DIRTY_LIMIT - last->off - last->len) {
			last->len += e->len;
			last->seq = e->seq;
			return true;
		}
	}
	if (R.n == R.cap) {
		size_t cap = R.cap ? R.cap * 2 : 4096;
		struct entry *n;

		if (cap > RFS_RECORD_RING_MAX)
			return false;
		n = malloc(cap * sizeof(*n));
		if (!n)
			return false;
		for (size_t i = 0; i < R.n; i++)
			n[i] = R.ring[(R.head + i) % R.cap];
		free(R.ring);
		R.ring = n;
		R.cap = cap;
		R.head = 0;
	}
	R.ring[(R.head + R.n) % R.cap] = *e;
	R.n++;
	return true;
}

static void record_locked(const struct entry *e)
{
	if (e->seq == 0) {
		apply_locked(e);
		return;
	}
	if (!ring_push_locked(e)) {
		/* SECOND is far behind. Putting the change into the set is not
		 * enough: a reintegration finishing now would clear the set while
		 * the change may not be durable there yet. */
		apply_locked(e);
		incomplete_locked("too many changes waiting for SECOND's checkpoint");
	}
}

/* The effects of one change: up to two entries. */
static int effects(const struct rfs_op *op, struct entry *e)
{
	struct entry base = { .dir = op->ino.dir, .ino = op->ino.ino, .kind = K_EXT };
	int n = 0;

	if (op->ino.excluded)
		return 0;
	switch (op->type) {
	case RFS_OP_WRITE:
	case RFS_OP_COPY_RANGE:
	case RFS_OP_FALLOCATE:
		if (op->len == 0)
			return 0;
		e[n] = base;
		e[n].off = op->offset;
		e[n].len = op->len;
		n++;
		break;
	case RFS_OP_SETATTR:
		if (!(op->attr_mask & RFS_ATTR_SIZE) || !op->attr)
			return 0;
		e[n] = base;
		e[n].off = (uint64_t)op->attr->st_size;
		e[n].len = e[n].off < DIRTY_LIMIT ? DIRTY_LIMIT - e[n].off : 0;
		n++;
		break;
	case RFS_OP_CREATE:
	case RFS_OP_MKNOD:
	case RFS_OP_MKDIR:
	case RFS_OP_SYMLINK:
	case RFS_OP_LINK:
		e[n] = base;
		e[n].kind = K_WHOLE;
		n++;
		break;
	case RFS_OP_RENAME:
		e[n] = base;
		e[n].kind = K_WHOLE;
		n++;
		if ((op->flags & WIRE_RENAME_EXCHANGE) && op->parent_fd > 0 && op->name) {
			/* The other object now holds the old name. */
			struct stat st;

			if (fstatat(op->parent_fd, op->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				e[n] = base;
				e[n].ino = st.st_ino;
				e[n].kind = K_WHOLE;
				n++;
			} else {
				return -1;
			}
		}
		break;
	default:
		break;
	}
	return n;
}

void rfs_record_op(const struct rfs_op *op, uint64_t seq)
{
	struct entry e[2];
	int n = effects(op, e);

	pthread_mutex_lock(&R.mu);
	if (n < 0)
		incomplete_locked("an exchanged object could not be found");
	for (int i = 0; i < n; i++) {
		e[i].seq = seq;
		record_locked(&e[i]);
	}
	pthread_mutex_unlock(&R.mu);
}

void rfs_record_ckpt(uint64_t ckpt)
{
	pthread_mutex_lock(&R.mu);
	if (ckpt > R.covered)
		R.covered = ckpt;
	while (R.n && R.ring[R.head].seq <= ckpt) {
		R.head = (R.head + 1) % R.cap;
		R.n--;
	}
	pthread_mutex_unlock(&R.mu);
}

void rfs_record_lost(uint64_t seq)
{
	size_t moved;

	pthread_mutex_lock(&R.mu);
	/* Every change shipped so far is now either durable there or, below,
	 * in the set; one shipped but not yet noted here is noted unshipped. */
	if (seq > R.covered)
		R.covered = seq;
	moved = R.n;
	for (size_t i = 0; i < R.n; i++)
		apply_locked(&R.ring[(R.head + i) % R.cap]);
	R.head = R.n = 0;
	pthread_mutex_unlock(&R.mu);
	if (moved)
		log_info("record: %zu changes not yet durable on SECOND are kept for its return",
		         moved);
}

void rfs_record_reset(uint64_t gen)
{
	pthread_mutex_lock(&R.mu);
	/* The ring stays: changes shipped but not yet durable on SECOND are
	 * not covered by the copies being equal, a loss must still bring
	 * them back (docs/design/rfs.md §5.5). So do HOT flags, for the same
	 * changes after a crash. */
	if (have_set_locked()) {
		if (journal_reset(R.j, gen) < 0) {
			incomplete_locked("the journal cannot record that the copies are equal");
		} else {
			R.complete = true;
			R.gen = gen;
			origin_clear(R.origins);
		}
	}
	pthread_mutex_unlock(&R.mu);
}

void rfs_record_incomplete(const char *why)
{
	pthread_mutex_lock(&R.mu);
	incomplete_locked(why);
	pthread_mutex_unlock(&R.mu);
}

bool rfs_record_complete(uint64_t gen)
{
	bool c;

	pthread_mutex_lock(&R.mu);
	c = R.complete && gen != 0 && R.gen == gen;
	pthread_mutex_unlock(&R.mu);
	return c;
}

int rfs_record_get(uint8_t dir, uint64_t ino, struct rfs_record_file *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&R.mu);
	r = R.j ? journal_get(R.j, dir, ino, &out->flags, &out->iv, &out->n) : 1;
	pthread_mutex_unlock(&R.mu);
	return r;
}

void rfs_record_count(size_t *files, uint64_t *ext_bytes, bool *complete)
{
	struct dirty_count c = { 0 };

	pthread_mutex_lock(&R.mu);
	if (R.j) {
		journal_count(R.j, &c);
		*ext_bytes = journal_bytes(R.j, NULL, NULL);
	} else {
		*ext_bytes = 0;
	}
	*files = c.files;
	*complete = R.complete;
	pthread_mutex_unlock(&R.mu);
}

/* ---- on disk */

static void *ticker_main(void *arg)
{
	uint64_t next_cool = mono_ms() + COOL_PERIOD_MS;

	(void)arg;
	pthread_mutex_lock(&R.mu);
	while (!R.stop) {
		struct timespec ts;
		struct journal *j = R.j;
		uint64_t covered = R.covered;

		pthread_mutex_unlock(&R.mu);
		/* Unshipped changes reach the disk within a period; nothing
		 * waits for it (HOT made them safe already). */
		journal_flush(j);
		if (mono_ms() >= next_cool) {
			size_t n = journal_cool_idle(j, covered);

			if (n)
				log_debug("record: %zu files cooled", n);
			next_cool = mono_ms() + COOL_PERIOD_MS;
		}
		pthread_mutex_lock(&R.mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += FLUSH_PERIOD_MS / 1000;
		if (!R.stop)
			pthread_cond_timedwait(&R.cv, &R.mu, &ts);
	}
	pthread_mutex_unlock(&R.mu);
	return NULL;
}

int rfs_record_open(const char *path)
{
	struct journal *j = journal_open(path, 0);
	struct dirty_count c;
	pthread_condattr_t ca;

	if (!j)
		return -1;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&R.cv);
	pthread_cond_init(&R.cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&R.mu);
	journal_close(R.j);
	R.j = j;
	R.gen = journal_base(j);
	R.complete = R.gen != 0;
	R.stop = false;
	journal_count(j, &c);
	pthread_mutex_unlock(&R.mu);
	if (pthread_create(&R.ticker, NULL, ticker_main, NULL) != 0) {
		log_error("record: cannot start its thread");
		return -1;
	}
	R.ticking = true;
	log_info("record %s: %zu files (%zu unsure, %zu whole), complete since generation "
	         "%016" PRIx64, path, c.files, c.unsure, c.whole, R.gen);
	return 0;
}

void rfs_record_close(void)
{
	struct journal *j;

	pthread_mutex_lock(&R.mu);
	R.stop = true;
	pthread_cond_broadcast(&R.cv);
	pthread_mutex_unlock(&R.mu);
	if (R.ticking)
		pthread_join(R.ticker, NULL);
	R.ticking = false;
	pthread_mutex_lock(&R.mu);
	j = R.j;
	R.j = NULL;
	R.complete = false;
	if (j) {
		/* No op runs any more: the first call ends the idle period,
		 * the second cools whatever SECOND has durably. */
		struct dirty_count c;

		journal_cool_idle(j, R.covered);
		journal_cool_idle(j, R.covered);
		journal_count(j, &c);
		if (c.files)
			log_info("record: %zu files kept for the next reintegration (%zu hot: SECOND "
			         "had changes durably up to seq %" PRIu64 " only)", c.files, c.hot,
			         R.covered);
	}
	pthread_mutex_unlock(&R.mu);
	journal_close(j);
}

/* The journal a change to id goes to, NULL if none (excluded). Used
 * without R.mu: a sync may take a while, and rfs_record_op must not wait
 * for it. */
static struct journal *journal_of(const struct rfs_id *id)
{
	struct journal *j = NULL;

	if (id->excluded)
		return NULL;
	pthread_mutex_lock(&R.mu);
	if (have_set_locked())
		j = R.j;
	pthread_mutex_unlock(&R.mu);
	return j;
}

int rfs_record_hot(const struct rfs_id *id)
{
	struct journal *j = journal_of(id);

	return j && journal_hot(j, id->dir, id->ino) < 0 ? -1 : 0;
}

void rfs_record_done(const struct rfs_id *id, uint64_t seq)
{
	pthread_mutex_lock(&R.mu);
	if (R.j && !id->excluded)
		journal_done(R.j, id->dir, id->ino, seq);
	pthread_mutex_unlock(&R.mu);
}

int rfs_record_whole_now(const struct rfs_id *id)
{
	struct journal *j = journal_of(id);

	if (j && (journal_whole(j, id->dir, id->ino) < 0 || journal_flush(j) < 0))
		return -1;
	return 0;
}

bool rfs_record_clean(uint64_t gen)
{
	struct dirty_count c = { 0 };
	uint64_t base;

	pthread_mutex_lock(&R.mu);
	base = R.j ? journal_base(R.j) : 0;
	if (R.j)
		journal_count(R.j, &c);
	pthread_mutex_unlock(&R.mu);
	return gen != 0 && base == gen && c.files == 0;
}

/* ---- rename matching */

void rfs_record_set_root(uint8_t dir, int root_fd)
{
	char proc[64], buf[PATH_MAX];
	ssize_t n;

	if (dir >= RFS_MAX_DIRS)
		return;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", root_fd);
	n = readlink(proc, buf, sizeof(buf) - 1);
	pthread_mutex_lock(&R.mu);
	free(R.root[dir]);
	R.root[dir] = NULL;
	if (n > 0) {
		buf[n] = 0;
		R.root[dir] = strdup(buf);
	}
	pthread_mutex_unlock(&R.mu);
}

/* path of parent_fd/name relative to root into out; -1 if not under it. */
static int rel_path(const char *root, int parent_fd, const char *name, char *out, size_t len)
{
	char proc[64], p[PATH_MAX];
	ssize_t n;
	size_t rl = strlen(root);
	int w;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", parent_fd);
	n = readlink(proc, p, sizeof(p) - 1);
	if (n <= 0)
		return -1;
	p[n] = 0;
	if (strncmp(p, root, rl) || (p[rl] && p[rl] != '/'))
		return -1;          /* also a "(deleted)" directory */
	if (!strcmp(root, "/"))
		rl = 0;
	w = p[rl] ? snprintf(out, len, "%s/%s", p + rl + 1, name) : snprintf(out, len, "%s", name);
	return w > 0 && (size_t)w < len ? 0 : -1;
}

void rfs_record_moving(const struct rfs_id *id, int parent_fd, const char *name,
                       const struct stat *st)
{
	char path[WIRE_TARGET_MAX + 1];
	uint8_t flags;
	struct dirty_ival *iv = NULL;
	uint32_t n = 0;
	int in_set;

	if (id->excluded || id->dir >= RFS_MAX_DIRS ||
	    !(S_ISDIR(st->st_mode) || (S_ISREG(st->st_mode) && st->st_nlink == 1)))
		return;
	pthread_mutex_lock(&R.mu);
	if (!R.complete || !R.root[id->dir] || !R.j ||
	    origin_get(R.origins, id->dir, id->ino) ||
	    rel_path(R.root[id->dir], parent_fd, name, path, sizeof(path)) < 0)
		goto out;
	in_set = journal_get(R.j, id->dir, id->ino, &flags, &iv, &n);
	free(iv);
	/* WHOLE without a note: new since the copies were equal (or renamed
	 * when no note could be kept), so SECOND has nothing of it. */
	if (in_set < 0 || (in_set == 0 && (flags & DIRTY_WHOLE)))
		goto out;
	if (!R.origins && !(R.origins = origin_new()))
		goto out;
	if (origin_note(R.origins, id->dir, id->ino, path) < 0)
		log_debug("record: no room to note where %s was: it is sent whole", path);
out:
	pthread_mutex_unlock(&R.mu);
}

int rfs_record_origin(uint8_t dir, uint64_t ino, char *buf, size_t len)
{
	const char *p;
	int r = 0;

	pthread_mutex_lock(&R.mu);
	p = origin_get(R.origins, dir, ino);
	if (p && strlen(p) < len) {
		memcpy(buf, p, strlen(p) + 1);
		r = 1;
	}
	pthread_mutex_unlock(&R.mu);
	return r;
}

int rfs_record_origins(struct origin_entry **l, size_t *n)
{
	int r;

	pthread_mutex_lock(&R.mu);
	r = origin_list(R.origins, l, n);
	pthread_mutex_unlock(&R.mu);
	return r;
}
