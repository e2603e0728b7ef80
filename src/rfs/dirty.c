/* The dirty set: a hash table of files, each with a sorted interval array.
 * See dirty.h for the meaning; here only how. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rfs/dirty.h"

#define BUCKETS_MIN 64u

struct dirty_set {
	struct dirty_file **bucket;
	size_t nbucket;                 /* a power of two */
	size_t nfile;
};

const char *dirty_flag_str(enum dirty_flag flag)
{
	switch (flag) {
	case DIRTY_HOT: return "hot";
	case DIRTY_UNSURE: return "unsure";
	case DIRTY_WHOLE: return "whole";
	}
	return "?";
}

/* splitmix64's finaliser: inode numbers are often sequential, and the low
 * bits pick the bucket, so they must depend on every input bit. */
static size_t hash_key(uint8_t dir, uint64_t ino, size_t nbucket)
{
	uint64_t x = ino + 0x9e3779b97f4a7c15ull * (dir + 1u);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (size_t)x & (nbucket - 1);
}

struct dirty_set *dirty_new(void)
{
	struct dirty_set *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->bucket = calloc(BUCKETS_MIN, sizeof(*s->bucket));
	if (!s->bucket) {
		free(s);
		return NULL;
	}
	s->nbucket = BUCKETS_MIN;
	return s;
}

static void file_free(struct dirty_file *f)
{
	free(f->iv);
	free(f);
}

void dirty_free(struct dirty_set *s)
{
	if (!s)
		return;
	for (size_t b = 0; b < s->nbucket; b++) {
		struct dirty_file *f = s->bucket[b], *next;

		for (; f; f = next) {
			next = f->next;
			file_free(f);
		}
	}
	free(s->bucket);
	free(s);
}

struct dirty_file *dirty_find(const struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	struct dirty_file *f = s->bucket[hash_key(dir, ino, s->nbucket)];

	for (; f; f = f->next)
		if (f->ino == ino && f->dir == dir)
			return f;
	return NULL;
}

/* Doubles the table at load factor 1. A failed grow is harmless: chains
 * just get longer. */
static void maybe_grow(struct dirty_set *s)
{
	size_t nb = s->nbucket * 2;
	struct dirty_file **nbk;

	if (s->nfile < s->nbucket || nb < s->nbucket)
		return;
	nbk = calloc(nb, sizeof(*nbk));
	if (!nbk)
		return;
	for (size_t b = 0; b < s->nbucket; b++) {
		struct dirty_file *f = s->bucket[b], *next;

		for (; f; f = next) {
			size_t h = hash_key(f->dir, f->ino, nb);

			next = f->next;
			f->next = nbk[h];
			nbk[h] = f;
		}
	}
	free(s->bucket);
	s->bucket = nbk;
	s->nbucket = nb;
}

/* The file, entered with nothing if absent; NULL (ENOMEM) if it cannot be. */
static struct dirty_file *get_or_add(struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	struct dirty_file *f = dirty_find(s, dir, ino);
	size_t h;

	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f) {
		errno = ENOMEM;
		return NULL;
	}
	f->dir = dir;
	f->ino = ino;
	h = hash_key(dir, ino, s->nbucket);
	f->next = s->bucket[h];
	s->bucket[h] = f;
	s->nfile++;
	maybe_grow(s);
	return f;
}

static void unlink_file(struct dirty_set *s, struct dirty_file *f)
{
	struct dirty_file **pp = &s->bucket[hash_key(f->dir, f->ino, s->nbucket)];

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	s->nfile--;
	file_free(f);
}

/* Keeps the invariant "in the set iff a flag or an interval". */
static void drop_if_empty(struct dirty_set *s, struct dirty_file *f)
{
	if (!f->flags && !f->n)
		unlink_file(s, f);
}

static void make_whole(struct dirty_file *f)
{
	free(f->iv);
	f->iv = NULL;
	f->n = f->cap = 0;
	f->flags |= DIRTY_WHOLE;
}

/* First interval whose end >= start, i.e. the first that overlaps or
 * touches [start, ...); n if none. */
static uint32_t first_reaching(const struct dirty_file *f, uint64_t start)
{
	uint32_t lo = 0, hi = f->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (f->iv[mid].end < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room for one more interval; false when the file must go WHOLE instead. */
static bool reserve_one(struct dirty_file *f)
{
	uint32_t ncap;
	struct dirty_ival *niv;

	if (f->n < f->cap)
		return true;
	if (f->n >= DIRTY_MAX_IVALS)
		return false;
	ncap = f->cap ? f->cap * 2 : 4;
	if (ncap > DIRTY_MAX_IVALS)
		ncap = DIRTY_MAX_IVALS;
	niv = realloc(f->iv, ncap * sizeof(*niv));
	if (!niv)
		return false;
	f->iv = niv;
	f->cap = ncap;
	return true;
}

int dirty_add(struct dirty_set *s, uint8_t dir, uint64_t ino, uint64_t off, uint64_t len)
{
	struct dirty_file *f;
	uint64_t start, end;
	uint32_t i, j;

	if (off >= DIRTY_LIMIT) {
		errno = EINVAL;
		return -1;
	}
	if (!len)
		return 0;
	/* off < 2^63, so neither this subtraction nor the rounding wraps, and
	 * 2^63 is itself a block multiple. */
	end = len > DIRTY_LIMIT - off ? DIRTY_LIMIT : off + len;
	end = (end + DIRTY_BLOCK - 1) & ~(uint64_t)(DIRTY_BLOCK - 1);
	start = off & ~(uint64_t)(DIRTY_BLOCK - 1);

	f = get_or_add(s, dir, ino);
	if (!f)
		return -1;
	if (f->flags & DIRTY_WHOLE)
		return 0;
	i = first_reaching(f, start);
	/* j: one past the last interval starting at or before end (touching
	 * counts, so adjacent blocks merge into one interval). */
	for (j = i; j < f->n && f->iv[j].start <= end; j++)
		;
	if (i == j) {
		if (!reserve_one(f)) {
			make_whole(f);
			return 1;
		}
		memmove(&f->iv[i + 1], &f->iv[i], (f->n - i) * sizeof(*f->iv));
		f->iv[i].start = start;
		f->iv[i].end = end;
		f->n++;
		return 1;
	}
	if (f->iv[i].start <= start && f->iv[j - 1].end >= end && j - i == 1)
		return 0;
	if (f->iv[i].start < start)
		start = f->iv[i].start;
	if (f->iv[j - 1].end > end)
		end = f->iv[j - 1].end;
	f->iv[i].start = start;
	f->iv[i].end = end;
	memmove(&f->iv[i + 1], &f->iv[j], (f->n - j) * sizeof(*f->iv));
	f->n -= j - i - 1;
	return 1;
}

int dirty_whole(struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	struct dirty_file *f = get_or_add(s, dir, ino);

	if (!f)
		return -1;
	if (f->flags & DIRTY_WHOLE)
		return 0;
	make_whole(f);
	return 1;
}

static int set_flag(struct dirty_set *s, uint8_t dir, uint64_t ino, uint8_t flag)
{
	struct dirty_file *f = get_or_add(s, dir, ino);

	if (!f)
		return -1;
	if (f->flags & flag)
		return 0;
	f->flags |= flag;
	return 1;
}

static int clear_flags(struct dirty_set *s, uint8_t dir, uint64_t ino, uint8_t flags)
{
	struct dirty_file *f = dirty_find(s, dir, ino);

	if (!f || !(f->flags & flags))
		return 0;
	f->flags &= ~flags;
	drop_if_empty(s, f);
	return 1;
}

int dirty_hot(struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	return set_flag(s, dir, ino, DIRTY_HOT);
}

int dirty_unsure(struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	return set_flag(s, dir, ino, DIRTY_UNSURE);
}

int dirty_cool(struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	return clear_flags(s, dir, ino, DIRTY_HOT);
}

int dirty_sure(struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	return clear_flags(s, dir, ino, DIRTY_HOT | DIRTY_UNSURE);
}

int dirty_truncate(struct dirty_set *s, uint8_t dir, uint64_t ino, uint64_t size)
{
	struct dirty_file *f = dirty_find(s, dir, ino);
	uint64_t keep;
	uint32_t i;

	if (!f || !f->n)
		return 0;
	/* Sizes past the limit keep everything (every interval ends by it). */
	if (size >= DIRTY_LIMIT)
		return 0;
	keep = (size + DIRTY_BLOCK - 1) & ~(uint64_t)(DIRTY_BLOCK - 1);
	if (f->iv[f->n - 1].end <= keep)
		return 0;
	i = first_reaching(f, keep);
	/* iv[i] is the first with end >= keep; it survives, clipped, only if it
	 * starts below keep. */
	if (i < f->n && f->iv[i].start < keep) {
		f->iv[i].end = keep;
		i++;
	}
	f->n = i;
	drop_if_empty(s, f);
	return 1;
}

int dirty_forget(struct dirty_set *s, uint8_t dir, uint64_t ino)
{
	struct dirty_file *f = dirty_find(s, dir, ino);

	if (!f)
		return 0;
	unlink_file(s, f);
	return 1;
}

size_t dirty_clear(struct dirty_set *s, bool keep_hot)
{
	size_t changed = 0;

	for (size_t b = 0; b < s->nbucket; b++) {
		struct dirty_file **pp = &s->bucket[b];

		while (*pp) {
			struct dirty_file *f = *pp;

			if (keep_hot && (f->flags & DIRTY_HOT)) {
				if (f->flags != DIRTY_HOT || f->n) {
					free(f->iv);
					f->iv = NULL;
					f->n = f->cap = 0;
					f->flags = DIRTY_HOT;
					changed++;
				}
				pp = &f->next;
				continue;
			}
			*pp = f->next;
			s->nfile--;
			file_free(f);
			changed++;
		}
	}
	return changed;
}

size_t dirty_hot_to_unsure(struct dirty_set *s)
{
	size_t n = 0;

	for (size_t b = 0; b < s->nbucket; b++)
		for (struct dirty_file *f = s->bucket[b]; f; f = f->next)
			if (f->flags & DIRTY_HOT) {
				f->flags = (uint8_t)((f->flags & ~DIRTY_HOT) | DIRTY_UNSURE);
				n++;
			}
	return n;
}

int dirty_foreach(struct dirty_set *s, dirty_fn fn, void *arg)
{
	for (size_t b = 0; b < s->nbucket; b++)
		for (struct dirty_file *f = s->bucket[b]; f; f = f->next) {
			int rc = fn(f, arg);

			if (rc)
				return rc;
		}
	return 0;
}

void dirty_count(const struct dirty_set *s, struct dirty_count *c)
{
	memset(c, 0, sizeof(*c));
	c->files = s->nfile;
	for (size_t b = 0; b < s->nbucket; b++)
		for (const struct dirty_file *f = s->bucket[b]; f; f = f->next) {
			c->hot += !!(f->flags & DIRTY_HOT);
			c->unsure += !!(f->flags & DIRTY_UNSURE);
			c->whole += !!(f->flags & DIRTY_WHOLE);
			c->ivals += f->n;
		}
}

uint64_t dirty_file_bytes(const struct dirty_file *f)
{
	uint64_t sum = 0;

	/* Disjoint intervals inside [0, 2^63): the sum cannot wrap. */
	for (uint32_t i = 0; i < f->n; i++)
		sum += f->iv[i].end - f->iv[i].start;
	return sum;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t dirty_bytes(const struct dirty_set *s, dirty_size_fn size_fn, void *arg)
{
	uint64_t sum = 0;

	for (size_t b = 0; b < s->nbucket; b++)
		for (const struct dirty_file *f = s->bucket[b]; f; f = f->next) {
			if (f->flags & (DIRTY_WHOLE | DIRTY_UNSURE))
				sum = add_sat(sum, size_fn ? size_fn(f->dir, f->ino, arg) : 0);
			else
				sum = add_sat(sum, dirty_file_bytes(f));
		}
	return sum;
}
