/* The PRIM's dirty record on disk (docs/design/rfs.md §5.1): a dirty set
 * (dirty.h) kept in memory and in an append-only file, so that it survives
 * a crash. Thread-safe: one mutex inside; many FUSE threads call
 * journal_hot() at once.
 *
 * Record (big-endian):
 *   len u32 | crc32c u32 | type u8 | payload
 * len counts type + payload; the CRC (Castagnoli) covers len, type and
 * payload, so a damaged len is caught too. Payloads:
 *   HOT, COOL, SURE, UNSURE, WHOLE, FORGET   dir u8 | ino u64
 *   EXT                                      dir u8 | ino u64 | off u64 | len u64
 *   CLEAR                                    -
 *   BASE                                     dir u8 (0) | gen u64
 * Each record is applied to the set as the dirty.h call of the same name
 * (EXT = dirty_add). CLEAR voids everything before it except the HOT flag
 * of files HOT at that point (dirty_clear(keep_hot)): a finished
 * reintegration covers past changes, not those in flight. UNSURE is not in
 * §5.1's list: without it, a file made UNSURE (a lost non-data op) and then
 * cooled would replay as sure. BASE names the generation at which the set
 * was last emptied because the copies were equal (journal_reset): the set
 * holds every change since then. CLEAR alone leaves no base (0).
 *
 * Replay reads records up to the first short one, bad CRC, unknown type or
 * wrong length for its type, and cuts the file there (logged, with the byte
 * offset). That is safe because journal_hot() makes a HOT durable before
 * the write it covers, and records are only ever written behind durable
 * ones. At the end, a HOT with no later COOL/SURE becomes UNSURE.
 *
 * A record is written only when it changes the set (a second HOT or an EXT
 * inside a dirty block costs nothing), so replaying the file gives the
 * in-memory set, except HOT -> UNSURE and journal_truncate(), which is kept
 * in memory only: replay may find more dirty blocks than there are, which
 * costs resync work, never data.
 *
 * Durability: journal_hot() and journal_clear() return once their record is
 * on disk (write + fdatasync, grouped: concurrent callers share one sync).
 * The other records are buffered until journal_flush() (every second, by
 * the caller), or any sync. A failed write or sync leaves the file suspect,
 * so nothing is appended to it again: the next sync rewrites it from memory
 * (compaction), and until that works every sync fails.
 *
 * Compaction: once the file reaches compact_bytes and twice its size after
 * the last compaction (so a large set does not compact on every flush),
 * PATH.new is written from the set, fsynced, renamed over PATH, and the
 * directory fsynced. It holds the mutex for its duration. */
#ifndef VIGIL_RFS_JOURNAL_H
#define VIGIL_RFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rfs/dirty.h"

#define JOURNAL_COMPACT_DEFAULT (4u << 20)
#define JOURNAL_HDR_LEN 8u              /* len + crc */

enum journal_rec {
	JREC_HOT = 1,
	JREC_COOL = 2,
	JREC_SURE = 3,
	JREC_UNSURE = 4,
	JREC_EXT = 5,
	JREC_WHOLE = 6,
	JREC_FORGET = 7,
	JREC_CLEAR = 8,
	JREC_BASE = 9,
};

const char *journal_rec_str(enum journal_rec type);

/* CRC-32C (Castagnoli, reflected, init and final xor ~0). */
uint32_t journal_crc32c(const void *buf, size_t len);

/* Appends one record to buf (which must have JOURNAL_REC_MAX bytes free);
 * returns its length. off and len are used by EXT only; dir and ino not by
 * CLEAR. */
#define JOURNAL_REC_MAX 34u
size_t journal_encode(uint8_t *buf, enum journal_rec type, uint8_t dir, uint64_t ino,
                      uint64_t off, uint64_t len);

struct journal_replay {
	size_t good;                    /* bytes up to the end of the last good record */
	size_t records;                 /* good records */
	size_t unsure;                  /* HOTs turned UNSURE at the end */
	const char *cut;                /* NULL if every byte was good; else why not */
	uint64_t base;                  /* the last BASE's generation, 0 if none since a CLEAR */
};

/* Pure: applies the records of buf[0, len) to set (usually empty) as
 * described above, HOT -> UNSURE included. 0, or -1 (errno ENOMEM) if the
 * set could not take a record. */
int journal_replay_buf(const uint8_t *buf, size_t len, struct dirty_set *set, struct journal_replay *r);

struct journal;

/* Opens the record at path (created if absent), replays it, and leaves it
 * ready to append. path NULL: a record in memory only, every sync a no-op
 * (tests, and vigil-rfs without a state directory). If replay cut a tail or turned HOTs to UNSURE, the file
 * is compacted first, so the cut bytes are gone before anything is
 * appended, and the UNSURE flags are durable. compact_bytes 0 means
 * JOURNAL_COMPACT_DEFAULT. NULL on error (logged). */
struct journal *journal_open(const char *path, uint64_t compact_bytes);
/* Flushes (a failure is logged) and frees. NULL is fine. */
void journal_close(struct journal *j);

/* Before each local mutation of a file: returns 0 once HOT is durable. No
 * I/O and only the mutex when the file is already hot. -1 if it cannot be
 * made durable (logged): the caller fails the mutation. Either way the
 * file counts one more op under way until journal_done(), which the caller
 * owes it, so that journal_cool_idle() leaves it hot meanwhile. */
int journal_hot(struct journal *j, uint8_t dir, uint64_t ino);
/* The op begun by journal_hot() is over; its changes were shipped with
 * seqs up to seq (0: not shipped, its extents are in the set). */
void journal_done(struct journal *j, uint8_t dir, uint64_t ino, uint64_t seq);
/* Cools every hot file that no op is changing, that was not made hot
 * since the previous call (idle for at least one period), and whose last
 * shipped seq is at most covered (durable on the peer, or put back into
 * the set at a loss: the COOL record follows those extents in the file).
 * Returns how many were cooled. */
size_t journal_cool_idle(struct journal *j, uint64_t covered);
/* Buffered until journal_flush(). 0, or -1 if out of memory (logged: the
 * journal then rewrites itself from memory at the next sync). */
int journal_cool(struct journal *j, uint8_t dir, uint64_t ino);
int journal_sure(struct journal *j, uint8_t dir, uint64_t ino);
int journal_unsure(struct journal *j, uint8_t dir, uint64_t ino);
int journal_whole(struct journal *j, uint8_t dir, uint64_t ino);
int journal_forget(struct journal *j, uint8_t dir, uint64_t ino);
/* off >= 2^63 cannot come from the kernel: the file is marked WHOLE
 * instead (logged), since something was written. */
int journal_ext(struct journal *j, uint8_t dir, uint64_t ino, uint64_t off, uint64_t len);
/* In memory only (see above). */
int journal_truncate(struct journal *j, uint8_t dir, uint64_t ino, uint64_t size);
/* Reintegration done: CLEAR, durable on return. */
int journal_clear(struct journal *j);
/* The copies are equal at generation gen: CLEAR then BASE(gen), durable on
 * return. gen 0 only clears (the record is no longer complete). */
int journal_reset(struct journal *j, uint64_t gen);
/* BASE(gen) without clearing, durable on return: gen 0 says the set no
 * longer holds every change since its base (something was dropped). */
int journal_set_base(struct journal *j, uint64_t gen);
/* The BASE the record holds every change since (0: none). */
uint64_t journal_base(struct journal *j);
/* Makes every record so far durable. No I/O if there is none. */
int journal_flush(struct journal *j);
/* Rewrites the file from memory now. */
int journal_compact(struct journal *j);

/* Reads the set under the mutex: fn must not call back into the journal. */
int journal_foreach(struct journal *j, dirty_fn fn, void *arg);
void journal_count(struct journal *j, struct dirty_count *c);
uint64_t journal_bytes(struct journal *j, dirty_size_fn size_fn, void *arg);
/* One file's flags and intervals (malloc'ed, *iv NULL when none): 0, 1 if
 * the file is not in the set, -1 out of memory. */
int journal_get(struct journal *j, uint8_t dir, uint64_t ino, uint8_t *flags,
                struct dirty_ival **iv, uint32_t *n);
/* The file's flags, or -1 if it is not in the set. */
int journal_flags(struct journal *j, uint8_t dir, uint64_t ino);

struct journal_stats {
	uint64_t file_bytes;            /* current size of the file on disk */
	uint64_t syncs;                 /* write + fdatasync rounds */
	uint64_t compactions;
	bool broken;                    /* the last write or sync failed */
};
void journal_stats(struct journal *j, struct journal_stats *st);

#endif
