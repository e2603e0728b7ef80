/* The dirty set of vigil-rfs (docs/design/rfs.md §5.1): which files differ,
 * or may differ, from the peer's copy, and where. Pure: no I/O, no locks;
 * journal.c keeps one behind its mutex and on disk.
 *
 * A file is keyed by (dir, ino): the replicated directory's index and the
 * local st_ino. Inode reuse only adds work: a reused number names a new
 * file, which is dirty as a whole anyway.
 *
 * Per file:
 *   intervals  dirty byte ranges, half-open, rounded out to DIRTY_BLOCK,
 *              sorted, disjoint and not touching (touching ones merge), all
 *              within [0, DIRTY_LIMIT) since no file byte lives at or past
 *              2^63. Past DIRTY_MAX_IVALS the file becomes WHOLE: beyond
 *              that, resending the file costs less than the record does.
 *   HOT        a local change may not have reached the peer yet.
 *   UNSURE     the extents may be incomplete: the whole file is compared
 *              by block hashes (a HOT found at replay, a lost non-data op).
 *   WHOLE      the whole file is resent (created, too many intervals).
 * A file is in the set iff it has a flag or an interval: an operation that
 * leaves it with neither removes it, so the set never grows with files that
 * need nothing.
 *
 * Mutating calls return 1 if the set changed, 0 if it was already so (the
 * journal writes a record only for a change), -1 with errno on error. */
#ifndef VIGIL_RFS_DIRTY_H
#define VIGIL_RFS_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIRTY_BLOCK 4096u
#define DIRTY_MAX_IVALS 4096u
#define DIRTY_LIMIT ((uint64_t)1 << 63)

enum dirty_flag {
	DIRTY_HOT = 1 << 0,
	DIRTY_UNSURE = 1 << 1,
	DIRTY_WHOLE = 1 << 2,
};

const char *dirty_flag_str(enum dirty_flag flag);

struct dirty_ival {
	uint64_t start, end;            /* [start, end), multiples of DIRTY_BLOCK */
};

/* Callers read these fields and may write mark, busy, epoch and seq (their
 * words, 0 when the file enters, kept while it stays); the rest is
 * dirty.c's. */
struct dirty_file {
	uint64_t ino;
	uint8_t dir;
	uint8_t flags;                  /* enum dirty_flag bits */
	uint32_t n;                     /* intervals in iv; 0 when WHOLE */
	uint32_t cap;
	struct dirty_ival *iv;
	uint64_t mark;                  /* the caller's word, 0 when the file enters */
	uint64_t seq;                   /* the caller's word (journal.c: last op's seq) */
	uint32_t busy;                  /* the caller's word (journal.c: ops under way) */
	uint32_t epoch;                 /* the caller's word (journal.c: last touched) */
	struct dirty_file *next;        /* hash chain */
};

struct dirty_set;

/* NULL on allocation failure. */
struct dirty_set *dirty_new(void);
/* NULL is fine. */
void dirty_free(struct dirty_set *s);

/* NULL if the file is not in the set. */
struct dirty_file *dirty_find(const struct dirty_set *s, uint8_t dir, uint64_t ino);

/* Marks [off, off + len) dirty, rounded out to blocks. The part at or past
 * DIRTY_LIMIT is dropped; off >= DIRTY_LIMIT is EINVAL (no file has such a
 * byte: a caller's bug). len 0 changes nothing. If the interval array
 * cannot grow (past DIRTY_MAX_IVALS, or out of memory) the file becomes
 * WHOLE: never less than the truth. A WHOLE file takes no intervals. */
int dirty_add(struct dirty_set *s, uint8_t dir, uint64_t ino, uint64_t off, uint64_t len);
/* WHOLE: the intervals are dropped, the file is resent entirely. */
int dirty_whole(struct dirty_set *s, uint8_t dir, uint64_t ino);
/* Sets HOT. */
int dirty_hot(struct dirty_set *s, uint8_t dir, uint64_t ino);
/* Clears HOT (the file's changes are covered: checkpointed on the peer, or
 * its extents recorded). UNSURE stays: cooling does not make it sure. */
int dirty_cool(struct dirty_set *s, uint8_t dir, uint64_t ino);
/* Sets UNSURE. */
int dirty_unsure(struct dirty_set *s, uint8_t dir, uint64_t ino);
/* Clears HOT and UNSURE: the extents are now the whole truth. */
int dirty_sure(struct dirty_set *s, uint8_t dir, uint64_t ino);
/* The file is now size bytes long: intervals past the block holding its
 * last byte are dropped (the block itself keeps its dirty part). Growing
 * adds nothing: the reintegration sends TRUNCATE to the size anyway. A
 * caller that shrinks a file from old to size and wants a later regrowth
 * (zeros on this side, old data on the peer) covered adds [size, old). */
int dirty_truncate(struct dirty_set *s, uint8_t dir, uint64_t ino, uint64_t size);
/* Removes the file. */
int dirty_forget(struct dirty_set *s, uint8_t dir, uint64_t ino);
/* Empties the set, except that with keep_hot a HOT file stays, as HOT
 * only: HOT guards changes in flight, which a finished reintegration does
 * not cover. Returns the number of files removed or changed. */
size_t dirty_clear(struct dirty_set *s, bool keep_hot);
/* Every HOT file becomes UNSURE instead (replay after a crash). Returns
 * how many. */
size_t dirty_hot_to_unsure(struct dirty_set *s);

/* Calls fn for each file, in no particular order, until fn returns non-zero
 * (which is returned). fn must not change the set, except the caller's words. */
typedef int (*dirty_fn)(struct dirty_file *f, void *arg);
int dirty_foreach(struct dirty_set *s, dirty_fn fn, void *arg);

struct dirty_count {
	size_t files, hot, unsure, whole;
	size_t ivals;                   /* sum of n */
};
void dirty_count(const struct dirty_set *s, struct dirty_count *c);

/* Sum of a file's intervals; 0 for a WHOLE file. */
uint64_t dirty_file_bytes(const struct dirty_file *f);
/* A file's full size, for files counted whole (below). */
typedef uint64_t (*dirty_size_fn)(uint8_t dir, uint64_t ino, void *arg);
/* Bytes to resend: the intervals of each file, except that a WHOLE or
 * UNSURE file counts size_fn(dir, ino) instead (0 if size_fn is NULL: the
 * caller then counts them through dirty_count). Saturates at UINT64_MAX. */
uint64_t dirty_bytes(const struct dirty_set *s, dirty_size_fn size_fn, void *arg);

#endif
