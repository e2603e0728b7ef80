/* The PRIM's record of what SECOND lacks (contract in record.h). */
#include "rfs/record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "rfs/wire.h"

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
	struct dirty_set *set;
	struct entry *ring;             /* circular: head .. head + n */
	size_t cap, head, n;
	bool complete;
	uint64_t gen;                   /* the copies were equal at this generation */
} R = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Lock held. */
static void incomplete_locked(const char *why)
{
	if (R.complete)
		log_warn("the record of changes SECOND lacks is incomplete (%s): its next "
		         "reintegration copies everything", why);
	R.complete = false;
}

static bool have_set_locked(void)
{
	if (!R.set && !(R.set = dirty_new())) {
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
	if (e->kind == K_WHOLE)
		r = dirty_whole(R.set, e->dir, e->ino);
	else if (e->off >= DIRTY_LIMIT)
		r = dirty_whole(R.set, e->dir, e->ino);
	else
		r = dirty_add(R.set, e->dir, e->ino, e->off, e->len);
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
	while (R.n && R.ring[R.head].seq <= ckpt) {
		R.head = (R.head + 1) % R.cap;
		R.n--;
	}
	pthread_mutex_unlock(&R.mu);
}

void rfs_record_lost(void)
{
	size_t moved;

	pthread_mutex_lock(&R.mu);
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
	dirty_free(R.set);
	R.set = NULL;
	/* The ring stays: changes shipped but not yet durable on SECOND are
	 * not covered by the copies being equal, a loss must still bring
	 * them back (docs/design/rfs.md §5.5). */
	R.complete = true;
	R.gen = gen;
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
	struct dirty_file *f;
	int r = 1;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&R.mu);
	f = R.set ? dirty_find(R.set, dir, ino) : NULL;
	if (f) {
		r = 0;
		out->flags = f->flags;
		if (f->n) {
			out->iv = malloc(f->n * sizeof(*out->iv));
			if (out->iv) {
				memcpy(out->iv, f->iv, f->n * sizeof(*out->iv));
				out->n = f->n;
			} else {
				r = -1;
			}
		}
	}
	pthread_mutex_unlock(&R.mu);
	return r;
}

void rfs_record_count(size_t *files, uint64_t *ext_bytes, bool *complete)
{
	struct dirty_count c = { 0 };

	pthread_mutex_lock(&R.mu);
	if (R.set) {
		dirty_count(R.set, &c);
		*ext_bytes = dirty_bytes(R.set, NULL, NULL);
	} else {
		*ext_bytes = 0;
	}
	*files = c.files;
	*complete = R.complete;
	pthread_mutex_unlock(&R.mu);
}
